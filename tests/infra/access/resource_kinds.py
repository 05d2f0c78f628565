"""What `Ref` and `Fn::GetAtt` return for each CloudFormation resource type these templates use.

Formats take {partition} {region} {account} {url_suffix} {name} {lower_name} {path} {unique_id} and, for
attributes, {arn}. A type or an attribute missing here makes resolution fail with the type's name, so that it is
added rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

REGIONAL = "arn:{partition}:{service}:{region}:{account}:"


@dataclass(frozen=True)
class ResourceKind:
    # What `Ref` returns: the physical name, the ARN, an opaque id (policies and the like have nothing else), or one of
    # `attributes` by its name.
    ref: str
    # The property that holds the physical name when the template sets one; otherwise CloudFormation makes one up.
    name_property: str | None = None
    arn: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    # How a generated name looks: S3 and ECR names are lower case; a KMS key's "name" is its key id (a UUID).
    generated: Literal["mixed", "lower", "key-id"] = "mixed"
    max_name_length: int = 64


def _regional(service: str, resource: str) -> str:
    return REGIONAL.replace("{service}", service) + resource


def _sagemaker(resource_type: str, name_property: str) -> ResourceKind:
    # SageMaker writes resource names in lower case in its ARNs, whatever the case of the name.
    return ResourceKind(
        ref="arn",
        name_property=name_property,
        arn=_regional("sagemaker", resource_type + "/{lower_name}"),
        attributes={name_property: "{name}"},
    )


RESOURCE_KINDS: dict[str, ResourceKind] = {
    "AWS::IAM::Role": ResourceKind(
        ref="name",
        name_property="RoleName",
        arn="arn:{partition}:iam::{account}:role{path}{name}",
        attributes={"RoleId": "{unique_id}"},
    ),
    "AWS::IAM::User": ResourceKind(
        ref="name", name_property="UserName", arn="arn:{partition}:iam::{account}:user{path}{name}"
    ),
    "AWS::IAM::ManagedPolicy": ResourceKind(
        ref="arn",
        name_property="ManagedPolicyName",
        arn="arn:{partition}:iam::{account}:policy{path}{name}",
        attributes={"PolicyArn": "{arn}"},
    ),
    "AWS::IAM::Policy": ResourceKind(ref="id"),
    "AWS::S3::BucketPolicy": ResourceKind(ref="id"),
    "AWS::SNS::TopicPolicy": ResourceKind(ref="id"),
    "AWS::Events::EventBusPolicy": ResourceKind(ref="id"),
    "AWS::KMS::Key": ResourceKind(
        ref="name", arn=_regional("kms", "key/{name}"), attributes={"KeyId": "{name}"}, generated="key-id"
    ),
    "AWS::KMS::Alias": ResourceKind(ref="name", name_property="AliasName", arn=_regional("kms", "{name}")),
    "AWS::S3::Bucket": ResourceKind(
        ref="name",
        name_property="BucketName",
        arn="arn:{partition}:s3:::{name}",
        attributes={
            "DomainName": "{name}.s3.{url_suffix}",
            "RegionalDomainName": "{name}.s3.{region}.{url_suffix}",
        },
        generated="lower",
        max_name_length=63,
    ),
    "AWS::SNS::Topic": ResourceKind(
        ref="arn",
        name_property="TopicName",
        arn=_regional("sns", "{name}"),
        attributes={"TopicArn": "{arn}", "TopicName": "{name}"},
        max_name_length=256,
    ),
    "AWS::SQS::Queue": ResourceKind(
        ref="QueueUrl",
        name_property="QueueName",
        arn=_regional("sqs", "{name}"),
        attributes={"QueueName": "{name}", "QueueUrl": "https://sqs.{region}.{url_suffix}/{account}/{name}"},
    ),
    "AWS::SageMaker::ModelPackageGroup": _sagemaker("model-package-group", "ModelPackageGroupName"),
    "AWS::SageMaker::Model": _sagemaker("model", "ModelName"),
    "AWS::SageMaker::Endpoint": _sagemaker("endpoint", "EndpointName"),
    "AWS::SageMaker::EndpointConfig": _sagemaker("endpoint-config", "EndpointConfigName"),
    "AWS::SageMaker::Pipeline": ResourceKind(
        ref="name", name_property="PipelineName", arn=_regional("sagemaker", "pipeline/{lower_name}")
    ),
    "AWS::ECR::Repository": ResourceKind(
        ref="name",
        name_property="RepositoryName",
        arn=_regional("ecr", "repository/{name}"),
        attributes={"RepositoryUri": "{account}.dkr.ecr.{region}.{url_suffix}/{name}"},
        generated="lower",
        max_name_length=256,
    ),
    "AWS::StepFunctions::StateMachine": ResourceKind(
        ref="arn",
        name_property="StateMachineName",
        arn=_regional("states", "stateMachine:{name}"),
        attributes={"Name": "{name}"},
        max_name_length=80,
    ),
    "AWS::CodeBuild::Project": ResourceKind(
        ref="name", name_property="Name", arn=_regional("codebuild", "project/{name}"), max_name_length=150
    ),
    "AWS::CodePipeline::Pipeline": ResourceKind(
        ref="name", name_property="Name", arn=_regional("codepipeline", "{name}")
    ),
    "AWS::Lambda::Function": ResourceKind(
        ref="name", name_property="FunctionName", arn=_regional("lambda", "function:{name}")
    ),
    "AWS::Logs::LogGroup": ResourceKind(
        ref="name", name_property="LogGroupName", arn=_regional("logs", "log-group:{name}:*"), max_name_length=512
    ),
    "AWS::Events::Rule": ResourceKind(ref="name", name_property="Name", arn=_regional("events", "rule/{name}")),
    "AWS::Events::EventBus": ResourceKind(
        ref="name", name_property="Name", arn=_regional("events", "event-bus/{name}"), attributes={"Name": "{name}"}
    ),
    "AWS::CloudWatch::Alarm": ResourceKind(
        ref="name", name_property="AlarmName", arn=_regional("cloudwatch", "alarm:{name}"), max_name_length=255
    ),
}
