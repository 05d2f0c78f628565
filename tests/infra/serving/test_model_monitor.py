"""Model Monitor on the real-time endpoint: a schedule compares captured requests with the served version's baseline,
an alarm per feature notifies the alarm topic, and in staging a drift beyond the retrain threshold starts the training
pipeline once, through an EventBridge rule that matches only that alarm going into ALARM; in prod a second schedule
measures accuracy on the ground truth uploaded for captured requests, and an alarm compares it with the stage's
threshold."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from infra import naming
from infra.serving.model_monitor import (
    ACCURACY_METRIC,
    DATA_METRICS_NAMESPACE,
    DRIFT_METRIC_PREFIX,
    MODEL_METRICS_NAMESPACE,
    PREDICTED_LABEL_COLUMN,
    SCHEDULES,
    captured_column,
)
from training_code.contract import CONSTRAINTS_FILE, STATISTICS_FILE

MONITORED = ("staging", "prod")


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: r for key, r in template["Resources"].items() if r["Type"] == resource_type}


def only(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    (found,) = of_type(template, resource_type).items()
    return found


def alarms_on(template: dict[str, Any], threshold: float) -> dict[str, dict[str, Any]]:
    return {
        key: alarm["Properties"]
        for key, alarm in of_type(template, "AWS::CloudWatch::Alarm").items()
        if alarm["Properties"].get("MetricName", "").startswith(DRIFT_METRIC_PREFIX)
        and alarm["Properties"]["Threshold"] == threshold
    }


@pytest.mark.parametrize("stage", MONITORED)
def test_the_schedule_compares_captured_requests_with_the_served_versions_baseline(
    synthesized_app, stage_configs, stage
):
    config = stage_configs[stage]
    template = synthesized_app.template(stage, "Serving")
    definition_id, definition = only(template, "AWS::SageMaker::DataQualityJobDefinition")
    (schedule,) = [
        s
        for s in of_type(template, "AWS::SageMaker::MonitoringSchedule").values()
        if s["Properties"]["MonitoringScheduleConfig"]["MonitoringType"] == "DataQuality"
    ]
    endpoint_name = naming.realtime_endpoint_name(config)
    (endpoint_id,) = [
        key
        for key, endpoint in of_type(template, "AWS::SageMaker::Endpoint").items()
        if endpoint["Properties"]["EndpointName"] == endpoint_name
    ]
    job = definition["Properties"]
    baseline = config.inference.baseline

    assert job["DataQualityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": baseline.uri + CONSTRAINTS_FILE},
        "StatisticsResource": {"S3Uri": baseline.uri + STATISTICS_FILE},
    }
    assert job["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == endpoint_name
    assert job["DataQualityAppSpecification"]["Environment"] == {"publish_cloudwatch_metrics": "Enabled"}
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] <= 3600
    (output,) = job["DataQualityJobOutputConfig"]["MonitoringOutputs"]
    assert "/monitoring/" in json.dumps(output["S3Output"]["S3Uri"])
    assert job["RoleArn"]["Fn::GetAtt"][0].startswith("ServingRole"), "the job runs as the serving role"
    (grant,) = [
        statement
        for policy in of_type(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "GrantStageKeyToMonitoringJobs"
    ]
    assert grant["Action"] == ["kms:CreateGrant", "kms:DescribeKey"], "SageMaker starts executions as the role"
    assert grant["Condition"]["BoolIfExists"] == {"kms:GrantIsForAWSResource": "true"}

    scheduled = schedule["Properties"]
    assert scheduled["MonitoringScheduleName"] == naming.data_quality_schedule_name(config)
    assert scheduled["MonitoringScheduleConfig"] == {
        "MonitoringJobDefinitionName": job["JobDefinitionName"],
        "MonitoringType": "DataQuality",
        "ScheduleConfig": {"ScheduleExpression": SCHEDULES[config.monitoring.schedule]},
    }
    assert definition_id in schedule["DependsOn"]
    assert endpoint_id in schedule["DependsOn"], "the schedule names an endpoint that must exist first"


def test_a_changed_baseline_gives_a_new_job_definition_name_and_the_same_baseline_the_same_name(
    synthesized_app, stage_configs
):
    """A job definition cannot be updated: CloudFormation replaces it, which a fixed name would make it refuse."""
    names = {
        stage: only(synthesized_app.template(stage, "Serving"), "AWS::SageMaker::DataQualityJobDefinition")[1][
            "Properties"
        ]["JobDefinitionName"]
        for stage in MONITORED
    }
    assert stage_configs["staging"].inference.baseline.uri != stage_configs["prod"].inference.baseline.uri
    assert names["staging"].removesuffix(names["staging"][-8:]) == "mlopskit-staging-data-quality-"
    assert names["staging"][-8:] != names["prod"][-8:]
    again = synthesized_app.template("staging", "Serving")
    assert (
        only(again, "AWS::SageMaker::DataQualityJobDefinition")[1]["Properties"]["JobDefinitionName"]
        == (names["staging"])
    )


@pytest.mark.parametrize("stage", MONITORED)
def test_each_feature_has_a_drift_alarm_that_notifies_the_alarm_topic(synthesized_app, stage_configs, stage):
    config = stage_configs[stage]
    template = synthesized_app.template(stage, "Serving")
    (topic_id,) = [key for key in of_type(template, "AWS::SNS::Topic") if key.startswith("AlarmTopic")]
    alarms = alarms_on(template, config.pipeline.drift_threshold)
    features = config.inference.baseline.features
    by_metric = {alarm["MetricName"]: alarm for alarm in alarms.values()}
    assert sorted(by_metric) == sorted(DRIFT_METRIC_PREFIX + captured_column(i) for i in range(len(features)))
    for position, feature in enumerate(features):
        alarm = by_metric[DRIFT_METRIC_PREFIX + captured_column(position)]
        assert alarm["Namespace"] == DATA_METRICS_NAMESPACE
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "Endpoint": naming.realtime_endpoint_name(config),
            "MonitoringSchedule": naming.data_quality_schedule_name(config),
        }
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "ignore", "an hour without requests must not reset it (and retrain again)"
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert repr(feature) in alarm["AlarmDescription"], "the alarm says which feature drifted"


def test_staging_retrains_once_however_many_features_drift_beyond_the_retrain_threshold(synthesized_app, stage_configs):
    config = stage_configs["staging"]
    template = synthesized_app.template("staging", "Serving")
    beyond = alarms_on(template, config.monitoring.retrain_drift_threshold)
    assert len(beyond) == len(config.inference.baseline.features)
    assert all("AlarmActions" not in alarm for alarm in beyond.values()), "only the composite alarm acts"
    composite_id, composite = only(template, "AWS::CloudWatch::CompositeAlarm")
    rule_text = json.dumps(composite["Properties"]["AlarmRule"])
    assert all(alarm_id in rule_text for alarm_id in beyond) and rule_text.count(" OR ") == len(beyond) - 1

    (rule,) = [r for r in of_type(template, "AWS::Events::Rule").values() if composite_id in json.dumps(r)]
    (target,) = rule["Properties"]["Targets"]
    pipeline = json.dumps(target["Arn"])
    assert f":pipeline/{naming.pipeline_name(config)}" in pipeline
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert [(s["Action"], json.dumps(s["Resource"])) for s in statements] == [
        ("sagemaker:StartPipelineExecution", pipeline)
    ]


def retrain_rule_of(template: dict[str, Any]) -> dict[str, Any]:
    composite_id, _ = only(template, "AWS::CloudWatch::CompositeAlarm")
    (rule,) = [r for r in of_type(template, "AWS::Events::Rule").values() if composite_id in json.dumps(r)]
    return rule["Properties"]


def test_prod_in_the_account_of_the_versions_it_serves_starts_stagings_pipeline(synthesized_app):
    """Prod serves staging's versions: the next candidate comes from staging's pipeline, through promotion."""
    (target,) = retrain_rule_of(synthesized_app.template("prod", "Serving"))["Targets"]
    assert ":pipeline/mlopskit-staging-training" in json.dumps(target["Arn"])
    (parameter,) = target["SageMakerPipelineParameters"]["PipelineParameterList"]
    assert "drift beyond 0.3 in mlopskit-prod-realtime" in json.dumps(parameter["Value"])


def test_prod_in_another_account_forwards_its_drift_to_staging_whose_rule_starts_its_pipeline(delivery_app):
    """Across accounts a rule cannot start another account's pipeline: prod puts its alarm's event to staging's
    default bus, which admits prod's account, and a rule there starts staging's pipeline."""
    from tests.conftest import PIPELINE_ACCOUNT, PROD_ACCOUNT

    prod = delivery_app.template("Delivery/prod", "Serving")
    (forward,) = retrain_rule_of(prod)["Targets"]
    staging_bus = f"arn:aws:events:eu-west-1:{PIPELINE_ACCOUNT}:event-bus/default"
    assert forward["Arn"] == staging_bus and "SageMakerPipelineParameters" not in forward
    role_id = forward["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in of_type(prod, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert [(s["Action"], s["Resource"]) for s in statements] == [("events:PutEvents", staging_bus)]

    staging = delivery_app.template("Delivery/staging", "Pipeline")
    (bus_policy,) = of_type(staging, "AWS::Events::EventBusPolicy").values()
    statement = bus_policy["Properties"]["Statement"]
    assert statement["Action"] == "events:PutEvents" and f":iam::{PROD_ACCOUNT}:root" in json.dumps(statement)
    (rule,) = [
        r["Properties"] for key, r in of_type(staging, "AWS::Events::Rule").items() if key.startswith("ProdDrift")
    ]
    alarm = f"arn:aws:cloudwatch:eu-west-1:{PROD_ACCOUNT}:alarm:mlopskit-prod-realtime-retrain"
    pseudo = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1"}
    pattern = json.loads(
        json.dumps(rule["EventPattern"]).replace(
            json.dumps(rule["EventPattern"]["resources"][0]),
            json.dumps(
                "".join(
                    p if isinstance(p, str) else pseudo[p["Ref"]]
                    for p in rule["EventPattern"]["resources"][0]["Fn::Join"][1]
                )
            ),
        )
    )
    matcher = EventPattern.load(json.dumps(pattern))
    forwarded = {**alarm_event(alarm, "ALARM"), "account": PROD_ACCOUNT}
    assert matcher.matches_event(forwarded)
    assert not matcher.matches_event({**forwarded, "account": PIPELINE_ACCOUNT}), "only prod's account's alarm"
    assert not matcher.matches_event({**alarm_event(alarm, "OK"), "account": PROD_ACCOUNT})
    (target,) = rule["Targets"]
    assert target["Arn"].endswith(":pipeline/mlopskit-staging-training")
    (parameter,) = target["SageMakerPipelineParameters"]["PipelineParameterList"]
    trigger = json.dumps(parameter["Value"])
    assert "drift beyond 0.3 in mlopskit-prod-realtime - reports in s3://mlopskit-prod-artifacts-" in trigger


def alarm_event(alarm_arn: str, state: str) -> dict[str, Any]:
    """A CloudWatch alarm state change as EventBridge delivers it (the documented sample, abridged)."""
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-12-03T14:00:00Z",
        "region": "eu-west-1",
        "resources": [alarm_arn],
        "detail": {
            "alarmName": alarm_arn.rsplit(":", 1)[-1],
            "state": {"value": state, "reason": "Threshold Crossed", "timestamp": "2026-12-03T14:00:00.000+0000"},
            "previousState": {"value": "OK" if state == "ALARM" else "ALARM"},
        },
    }


def test_the_retrain_rule_matches_its_alarm_going_into_alarm_and_nothing_else(synthesized_app):
    template = synthesized_app.template("staging", "Serving")
    composite_id, composite = only(template, "AWS::CloudWatch::CompositeAlarm")
    (rule,) = [r for r in of_type(template, "AWS::Events::Rule").values() if composite_id in json.dumps(r)]
    name = composite["Properties"]["AlarmName"]
    arn = f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"
    pattern = json.loads(
        json.dumps(rule["Properties"]["EventPattern"]).replace(
            json.dumps({"Fn::GetAtt": [composite_id, "Arn"]}), json.dumps(arn)
        )
    )
    matcher = EventPattern.load(json.dumps(pattern))
    assert matcher.matches_event(alarm_event(arn, "ALARM"))
    assert not matcher.matches_event(alarm_event(arn, "OK")), "recovering starts nothing"
    assert not matcher.matches_event(alarm_event(arn.replace("-retrain", "-drift_c0"), "ALARM"))
    assert not matcher.matches_event({**alarm_event(arn, "ALARM"), "source": "aws.events"})


def test_a_served_version_without_a_recorded_baseline_deploys_unwatched_and_the_summary_says_why(cdk_context):
    """A rollback to a version registered before baselines existed must still deploy."""
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from infra.assembly import build_app
    from infra.serving import SERVING_SUMMARY_METADATA
    from tests.conftest import NO_BUNDLING

    context = {**cdk_context, **NO_BUNDLING, "stage": "staging", "staging.inference.baseline": None}
    (stage,) = build_app(App(context=context))
    resources = Template.from_stack(stage.serving).to_json()["Resources"]
    assert not [r for r in resources.values() if r["Type"].startswith("AWS::SageMaker::Monitoring")]
    (summary,) = [entry.data for entry in stage.serving.node.metadata if entry.type == SERVING_SUMMARY_METADATA]
    arn = cdk_context["staging.inference.model_package_arn"]
    assert f"real-time endpoint mlopskit-staging-realtime (no drift monitoring: {arn} has no recorded baseline)" in (
        summary
    )


def test_the_retraining_it_starts_registers_a_version_that_says_why(synthesized_app, stage_configs):
    """The rule passes TriggeredBy, which the pipeline records on the version it registers."""
    from pipelines import spec

    config = stage_configs["staging"]
    template = synthesized_app.template("staging", "Serving")
    composite_id, _ = only(template, "AWS::CloudWatch::CompositeAlarm")
    (rule,) = [r for r in of_type(template, "AWS::Events::Rule").values() if composite_id in json.dumps(r)]
    (target,) = rule["Properties"]["Targets"]
    (parameter,) = target["SageMakerPipelineParameters"]["PipelineParameterList"]
    assert parameter["Name"] == spec.ParameterName.TRIGGERED_BY
    pseudo = {"AWS::AccountId": "123456789012", "AWS::Region": "eu-west-1"}
    value = "".join(
        part if isinstance(part, str) else pseudo[part["Ref"]] for part in parameter["Value"]["Fn::Join"][1]
    )
    assert value.startswith(f"drift beyond {config.monitoring.retrain_drift_threshold} in mlopskit-staging-realtime")
    assert "/monitoring/mlopskit-staging-realtime/" in value
    (trigger,) = [
        p for p in spec.parameter_specs(config, "bucket", "image") if p.name == spec.ParameterName.TRIGGERED_BY
    ]
    assert trigger.parse(value) == value, "a value the version's metadata accepts"


def test_prod_measures_the_served_versions_accuracy_on_uploaded_ground_truth(synthesized_app, stage_configs):
    config = stage_configs["prod"]
    template = synthesized_app.template("prod", "Serving")
    definition_id, definition = only(template, "AWS::SageMaker::ModelQualityJobDefinition")
    job = definition["Properties"]
    endpoint_name = naming.realtime_endpoint_name(config)
    assert job["ModelQualityAppSpecification"]["ProblemType"] == "MulticlassClassification"
    endpoint_input = job["ModelQualityJobInput"]["EndpointInput"]
    assert endpoint_input["InferenceAttribute"] == PREDICTED_LABEL_COLUMN
    delay = config.monitoring.ground_truth_delay_hours
    assert (endpoint_input["StartTimeOffset"], endpoint_input["EndTimeOffset"]) == (f"-PT{delay + 1}H", f"-PT{delay}H")
    assert job["ModelQualityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": config.inference.baseline.model_constraints}
    }, "the version's own constraints: an accuracy below them makes the execution CompletedWithViolations"
    ground_truth = json.dumps(job["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"])
    assert f"/ground-truth/{endpoint_name}" in ground_truth
    (schedule,) = [
        s["Properties"]
        for s in of_type(template, "AWS::SageMaker::MonitoringSchedule").values()
        if s["Properties"]["MonitoringScheduleConfig"]["MonitoringType"] == "ModelQuality"
    ]
    assert schedule["MonitoringScheduleName"] == naming.model_quality_schedule_name(config)
    assert schedule["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] == job["JobDefinitionName"]
    (alarm,) = [
        a["Properties"]
        for a in of_type(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == MODEL_METRICS_NAMESPACE
    ]
    assert (alarm["MetricName"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        ACCURACY_METRIC,
        "LessThanThreshold",
        config.pipeline.accuracy_threshold,
    )
    (topic_id,) = [key for key in of_type(template, "AWS::SNS::Topic") if key.startswith("AlarmTopic")]
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    reads = [
        statement
        for policy in of_type(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "ReadGroundTruth"
    ]
    assert len(reads) == 1 and "/ground-truth/*" in json.dumps(reads[0]["Resource"])
    assert of_type(synthesized_app.template("staging", "Serving"), "AWS::SageMaker::ModelQualityJobDefinition") == {}
