"""The approved model package as a SageMaker model; every mode serves it."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.config import StageConfig


class ServingModel(Construct):
    """The package carries the serving image and the model artifact; the model runs as the stage's SageMaker execution
    role, isolated from the network and in the VPC as the pipeline's jobs are."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, execution_role: iam.IRole) -> None:
        super().__init__(scope, construct_id)
        pipeline = config.pipeline
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=execution_role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                model_package_name=config.inference.model_package_arn
            ),
            enable_network_isolation=pipeline.network_isolation,
            vpc_config=sagemaker.CfnModel.VpcConfigProperty(
                subnets=pipeline.vpc.subnet_ids, security_group_ids=pipeline.vpc.security_group_ids
            )
            if pipeline.vpc
            else None,
        )

    @property
    def model_name(self) -> str:
        return self.model.attr_model_name
