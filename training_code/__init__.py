"""Training entry point, model and serving code that run inside SageMaker containers and locally."""
