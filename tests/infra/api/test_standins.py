"""The stand-in rules: each construct becomes a value of the right type and format, the most demanding one its source
allows, and a construct without a rule is an error rather than a silent pass."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from tests.infra.api.standins import (
    ACCOUNT,
    CAUGHT_ERROR,
    EXECUTION_NAMES,
    PIPELINE_EXECUTION_ID,
    TRIAL_JOB_NAME,
    TUNING_JOB_NAME,
    CfnResolver,
    Environment,
    PipelineExpressions,
    StackTemplate,
    StandInError,
    StatesEvaluator,
    context_object,
    environments,
    generated_name,
    parameter_values,
)
from tests.infra.api.validator import problems

SYDNEY = Environment(ACCOUNT, "ap-southeast-2")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"

FOUNDATION = StackTemplate(
    "dev/Foundation",
    "mlopskit-dev-foundation",
    {
        "Resources": {
            "Key1": {"Type": "AWS::KMS::Key", "Properties": {}},
            "Role1": {"Type": "AWS::IAM::Role", "Properties": {}},
            "Data1": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"BucketName": {"Fn::Sub": "mlopskit-dev-data-${AWS::AccountId}-${AWS::Region}"}},
            },
        },
        "Outputs": {
            "KeyArnOutput": {"Value": {"Fn::GetAtt": ["Key1", "Arn"]}},
            "DataOutput": {"Value": {"Ref": "Data1"}, "Export": {"Name": "mlopskit-dev-data"}},
        },
    },
)
SERVING = StackTemplate(
    "dev/Serving",
    "mlopskit-dev-serving",
    {
        "Mappings": {
            "Images": {"ap-southeast-2": {"Training": "763104351884.dkr.ecr.ap-southeast-2.amazonaws.com/t:1"}}
        },
        "Conditions": {"InSydney": {"Fn::Equals": [{"Ref": "AWS::Region"}, "ap-southeast-2"]}},
        "Resources": {
            "Topic1": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Model1": {"Type": "AWS::SageMaker::Model", "Properties": {}},
            "Role2": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "named", "Path": "/service/"}},
            "Target1": {
                "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
                "Properties": {
                    "ResourceId": "endpoint/e/variant/AllTraffic",
                    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                    "ServiceNamespace": "sagemaker",
                },
            },
            "Queue1": {"Type": "AWS::SQS::Queue", "Properties": {}},
        },
    },
)
STACKS = {stack.stack_name: stack for stack in (FOUNDATION, SERVING)}


def resolve(value: Any, stack: StackTemplate = SERVING) -> Any:
    return CfnResolver(stack, SYDNEY, STACKS).resolve(value)


def test_stacks_without_an_environment_are_checked_in_a_long_region_too():
    assert environments("aws://unknown-account/unknown-region") == [
        Environment(ACCOUNT, "eu-west-1"),
        Environment(ACCOUNT, "ap-southeast-2"),
    ]
    assert environments("aws://222222222222/eu-west-1") == [Environment("222222222222", "eu-west-1")]


def test_pseudo_parameters():
    assert resolve(
        {"Fn::Join": [":", [{"Ref": "AWS::Partition"}, {"Ref": "AWS::Region"}, {"Ref": "AWS::AccountId"}]]}
    ) == ("aws:ap-southeast-2:123456789012")
    assert resolve({"Ref": "AWS::URLSuffix"}) == "amazonaws.com"
    assert resolve({"a": {"Ref": "AWS::NoValue"}, "b": [1, {"Ref": "AWS::NoValue"}]}) == {"b": [1]}


def test_sub_with_variables_attributes_and_escapes():
    template = "${Var}|${AWS::Region}|${Role2.Arn}|${!Literal}|${Topic1}"
    assert resolve({"Fn::Sub": [template, {"Var": {"Ref": "AWS::AccountId"}}]}) == (
        "123456789012|ap-southeast-2|arn:aws:iam::123456789012:role/service/named|${Literal}|"
        + resolve({"Ref": "Topic1"})
    )


def test_references_stand_in_for_what_each_type_returns():
    assert re.fullmatch(
        rf"arn:aws:kms:ap-southeast-2:123456789012:key/{UUID}", resolve({"Fn::GetAtt": ["Key1", "Arn"]}, FOUNDATION)
    )
    assert resolve({"Ref": "Data1"}, FOUNDATION) == "mlopskit-dev-data-123456789012-ap-southeast-2"
    assert (
        resolve({"Fn::GetAtt": ["Data1", "Arn"]}, FOUNDATION)
        == "arn:aws:s3:::mlopskit-dev-data-123456789012-ap-southeast-2"
    )
    topic = resolve({"Ref": "Topic1"})
    assert re.fullmatch(r"arn:aws:sns:ap-southeast-2:123456789012:mlopskit-dev-serving-Topic1-[A-Z0-9]{12}", topic)
    model = resolve({"Fn::GetAtt": ["Model1", "ModelName"]})
    assert re.fullmatch(r"Model1-[A-Z0-9]{12}", model)
    assert resolve({"Ref": "Model1"}) == f"arn:aws:sagemaker:ap-southeast-2:123456789012:model/{model.lower()}"
    assert (
        resolve({"Ref": "Target1"}) == "endpoint/e/variant/AllTraffic|sagemaker:variant:DesiredInstanceCount|sagemaker"
    )


def test_generated_names_stay_within_the_types_limit():
    name = generated_name("mlopskit-staging-serving", "BatchTransformStateMachineRole6D75CE78", 64, with_stack=True)
    assert len(name) == 64
    assert name.startswith("mlopskit-staging-serving-BatchTransform")
    assert generated_name("s", "Logical", 63, with_stack=False, lowercase=True).startswith("logical-")
    assert len(generated_name("s" * 200, "L" * 200, 63, with_stack=False)) == 63


def test_maps_select_split_and_conditions():
    assert resolve({"Fn::FindInMap": ["Images", {"Ref": "AWS::Region"}, "Training"]}).endswith(
        "ap-southeast-2.amazonaws.com/t:1"
    )
    assert resolve({"Fn::Select": [1, {"Fn::Split": ["/", "a/b/c"]}]}) == "b"
    assert resolve({"Fn::If": ["InSydney", "yes", "no"]}) == "yes"


def test_outputs_of_other_stacks():
    key_arn = resolve({"Fn::GetAtt": ["Key1", "Arn"]}, FOUNDATION)
    reference = {"StackName": "mlopskit-dev-foundation", "Region": {"Ref": "AWS::Region"}, "OutputName": "KeyArnOutput"}
    assert resolve({"Fn::GetStackOutput": reference}) == key_arn
    assert resolve({"Fn::ImportValue": "mlopskit-dev-data"}) == "mlopskit-dev-data-123456789012-ap-southeast-2"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Ref": "Queue1"}, "no stand-in for Ref of AWS::SQS::Queue"),
        ({"Fn::GetAtt": ["Topic1", "Bogus"]}, "no stand-in for Fn::GetAtt AWS::SNS::Topic.Bogus"),
        ({"Fn::Cidr": ["10.0.0.0/16", 2, 8]}, "no stand-in for Fn::Cidr"),
        ({"Ref": "AWS::Unknown"}, "no stand-in for the pseudo parameter AWS::Unknown"),
        ({"Fn::GetStackOutput": {"StackName": "elsewhere", "OutputName": "X"}}, "no stack named 'elsewhere'"),
        ({"Fn::ImportValue": "nobody-exports-this"}, "no stack exports"),
    ],
)
def test_constructs_without_a_rule_are_errors(value: Any, message: str):
    with pytest.raises(StandInError, match=re.escape(message)):
        resolve(value)


# --- SageMaker Pipelines ----------------------------------------------------------------------------------------

DEFINITION = {
    "Parameters": [
        {"Name": "Count", "Type": "Integer", "DefaultValue": 1},
        {"Name": "Threshold", "Type": "Float", "DefaultValue": 1},
        {"Name": "Status", "Type": "String", "DefaultValue": "A", "EnumValues": ["A", "B", "C"]},
    ],
    "Steps": [
        {
            "Name": "Prep",
            "Type": "Processing",
            "Arguments": {
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {
                            "OutputName": "train",
                            "S3Output": {
                                "S3Uri": {
                                    "Std:Join": {
                                        "On": "/",
                                        "Values": ["s3://b/runs", {"Get": "Execution.PipelineExecutionId"}, "train"],
                                    }
                                }
                            },
                        }
                    ]
                }
            },
        },
        {
            "Name": "Check",
            "Type": "Condition",
            "Arguments": {
                "IfSteps": [{"Name": "Tune", "Type": "Tuning", "Arguments": {"X": {"Get": "Parameters.Count"}}}],
                "ElseSteps": [],
            },
        },
    ],
}


def expressions(**values: Any) -> PipelineExpressions:
    return PipelineExpressions(DEFINITION, {"Count": 1, "Threshold": 1.0, "Status": "A", **values}, SYDNEY, "p")


def test_parameters_default_and_every_enum_value():
    runs = dict(parameter_values(DEFINITION["Parameters"]))
    assert runs == {
        "defaults": {"Count": 1, "Threshold": 1.0, "Status": "A"},
        "Status=B": {"Count": 1, "Threshold": 1.0, "Status": "B"},
        "Status=C": {"Count": 1, "Threshold": 1.0, "Status": "C"},
    }
    assert isinstance(runs["defaults"]["Threshold"], float)  # a Float parameter is a float even when written as 1


def test_pipeline_expressions():
    evaluated = expressions(Count=3)
    prefix = f"s3://b/runs/{PIPELINE_EXECUTION_ID}"
    assert evaluated.evaluate({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}) == (
        f"{prefix}/train"
    )
    assert evaluated.evaluate({"Get": "Parameters.Count"}) == 3
    assert evaluated.request("Tune") == {"X": 3}  # steps inside a condition are found too
    assert evaluated.evaluate({"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"}) == TRIAL_JOB_NAME
    assert evaluated.evaluate({"Std:Join": {"On": " ", "Values": ["at least", {"Get": "Parameters.Threshold"}]}}) == (
        "at least 1.0"
    )
    assert re.fullmatch(r"[a-z0-9]{12}", PIPELINE_EXECUTION_ID)


def test_generated_job_names_are_at_the_apis_maximum():
    # SageMaker Pipelines names a tuning job; the tuning job names its trials after it.
    assert (
        problems("sagemaker", "DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": TUNING_JOB_NAME}) == []
    )
    assert len(TUNING_JOB_NAME) == 32
    assert problems("sagemaker", "DescribeTrainingJob", {"TrainingJobName": TRIAL_JOB_NAME}) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Get": "Parameters.Missing"}, "no parameter Missing"),
        ({"Get": "Execution.Bogus"}, "no stand-in for Execution.Bogus"),
        ({"Get": "Steps.Prep.Bogus"}, "no stand-in for this Processing step property"),
        ({"Get": "Steps.Nowhere.X"}, "no such step"),
        ({"Std:Bogus": {}}, "no stand-in for the pipeline function Std:Bogus"),
    ],
)
def test_pipeline_expressions_without_a_rule_are_errors(value: Any, message: str):
    with pytest.raises(StandInError, match=re.escape(message)):
        expressions().evaluate(value)


# --- Step Functions ---------------------------------------------------------------------------------------------

STATE_MACHINE_ARN = "arn:aws:states:ap-southeast-2:123456789012:stateMachine:mlopskit-dev-batch-transform"
LONGEST_NAME = EXECUTION_NAMES["80 characters (StartExecution's maximum)"]


def states(state_input: Any = None) -> StatesEvaluator:
    state_input = {"input_uri": "s3://b/k", "n": [1, 2, 3]} if state_input is None else state_input
    return StatesEvaluator(state_input, context_object(STATE_MACHINE_ARN, LONGEST_NAME, state_input, "Run"))


def test_execution_names_reach_step_functions_limit():
    assert len(LONGEST_NAME) == 80
    assert (
        problems("stepfunctions", "StartExecution", {"stateMachineArn": STATE_MACHINE_ARN, "name": LONGEST_NAME}) == []
    )
    assert len(CAUGHT_ERROR["Cause"]) == 32768


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$.input_uri", "s3://b/k"),
        ("$$.Execution.Name", LONGEST_NAME),
        (
            "$$.Execution.Id",
            f"arn:aws:states:ap-southeast-2:123456789012:execution:mlopskit-dev-batch-transform:{LONGEST_NAME}",
        ),
        ("States.Format('job-{}', $$.Execution.Name)", f"job-{LONGEST_NAME}"),
        ("States.Format('a\\{\\}b {} {}', 1, $.n)", "a{}b 1 [1,2,3]"),
        ("States.Format('it\\'s {}', States.ArrayLength($.n))", "it's 3"),
        ("States.Hash($$.Execution.Name, 'SHA-256')", hashlib.sha256(LONGEST_NAME.encode()).hexdigest()),
        ("States.ArrayGetItem($.n, 2)", 3),
        ("States.JsonToString($.n)", "[1,2,3]"),
        ("States.StringToJson('{\"a\": 1}')", {"a": 1}),
        ("States.MathRandom(1, 1000)", 999),
        ("States.MathAdd(1, -2)", -1),
        ("States.Base64Encode('ab')", "YWI="),
        ("States.StringSplit('a,b;c', ',;')", ["a", "b", "c"]),
        ("States.Array(1, 'x', $.input_uri)", [1, "x", "s3://b/k"]),
    ],
)
def test_paths_and_intrinsic_functions(expression: str, expected: Any):
    assert states().expression(expression) == expected


def test_uuids_are_real_uuids():
    assert re.fullmatch(UUID, states().expression("States.UUID()"))


def test_parameters_evaluate_dollar_fields_only():
    assert states().parameters({"A.$": "$.input_uri", "B": "$.input_uri", "C": [{"D.$": "$.n[0]"}]}) == {
        "A": "s3://b/k",
        "B": "$.input_uri",
        "C": [{"D": 1}],
    }


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("$.missing", "$.missing: not in the state's input"),
        ("States.Bogus(1)", "no stand-in for States.Bogus"),
        ("States.Format('{} {}', 1)", "more {} than arguments"),
        ("States.Format('x', 1)", "more arguments than {}"),
    ],
)
def test_states_expressions_without_a_value_are_errors(expression: str, message: str):
    with pytest.raises(StandInError, match=re.escape(message)):
        states().expression(expression)
