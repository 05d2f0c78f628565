"""One deployment stage (dev, staging or prod): its stacks, their environment and tags."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Environment, Stage
from constructs import Construct

from infra import naming
from infra.config import StageConfig
from infra.foundation.sharing import ModelConsumer
from infra.foundation.stack import FoundationStack
from infra.pipeline.stack import PipelineStack
from infra.serving import SERVING_SUMMARY_METADATA
from infra.serving.stack import ServingStack, serving_skip_reason
from infra.tagging import tag_everything


@dataclass(frozen=True)
class StageSharing:
    """What a stage shares with other accounts: the stages that serve its model versions there, and the accounts that
    resolve its versions (the delivery pipeline's)."""

    model_consumers: tuple[ModelConsumer, ...] = ()
    registry_reader_accounts: tuple[str, ...] = ()


class MlopsStage(Stage):
    def __init__(self, scope: Construct, config: StageConfig, *, sharing: StageSharing = StageSharing()) -> None:
        super().__init__(scope, config.name, env=Environment(account=config.account, region=config.region))
        self.config = config
        self.foundation = FoundationStack(
            self,
            "Foundation",
            config=config,
            model_consumers=sharing.model_consumers,
            stack_name=naming.stack_name(config, "foundation"),
            termination_protection=config.name == "prod",
            analytics_reporting=False,
        )
        self.pipeline = PipelineStack(
            self,
            "Pipeline",
            config=config,
            foundation=self.foundation,
            model_consumers=sharing.model_consumers,
            registry_reader_accounts=sharing.registry_reader_accounts,
            stack_name=naming.stack_name(config, "pipeline"),
            termination_protection=config.name == "prod",
            analytics_reporting=False,
        )
        self.serving: ServingStack | None = None
        skip_reason = serving_skip_reason(config)
        if skip_reason:
            # cdk.out then still says why the stage serves nothing (`make run` prints it).
            self.foundation.node.add_metadata(SERVING_SUMMARY_METADATA, f"not deployed: {skip_reason}")
        else:
            self.serving = ServingStack(
                self,
                "Serving",
                config=config,
                foundation=self.foundation,
                stack_name=naming.stack_name(config, "serving"),
                termination_protection=config.name == "prod",
                analytics_reporting=False,
            )
        tag_everything(self, config.all_tags)
