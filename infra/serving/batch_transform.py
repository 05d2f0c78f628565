"""Batch transform: a state machine that runs a transform job on the model, started by uploads and/or a schedule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import RemovalPolicy, Size, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import BatchTransform as BatchTransformSettings
from infra.instance_types import supports_volume_kms_key
from infra.layout import ArtifactPrefix
from infra.security import allow
from infra.serving.monitoring import PERIOD, notifying_alarm
from infra.serving.notifications import NotificationKey, encrypted_topic
from infra.serving.role import ServingRole, grant_key_to_sagemaker_resources

OUTPUT_PREFIX = f"{ArtifactPrefix.BATCH_TRANSFORM}output/"
# The state machine's input: the S3 URI (an object or a prefix) to transform. Both triggers send it.
INPUT_URI_FIELD = "input_uri"
# Step Functions follows `.sync` SageMaker jobs through this managed EventBridge rule, which it creates on first use.
SYNC_RULE = "StepFunctionsGetEventsForSageMakerTransformJobsRule"
TRANSFORM_JOB_ACTIONS = (
    "sagemaker:AddTags",
    "sagemaker:CreateTransformJob",
    "sagemaker:DescribeTransformJob",
    "sagemaker:ListTags",
    "sagemaker:StopTransformJob",
)
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
)
TRACING_ACTIONS = (
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
)
NO_RESOURCE_LEVEL_PERMISSIONS = (
    "CloudWatch Logs log-delivery actions and X-Ray trace publishing support no resource-level permissions, so AWS "
    "requires Resource '*' for a state machine's logging and tracing."
)


# Job names are at most 63 characters and executions may have 80: the name is the prefix and a hash of the execution's
# name (32 hex digits), and the job carries the execution's name as a tag.
EXECUTION_TAG = "batch-transform-execution"
JOB_NAME_HASH = "MD5"


class TransformJobWithDataProcessing(tasks.SageMakerCreateTransformJob):
    """CDK's task lacks CreateTransformJob's DataProcessing (input/output filters, join) and tags from the state;
    Step Functions passes the state's Parameters to SageMaker as they are, so they are added there."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_processing: dict[str, str],
        static_tags: Mapping[str, str],
        **props: Any,
    ) -> None:
        super().__init__(scope, construct_id, **props)
        self._transform_data_processing = data_processing
        self._static_tags = static_tags

    def to_state_json(self, state_machine_query_language: sfn.QueryLanguage | None = None) -> dict[str, Any]:
        state = dict(super().to_state_json(state_machine_query_language))
        tags = [{"Key": key, "Value": value} for key, value in sorted(self._static_tags.items())]
        tags.append({"Key": EXECUTION_TAG, "Value.$": sfn.JsonPath.execution_name})
        state["Parameters"] = {
            **state["Parameters"],
            "DataProcessing": self._transform_data_processing,
            "Tags": tags,
        }
        return state


class BatchTransform(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: BatchTransformSettings,
        state_machine_name: str,
        job_name_prefix: str,
        role_description: str,
        tags: Mapping[str, str],
        removal_policy: RemovalPolicy,
        model_name: str,
        key: kms.IKey,
        data: s3.IBucket,
        artifacts: s3.IBucket,
        role: ServingRole,
        notification_key: NotificationKey,
        alarm_topic: sns.ITopic,
    ) -> None:
        """Transform jobs are named `<job_name_prefix><hash of the execution name>` and carry `tags`."""
        super().__init__(scope, construct_id)
        self._stack = Stack.of(self)
        self.state_machine_name = state_machine_name
        self.failure_topic = encrypted_topic(
            self, "FailureTopic", key=notification_key.key, display_name=f"{self.state_machine_name}: job failed"
        )
        self.role = iam.Role(
            self,
            "StateMachineRole",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description=role_description,
        )
        # Written out here, narrower than what CDK generates for these tasks: the state machine gets the role as an
        # immutable import, which takes no statements (and adds no dependency its role ARN does not already imply).
        self.policy = iam.Policy(self, "StateMachinePolicy", roles=[self.role])
        self._grant(job_name_prefix, key)
        notification_key.allow_publishing_by(self.role)
        # Transform jobs run as the model's role: it reads only the input prefix (JoinSource=Input copies input
        # into the output, so reading more would copy more out) and writes only the output prefix.
        role.read("ReadBatchInput", data, settings.input_prefix)
        role.write("WriteBatchOutput", artifacts, OUTPUT_PREFIX)

        definition = self._check_input_then_transform(
            settings=settings,
            job_name_prefix=job_name_prefix,
            tags=tags,
            model_name=model_name,
            key=key,
            data=data,
            artifacts=artifacts,
            role=role,
        )

        log_group_name = f"/aws/vendedlogs/states/{self.state_machine_name}"
        notification_key.allow_log_group(log_group_name)
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name,
            encryption_key=notification_key.key,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=removal_policy,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            role=iam.Role.from_role_arn(self, "StateMachineRoleAsIs", self.role.role_arn, mutable=False),
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        # Step Functions checks at creation that the role may deliver logs.
        self.state_machine.node.add_dependency(self.policy)
        self.failed_executions_alarm = notifying_alarm(
            self,
            "FailedExecutions",
            alarm_name=f"{self.state_machine_name}-failed-executions",
            metric=self.state_machine.metric_failed(statistic=cloudwatch.Stats.SUM, period=PERIOD),
            threshold=1,
            evaluation_minutes=1,
            topic=alarm_topic,
            description=f"{self.state_machine_name}: a batch transform execution failed",
        )
        self._add_triggers(settings, data)

    def _check_input_then_transform(
        self,
        *,
        settings: BatchTransformSettings,
        job_name_prefix: str,
        tags: Mapping[str, str],
        model_name: str,
        key: kms.IKey,
        data: s3.IBucket,
        artifacts: s3.IBucket,
        role: ServingRole,
    ) -> sfn.IChainable:
        """An input outside the input prefix fails at once; else the transform job. Either failure is published to
        the failure topic, then the execution fails."""
        input_uri = f"$.{INPUT_URI_FIELD}"
        prefix_uri = f"s3://{data.bucket_name}/{settings.input_prefix}"
        transform = TransformJobWithDataProcessing(
            self,
            "RunTransformJob",
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            # One job per execution (the execution name is unique per state machine), within the 63 characters of a
            # job name whatever the execution name's length.
            transform_job_name=sfn.JsonPath.format(
                f"{job_name_prefix}{{}}",
                sfn.JsonPath.hash(sfn.JsonPath.execution_name, JOB_NAME_HASH),
            ),
            model_name=model_name,
            # The job runs as the model's role; CreateTransformJob passes no role. Naming it keeps CDK from making one.
            role=role.role,
            transform_input=tasks.TransformInput(
                transform_data_source=tasks.TransformDataSource(
                    s3_data_source=tasks.TransformS3DataSource(
                        s3_uri=sfn.JsonPath.string_at(input_uri), s3_data_type=tasks.S3DataType.S3_PREFIX
                    )
                ),
                content_type=settings.content_type,
                split_type=tasks.SplitType.LINE,
            ),
            transform_output=tasks.TransformOutput(
                s3_output_path=sfn.JsonPath.format(
                    f"s3://{artifacts.bucket_name}/{OUTPUT_PREFIX}{{}}/", sfn.JsonPath.execution_name
                ),
                accept=settings.accept,
                assemble_with=tasks.AssembleWith.LINE,
                encryption_key=key,
            ),
            transform_resources=tasks.TransformResources(
                instance_count=settings.instance_count,
                # The task adds the "ml." prefix itself.
                instance_type=ec2.InstanceType(settings.instance_type.removeprefix("ml.")),
                volume_encryption_key=key if supports_volume_kms_key(settings.instance_type) else None,
            ),
            batch_strategy=tasks.BatchStrategy.MULTI_RECORD,
            max_payload=Size.mebibytes(settings.max_payload_mb),
            max_concurrent_transforms=settings.max_concurrent_transforms,
            data_processing={
                "InputFilter": settings.input_filter,
                "OutputFilter": settings.output_filter,
                "JoinSource": settings.join_source,
            },
            static_tags=tags,
            result_selector={
                "TransformJobName": sfn.JsonPath.string_at("$.TransformJobName"),
                "S3OutputPath": sfn.JsonPath.string_at("$.TransformOutput.S3OutputPath"),
            },
            result_path="$.transform_job",
        )
        notify_failure = tasks.SnsPublish(
            self,
            "NotifyFailure",
            topic=self.failure_topic,
            subject=f"{self.state_machine_name}: transform job failed",
            message=sfn.TaskInput.from_object(
                {
                    "execution": sfn.JsonPath.execution_id,
                    "input": sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$$.Execution.Input")),
                    "error": sfn.JsonPath.string_at("$.failure.Error"),
                    "cause": sfn.JsonPath.string_at("$.failure.Cause"),
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        # The execution fails with the error that stopped it (the job's, or InputOutsidePrefix) and its cause.
        failed = sfn.Fail(self, "TransformFailed", error_path="$.failure.Error", cause_path="$.failure.Cause")
        on_failure = notify_failure.next(failed)
        transform.add_catch(on_failure, errors=[sfn.Errors.ALL], result_path="$.failure")
        refuse_input = sfn.Pass(
            self,
            "InputOutsidePrefix",
            parameters={
                "Error": "InputOutsidePrefix",
                "Cause": f'the execution input must be {{"{INPUT_URI_FIELD}": "{prefix_uri}..."}}: an S3 URI under '
                "the input prefix, the only one the model's role may read",
            },
            result_path="$.failure",
        )
        return (
            sfn.Choice(self, "CheckInput")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present(input_uri),
                    sfn.Condition.is_string(input_uri),
                    sfn.Condition.string_matches(input_uri, f"{prefix_uri}*"),
                ),
                transform,
            )
            .otherwise(refuse_input.next(on_failure))
        )

    def _grant(self, job_name_prefix: str, key: kms.IKey) -> None:
        allow(
            self.policy,
            "RunTransformJobs",
            TRANSFORM_JOB_ACTIONS,
            [
                self._stack.format_arn(
                    service="sagemaker", resource="transform-job", resource_name=f"{job_name_prefix}*"
                )
            ],
            wildcard_reason="Transform jobs are named at run time after the execution; limited to the stage's "
            "job-name prefix in this account and region.",
        )
        allow(
            self.policy,
            "FollowTransformJobs",
            ("events:DescribeRule", "events:PutRule", "events:PutTargets"),
            [self._stack.format_arn(service="events", resource="rule", resource_name=SYNC_RULE)],
        )
        allow(self.policy, "NotifyFailures", ("sns:Publish",), [self.failure_topic.topic_arn])
        grant_key_to_sagemaker_resources(self.policy, "GrantStageKeyToTransformJobs", key)
        allow(self.policy, "DeliverLogs", LOG_DELIVERY_ACTIONS, ["*"], wildcard_reason=NO_RESOURCE_LEVEL_PERMISSIONS)
        allow(self.policy, "PublishTraces", TRACING_ACTIONS, ["*"], wildcard_reason=NO_RESOURCE_LEVEL_PERMISSIONS)

    def _add_triggers(self, settings: BatchTransformSettings, data: s3.IBucket) -> None:
        if settings.run_on_upload:
            uploaded = f"s3://{data.bucket_name}/{events.EventField.from_path('$.detail.object.key')}"
            self.upload_rule = events.Rule(
                self,
                "OnUpload",
                description=f"Starts {self.state_machine_name} for each object uploaded under {settings.input_prefix}",
                event_pattern=events.EventPattern(
                    source=["aws.s3"],
                    detail_type=["Object Created"],
                    detail={
                        "bucket": {"name": [data.bucket_name]},
                        # The S3 console's "folders" are empty objects whose key ends in "/": transforming one
                        # would transform the whole prefix. An empty object has nothing to transform either way.
                        "object": {"key": [{"prefix": settings.input_prefix}], "size": [{"numeric": [">", 0]}]},
                    },
                ),
                targets=[self._start({INPUT_URI_FIELD: uploaded})],
            )
        if settings.schedule:
            self.schedule_rule = events.Rule(
                self,
                "Schedule",
                description=f"Starts {self.state_machine_name} on everything under {settings.input_prefix}",
                schedule=events.Schedule.expression(settings.schedule),
                targets=[self._start({INPUT_URI_FIELD: f"s3://{data.bucket_name}/{settings.input_prefix}"})],
            )

    def _start(self, execution_input: dict[str, str]) -> targets.SfnStateMachine:
        return targets.SfnStateMachine(self.state_machine, input=events.RuleTargetInput.from_object(execution_input))
