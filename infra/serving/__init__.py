"""Serving of a stage's approved model package: real-time, serverless and asynchronous endpoints, batch transform,
their scaling, alarms and dashboard. This module stays free of CDK imports: `make run`'s summary reads it."""

# Construct metadata that says what a stage serves, or why it serves nothing; the summary prints it from cdk.out.
SERVING_SUMMARY_METADATA = "mlopskit:serving"
