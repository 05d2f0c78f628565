"""Pipeline failure notifications: a failed step, and an execution that ended Failed, Stopped or CompletedWithFailures,
publish to the
stage's pipeline topic, naming the pipeline, the execution, the failing step and SageMaker's reason."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.serving.notifications import EVENTS_SERVICE, NotificationKey, encrypted_topic

SAGEMAKER_SOURCE = "aws.sagemaker"
STEP_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Step Status Change"
EXECUTION_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
ENDED_UNSUCCESSFULLY = ("Failed", "Stopped", "CompletedWithFailures")


def step_failure_pattern(pipeline_arn: str) -> dict:
    return {
        "source": [SAGEMAKER_SOURCE],
        "detail-type": [STEP_STATUS_CHANGE],
        "detail": {"pipelineArn": [pipeline_arn], "currentStepStatus": ["Failed"]},
    }


def unsuccessful_end_pattern(pipeline_arn: str) -> dict:
    return {
        "source": [SAGEMAKER_SOURCE],
        "detail-type": [EXECUTION_STATUS_CHANGE],
        "detail": {"pipelineArn": [pipeline_arn], "currentPipelineExecutionStatus": list(ENDED_UNSUCCESSFULLY)},
    }


class PipelineNotifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_name: str,
        pipeline_arn: str,
        resource_prefix: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        key = NotificationKey(
            self,
            "Key",
            resource_prefix=resource_prefix,
            removal_policy=removal_policy,
            purpose="pipeline",
            description=f"Encrypts the {resource_prefix} pipeline topic",
            alarms_publish=False,
        )
        self.topic: sns.Topic = encrypted_topic(
            self, "Topic", key=key.key, display_name=f"{resource_prefix}: training pipeline failures"
        )
        self.step_failed = self._notify(
            "StepFailed",
            f"Notifies when a step of {pipeline_name} fails",
            step_failure_pattern(pipeline_arn),
            f"{pipeline_name}: step {events.EventField.from_path('$.detail.stepName')} "
            f"({events.EventField.from_path('$.detail.stepType')}) failed in execution "
            f"{events.EventField.from_path('$.detail.pipelineExecutionArn')}: "
            f"{events.EventField.from_path('$.detail.failureReason')}",
        )
        self.execution_ended = self._notify(
            "ExecutionEnded",
            f"Notifies when an execution of {pipeline_name} ends Failed or Stopped",
            unsuccessful_end_pattern(pipeline_arn),
            f"{pipeline_name}: execution {events.EventField.from_path('$.detail.pipelineExecutionArn')} ended "
            f"{events.EventField.from_path('$.detail.currentPipelineExecutionStatus')}",
        )
        # Only this account's rules publish (the target adds the publish statement for EventBridge).
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyThisAccountsRulesPublish",
                effect=iam.Effect.DENY,
                principals=[iam.ServicePrincipal(EVENTS_SERVICE)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringNotEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )

    def _notify(self, construct_id: str, description: str, pattern: dict, message: str) -> events.Rule:
        rule = events.Rule(
            self,
            construct_id,
            description=description,
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
            ),
        )
        rule.add_target(targets.SnsTopic(self.topic, message=events.RuleTargetInput.from_text(message)))
        return rule
