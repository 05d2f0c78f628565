"""An approval becomes a commit: the CodeBuild project that the approval rule starts runs `mlops promote --to
staging` for the approved version in a clone of the source repository and pushes the manifest it changed. The push
starts the delivery pipeline, which deploys what the committed manifests say, like every other path."""

from __future__ import annotations

from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.manifest import manifest_path
from infra.promotion.steps import BUILD_ENV, BUILD_IMAGE, RUNTIME_VERSIONS, StagingResources

# The event's ARN (a string: EventBridge quotes it where the version, a number, would stay a bare JSON number, which
# StartBuild refuses as a variable's value); the version is its last segment.
APPROVED_ARN_VARIABLE = "APPROVED_MODEL_PACKAGE_ARN"
STAGING = "staging"
STAGING_MANIFEST = manifest_path(STAGING).relative_to(manifest_path(STAGING).parents[2]).as_posix()
COMMITTER = ("mlopskit promotion", "promotion@mlopskit.invalid")
# The clone authenticates with the project role through the AWS CLI's CodeCommit credential helper.
CLONE_COMMANDS = [
    "git config --global credential.helper '!aws codecommit credential-helper $@'",
    "git config --global credential.UseHttpPath true",
    f'git config --global user.name "{COMMITTER[0]}"',
    f'git config --global user.email "{COMMITTER[1]}"',
    'git clone --depth 1 --branch "$BRANCH" "$REPOSITORY_URL" repository',
]
PROMOTE_COMMANDS = [
    "cd repository",
    # The operator CLI alone: requirements.txt, without the training and serving libraries.
    "make setup-deploy",
    f'.venv/bin/mlops promote --to {STAGING} --version "${{{APPROVED_ARN_VARIABLE}##*/}}" '
    '--reason "approved in the model registry (build $CODEBUILD_BUILD_ID)"',
    f"git add {STAGING_MANIFEST}",
    # Promoting the version already served changes nothing: a repeated approval event commits nothing.
    f'git diff --cached --quiet || git commit -m "Promote ${APPROVED_ARN_VARIABLE} to {STAGING}"',
    'git push origin HEAD:"$BRANCH"',
]


class PromotionCommit(Construct):
    """The project that turns an approval of a staging version into a commit of staging's manifest."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project_name: str,
        repository: codecommit.IRepository,
        branch: str,
        staging: StagingResources,
        encryption_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.project = codebuild.Project(
            self,
            "Project",
            project_name=f"{project_name}-promote-approved",
            description="Commits staging's deployment manifest for an approved version (mlops promote --to staging)",
            build_spec=codebuild.BuildSpec.from_object(
                {
                    "version": "0.2",
                    "phases": {
                        "install": {"runtime-versions": RUNTIME_VERSIONS, "commands": CLONE_COMMANDS},
                        "build": {"commands": PROMOTE_COMMANDS},
                    },
                }
            ),
            environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE),
            encryption_key=encryption_key,
            environment_variables={
                name: codebuild.BuildEnvironmentVariable(value=value)
                for name, value in {
                    **BUILD_ENV,
                    **staging.region_env,
                    "REPOSITORY_URL": repository.repository_clone_url_http,
                    "BRANCH": branch,
                }.items()
            },
        )
        self.project.add_to_role_policy(
            iam.PolicyStatement(
                sid="CommitTheManifest",
                actions=["codecommit:GitPull", "codecommit:GitPush"],
                resources=[repository.repository_arn],
            )
        )
        # `mlops promote` checks that the version is Approved in staging's group before it writes the manifest.
        self.project.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadApprovedStagingVersion",
                actions=["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"],
                resources=[staging.model_package_group_arn, staging.model_package_versions_arn],
            )
        )

    def target(self) -> events.IRuleTarget:
        """The approval rule's target: a build of this project for the approved version in the event."""
        return targets.CodeBuildProject(
            self.project,
            event=events.RuleTargetInput.from_object(
                {
                    "environmentVariablesOverride": [
                        {
                            "name": APPROVED_ARN_VARIABLE,
                            "type": "PLAINTEXT",
                            "value": events.EventField.from_path("$.detail.ModelPackageArn"),
                        }
                    ]
                }
            ),
        )
