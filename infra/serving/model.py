"""The approved model package version as a SageMaker model; every mode serves it."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.config import VpcSettings
from infra.serving.role import ServingRole


class ServingModel(Construct):
    """The package carries the serving image and the model archive. The model runs as the serving role, cut off from
    the network (the server needs none: SageMaker fetches the archive and image, and the requests come to it), and in
    the stage's VPC when one is configured."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_package_arn: str,
        role: ServingRole,
        vpc: VpcSettings | None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                model_package_name=model_package_arn, environment=dict(environment) if environment else None
            ),
            enable_network_isolation=True,
            vpc_config=sagemaker.CfnModel.VpcConfigProperty(
                subnets=vpc.subnet_ids, security_group_ids=vpc.security_group_ids
            )
            if vpc
            else None,
        )
        # CreateModel checks that the role may pull the image and read the archive.
        self.model.node.add_dependency(role.policy)

    @property
    def model_name(self) -> str:
        return self.model.attr_model_name
