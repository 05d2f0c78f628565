"""CDK infrastructure: stage config, constructs and stacks, one package per logical unit."""

# infra reads image URIs from the SageMaker SDK: the pipelines package quiets the SDK's import banners first.
import pipelines  # noqa: F401
