"""SageMaker Pipeline builder, step scripts, operator CLI and local runner."""
