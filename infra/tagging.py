"""Stage tags on every taggable resource, including those CDK declares as raw CfnResource."""

from __future__ import annotations

import jsii
from aws_cdk import Aspects, CfnResource, IAspect, TagManager, Tags
from constructs import IConstruct

# Raw CfnResource declarations in CDK internals (e.g. the S3 auto-delete provider) that Tags.of() does not reach.
RAW_TAGGABLE_TYPES = ("AWS::IAM::Role", "AWS::Lambda::Function")


def tag_everything(scope: IConstruct, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        Tags.of(scope).add(key, value)
    Aspects.of(scope).add(_TagRawResources(tags))


@jsii.implements(IAspect)
class _TagRawResources:
    def __init__(self, tags: dict[str, str]) -> None:
        self._tags = [{"Key": key, "Value": value} for key, value in sorted(tags.items())]

    def visit(self, node: IConstruct) -> None:
        if (
            isinstance(node, CfnResource)
            and node.cfn_resource_type in RAW_TAGGABLE_TYPES
            and not TagManager.is_taggable(node)
        ):
            node.add_property_override("Tags", self._tags)
