"""The policies of a deployment, resolved and compiled: per principal its identity statements, per resource its
resource-based statements (bucket, key, topic, model package group, ECR repository and event bus policies, and role
trust policies), each statement knowing where it came from.

Principals are IAM roles: their inline policies, every AWS::IAM::Policy and AWS::IAM::ManagedPolicy attached to them,
and managed policies named by ARN when the test supplies their document. A role with a managed policy that is neither
in the deployment nor supplied cannot be evaluated (its permissions are unknown), and says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tests.infra.access.conditions import Condition, Context, PolicyError, parse_conditions
from tests.infra.access.deployment import DeployedStack, Deployment
from tests.infra.access.matching import as_tuple, compile_globs, parse_arn

ACCOUNT_ID = re.compile(r"\d{12}")
DECLARED = "declared by the test"
# The actions each kind of resource policy governs: a trust policy says nothing about iam:PassRole, say.
GOVERNED_SERVICES = {
    "bucket policy": "s3",
    "key policy": "kms",
    "default key policy": "kms",
    "topic policy": "sns",
    "model package group policy": "sagemaker",
    "repository policy": "ecr",
    "event bus policy": "events",
    "trust policy": "sts",
}
PrincipalMatch = Literal["principal", "account"] | None
# The resource types that carry policies; the others are not even resolved.
POLICY_CARRIERS = frozenset(
    {
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::S3::BucketPolicy",
        "AWS::KMS::Key",
        "AWS::SNS::TopicPolicy",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::ECR::Repository",
        "AWS::Events::EventBusPolicy",
    }
)


@dataclass(frozen=True)
class StatementOrigin:
    stack: str
    logical_id: str
    policy: str  # "identity policy", "bucket policy", "key policy", "trust policy", ...
    sid: str | None
    index: int

    def __str__(self) -> str:
        return f"{self.stack} {self.logical_id} {self.policy} [{self.sid or f'#{self.index}'}]"


@dataclass(frozen=True)
class Principal:
    """Who makes a request: an IAM role (arn, account) or an AWS service (its service principal, no account)."""

    arn: str
    account: str | None
    identity: tuple[Statement, ...] = ()
    source: str = DECLARED
    # Managed policies attached by ARN whose document is unknown: evaluating this principal raises.
    unknown_managed_policies: tuple[str, ...] = ()
    permissions_boundary: str | None = None

    @property
    def is_service(self) -> bool:
        return self.account is None

    @property
    def name(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.arn


def service(service_principal: str) -> Principal:
    """An AWS service acting in its own name, e.g. `service("logs.eu-west-1.amazonaws.com")`."""
    return Principal(arn=service_principal.lower(), account=None, source="AWS service")


def declared_role(arn: str, *documents: Mapping[str, Any]) -> Principal:
    """A role the templates do not define (an operator's, CI's), with the identity policies the test gives it."""
    parsed = parse_arn(arn)
    if not parsed or parsed[1] != "iam" or not parsed[4].startswith("role/"):
        raise ValueError(f"{arn!r} is not an IAM role ARN")
    statements = tuple(
        statement
        for number, document in enumerate(documents)
        for statement in parse_document(document, DECLARED, arn.rsplit("/", 1)[-1], f"identity policy {number}")
    )
    return Principal(arn=arn, account=parsed[3], identity=statements)


@dataclass(frozen=True)
class PrincipalSpec:
    """The Principal (or NotPrincipal) element of a resource-policy statement."""

    everyone: bool = False
    arns: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()

    def match(self, principal: Principal) -> PrincipalMatch:
        """Whether the element names the principal (or everyone): "principal"; only its account, a delegation to the
        account's IAM policies: "account"; or neither: None."""
        if self.everyone:
            return "principal"
        if principal.is_service:
            return "principal" if principal.arn in self.services else None
        if principal.arn in self.arns:
            return "principal"
        if principal.account in self.accounts:
            return "account"
        return None


@dataclass(frozen=True)
class Statement:
    allow: bool
    origin: StatementOrigin
    actions: re.Pattern[str]
    actions_negated: bool
    # None: no Resource element, which in a resource policy means the resource the policy is attached to.
    resources: re.Pattern[str] | None
    resources_negated: bool
    principals: PrincipalSpec | None  # None in identity policies
    principals_negated: bool
    conditions: tuple[Condition, ...]

    def covers(self, action: str, resource: str) -> bool:
        """Whether the Action/NotAction and Resource/NotResource elements apply to the request."""
        if (self.actions.fullmatch(action) is not None) == self.actions_negated:
            return False
        return self.resources is None or (self.resources.fullmatch(resource) is not None) != self.resources_negated

    def principal_match(self, principal: Principal) -> PrincipalMatch:
        assert self.principals is not None
        matched = self.principals.match(principal)
        if self.principals_negated:
            # NotPrincipal excludes only the principals it names by ARN; naming an account does not exclude the
            # roles in it (IAM also wants their session ARNs listed), so an account entry excludes nobody here.
            return None if matched == "principal" else "principal"
        return matched

    def conditions_hold(self, context: Context) -> bool:
        return all(condition.holds(context) for condition in self.conditions)


def parse_principal(value: Any) -> PrincipalSpec:
    if value == "*":
        return PrincipalSpec(everyone=True)
    if not isinstance(value, Mapping):
        raise PolicyError(f"Principal must be '*' or a map, got {value!r}")
    everyone, arns, accounts, services = False, set(), set(), set()
    for kind, entries in value.items():
        for entry in as_tuple(entries):
            if kind == "AWS":
                if entry == "*":
                    everyone = True
                elif ACCOUNT_ID.fullmatch(entry):
                    accounts.add(entry)
                elif "*" in entry:
                    raise PolicyError(f"a principal ARN cannot hold a wildcard: {entry!r}")
                elif (parsed := parse_arn(entry)) and parsed[1] == "iam" and parsed[4] == "root":
                    accounts.add(parsed[3])
                else:
                    arns.add(entry)
            elif kind == "Service":
                services.add(entry.lower())
            elif kind not in ("Federated", "CanonicalUser"):  # neither can be a role or a service
                raise PolicyError(f"unknown principal type {kind!r}")
    return PrincipalSpec(everyone, frozenset(arns), frozenset(accounts), frozenset(services))


def _patterns(raw: dict[str, Any], element: str, ignore_case: bool) -> tuple[re.Pattern[str] | None, bool]:
    negated_element = f"Not{element}"
    if element in raw and negated_element in raw:
        raise PolicyError(f"a statement has both {element} and {negated_element}")
    if element not in raw and negated_element not in raw:
        return None, False
    patterns = tuple(str(p) for p in as_tuple(raw.get(element, raw.get(negated_element))))
    if not patterns:
        raise PolicyError(f"an empty {element} element")
    if any("${" in p for p in patterns):
        raise PolicyError(f"policy variables are not supported here: {patterns}")
    return compile_globs(patterns, ignore_case), negated_element in raw


def parse_statement(raw: dict[str, Any], origin: StatementOrigin, resource_based: bool) -> Statement:
    if raw.get("Effect") not in ("Allow", "Deny"):
        raise PolicyError(f"{origin}: Effect must be Allow or Deny, got {raw.get('Effect')!r}")
    actions, actions_negated = _patterns(raw, "Action", ignore_case=True)
    if actions is None:
        raise PolicyError(f"{origin}: a statement needs Action or NotAction")
    resources, resources_negated = _patterns(raw, "Resource", ignore_case=False)
    if resources is None and not resource_based:
        raise PolicyError(f"{origin}: an identity-policy statement needs Resource or NotResource")
    has_principal = "Principal" in raw or "NotPrincipal" in raw
    if has_principal != resource_based:
        raise PolicyError(f"{origin}: Principal belongs in resource policies, and only there")
    principals = parse_principal(raw.get("Principal", raw.get("NotPrincipal"))) if resource_based else None
    try:
        conditions = parse_conditions(raw.get("Condition"))
    except PolicyError as error:
        raise PolicyError(f"{origin}: {error}") from None
    return Statement(
        allow=raw["Effect"] == "Allow",
        origin=origin,
        actions=actions,
        actions_negated=actions_negated,
        resources=resources,
        resources_negated=resources_negated,
        principals=principals,
        principals_negated="NotPrincipal" in raw,
        conditions=conditions,
    )


def parse_document(
    document: Mapping[str, Any] | str, stack: str, logical_id: str, policy: str, resource_based: bool = False
) -> tuple[Statement, ...]:
    """The statements of a resolved policy document (or of its JSON text)."""
    if isinstance(document, str):
        document = json.loads(document)
    raw_statements = document.get("Statement", [])
    raw_statements = [raw_statements] if isinstance(raw_statements, Mapping) else raw_statements
    return tuple(
        parse_statement(raw, StatementOrigin(stack, logical_id, policy, raw.get("Sid"), index), resource_based)
        for index, raw in enumerate(raw_statements)
    )


@dataclass(frozen=True)
class ResourcePolicy:
    """The resource-based statements of one resource (`arn`: the bucket, key, topic, role, ...)."""

    arn: str
    account: str
    service: str  # the prefix of the actions it governs
    statements: tuple[Statement, ...]


@dataclass
class Policies:
    principals: dict[str, Principal] = field(default_factory=dict)
    resource_policies: dict[str, list[ResourcePolicy]] = field(default_factory=dict)

    def add_resource_policy(self, policy: ResourcePolicy) -> None:
        self.resource_policies.setdefault(policy.arn, []).append(policy)


@dataclass
class _Role:
    stack: DeployedStack
    logical_id: str
    arn: str
    statements: list[Statement] = field(default_factory=list)
    managed_policy_arns: list[str] = field(default_factory=list)
    permissions_boundary: str | None = None


def collect_policies(
    deployment: Deployment,
    *,
    managed_policies: Mapping[str, Mapping[str, Any]] | None = None,
    declared: Iterable[Principal] = (),
    resource_policies: Iterable[ResourcePolicy] = (),
) -> Policies:
    """Every principal and resource policy of the deployment.

    `managed_policies`: {ARN: document} of managed policies outside the deployment (AWS-managed ones) that roles attach.
    `declared`: roles the templates do not define; policies of the deployment attached to them by name join theirs.
    `resource_policies`: policies of resources outside the deployment (another team's bucket, say).
    """
    managed_policies = dict(managed_policies or {})
    roles: dict[tuple[str, str], _Role] = {}  # by (account, role name): policies attach to roles by name
    managed: dict[str, tuple[Statement, ...]] = {}
    attachments: list[tuple[str, str, tuple[Statement, ...]]] = []  # (account, role name, statements)
    policies = Policies()

    for stack in deployment.stacks:
        account = stack.environment.account
        for logical_id, resource in stack.resources.items():
            resource_type = resource["Type"]
            if resource_type not in POLICY_CARRIERS:
                continue
            properties = stack.resolve(resource.get("Properties", {}))

            def document(value: Any, policy: str, resource_based: bool = False) -> tuple[Statement, ...]:
                return parse_document(value, stack.display_name, logical_id, policy, resource_based)  # noqa: B023

            if resource_type == "AWS::IAM::Role":
                role = _Role(stack, logical_id, stack.arn(logical_id))
                for inline in properties.get("Policies", []):
                    role.statements += document(inline["PolicyDocument"], f"inline policy {inline['PolicyName']}")
                role.managed_policy_arns = list(properties.get("ManagedPolicyArns", []))
                role.permissions_boundary = properties.get("PermissionsBoundary")
                roles[(account, stack.physical_name(logical_id))] = role
                trust = document(properties["AssumeRolePolicyDocument"], "trust policy", resource_based=True)
                policies.add_resource_policy(ResourcePolicy(role.arn, account, "sts", trust))
            elif resource_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                statements = document(properties["PolicyDocument"], "identity policy")
                if resource_type == "AWS::IAM::ManagedPolicy":
                    managed[stack.arn(logical_id)] = statements
                attachments += [(account, role_name, statements) for role_name in properties.get("Roles", [])]
            else:
                for arn, policy, raw in _resource_policy_documents(stack, logical_id, resource_type, properties):
                    statements = document(raw, policy, resource_based=True)
                    policies.add_resource_policy(ResourcePolicy(arn, account, GOVERNED_SERVICES[policy], statements))

    declared_by_name = {}
    for principal in declared:
        key = (principal.account or "", principal.name)
        if key in roles:
            raise ValueError(f"{principal} is a role of the deployment already ({roles[key].stack.display_name})")
        declared_by_name[key] = principal
    for account, role_name, statements in attachments:
        if (account, role_name) in roles:
            roles[(account, role_name)].statements += statements
        elif (account, role_name) in declared_by_name:
            principal = declared_by_name[(account, role_name)]
            declared_by_name[(account, role_name)] = replace(principal, identity=principal.identity + statements)

    for role in roles.values():
        unknown = []
        for arn in role.managed_policy_arns:
            if arn in managed:
                role.statements += managed[arn]
            elif arn in managed_policies:
                role.statements += parse_document(managed_policies[arn], "supplied", arn, "managed policy")
            else:
                unknown.append(arn)
        policies.principals[role.arn] = Principal(
            arn=role.arn,
            account=role.stack.environment.account,
            identity=tuple(role.statements),
            source=f"{role.stack.display_name} {role.logical_id}",
            unknown_managed_policies=tuple(unknown),
            permissions_boundary=role.permissions_boundary,
        )
    for principal in declared_by_name.values():
        policies.principals[principal.arn] = principal
    for policy in resource_policies:
        policies.add_resource_policy(policy)
    return policies


def _resource_policy_documents(
    stack: DeployedStack, logical_id: str, resource_type: str, properties: dict[str, Any]
) -> Iterable[tuple[str, str, Any]]:
    """(ARN of the resource it governs, kind of policy, document) of each resource policy this resource carries."""
    env = stack.environment
    if resource_type == "AWS::S3::BucketPolicy":
        yield f"arn:{env.partition}:s3:::{properties['Bucket']}", "bucket policy", properties["PolicyDocument"]
    elif resource_type == "AWS::KMS::Key":
        if "KeyPolicy" in properties:
            yield stack.arn(logical_id), "key policy", properties["KeyPolicy"]
        else:  # CloudFormation's default key policy: the account administers and uses the key through IAM
            root = f"arn:{env.partition}:iam::{env.account}:root"
            default = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*"}]}
            yield stack.arn(logical_id), "default key policy", default
    elif resource_type == "AWS::SNS::TopicPolicy":
        for topic_arn in properties["Topics"]:
            yield topic_arn, "topic policy", properties["PolicyDocument"]
    elif resource_type == "AWS::SageMaker::ModelPackageGroup" and "ModelPackageGroupPolicy" in properties:
        yield stack.arn(logical_id), "model package group policy", properties["ModelPackageGroupPolicy"]
    elif resource_type == "AWS::ECR::Repository" and "RepositoryPolicyText" in properties:
        yield stack.arn(logical_id), "repository policy", properties["RepositoryPolicyText"]
    elif resource_type == "AWS::Events::EventBusPolicy":
        bus = properties.get("EventBusName", "default")
        bus_arn = (
            bus if bus.startswith("arn:") else f"arn:{env.partition}:events:{env.region}:{env.account}:event-bus/{bus}"
        )
        if "Statement" in properties:
            yield bus_arn, "event bus policy", {"Statement": properties["Statement"]}
        elif "Condition" in properties:
            raise PolicyError(
                f"{stack.display_name} {logical_id}: the legacy EventBusPolicy Condition is not supported"
            )
        else:  # the legacy form: one account (or everyone) may call one action on the bus
            principal = properties["Principal"]
            statement = {
                "Sid": properties.get("StatementId"),
                "Effect": "Allow",
                "Principal": "*" if principal == "*" else {"AWS": principal},
                "Action": properties["Action"],
                "Resource": bus_arn,
            }
            yield bus_arn, "event bus policy", {"Statement": [statement]}
