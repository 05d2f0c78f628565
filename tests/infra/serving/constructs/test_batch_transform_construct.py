"""BatchTransform on its own: the state machine checks its input against the configured prefix before any job,
names and tags its jobs as told, and is started only by the triggers its settings ask for."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import RemovalPolicy

from infra.config import BatchTransform as BatchTransformSettings
from infra.serving.batch_transform import EXECUTION_TAG, BatchTransform
from tests.infra.serving.conftest import only, render
from tests.infra.serving.constructs.conftest import (
    ARTIFACTS_BUCKET,
    DATA_BUCKET,
    MODEL_NAME,
    BareStack,
    of_type,
    properties_of,
)

STATE_MACHINE_NAME = "unit-batch-transform"
JOB_NAME_PREFIX = "unit-"
INPUT_PREFIX = "batch-transform/scoring/"


def batch_transform(
    bare: BareStack, removal_policy: RemovalPolicy = RemovalPolicy.RETAIN, **settings
) -> BatchTransform:
    return BatchTransform(
        bare.stack,
        "BatchTransform",
        settings=BatchTransformSettings(enabled=True, input_prefix=INPUT_PREFIX, **settings),
        state_machine_name=STATE_MACHINE_NAME,
        job_name_prefix=JOB_NAME_PREFIX,
        role_description="the unit's batch transform",
        tags={"team": "ml", "project": "unit"},
        removal_policy=removal_policy,
        model_name=MODEL_NAME,
        key=bare.key,
        data=bare.data,
        artifacts=bare.artifacts,
        role=bare.role,
        notification_key=bare.notification_key,
        alarm_topic=bare.alarm_topic,
    )


def states(template: dict[str, Any]) -> dict[str, Any]:
    state_machine = only(of_type(template, "AWS::StepFunctions::StateMachine"))["Properties"]
    definition = json.loads(render(state_machine["DefinitionString"]))
    assert definition["StartAt"] == "CheckInput"
    return definition["States"]


def test_only_an_s3_uri_under_the_input_prefix_reaches_the_transform_job(bare):
    batch_transform(bare)
    check = states(bare.template())["CheckInput"]
    prefix_uri = f"s3://{DATA_BUCKET}/{INPUT_PREFIX}"
    assert check == {
        "Type": "Choice",
        "Choices": [
            {
                "And": [
                    {"Variable": "$.input_uri", "IsPresent": True},
                    {"Variable": "$.input_uri", "IsString": True},
                    {"Variable": "$.input_uri", "StringMatches": f"{prefix_uri}*"},
                ],
                "Next": "RunTransformJob",
            }
        ],
        "Default": "InputOutsidePrefix",
    }
    refused = states(bare.template())["InputOutsidePrefix"]
    assert refused["Parameters"]["Error"] == "InputOutsidePrefix"
    assert f'{{"input_uri": "{prefix_uri}..."}}' in refused["Parameters"]["Cause"]
    assert refused["Next"] == "NotifyFailure"


def test_the_job_runs_the_given_model_named_and_tagged_as_told(bare):
    batch_transform(bare, instance_type="ml.c5.xlarge", instance_count=2)
    parameters = states(bare.template())["RunTransformJob"]["Parameters"]
    assert parameters["ModelName"] == MODEL_NAME
    assert parameters["TransformJobName.$"] == (
        f"States.Format('{JOB_NAME_PREFIX}{{}}', States.Hash($$.Execution.Name, 'MD5'))"
    )
    assert parameters["TransformOutput"]["S3OutputPath.$"] == (
        f"States.Format('s3://{ARTIFACTS_BUCKET}/batch-transform/output/{{}}/', $$.Execution.Name)"
    )
    assert parameters["TransformResources"]["InstanceType"] == "ml.c5.xlarge"
    assert parameters["TransformResources"]["InstanceCount"] == 2
    assert parameters["Tags"] == [
        {"Key": "project", "Value": "unit"},
        {"Key": "team", "Value": "ml"},
        {"Key": EXECUTION_TAG, "Value.$": "$$.Execution.Name"},
    ]


def test_the_state_machine_role_runs_only_jobs_of_the_prefix_and_the_serving_role_reads_only_the_input(bare):
    batch = batch_transform(bare)
    template = bare.template()
    role = of_type(template, "AWS::IAM::Role")[bare.logical_id(batch.role)]
    assert role["Properties"]["Description"] == "the unit's batch transform"
    policy = of_type(template, "AWS::IAM::Policy")[bare.logical_id(batch.policy)]
    granted = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert render(granted["RunTransformJobs"]["Resource"]).endswith(f":transform-job/{JOB_NAME_PREFIX}*")
    serving = bare.serving_role_statements(template)
    assert (
        render(serving["ReadBatchInput"]["Resource"]) == f"arn:${{AWS::Partition}}:s3:::{DATA_BUCKET}/{INPUT_PREFIX}*"
    )
    assert serving["ReadBatchInputList"]["Condition"] == {
        "StringLike": {"s3:prefix": [INPUT_PREFIX, f"{INPUT_PREFIX}*"]}
    }
    assert render(serving["WriteBatchOutput"]["Resource"]) == (
        f"arn:${{AWS::Partition}}:s3:::{ARTIFACTS_BUCKET}/batch-transform/output/*"
    )


def test_uploads_and_a_schedule_start_it_when_configured(bare):
    batch = batch_transform(bare, run_on_upload=True, schedule="rate(1 day)")
    template = bare.template()
    rules = of_type(template, "AWS::Events::Rule")
    assert set(rules) == {bare.logical_id(batch.upload_rule), bare.logical_id(batch.schedule_rule)}
    on_upload = rules[bare.logical_id(batch.upload_rule)]["Properties"]
    schedule = rules[bare.logical_id(batch.schedule_rule)]["Properties"]
    assert on_upload["EventPattern"]["detail"] == {
        "bucket": {"name": [DATA_BUCKET]},
        "object": {"key": [{"prefix": INPUT_PREFIX}], "size": [{"numeric": [">", 0]}]},
    }
    assert schedule["ScheduleExpression"] == "rate(1 day)"
    (target,) = schedule["Targets"]
    assert json.loads(target["Input"]) == {"input_uri": f"s3://{DATA_BUCKET}/{INPUT_PREFIX}"}


def test_without_triggers_nothing_starts_it(bare):
    batch_transform(bare, run_on_upload=False)
    template = bare.template()
    assert of_type(template, "AWS::StepFunctions::StateMachine")
    assert of_type(template, "AWS::Events::Rule") == {}


def test_its_log_group_follows_the_given_removal_policy(bare):
    batch_transform(bare, removal_policy=RemovalPolicy.DESTROY)
    log_group = only(of_type(bare.template(), "AWS::Logs::LogGroup"))
    assert log_group["DeletionPolicy"] == "Delete"
    assert log_group["Properties"]["LogGroupName"] == f"/aws/vendedlogs/states/{STATE_MACHINE_NAME}"
    assert log_group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [bare.logical_id(bare.notification_key.key), "Arn"]}


def test_a_failed_execution_notifies_the_given_alarm_topic(bare):
    batch_transform(bare)
    (alarm,) = properties_of(bare.template(), "AWS::CloudWatch::Alarm")
    assert alarm["AlarmName"] == f"{STATE_MACHINE_NAME}-failed-executions"
    assert alarm["AlarmActions"] == [{"Ref": bare.logical_id(bare.alarm_topic)}]
