"""An IAM authorization evaluator over synthesized templates: who can reach what once deployed.

    deployment = Deployment.of(app.stacks.values(), default=Environment("123456789012", "eu-west-1"))
    access = AccessModel(deployment, principals=[declared_role(operator_arn, policy_document)])
    decision = access.evaluate(access.role("dev/Foundation", "RolesSageMakerExecution"), "s3:GetObject", object_arn)
    assert decision.allowed, decision

deployment.py binds stacks to accounts and resolves intrinsics; policies.py collects identity and resource policies;
conditions.py evaluates Condition elements; evaluator.py decides, and explains each decision.
"""
