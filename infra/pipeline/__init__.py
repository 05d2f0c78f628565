"""The training pipeline of a stage: model package group, SageMaker Pipeline, code assets, schedule."""
