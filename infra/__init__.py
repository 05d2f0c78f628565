"""CDK infrastructure: stage config, constructs and stacks, one package per logical unit."""
