"""Batch transform: the state machine's transform task, its failure path, role, logging and triggers."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.serving.batch_transform import EXECUTION_TAG, LOG_DELIVERY_ACTIONS, TRACING_ACTIONS
from tests.infra.serving.conftest import only, render

STAGES = ("staging", "prod")


def definition(serving, stage: str) -> dict[str, Any]:
    state_machine = only(serving(stage, "AWS::StepFunctions::StateMachine"))
    return json.loads(render(state_machine["Properties"]["DefinitionString"]))


def transform_state(serving, stage: str) -> dict[str, Any]:
    return definition(serving, stage)["States"]["RunTransformJob"]


def statements(serving, stage: str) -> dict[str, dict[str, Any]]:
    policy = only(serving(stage, "AWS::IAM::Policy", "BatchTransformStateMachinePolicy"))["Properties"]
    return {statement["Sid"]: statement for statement in policy["PolicyDocument"]["Statement"]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("stage", STAGES)
def test_the_transform_runs_synchronously_on_the_model_as_configured(serving, stage_configs, stage):
    settings = stage_configs[stage].inference.batch_transform
    state = transform_state(serving, stage)
    assert definition(serving, stage)["StartAt"] == "CheckInput"
    assert state["Type"] == "Task"
    assert state["Resource"] == "arn:${AWS::Partition}:states:::sagemaker:createTransformJob.sync"
    parameters = state["Parameters"]
    (model_id,) = serving(stage, "AWS::SageMaker::Model", "Model")
    assert parameters["ModelName"] == "${" + model_id + ".ModelName}"
    assert parameters["BatchStrategy"] == "MultiRecord"
    assert parameters["MaxPayloadInMB"] == settings.max_payload_mb
    assert parameters["MaxConcurrentTransforms"] == settings.max_concurrent_transforms
    assert parameters["TransformInput"] == {
        "ContentType": settings.content_type,
        "SplitType": "Line",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri.$": "$.input_uri"}},
    }
    assert parameters["DataProcessing"] == {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "Input"}
    assert parameters["TransformResources"]["InstanceType"] == settings.instance_type
    assert parameters["TransformResources"]["InstanceCount"] == settings.instance_count
    assert "EncryptionKey" in parameters["TransformResources"]["VolumeKmsKeyId"]
    assert {tag["Key"] for tag in parameters["Tags"]} >= {"project", "stage"}
    assert {"Key": EXECUTION_TAG, "Value.$": "$$.Execution.Name"} in parameters["Tags"]


@pytest.mark.parametrize("stage", STAGES)
def test_each_execution_names_its_job_and_output_prefix(serving, stage):
    """The job name hashes the execution's name: executions may have 80 characters and `_` or `.`, job names at
    most 63 of letters, digits and hyphens (the API-model tests check the longest case)."""
    parameters = transform_state(serving, stage)["Parameters"]
    assert parameters["TransformJobName.$"] == (
        f"States.Format('mlopskit-{stage}-{{}}', States.Hash($$.Execution.Name, 'MD5'))"
    )
    output = parameters["TransformOutput"]
    assert output["S3OutputPath.$"] == (
        f"States.Format('s3://mlopskit-{stage}-artifacts-${{AWS::AccountId}}-${{AWS::Region}}"
        "/batch-transform/output/{}/', $$.Execution.Name)"
    )
    assert (output["Accept"], output["AssembleWith"]) == ("text/csv", "Line")
    assert "EncryptionKey" in output["KmsKeyId"]


@pytest.mark.parametrize("stage", STAGES)
def test_a_failure_is_published_then_fails_the_execution(serving, stage):
    states = definition(serving, stage)["States"]
    (catch,) = states["RunTransformJob"]["Catch"]
    assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "NotifyFailure"}
    notify = states["NotifyFailure"]
    assert notify["Resource"] == "arn:${AWS::Partition}:states:::sns:publish"
    (topic_id,) = serving(stage, "AWS::SNS::Topic", "BatchTransformFailureTopic")
    assert notify["Parameters"]["TopicArn"] == "${" + topic_id + "}"
    assert notify["Parameters"]["Message"]["cause.$"] == "$.failure.Cause"
    assert notify["Next"] == "TransformFailed"
    assert states["TransformFailed"] == {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "$.failure.Cause"}
    (key_id,) = serving(stage, "AWS::KMS::Key")
    assert serving(stage, "AWS::SNS::Topic")[topic_id]["Properties"]["KmsMasterKeyId"] == {
        "Fn::GetAtt": [key_id, "Arn"]
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_role_runs_only_the_stage_transform_jobs_and_passes_no_role(serving, stage):
    """CreateTransformJob takes no role (the job runs as the model's): the state machine may pass none."""
    granted = statements(serving, stage)
    jobs = granted["RunTransformJobs"]
    assert render(jobs["Resource"]).endswith(f":transform-job/mlopskit-{stage}-*")
    assert sorted(jobs["Action"]) == [
        "sagemaker:AddTags",
        "sagemaker:CreateTransformJob",
        "sagemaker:DescribeTransformJob",
        "sagemaker:ListTags",
        "sagemaker:StopTransformJob",
    ]
    assert not [sid for sid, statement in granted.items() if "iam:PassRole" in as_list(statement["Action"])]
    follow = granted["FollowTransformJobs"]
    assert sorted(follow["Action"]) == ["events:DescribeRule", "events:PutRule", "events:PutTargets"]
    assert render(follow["Resource"]).endswith(":rule/StepFunctionsGetEventsForSageMakerTransformJobsRule")
    assert granted["NotifyFailures"]["Resource"]["Ref"].startswith("BatchTransformFailureTopic")
    star = {sid for sid, statement in granted.items() if "*" in as_list(statement["Resource"])}
    assert star == {"DeliverLogs", "PublishTraces"}
    assert sorted(granted["DeliverLogs"]["Action"]) == sorted(LOG_DELIVERY_ACTIONS)
    assert sorted(granted["PublishTraces"]["Action"]) == sorted(TRACING_ACTIONS)
    role = only(serving(stage, "AWS::IAM::Role", "BatchTransformStateMachineRole"))["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "states.amazonaws.com"}
    assert "Policies" not in role and "ManagedPolicyArns" not in role


@pytest.mark.parametrize("stage", STAGES)
def test_logs_every_event_to_an_encrypted_log_group_and_traces(serving, stage):
    state_machine = only(serving(stage, "AWS::StepFunctions::StateMachine"))
    properties = state_machine["Properties"]
    assert properties["StateMachineName"] == f"mlopskit-{stage}-batch-transform"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    logging = properties["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    (log_group_id,) = serving(stage, "AWS::Logs::LogGroup")
    assert logging["Destinations"] == [
        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [log_group_id, "Arn"]}}}
    ]
    log_group = serving(stage, "AWS::Logs::LogGroup")[log_group_id]["Properties"]
    (key_id,) = serving(stage, "AWS::KMS::Key")
    assert log_group["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    key_policy = only(serving(stage, "AWS::KMS::Key"))["Properties"]["KeyPolicy"]["Statement"]
    (logs,) = [s for s in key_policy if s["Sid"] == "LogsEncryptTheBatchLogGroup"]
    assert render(logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]).endswith(
        f":log-group:{log_group['LogGroupName']}"
    )
    assert any(d.startswith("BatchTransformStateMachinePolicy") for d in state_machine["DependsOn"])


@pytest.mark.parametrize("stage", STAGES)
def test_uploads_under_the_input_prefix_start_an_execution_for_the_object(serving, stage_configs, stage):
    settings = stage_configs[stage].inference.batch_transform
    (rule,) = serving(stage, "AWS::Events::Rule", "BatchTransformOnUpload").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    (bucket,) = pattern["detail"]["bucket"]["name"]
    assert render(bucket) == f"mlopskit-{stage}-data-${{AWS::AccountId}}-${{AWS::Region}}"
    assert pattern["detail"]["object"] == {
        "key": [{"prefix": settings.input_prefix}],
        "size": [{"numeric": [">", 0]}],
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"]["Ref"].startswith("BatchTransformStateMachine")
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"detail-object-key": "$.detail.object.key"}
    template = json.loads(render(transformer["InputTemplate"]))
    assert (
        template["input_uri"] == f"s3://mlopskit-{stage}-data-${{AWS::AccountId}}-${{AWS::Region}}/<detail-object-key>"
    )


def test_a_schedule_transforms_the_whole_input_prefix_where_configured(serving, stage_configs):
    settings = stage_configs["staging"].inference.batch_transform
    (rule,) = serving("staging", "AWS::Events::Rule", "BatchTransformSchedule").values()
    assert rule["Properties"]["ScheduleExpression"] == settings.schedule
    (target,) = rule["Properties"]["Targets"]
    assert json.loads(render(target["Input"]))["input_uri"].endswith(f"}}/{settings.input_prefix}")
    assert stage_configs["prod"].inference.batch_transform.schedule is None
    assert serving("prod", "AWS::Events::Rule", "BatchTransformSchedule") == {}


def test_without_triggers_there_are_no_rules(variant):
    assert variant("AWS::StepFunctions::StateMachine")
    assert variant("AWS::Events::Rule") == {}


@pytest.mark.parametrize("stage", STAGES)
def test_a_failed_execution_raises_an_alarm(serving, stage):
    (alarm,) = serving(stage, "AWS::CloudWatch::Alarm", "BatchTransformFailedExecutions").values()
    properties = alarm["Properties"]
    assert (properties["Namespace"], properties["MetricName"]) == ("AWS/States", "ExecutionsFailed")
    assert properties["Dimensions"][0]["Value"]["Ref"].startswith("BatchTransformStateMachine")
    assert (properties["Threshold"], properties["EvaluationPeriods"]) == (1, 1)
    assert properties["AlarmActions"] == [{"Ref": next(iter(serving(stage, "AWS::SNS::Topic", "AlarmTopic")))}]


# The state machine and the upload rule as AWS runs them (moto executes the definition and matches the pattern).

ACCOUNT, REGION = "123456789012", "eu-west-1"
DATA_BUCKET = f"mlopskit-staging-data-{ACCOUNT}-{REGION}"


def concrete(text: str, topic_arn: str) -> str:
    """The template's text with the account, region and failure topic in place (other references are not read)."""
    text = text.replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION)
    text = text.replace("${AWS::Partition}", "aws")
    text = re.sub(r"\$\{BatchTransformFailureTopic[^}]*\}", topic_arn, text)
    return re.sub(r"\$\{[^}]*\}", "not-read-here", text)


def run_execution(sfn, state_machine_arn: str, name: str, execution_input: Any) -> dict[str, Any]:
    """Runs an execution to its end (moto runs it in a thread) and adds the states it entered."""
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input))
    for _ in range(500):
        events = sfn.get_execution_history(executionArn=arn["executionArn"])["events"]
        if events and events[-1]["type"].startswith("Execution") and events[-1]["type"] != "ExecutionStarted":
            break
        time.sleep(0.01)
    described = sfn.describe_execution(executionArn=arn["executionArn"])
    described["states"] = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    return described


def test_an_input_outside_the_input_prefix_is_refused_before_any_job_and_announced(serving):
    state_machine = only(serving("staging", "AWS::StepFunctions::StateMachine"))
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        topic = sns.create_topic(Name="failures")["TopicArn"]
        queue = sqs.create_queue(QueueName="failures")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        sfn = boto3.client("stepfunctions", region_name=REGION)
        definition_text = concrete(render(state_machine["Properties"]["DefinitionString"]), topic)
        arn = sfn.create_state_machine(
            name="batch", definition=definition_text, roleArn=f"arn:aws:iam::{ACCOUNT}:role/batch"
        )["stateMachineArn"]

        refused = {
            "raw-data": {"input_uri": f"s3://{DATA_BUCKET}/raw/customers.csv"},
            "other-bucket": {"input_uri": "s3://someone-elses-bucket/batch-transform/input/x.csv"},
            "no-uri": {},
            "not-text": {"input_uri": ["s3://x"]},
        }
        for name, execution_input in refused.items():
            execution = run_execution(sfn, arn, name, execution_input)
            assert (execution["status"], execution["error"]) == ("FAILED", "InputOutsidePrefix"), name
            assert f"s3://{DATA_BUCKET}/batch-transform/input/" in execution["cause"]
            assert execution["states"] == ["CheckInput", "InputOutsidePrefix", "NotifyFailure", "TransformFailed"]
            (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            announced = json.loads(message["Body"])
            assert announced["error"] == "InputOutsidePrefix"
            assert json.loads(announced["input"]) == execution_input

        accepted = run_execution(
            sfn, arn, "in-prefix", {"input_uri": f"s3://{DATA_BUCKET}/batch-transform/input/a.csv"}
        )
        # moto runs no SageMaker job: the execution fails past the check, in the transform task it let it reach.
        assert accepted["states"][0] == "CheckInput" and "InputOutsidePrefix" not in accepted["states"]
        assert accepted.get("error") != "InputOutsidePrefix"


def upload_event(key: str, size: int) -> dict[str, Any]:
    """An "Object Created" event as S3 sends it to EventBridge."""
    return {
        "Source": "aws.s3",
        "DetailType": "Object Created",
        "Resources": [f"arn:aws:s3:::{DATA_BUCKET}"],
        "Detail": json.dumps({"bucket": {"name": DATA_BUCKET}, "object": {"key": key, "size": size}}),
    }


@pytest.mark.parametrize(
    ("key", "size", "started"),
    [
        ("batch-transform/input/day-1.csv", 1024, True),
        ("batch-transform/input/", 0, False),  # the S3 console's "folder": a transform of the whole prefix
        ("batch-transform/input/empty.csv", 0, False),
        ("raw/day-1.csv", 1024, False),
    ],
)
def test_uploads_start_a_transform_but_folders_and_empty_objects_do_not(serving, key, size, started):
    """EventBridge (moto) evaluates the synthesized pattern, with a queue standing in for the state machine."""
    (rule,) = serving("staging", "AWS::Events::Rule", "BatchTransformOnUpload").values()
    pattern = concrete(json.dumps(rule["Properties"]["EventPattern"]), "")
    with mock_aws():
        events, sqs = boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="state-machine-stand-in")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="uploads", EventPattern=pattern, State="ENABLED")
        events.put_targets(Rule="uploads", Targets=[{"Id": "batch", "Arn": queue_arn}])

        assert events.put_events(Entries=[upload_event(key, size)])["FailedEntryCount"] == 0
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])

    assert len(messages) == (1 if started else 0)
