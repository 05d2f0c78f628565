"""Model Monitor on the real-time endpoint, with SageMaker's built-in analyzer.

Drift: on a schedule the analyzer compares the captured requests with the served version's baseline; an alarm per
feature notifies the stage's alarm topic when the feature drifts beyond the alarm threshold, and, where retraining is
on, a drift beyond the retrain threshold starts the training pipeline that registers the next candidate
(PendingManualApproval: a person still decides).

Model quality (where turned on): the analyzer merges the captured predictions with the true labels uploaded under
ground-truth/ (by event id) and publishes the accuracy of the served version, which an alarm compares with the stage's
accuracy threshold.

The built-in analyzer, not an image of ours: the baseline step writes its file formats, it reads SageMaker's capture
and ground-truth formats itself, and it publishes the metrics the alarms watch."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from aws_cdk import ArnFormat, Aws, CfnMapping, Duration, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import naming
from infra.config import MonitoringSettings, ServedBaseline, VpcSettings
from infra.foundation.image_repository import IMAGE_PULL_ACTIONS
from infra.framework_images import MODEL_MONITOR_REPOSITORY, model_monitor_registries, monitoring_regions
from infra.instance_types import supports_volume_kms_key
from infra.layout import BASELINE_OBJECTS, ArtifactPrefix
from infra.security import allow, default_event_bus_arn
from infra.serving.role import OBJECT_KEYS_REASON, ServingRole, grant_key_to_sagemaker_resources
from infra.serving.source import ServedModelSource
from pipelines.spec import ParameterName, drift_trigger
from training_code.contract import CONSTRAINTS_FILE, STATISTICS_FILE

# Where Model Monitor publishes an endpoint's data-quality metrics, and how it names a feature's drift distance.
DATA_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
DRIFT_METRIC_PREFIX = "feature_baseline_drift_"
MODEL_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
ACCURACY_METRIC = "accuracy"
# A CSV answer is one label per row (training_code/serving/answers.py): the label is its column 0.
PREDICTED_LABEL_COLUMN = "0"
SCHEDULES = {"hourly": "cron(0 * ? * * *)", "daily": "cron(0 0 ? * * *)"}
SCHEDULE_PERIODS = {"hourly": Duration.hours(1), "daily": Duration.days(1)}
# The paths SageMaker uses inside a monitoring job's container (as the SDK sets them).
ENDPOINT_INPUT_PATH = "/opt/ml/processing/input/endpoint"
OUTPUT_PATH = "/opt/ml/processing/output"
VOLUME_SIZE_GB = 20
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"


def captured_column(position: int) -> str:
    """The analyzer's name for a column of captured CSV requests."""
    return f"_c{position}"


@dataclass(frozen=True)
class RetrainTarget:
    """The training pipeline that registers the candidates this stage serves: the stage's own, or for prod,
    staging's. In another account (`forwarded`), the alarm's event goes to that account's default event bus, where
    the stage that trains admits it and starts its pipeline (infra/pipeline/stack.py)."""

    pipeline_name: str
    account: str
    region: str
    forwarded: bool = False

    @classmethod
    def of(cls, source: ServedModelSource, forwarded: bool) -> RetrainTarget:
        return cls(naming.pipeline_name_of(source.resource_prefix), source.account, source.region, forwarded)

    def pipeline_arn(self, stack: Stack) -> str:
        return stack.format_arn(
            service="sagemaker",
            resource="pipeline",
            resource_name=self.pipeline_name,
            account=self.account,
            region=self.region,
        )


class DriftMonitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: MonitoringSettings,
        baseline: ServedBaseline,
        drift_threshold: float,
        endpoint: sagemaker.CfnEndpoint,
        endpoint_name: str,
        schedule_name: str,
        role: ServingRole,
        source: ServedModelSource,
        key: kms.IKey,
        artifacts: s3.IBucket,
        alarm_topic: sns.ITopic,
        retrain: RetrainTarget | None,
        retrain_alarm_name: str,
        vpc: VpcSettings | None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.schedule_name = schedule_name
        self._grant_the_analyzer(stack, role, source, artifacts, key)
        reports = f"s3://{artifacts.bucket_name}/{ArtifactPrefix.MONITORING}{endpoint_name}"
        job_definition_props = dict(
            data_quality_app_specification=sagemaker.CfnDataQualityJobDefinition.DataQualityAppSpecificationProperty(
                image_uri=analyzer_image(stack),
                environment={"publish_cloudwatch_metrics": "Enabled"},
            ),
            data_quality_baseline_config=sagemaker.CfnDataQualityJobDefinition.DataQualityBaselineConfigProperty(
                constraints_resource=sagemaker.CfnDataQualityJobDefinition.ConstraintsResourceProperty(
                    s3_uri=baseline.uri + CONSTRAINTS_FILE
                ),
                statistics_resource=sagemaker.CfnDataQualityJobDefinition.StatisticsResourceProperty(
                    s3_uri=baseline.uri + STATISTICS_FILE
                ),
            ),
            data_quality_job_input=sagemaker.CfnDataQualityJobDefinition.DataQualityJobInputProperty(
                endpoint_input=sagemaker.CfnDataQualityJobDefinition.EndpointInputProperty(
                    endpoint_name=endpoint_name,
                    local_path=ENDPOINT_INPUT_PATH,
                    s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                )
            ),
            data_quality_job_output_config=_output_config(sagemaker.CfnDataQualityJobDefinition, key, reports),
            **_run_settings(sagemaker.CfnDataQualityJobDefinition, settings, key, role, vpc),
        )
        self.job_definition, self.schedule = _scheduled(
            self,
            sagemaker.CfnDataQualityJobDefinition,
            job_definition_props,
            monitoring_type="DataQuality",
            schedule=settings.schedule,
            schedule_name=schedule_name,
            endpoint=endpoint,
            endpoint_name=endpoint_name,
        )

        period = SCHEDULE_PERIODS[settings.schedule]
        self.drift_alarms = [
            self._feature_alarm(f"Drift{position}", endpoint_name, position, feature, drift_threshold, period)
            for position, feature in enumerate(baseline.features)
        ]
        for alarm in self.drift_alarms:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarm_topic))
        self.retrain_alarm: cloudwatch.CompositeAlarm | None = None
        self.retrain_alarm_name: str | None = None
        self.retrain_rule: events.CfnRule | None = None
        if retrain is not None and settings.retrain_on_drift:
            self.retrain_alarm_name = retrain_alarm_name
            self._retrain_beyond(
                settings.retrain_drift_threshold, endpoint_name, baseline, period, alarm_topic, retrain, stack, reports
            )

    def _feature_alarm(
        self,
        construct_id: str,
        endpoint_name: str,
        position: int,
        feature: str,
        threshold: float,
        period: Duration,
        purpose: str = "drift",
    ) -> cloudwatch.Alarm:
        column = captured_column(position)
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{endpoint_name}-{purpose}{column}",
            alarm_description=f"Feature {feature!r} (column {column} of captured requests) drifted from the served "
            f"version's baseline by more than {threshold} (Model Monitor's distance)",
            metric=cloudwatch.Metric(
                namespace=DATA_METRICS_NAMESPACE,
                metric_name=DRIFT_METRIC_PREFIX + column,
                dimensions_map={"Endpoint": endpoint_name, "MonitoringSchedule": self.schedule_name},
                statistic=cloudwatch.Stats.MAXIMUM,
                period=period,
            ),
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            # An hour without captured requests publishes nothing: the alarm keeps its state, so that the next drifted
            # run does not go off (and start a retraining) again.
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
        )

    def _retrain_beyond(
        self,
        threshold: float,
        endpoint_name: str,
        baseline: ServedBaseline,
        period: Duration,
        alarm_topic: sns.ITopic,
        retrain: RetrainTarget,
        stack: Stack,
        reports: str,
    ) -> None:
        """One composite alarm over the features: however many drift at once, the pipeline starts once."""
        beyond = [
            self._feature_alarm(f"Retrain{position}", endpoint_name, position, feature, threshold, period, "retrain")
            for position, feature in enumerate(baseline.features)
        ]
        self.retrain_alarm = cloudwatch.CompositeAlarm(
            self,
            "Retrain",
            composite_alarm_name=self.retrain_alarm_name,
            alarm_description=f"A feature drifted by more than {threshold}: starts {retrain.pipeline_name}, whose "
            "new version awaits approval",
            alarm_rule=cloudwatch.AlarmRule.any_of(*beyond),
        )
        self.retrain_alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarm_topic))
        starter = iam.Role(
            self,
            "RetrainRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description=f"{endpoint_name}: lets drift beyond {threshold} start {retrain.pipeline_name}",
        )
        if retrain.forwarded:
            bus_arn = default_event_bus_arn(stack, retrain.account, retrain.region)
            allow(starter, "ForwardToTheTrainingAccount", ["events:PutEvents"], [bus_arn])
            target = events.CfnRule.TargetProperty(id="TrainingAccount", arn=bus_arn, role_arn=starter.role_arn)
            description = f"Forwards {self.retrain_alarm_name}'s ALARM to the account of {retrain.pipeline_name}"
        else:
            pipeline_arn = retrain.pipeline_arn(stack)
            allow(starter, "StartTrainingPipeline", ["sagemaker:StartPipelineExecution"], [pipeline_arn])
            target = retrain_target(
                pipeline_arn, starter.role_arn, drift_trigger(threshold, endpoint_name, f"{reports}/")
            )
            description = f"Starts {retrain.pipeline_name} when {self.retrain_alarm_name} goes into ALARM"
        self.retrain_rule = events.CfnRule(
            self,
            "RetrainRule",
            description=description,
            event_pattern=retrain_event_pattern(self.retrain_alarm.alarm_arn),
            targets=[target],
        )

    def _grant_the_analyzer(
        self, stack: Stack, role: ServingRole, source: ServedModelSource, artifacts: s3.IBucket, key: kms.IKey
    ) -> None:
        """The job runs as the serving role: it reads the captured requests and the served version's baseline (where
        that version's model archive lies), and writes its reports."""
        role.read("ReadCapturedRequests", artifacts, ArtifactPrefix.DATA_CAPTURE)
        role.write("WriteMonitoringReports", artifacts, ArtifactPrefix.MONITORING)
        # The model-quality merge reads back what it wrote there.
        role.read("ReadMonitoringReports", artifacts, ArtifactPrefix.MONITORING)
        # SageMaker starts each scheduled execution as this role, with no caller to grant the stage key to its volume.
        grant_key_to_sagemaker_resources(role.policy, "GrantStageKeyToMonitoringJobs", key)
        allow(
            role.policy,
            "ReadServedBaseline",
            ["s3:GetObject"],
            [source.artifacts_arn(stack, BASELINE_OBJECTS)],
            wildcard_reason=OBJECT_KEYS_REASON,
        )
        # No wildcard to acknowledge: added as it is (the account comes from the region's mapping).
        role.policy.add_statements(
            iam.PolicyStatement(
                sid="PullMonitoringImage",
                actions=list(IMAGE_PULL_ACTIONS),
                resources=[
                    stack.format_arn(
                        service="ecr",
                        resource="repository",
                        resource_name=MODEL_MONITOR_REPOSITORY,
                        account=analyzer_account(stack),
                    )
                ],
            )
        )
        allow(
            role.policy,
            "WriteMonitoringLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [
                stack.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name="/aws/sagemaker/ProcessingJobs*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            wildcard_reason="SageMaker names the log stream of each monitoring job at run time; limited to the "
            "processing jobs' log group in this account and region.",
        )


class ModelQualityMonitoring(Construct):
    """Runs as the serving role, which DriftMonitoring lets read the captured requests and write the reports; this
    adds reading the ground truth."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: MonitoringSettings,
        accuracy_threshold: float,
        endpoint: sagemaker.CfnEndpoint,
        endpoint_name: str,
        schedule_name: str,
        role: ServingRole,
        key: kms.IKey,
        artifacts: s3.IBucket,
        alarm_topic: sns.ITopic,
        vpc: VpcSettings | None,
        baseline_constraints: str | None,
    ) -> None:
        """`baseline_constraints`: the served version's model-quality constraints, which make an execution whose
        accuracy falls below them CompletedWithViolations (the alarm watches the metric either way)."""
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.schedule_name = schedule_name
        role.read("ReadGroundTruth", artifacts, ArtifactPrefix.GROUND_TRUTH)
        self.ground_truth_uri = f"s3://{artifacts.bucket_name}/{ArtifactPrefix.GROUND_TRUTH}{endpoint_name}"
        reports = f"s3://{artifacts.bucket_name}/{ArtifactPrefix.MONITORING}{endpoint_name}/model-quality"
        window = SCHEDULE_PERIODS[settings.schedule].to_hours()
        delay = settings.ground_truth_delay_hours
        definition = sagemaker.CfnModelQualityJobDefinition
        props = dict(
            model_quality_baseline_config=definition.ModelQualityBaselineConfigProperty(
                constraints_resource=definition.ConstraintsResourceProperty(s3_uri=baseline_constraints)
            )
            if baseline_constraints
            else None,
            model_quality_app_specification=definition.ModelQualityAppSpecificationProperty(
                image_uri=analyzer_image(stack),
                problem_type="MulticlassClassification",
                environment={"publish_cloudwatch_metrics": "Enabled"},
            ),
            model_quality_job_input=definition.ModelQualityJobInputProperty(
                endpoint_input=definition.EndpointInputProperty(
                    endpoint_name=endpoint_name,
                    local_path=ENDPOINT_INPUT_PATH,
                    inference_attribute=PREDICTED_LABEL_COLUMN,
                    # The requests of one schedule period, `delay` hours back: their labels have had time to arrive.
                    start_time_offset=f"-PT{delay + window:g}H",
                    end_time_offset=f"-PT{delay}H",
                    s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                ),
                ground_truth_s3_input=definition.MonitoringGroundTruthS3InputProperty(s3_uri=self.ground_truth_uri),
            ),
            model_quality_job_output_config=_output_config(definition, key, reports),
            **_run_settings(definition, settings, key, role, vpc),
        )
        self.job_definition, self.schedule = _scheduled(
            self,
            definition,
            props,
            monitoring_type="ModelQuality",
            schedule=settings.schedule,
            schedule_name=schedule_name,
            endpoint=endpoint,
            endpoint_name=endpoint_name,
        )
        self.accuracy_alarm = cloudwatch.Alarm(
            self,
            "Accuracy",
            alarm_name=f"{endpoint_name}-accuracy",
            alarm_description=f"The served version's accuracy on requests with ground truth fell below "
            f"{accuracy_threshold}, the stage's accuracy threshold",
            metric=cloudwatch.Metric(
                namespace=MODEL_METRICS_NAMESPACE,
                metric_name=ACCURACY_METRIC,
                dimensions_map={"Endpoint": endpoint_name, "MonitoringSchedule": schedule_name},
                statistic=cloudwatch.Stats.MINIMUM,
                period=SCHEDULE_PERIODS[settings.schedule],
            ),
            threshold=accuracy_threshold,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=1,
            # No ground truth for the period: nothing to judge, the alarm keeps its state.
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        self.accuracy_alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarm_topic))


def analyzer_account(stack: Stack) -> str:
    """The account of the region's analyzer image, from the stack's mapping (the stack may not know its region)."""
    mapping = stack.node.try_find_child("ModelMonitorImage") or CfnMapping(
        stack,
        "ModelMonitorImage",
        mapping={region: {"Account": model_monitor_registries()[region]} for region in monitoring_regions()},
    )
    return Fn.find_in_map(mapping.logical_id, Aws.REGION, "Account")


def analyzer_image(stack: Stack) -> str:
    return f"{analyzer_account(stack)}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/{MODEL_MONITOR_REPOSITORY}"


def retrain_target(pipeline_arn: str, role_arn: str, trigger: str) -> events.CfnRule.TargetProperty:
    """The training pipeline, started with TriggeredBy: the version it registers says why, for the person who
    approves it."""
    return events.CfnRule.TargetProperty(
        id="TrainingPipeline",
        arn=pipeline_arn,
        role_arn=role_arn,
        sage_maker_pipeline_parameters=events.CfnRule.SageMakerPipelineParametersProperty(
            pipeline_parameter_list=[
                events.CfnRule.SageMakerPipelineParameterProperty(name=ParameterName.TRIGGERED_BY, value=trigger)
            ]
        ),
    )


def retrain_event_pattern(alarm_arn: str) -> dict:
    """The event CloudWatch sends when the retrain alarm goes into ALARM (not when it recovers)."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": [ALARM_STATE_CHANGE],
        "resources": [alarm_arn],
        "detail": {"state": {"value": ["ALARM"]}},
    }


def _scheduled(
    scope: Construct,
    definition: type,
    props: dict[str, Any],
    *,
    monitoring_type: str,
    schedule: str,
    schedule_name: str,
    endpoint: sagemaker.CfnEndpoint,
    endpoint_name: str,
) -> tuple[Any, sagemaker.CfnMonitoringSchedule]:
    """The job definition of type `definition` and the schedule that runs it on the endpoint. Every property of a
    job definition is immutable: a change creates a new one under a new name (a hash of its properties), and the
    schedule moves to it (a fixed name would make CloudFormation refuse the replacement)."""
    job_definition = definition(
        scope,
        "JobDefinition",
        job_definition_name=f"{schedule_name}-{_digest(Stack.of(scope), props)}",
        **props,
    )
    scheduled = sagemaker.CfnMonitoringSchedule(
        scope,
        "Schedule",
        monitoring_schedule_name=schedule_name,
        endpoint_name=endpoint_name,
        monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
            monitoring_job_definition_name=job_definition.job_definition_name,
            monitoring_type=monitoring_type,
            schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(
                schedule_expression=SCHEDULES[schedule]
            ),
        ),
    )
    scheduled.node.add_dependency(job_definition, endpoint)
    return job_definition, scheduled


def _output_config(definition: type, key: kms.IKey, reports: str) -> Any:
    """Where a job of `definition`'s type writes its reports, encrypted with the stage key. (Each job definition type
    has property types of its own, of the same shape.)"""
    return definition.MonitoringOutputConfigProperty(
        kms_key_id=key.key_arn,
        monitoring_outputs=[
            definition.MonitoringOutputProperty(
                s3_output=definition.S3OutputProperty(local_path=OUTPUT_PATH, s3_uri=reports, s3_upload_mode="EndOfJob")
            )
        ],
    )


def _run_settings(
    definition: type, settings: MonitoringSettings, key: kms.IKey, role: ServingRole, vpc: VpcSettings | None
) -> dict[str, Any]:
    """How a job of `definition`'s type runs: its instance and volume, network, role and time limit."""
    return dict(
        job_resources=definition.MonitoringResourcesProperty(
            cluster_config=definition.ClusterConfigProperty(
                instance_count=1,
                instance_type=settings.instance_type,
                volume_size_in_gb=VOLUME_SIZE_GB,
                volume_kms_key_id=key.key_arn if supports_volume_kms_key(settings.instance_type) else None,
            )
        ),
        network_config=definition.NetworkConfigProperty(
            vpc_config=definition.VpcConfigProperty(
                security_group_ids=list(vpc.security_group_ids), subnets=list(vpc.subnet_ids)
            )
        )
        if vpc is not None
        else None,
        role_arn=role.role_arn,
        stopping_condition=definition.StoppingConditionProperty(max_runtime_in_seconds=settings.max_runtime_seconds),
    )


def _digest(stack: Stack, props: dict) -> str:
    """A short hash of the job definition's resolved properties: deterministic, and new whenever one changes."""
    resolved = stack.resolve({name: value for name, value in props.items() if value is not None})
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:8]
