"""IAM's evaluation logic, one rule at a time, on small hand-written templates."""

from __future__ import annotations

import json
import time

import pytest

from tests.infra.access.conditions import PolicyError
from tests.infra.access.evaluator import UnknownPolicy
from tests.infra.access.handwritten import (
    ACCOUNT,
    OTHER_ACCOUNT,
    REGION,
    access,
    alias,
    bucket,
    bucket_policy,
    document,
    identity_policy,
    key,
    role,
    role_arn,
    root,
    statement,
)
from tests.infra.access.policies import ResourcePolicy, parse_document, service

OBJECT = "arn:aws:s3:::data/raw/x.csv"
READ_RAW = statement("s3:GetObject", "arn:aws:s3:::data/raw/*", Sid="ReadRaw")
TLS_ONLY = statement(
    "s3:*",
    ["arn:aws:s3:::data", "arn:aws:s3:::data/*"],
    effect="Deny",
    Principal={"AWS": "*"},
    Condition={"Bool": {"aws:SecureTransport": "false"}},
    Sid="TlsOnly",
)
KEY_ADMIN = statement(["kms:Describe*", "kms:PutKeyPolicy"], "*", Principal={"AWS": root()}, Sid="Admin")
S3_IN_REGION = f"s3.{REGION}.amazonaws.com"


def test_in_the_same_account_an_identity_allow_suffices_and_nothing_allowed_is_denied():
    model = access({"Reader": role("reader"), "Policy": identity_policy(["reader"], READ_RAW), "Data": bucket("data")})

    assert model.evaluate(role_arn("reader"), "s3:GetObject", OBJECT).allowed
    decision = model.evaluate(role_arn("reader"), "s3:PutObject", OBJECT)
    assert not decision.allowed
    assert decision.reason == "no policy allows it (implicit deny)"


def test_an_explicit_deny_in_an_identity_policy_wins_over_its_allow():
    deny = statement("s3:GetObject", "arn:aws:s3:::data/raw/secret/*", effect="Deny", Sid="NoSecrets")
    model = access({"Reader": role("reader"), "Policy": identity_policy(["reader"], READ_RAW, deny)})

    assert model.evaluate(role_arn("reader"), "s3:GetObject", OBJECT, resource_account=ACCOUNT).allowed
    decision = model.evaluate(
        role_arn("reader"), "s3:GetObject", "arn:aws:s3:::data/raw/secret/k", resource_account=ACCOUNT
    )
    assert not decision.allowed
    assert [origin.sid for origin in decision.denied_by] == ["NoSecrets"]
    assert [origin.sid for origin in decision.identity_allows] == ["ReadRaw"]


def test_a_deny_for_everyone_in_a_bucket_policy_applies():
    model = access(
        {
            "Reader": role("reader"),
            "Policy": identity_policy(["reader"], READ_RAW),
            "Data": bucket("data"),
            "DataPolicy": bucket_policy("data", TLS_ONLY),
        }
    )

    assert model.evaluate(role_arn("reader"), "s3:GetObject", OBJECT).allowed
    decision = model.evaluate(role_arn("reader"), "s3:GetObject", OBJECT, {"aws:SecureTransport": False})
    assert not decision.allowed
    assert [(origin.logical_id, origin.sid) for origin in decision.denied_by] == [("DataPolicy", "TlsOnly")]


def test_requests_are_over_tls_unless_told_and_a_context_key_can_be_removed():
    over_tls = statement(
        "s3:GetObject",
        "arn:aws:s3:::data/*",
        Principal={"AWS": role_arn("reader")},
        Condition={"Bool": {"aws:SecureTransport": "true"}},
    )
    model = access({"Reader": role("reader"), "Data": bucket("data"), "DataPolicy": bucket_policy("data", over_tls)})

    assert model.evaluate(role_arn("reader"), "s3:GetObject", OBJECT).allowed
    assert not model.evaluate(role_arn("reader"), "s3:GetObject", OBJECT, {"aws:SecureTransport": None}).allowed


def test_a_deny_naming_the_account_applies_to_every_role_of_it():
    deny_deletes = statement("s3:DeleteObject", "arn:aws:s3:::data/*", effect="Deny", Principal={"AWS": ACCOUNT})
    model = access(
        {
            "Cleaner": role("cleaner"),
            "Policy": identity_policy(["cleaner"], statement("s3:DeleteObject", "arn:aws:s3:::data/*")),
            "Data": bucket("data"),
            "DataPolicy": bucket_policy("data", deny_deletes),
        }
    )

    assert not model.evaluate(role_arn("cleaner"), "s3:DeleteObject", OBJECT).allowed


def test_a_resource_policy_naming_the_role_allows_it_without_an_identity_policy():
    grant = statement("s3:GetObject", "arn:aws:s3:::data/*", Principal={"AWS": role_arn("reader")}, Sid="Reader")
    model = access(
        {
            "Reader": role("reader"),
            "Other": role("other"),
            "Data": bucket("data"),
            "Policy": bucket_policy("data", grant),
        }
    )

    decision = model.evaluate(role_arn("reader"), "s3:GetObject", OBJECT)
    assert decision.allowed
    assert [origin.sid for origin in decision.resource_allows] == ["Reader"]
    assert not model.evaluate(role_arn("other"), "s3:GetObject", OBJECT).allowed


@pytest.mark.parametrize("account_principal", [root(), ACCOUNT])
def test_a_resource_policy_naming_the_account_only_delegates_to_identity_policies(account_principal):
    # Even narrowed to the role by aws:PrincipalArn, a grant to the account is a grant to the account.
    grant = statement(
        "s3:GetObject",
        "arn:aws:s3:::data/*",
        Principal={"AWS": account_principal},
        Condition={"ArnEquals": {"aws:PrincipalArn": [role_arn("reader"), role_arn("trusted")]}},
        Sid="Account",
    )
    model = access(
        {
            "Reader": role("reader"),
            "Trusted": role("trusted"),
            "Policy": identity_policy(["trusted"], READ_RAW),
            "Data": bucket("data"),
            "DataPolicy": bucket_policy("data", grant),
        }
    )

    without_identity = model.evaluate(role_arn("reader"), "s3:GetObject", OBJECT)
    assert not without_identity.allowed
    assert [origin.sid for origin in without_identity.account_allows] == ["Account"]
    assert "allows the account only" in without_identity.reason
    assert model.evaluate(role_arn("trusted"), "s3:GetObject", OBJECT).allowed


def test_kms_identity_policies_alone_never_suffice():
    use_any_key = identity_policy(["user"], statement("kms:*", "*"))
    model = access({"User": role("user"), "Policy": use_any_key, "Key": key(KEY_ADMIN)})

    decision = model.evaluate(role_arn("user"), "kms:Decrypt", model.deployment.stack("Here").arn("Key"))
    assert not decision.allowed
    assert decision.identity_allows
    assert "key policy must allow" in decision.reason


def test_kms_a_key_policy_naming_the_role_suffices_one_naming_the_account_needs_the_identity_policy_too():
    model = access(
        {
            "Named": role("named"),
            "Delegated": role("delegated"),
            "Unprivileged": role("unprivileged"),
            "Policy": identity_policy(["delegated"], statement("kms:Decrypt", "*")),
            "Key": key(
                KEY_ADMIN,
                statement("kms:Decrypt", "*", Principal={"AWS": role_arn("named")}),
                statement("kms:Decrypt", "*", Principal={"AWS": root()}),
            ),
        }
    )
    key_arn = model.deployment.stack("Here").arn("Key")

    assert model.evaluate(role_arn("named"), "kms:Decrypt", key_arn).allowed
    assert model.evaluate(role_arn("delegated"), "kms:Decrypt", key_arn).allowed
    assert not model.evaluate(role_arn("unprivileged"), "kms:Decrypt", key_arn).allowed


def test_kms_via_service_and_caller_account_conditions():
    through_s3 = statement(
        ["kms:Decrypt", "kms:GenerateDataKey"],
        "*",
        Principal={"AWS": [root(), root(OTHER_ACCOUNT)]},
        Condition={"StringEquals": {"kms:ViaService": S3_IN_REGION, "kms:CallerAccount": ACCOUNT}},
    )
    generate = statement("kms:GenerateDataKey", "*")
    model = access(
        {"Writer": role("writer"), "Policy": identity_policy(["writer"], generate), "Key": key(KEY_ADMIN, through_s3)},
        {"Writer": role("writer"), "Policy": identity_policy(["writer"], generate)},
    )
    key_arn = model.deployment.stack("Here").arn("Key")

    assert model.evaluate(role_arn("writer"), "kms:GenerateDataKey", key_arn, {"kms:ViaService": S3_IN_REGION}).allowed
    assert not model.evaluate(role_arn("writer"), "kms:GenerateDataKey", key_arn).allowed
    # kms:CallerAccount is the caller's: the other account's writer is refused though its account is named.
    elsewhere = role_arn("writer", OTHER_ACCOUNT)
    decision = model.evaluate(elsewhere, "kms:GenerateDataKey", key_arn, {"kms:ViaService": S3_IN_REGION})
    assert not decision.allowed
    assert decision.request.context["kms:calleraccount"] == (OTHER_ACCOUNT,)


def test_kms_resource_aliases_come_from_the_deployment_and_an_alias_arn_stands_for_its_key():
    by_alias = statement(
        "kms:Decrypt",
        f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*",
        Condition={"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/data"}},
    )
    root_decrypts = statement("kms:Decrypt", "*", Principal={"AWS": root()})
    model = access(
        {
            "Reader": role("reader"),
            "Policy": identity_policy(["reader"], by_alias),
            "DataKey": key(root_decrypts),
            "DataAlias": alias("alias/data", "DataKey"),
            "OtherKey": key(root_decrypts),
            "OtherAlias": alias("alias/other", "OtherKey"),
        }
    )
    stack = model.deployment.stack("Here")

    assert model.evaluate(role_arn("reader"), "kms:Decrypt", stack.arn("DataKey")).allowed
    assert not model.evaluate(role_arn("reader"), "kms:Decrypt", stack.arn("OtherKey")).allowed
    through_alias = model.evaluate(role_arn("reader"), "kms:Decrypt", stack.arn("DataAlias"))
    assert through_alias.allowed
    assert through_alias.request.resource == stack.arn("DataKey")


def test_kms_bool_if_exists_lets_requests_without_the_key_through():
    grants = statement(
        ["kms:CreateGrant", "kms:DescribeKey"],
        "*",
        Principal={"AWS": role_arn("creator")},
        Condition={"BoolIfExists": {"kms:GrantIsForAWSResource": "true"}},
    )
    model = access({"Creator": role("creator"), "Key": key(grants)})
    key_arn = model.deployment.stack("Here").arn("Key")

    assert model.evaluate(role_arn("creator"), "kms:DescribeKey", key_arn).allowed
    assert model.evaluate(role_arn("creator"), "kms:CreateGrant", key_arn, {"kms:GrantIsForAWSResource": True}).allowed
    assert not model.evaluate(
        role_arn("creator"), "kms:CreateGrant", key_arn, {"kms:GrantIsForAWSResource": False}
    ).allowed


def test_role_trust_policies_must_allow_even_in_the_same_account():
    assume_any = identity_policy(["caller"], statement("sts:AssumeRole", "*"))
    trust_caller = document(statement("sts:AssumeRole", Principal={"AWS": role_arn("caller")}))
    trust_account = document(statement("sts:AssumeRole", Principal={"AWS": root()}))
    model = access(
        {
            "Caller": role("caller"),
            "Bystander": role("bystander"),
            "CallerPolicy": assume_any,
            "ForLambda": role("for-lambda"),
            "ForCaller": role("for-caller", trust_caller),
            "ForAccount": role("for-account", trust_account),
        }
    )

    decision = model.evaluate(role_arn("caller"), "sts:AssumeRole", role_arn("for-lambda"))
    assert not decision.allowed
    assert "trust policy must allow" in decision.reason
    assert model.evaluate(role_arn("bystander"), "sts:AssumeRole", role_arn("for-caller")).allowed is False
    assert model.evaluate(role_arn("caller"), "sts:AssumeRole", role_arn("for-caller")).allowed
    assert model.evaluate(role_arn("caller"), "sts:AssumeRole", role_arn("for-account")).allowed
    assert not model.evaluate(role_arn("bystander"), "sts:AssumeRole", role_arn("for-account")).allowed
    assert model.evaluate(service("lambda.amazonaws.com"), "sts:AssumeRole", role_arn("for-lambda")).allowed
    assert not model.evaluate("sagemaker.amazonaws.com", "sts:AssumeRole", role_arn("for-lambda")).allowed


def test_a_trust_policy_governs_assuming_the_role_not_passing_it():
    passing = statement(
        "iam:PassRole", role_arn("*"), Condition={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
    )
    nobody_assumes = document(statement("*", effect="Deny", Principal="*"))
    model = access(
        {
            "Deployer": role("deployer"),
            "Policy": identity_policy(["deployer"], passing, statement("sts:AssumeRole", "*")),
            "Locked": role("locked", nobody_assumes),
        }
    )

    context = {"iam:PassedToService": "lambda.amazonaws.com"}
    assert model.evaluate(role_arn("deployer"), "iam:PassRole", role_arn("locked"), context).allowed
    assert not model.evaluate(role_arn("deployer"), "iam:PassRole", role_arn("locked")).allowed
    assert model.evaluate(role_arn("deployer"), "sts:AssumeRole", role_arn("locked")).denied_by


def test_cross_account_needs_both_the_resource_policy_and_the_identity_policy():
    read_shared = statement("s3:GetObject", "arn:aws:s3:::shared/*")
    here = {
        "IdentityOnly": role("identity-only"),
        "NamedOnly": role("named-only"),
        "Both": role("both"),
        "ViaAccount": role("via-account"),
        "Reads": identity_policy(["identity-only", "both", "via-account"], read_shared),
    }
    there = {
        "Shared": bucket("shared"),
        "SharedPolicy": bucket_policy(
            "shared",
            statement(
                "s3:GetObject", "arn:aws:s3:::shared/*", Principal={"AWS": [role_arn("named-only"), role_arn("both")]}
            ),
            statement(
                "s3:GetObject",
                "arn:aws:s3:::shared/*",
                Principal={"AWS": root()},
                Condition={"StringLike": {"aws:PrincipalArn": "*/via-*"}},
            ),
        ),
    }
    model = access(here, there)
    shared_object = "arn:aws:s3:::shared/report.csv"

    def allowed(name):
        return model.evaluate(role_arn(name), "s3:GetObject", shared_object).allowed

    assert (allowed("identity-only"), allowed("named-only"), allowed("both"), allowed("via-account")) == (
        False,
        False,
        True,
        True,
    )
    decision = model.evaluate(role_arn("named-only"), "s3:GetObject", shared_object)
    assert decision.request.resource_account == OTHER_ACCOUNT
    assert decision.reason == "cross-account access needs both: no identity policy allows it"


def test_service_principals_are_allowed_only_by_statements_naming_them():
    log_delivery = statement(
        "s3:PutObject",
        "arn:aws:s3:::logs/*",
        Principal={"Service": "logging.s3.amazonaws.com"},
        Condition={"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": "arn:aws:s3:::data"}},
    )
    account_only = statement("s3:PutObject", "arn:aws:s3:::logs/*", Principal={"AWS": root()})
    model = access({"Logs": bucket("logs"), "Policy": bucket_policy("logs", log_delivery, account_only)})
    logging = "logging.s3.amazonaws.com"
    source = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": "arn:aws:s3:::data"}

    assert model.evaluate(logging, "s3:PutObject", "arn:aws:s3:::logs/data/1", source).allowed
    assert not model.evaluate(
        logging, "s3:PutObject", "arn:aws:s3:::logs/data/1", {**source, "aws:SourceAccount": OTHER_ACCOUNT}
    ).allowed
    assert not model.evaluate(logging, "s3:PutObject", "arn:aws:s3:::logs/data/1").allowed
    # A statement naming the account does not name any service.
    assert not model.evaluate("delivery.logs.amazonaws.com", "s3:PutObject", "arn:aws:s3:::logs/data/1", source).allowed


def test_a_regional_service_principal_in_a_key_policy_with_an_encryption_context_condition():
    log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/jobs"
    logs_encrypt = statement(
        "kms:GenerateDataKey",
        "*",
        Principal={"Service": f"logs.{REGION}.amazonaws.com"},
        Condition={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group}},
    )
    model = access({"Key": key(KEY_ADMIN, logs_encrypt)})
    key_arn = model.deployment.stack("Here").arn("Key")
    logs = f"logs.{REGION}.amazonaws.com"

    assert model.evaluate(
        logs, "kms:GenerateDataKey", key_arn, {"kms:EncryptionContext:aws:logs:arn": log_group}
    ).allowed
    assert not model.evaluate(
        logs, "kms:GenerateDataKey", key_arn, {"kms:EncryptionContext:aws:logs:arn": log_group + "x"}
    ).allowed
    assert not model.evaluate("logs.us-east-1.amazonaws.com", "kms:GenerateDataKey", key_arn).allowed


def test_not_action_and_not_resource():
    model = access(
        {
            "AllButDelete": role("all-but-delete"),
            "AllButSecret": role("all-but-secret"),
            "P1": identity_policy(["all-but-delete"], statement(None, "arn:aws:s3:::data/*", NotAction="s3:Delete*")),
            "P2": identity_policy(
                ["all-but-secret"], statement("s3:GetObject", None, NotResource="arn:aws:s3:::data/secret/*")
            ),
            "Data": bucket("data"),
        }
    )

    assert model.evaluate(role_arn("all-but-delete"), "s3:PutObject", OBJECT).allowed
    assert not model.evaluate(role_arn("all-but-delete"), "s3:DeleteObject", OBJECT).allowed
    assert model.evaluate(role_arn("all-but-secret"), "s3:GetObject", OBJECT).allowed
    assert not model.evaluate(role_arn("all-but-secret"), "s3:GetObject", "arn:aws:s3:::data/secret/k").allowed


def test_not_principal_in_a_deny_spares_only_the_principals_it_names():
    only_admin_deletes = statement(
        "s3:DeleteObject", "arn:aws:s3:::data/*", effect="Deny", NotPrincipal={"AWS": [role_arn("admin"), root()]}
    )
    delete = identity_policy(["admin", "operator"], statement("s3:DeleteObject", "arn:aws:s3:::data/*"))
    model = access(
        {
            "Admin": role("admin"),
            "Operator": role("operator"),
            "Delete": delete,
            "Data": bucket("data"),
            "Policy": bucket_policy("data", only_admin_deletes),
        }
    )

    assert model.evaluate(role_arn("admin"), "s3:DeleteObject", OBJECT).allowed
    assert not model.evaluate(role_arn("operator"), "s3:DeleteObject", OBJECT).allowed


def test_actions_match_ignoring_case_with_wildcards_and_resources_match_with_case():
    model = access(
        {
            "Reader": role("reader"),
            "Policy": identity_policy(
                ["reader"],
                statement("S3:get*", "arn:aws:s3:::data/raw/*"),
                statement("s3:PutObjec?", "arn:aws:s3:::data/raw/??.csv"),
            ),
            "Data": bucket("data"),
        }
    )

    def allowed(action, resource):
        return model.evaluate(role_arn("reader"), action, resource).allowed

    assert allowed("s3:GetObject", OBJECT)
    assert allowed("s3:getobjectversion", OBJECT)
    assert not allowed("s3:GetObject", "arn:aws:s3:::data/RAW/x.csv")
    assert not allowed("s3:GetObject", "arn:aws:s3:::data/rawdata")
    assert allowed("s3:PutObject", "arn:aws:s3:::data/raw/ab.csv")
    assert not allowed("s3:PutObject", "arn:aws:s3:::data/raw/abc.csv")
    assert not allowed("s3:PutObjectAcl", "arn:aws:s3:::data/raw/ab.csv")


def test_model_package_versions_are_governed_by_their_group_policy():
    group_policy = document(
        statement(
            "sagemaker:DescribeModelPackage",
            f"arn:aws:sagemaker:{REGION}:{OTHER_ACCOUNT}:model-package/models/*",
            Principal={"AWS": root()},
        )
    )
    group = {
        "Type": "AWS::SageMaker::ModelPackageGroup",
        "Properties": {"ModelPackageGroupName": "models", "ModelPackageGroupPolicy": json.dumps(group_policy)},
    }
    describe = statement("sagemaker:DescribeModelPackage", "*")
    model = access({"Deployer": role("deployer"), "Policy": identity_policy(["deployer"], describe)}, {"Group": group})
    version = f"arn:aws:sagemaker:{REGION}:{OTHER_ACCOUNT}:model-package/models/3"

    decision = model.evaluate(role_arn("deployer"), "sagemaker:DescribeModelPackage", version)
    assert decision.allowed
    assert decision.request.governed_by == f"arn:aws:sagemaker:{REGION}:{OTHER_ACCOUNT}:model-package-group/models"


def test_an_unknown_condition_operator_fails_when_the_model_is_built():
    odd = statement("s3:GetObject", "*", Condition={"StringEqualz": {"s3:prefix": "raw/"}})

    with pytest.raises(PolicyError, match="StringEqualz"):
        access({"Reader": role("reader"), "Policy": identity_policy(["reader"], odd)})


def test_answers_that_depend_on_policies_outside_the_deployment_raise():
    everything = identity_policy(["user"], statement(["s3:*", "kms:*"], "*"))
    model = access({"User": role("user"), "Policy": everything})
    user = role_arn("user")

    with pytest.raises(UnknownPolicy, match="pass resource_account"):
        model.evaluate(user, "s3:GetObject", "arn:aws:s3:::elsewhere/k")
    assert model.evaluate(user, "s3:GetObject", "arn:aws:s3:::elsewhere/k", resource_account=ACCOUNT).allowed
    with pytest.raises(UnknownPolicy, match="resource policy of arn:aws:s3:::elsewhere"):
        model.evaluate(user, "s3:GetObject", "arn:aws:s3:::elsewhere/k", resource_account=OTHER_ACCOUNT)
    with pytest.raises(UnknownPolicy, match="key/abc"):
        model.evaluate(user, "kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abc")
    with pytest.raises(UnknownPolicy, match="neither a role of the deployment nor declared"):
        model.evaluate(role_arn("nobody"), "s3:GetObject", OBJECT)

    shared = "arn:aws:s3:::elsewhere"
    grant = document(statement("s3:GetObject", f"{shared}/*", Principal={"AWS": user}))
    declared = ResourcePolicy(
        shared, OTHER_ACCOUNT, "s3", parse_document(grant, "declared", "elsewhere", "bucket policy", True)
    )
    model = access({"User": role("user"), "Policy": everything}, resource_policies=[declared])
    assert model.evaluate(user, "s3:GetObject", f"{shared}/k").allowed


def test_a_decision_explains_itself_and_has_no_truth_value():
    model = access(
        {
            "Reader": role("reader"),
            "Policy": identity_policy(["reader"], READ_RAW),
            "Data": bucket("data"),
            "DataPolicy": bucket_policy("data", TLS_ONLY),
        }
    )

    decision = model.evaluate(role_arn("reader"), "s3:GetObject", OBJECT, {"aws:SecureTransport": False})
    text = str(decision)
    assert text.startswith(f"DENIED: {role_arn('reader')} (Here Reader) s3:GetObject on {OBJECT}")
    assert "because an explicit Deny applies" in text
    assert "denied by: Here DataPolicy bucket policy [TlsOnly]" in text
    assert "allowed by identity policy: Here Policy identity policy [ReadRaw]" in text
    assert "resource policy: that of arn:aws:s3:::data" in text
    assert "aws:securetransport=false" in text
    with pytest.raises(TypeError, match="decision.allowed"):
        assert decision


def test_thousands_of_requests_per_second():
    statements = [statement("s3:GetObject", f"arn:aws:s3:::data/prefix-{n}/*") for n in range(30)]
    model = access(
        {
            "Reader": role("reader"),
            "Policy": identity_policy(["reader"], *statements, READ_RAW),
            "Data": bucket("data"),
            "DataPolicy": bucket_policy("data", TLS_ONLY),
        }
    )
    requests = 5000

    started = time.perf_counter()
    for _ in range(requests):
        model.evaluate(role_arn("reader"), "s3:GetObject", OBJECT)
    # A generous bound (it runs at tens of thousands a second): an access matrix of thousands of cells stays quick.
    assert time.perf_counter() - started < 2.5
