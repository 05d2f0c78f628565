"""Each step of each SageMaker Pipeline definition is a request its API accepts, in every run worth checking: the
parameter defaults and each allowed value of each parameter, in each region the stack may be deployed to."""

from __future__ import annotations

import copy
import dataclasses
import json
import re

import pytest

from tests.infra.api import validator
from tests.infra.api.conftest import PIPELINE_STACKS, stack_id
from tests.infra.api.payloads import SHOWN_VALUES, STEP_APIS, pipeline_steps
from tests.infra.api.standins import CfnResolver, environments


@pytest.mark.parametrize("entry", PIPELINE_STACKS, ids=stack_id)
def test_pipeline_steps_are_requests_the_apis_accept(entry, stack_of):
    stack, assembly = stack_of(entry)
    found = pipeline_steps(stack, assembly.by_stack_name)
    operations = {payload.operation for payload in found.payloads}
    # Preprocess and Evaluate, Tune, Register: a definition without them was not read.
    assert operations >= {"CreateProcessingJob", "CreateHyperParameterTuningJob", "CreateModelPackage"}, operations
    assert operations <= {operation for _, operation, _ in STEP_APIS.values()}
    problems = found.report()
    assert not problems, "\n".join(problems)


def _parameters(stack, assembly) -> dict[str, dict]:
    resolver = CfnResolver(stack, environments(stack.environment)[0], assembly.by_stack_name)
    (pipeline,) = stack.of_type("AWS::SageMaker::Pipeline").values()
    body = resolver.resolve(pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"])
    return {parameter["Name"]: parameter for parameter in json.loads(body)["Parameters"]}


def test_every_parameter_value_is_tried(stack_of):
    stack, assembly = stack_of(("app", "staging/Pipeline"))
    variants = {payload.variant for payload in pipeline_steps(stack, assembly.by_stack_name).payloads}
    assert ("eu-west-1", "defaults") in variants
    assert ("ap-southeast-2", "TrainingInstanceType=ml.p3.2xlarge") in variants
    assert ("ap-southeast-2", "ModelApprovalStatus=Approved") in variants
    # The processing instance type admits every type of the configured one's kind: each is tried.
    processing = _parameters(stack, assembly)["ProcessingInstanceType"]
    assert len(processing["EnumValues"]) > 100
    tried = {label.partition("=")[2] for _, label in variants if label.startswith("ProcessingInstanceType=")}
    assert tried | {processing["DefaultValue"]} == set(processing["EnumValues"])


def test_each_distinct_request_is_validated_once(stack_of, monkeypatch):
    stack, assembly = stack_of(("app", "staging/Pipeline"))
    found = pipeline_steps(stack, assembly.by_stack_name)
    validated = []
    real = validator.problems
    monkeypatch.setattr(validator, "problems", lambda *a, **k: validated.append(a[2]) or real(*a, **k))
    assert found.report() == []
    distinct = {json.dumps([p.operation, p.request], sort_keys=True) for p in found.payloads}
    assert len(validated) == len(distinct) < len(found.payloads)


def test_a_defect_in_a_step_is_reported(stack_of):
    stack, assembly = stack_of(("app", "staging/Pipeline"))
    template = copy.deepcopy(stack.template)
    (pipeline,) = (r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Pipeline")
    body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    assert '"VolumeSizeInGB": 30' in body[0]
    body[0] = body[0].replace('"VolumeSizeInGB": 30', '"VolumeSizeInGB": 0', 1)
    problems = pipeline_steps(dataclasses.replace(stack, template=template), assembly.by_stack_name).report()
    assert problems
    assert all("ProcessingResources.ClusterConfig.VolumeSizeInGB: 0 is below the minimum 1" in p for p in problems)
    # Every run has the defect: the line names a few of its variants, and how many more.
    (line,) = (p for p in problems if "step Preprocess" in p)
    (listed, more) = re.search(r"\[eu-west-1, ap-southeast-2 × (.*) and (\d+) more\]$", line).groups()
    assert len(listed.split(", ")) == SHOWN_VALUES and int(more) > 100
