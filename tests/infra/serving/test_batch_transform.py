"""Batch transform: the state machine's transform task, its failure path, role, logging and triggers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.serving.batch_transform import LOG_DELIVERY_ACTIONS, TRACING_ACTIONS
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
    assert definition(serving, stage)["StartAt"] == "RunTransformJob"
    assert state["Type"] == "Task"
    assert state["Resource"] == "arn:${AWS::Partition}:states:::sagemaker:createTransformJob.sync"
    parameters = state["Parameters"]
    (model_id,) = serving(stage, "AWS::SageMaker::Model")
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


@pytest.mark.parametrize("stage", STAGES)
def test_each_execution_names_its_job_and_output_prefix(serving, stage):
    parameters = transform_state(serving, stage)["Parameters"]
    assert parameters["TransformJobName.$"] == f"States.Format('mlopskit-{stage}-{{}}', $$.Execution.Name)"
    output = parameters["TransformOutput"]
    path = output["S3OutputPath.$"]
    assert path.startswith("States.Format('s3://${") and "StorageArtifacts" in path
    assert path.endswith("}/batch-transform/output/{}/', $$.Execution.Name)")
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
    assert states["TransformFailed"] == {"Type": "Fail", "Error": "TransformJobFailed", "CausePath": "$.failure.Cause"}
    (key_id,) = serving(stage, "AWS::KMS::Key")
    assert serving(stage, "AWS::SNS::Topic")[topic_id]["Properties"]["KmsMasterKeyId"] == {
        "Fn::GetAtt": [key_id, "Arn"]
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_role_runs_only_the_stage_transform_jobs_and_passes_only_the_execution_role(serving, stage):
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
    passing = granted["PassExecutionRoleToSageMaker"]
    assert passing["Action"] == "iam:PassRole"
    assert "RolesSageMakerExecution" in render(passing["Resource"])
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
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
    assert "StorageData" in render(bucket) and f"mlopskit-{stage}-foundation" in render(bucket)
    assert pattern["detail"]["object"]["key"] == [{"prefix": settings.input_prefix}]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"]["Ref"].startswith("BatchTransformStateMachine")
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"detail-object-key": "$.detail.object.key"}
    template = json.loads(render(transformer["InputTemplate"]))
    assert template["input_uri"].startswith("s3://${") and template["input_uri"].endswith("}/<detail-object-key>")


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
