"""May principal P perform action A on resource R with context C? IAM's evaluation logic over a deployment.

    access = AccessModel(deployment, principals=[declared_role(...)])
    decision = access.evaluate(role_arn, "s3:GetObject", object_arn, {"aws:SecureTransport": False})
    assert decision.allowed, decision  # str(decision) says which statements allowed or denied, and why

The logic (no SCPs, RCPs, permissions boundaries or session policies in this model):
  * an explicit Deny in any applicable statement wins: identity or resource policy, whoever it names (including "*"
    and the principal's account);
  * same account: an identity-policy Allow suffices, or a resource-policy Allow that names the principal (or "*"); one
    that names the account only delegates to IAM, so the identity policy must allow too;
  * KMS keys and role trust policies must allow themselves, even in the same account: naming the principal suffices,
    naming the account needs an identity-policy Allow as well;
  * cross account: the resource policy (naming the principal or its account) and the identity policy must both allow;
  * an AWS service as principal has no identity policy: a resource-policy statement must name it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.infra.access.conditions import as_values
from tests.infra.access.deployment import Deployment
from tests.infra.access.matching import parse_arn
from tests.infra.access.policies import (
    Principal,
    ResourcePolicy,
    Statement,
    StatementOrigin,
    collect_policies,
    service,
)

# Context every request carries unless the test says otherwise (None removes a key).
DEFAULT_CONTEXT = {"aws:SecureTransport": True}
POLICY_NAMES = {"kms": "key policy", "sts": "trust policy"}


class UnknownPolicy(Exception):
    """The answer depends on a policy this model does not have: fail rather than guess."""


@dataclass(frozen=True)
class Request:
    principal: Principal
    action: str
    resource: str
    # The whole context the policies were evaluated against, keys in lower case.
    context: Mapping[str, tuple[str, ...]]
    resource_account: str
    # The resource whose resource-based policy applied (an object's bucket, say); None when no such policy applies.
    governed_by: str | None


@dataclass(frozen=True)
class Decision:
    request: Request
    allowed: bool
    reason: str
    denied_by: tuple[StatementOrigin, ...] = ()
    identity_allows: tuple[StatementOrigin, ...] = ()
    resource_allows: tuple[StatementOrigin, ...] = ()  # resource-policy Allows that name the principal (or "*")
    account_allows: tuple[StatementOrigin, ...] = ()  # resource-policy Allows that name its account: delegations

    def __bool__(self) -> bool:
        # `assert access.evaluate(...)` would always pass: say `.allowed` (or `not ....allowed`).
        raise TypeError("a Decision has no truth value: use decision.allowed")

    def __str__(self) -> str:
        request = self.request
        lines = [
            f"{'ALLOWED' if self.allowed else 'DENIED'}: {request.principal} ({request.principal.source}) "
            f"{request.action} on {request.resource} (account {request.resource_account})",
            f"  because {self.reason}",
            f"  resource policy: {f'that of {request.governed_by}' if request.governed_by else 'none applies'}",
        ]
        for label, origins in (
            ("denied by", self.denied_by),
            ("allowed by identity policy", self.identity_allows),
            ("allowed by resource policy naming the principal", self.resource_allows),
            ("allowed by resource policy naming the account (needs an identity Allow too)", self.account_allows),
        ):
            lines += [f"  {label}: {origin}" for origin in origins]
        context = ", ".join(f"{key}={'|'.join(values)}" for key, values in sorted(request.context.items()))
        lines.append(f"  context: {context}")
        return "\n".join(lines)


class AccessModel:
    """The deployment's principals and policies, ready to answer requests."""

    def __init__(
        self,
        deployment: Deployment,
        *,
        principals: Iterable[Principal] = (),
        managed_policies: Mapping[str, Mapping[str, Any]] | None = None,
        resource_policies: Iterable[ResourcePolicy] = (),
    ) -> None:
        """`principals`: roles the templates do not define (see policies.declared_role); `managed_policies` and
        `resource_policies`: documents of policies outside the deployment that the answers depend on."""
        self.deployment = deployment
        self.policies = collect_policies(
            deployment, managed_policies=managed_policies, declared=principals, resource_policies=resource_policies
        )
        # Resources whose resource policies are all known: those of the deployment, and any that has a policy here
        # (a bucket policy on an imported bucket, the policy of the default event bus, the declared ones).
        self._known_resources = set(deployment.owned_resources) | set(self.policies.resource_policies)

    def principal(self, principal: str | Principal) -> Principal:
        """A principal by role ARN or service principal name (`sagemaker.amazonaws.com`)."""
        if isinstance(principal, Principal):
            # A declared role as the model knows it: with the deployment's policies that attach to it by name.
            return self.policies.principals.get(principal.arn, principal)
        if principal in self.policies.principals:
            return self.policies.principals[principal]
        if not principal.startswith("arn:") and ".amazonaws.com" in principal:
            return service(principal)
        raise UnknownPolicy(f"{principal} is neither a role of the deployment nor declared (declared_role)")

    def role(self, stack: str, construct_id: str) -> Principal:
        """A role of the deployment by stack display name and construct id (`RolesPipelineExecution`)."""
        deployed = self.deployment.stack(stack)
        return self.principal(deployed.arn(deployed.logical_id(construct_id, "AWS::IAM::Role")))

    def evaluate(
        self,
        principal: str | Principal,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        resource_account: str | None = None,
    ) -> Decision:
        """`resource_account` is needed only for a resource outside the deployment whose ARN has no account (S3)."""
        who = self.principal(principal)
        if who.unknown_managed_policies:
            raise UnknownPolicy(f"{who} attaches managed policies of unknown content: {who.unknown_managed_policies}")
        if who.permissions_boundary:
            raise UnknownPolicy(f"{who} has a permissions boundary, which this model does not evaluate")
        resource = self.deployment.alias_targets.get(resource, resource)  # a key addressed by its alias
        service_prefix = action.split(":", 1)[0].lower()
        owner = governing_resource(resource)
        policies = [p for p in self.policies.resource_policies.get(owner, ()) if p.service == service_prefix]
        account = self._resource_account(who, resource, owner, policies, resource_account)
        mandatory = _needs_resource_policy(owner, service_prefix)
        known = owner in self._known_resources
        if not known and (mandatory or who.is_service or account != who.account):
            raise UnknownPolicy(
                f"{who} {action} on {resource}: the answer depends on the resource policy of {owner}, which is not in "
                "the deployment (add its stack, or pass it in resource_policies)"
            )
        request = Request(
            principal=who,
            action=action,
            resource=resource,
            context=self._context(who, service_prefix, resource, account, context or {}),
            resource_account=account,
            governed_by=owner if policies else None,
        )
        return _decide(request, [s for p in policies for s in p.statements], mandatory)

    def _resource_account(
        self,
        who: Principal,
        resource: str,
        owner: str,
        policies: list[ResourcePolicy],
        given: str | None,
    ) -> str:
        known = self.deployment.owned_resources.get(owner)
        account = known.account if known else policies[0].account if policies else None
        if account is None and resource == "*":
            account = who.account  # actions without resource-level permissions act in the caller's account
        if account is None:
            parsed = parse_arn(owner)
            account = parsed[3] if parsed and parsed[3].isdigit() else None
        if given is not None and account is not None and given != account:
            raise ValueError(f"{resource} is in account {account}, not {given}")
        account = account or given
        if account is None:
            raise UnknownPolicy(f"which account owns {resource}? it is not in the deployment: pass resource_account")
        return account

    def _context(
        self, who: Principal, service_prefix: str, resource: str, account: str, given: Mapping[str, Any]
    ) -> dict[str, tuple[str, ...]]:
        """What AWS would put in the request context, then what the test supplies (None removes a key)."""
        context: dict[str, Any] = {**DEFAULT_CONTEXT, "aws:ResourceAccount": account}
        if who.is_service:
            context["aws:PrincipalServiceName"] = who.arn
        else:
            context.update({"aws:PrincipalArn": who.arn, "aws:PrincipalAccount": who.account})
            context["aws:PrincipalType"] = "AssumedRole"
            if service_prefix == "kms":
                context["kms:CallerAccount"] = who.account
        if service_prefix == "kms" and resource in self.deployment.key_aliases:
            context["kms:ResourceAliases"] = list(self.deployment.key_aliases[resource])
        context.update(given)
        return {key.lower(): values for key, value in context.items() if (values := as_values(value)) is not None}


def governing_resource(resource: str) -> str:
    """The resource whose resource-based policy governs requests on `resource`: an object's bucket, a model package's
    group; otherwise the resource itself."""
    parsed = parse_arn(resource)
    if parsed is None:
        return resource
    partition, service_name, region, account, path = parsed
    if service_name == "s3":
        return f"arn:{partition}:s3:::{path.split('/', 1)[0]}"
    if service_name == "sagemaker" and path.startswith("model-package/"):
        group = path.split("/")[1]
        return f"arn:{partition}:sagemaker:{region}:{account}:model-package-group/{group}"
    return resource


def _needs_resource_policy(owner: str, service_prefix: str) -> bool:
    """KMS keys and IAM roles (for sts:AssumeRole and the like) allow nothing unless their own policy does."""
    parsed = parse_arn(owner)
    if parsed is None:
        return False
    _, service_name, _, _, path = parsed
    if service_prefix == "kms":
        return service_name == "kms" and path.startswith("key/")
    if service_prefix == "sts":
        return service_name == "iam" and path.startswith("role/")
    return False


def _decide(request: Request, resource_statements: list[Statement], mandatory: bool) -> Decision:
    who, action, resource, context = request.principal, request.action, request.resource, request.context
    identity = [s for s in who.identity if s.covers(action, resource) and s.conditions_hold(context)]
    named: list[tuple[Statement, str]] = []
    for statement in resource_statements:
        if statement.covers(action, resource):
            match = statement.principal_match(who)
            if match and statement.conditions_hold(context):
                named.append((statement, match))
    denied_by = tuple(s.origin for s in identity if not s.allow) + tuple(s.origin for s, _ in named if not s.allow)
    identity_allows = tuple(s.origin for s in identity if s.allow)
    resource_allows = tuple(s.origin for s, match in named if s.allow and match == "principal")
    account_allows = tuple(s.origin for s, match in named if s.allow and match == "account")

    def decision(allowed: bool, reason: str) -> Decision:
        return Decision(request, allowed, reason, denied_by, identity_allows, resource_allows, account_allows)

    if denied_by:
        return decision(False, "an explicit Deny applies")
    policy = POLICY_NAMES.get(action.split(":", 1)[0].lower(), "resource policy") if mandatory else "resource policy"
    if who.is_service:
        if resource_allows:
            return decision(True, f"the {policy} allows the service")
        return decision(False, f"no {policy} statement allows the service (a service has no identity policy)")
    if request.resource_account != who.account:
        if identity_allows and (resource_allows or account_allows):
            return decision(True, f"cross-account: the {policy} and an identity policy both allow")
        missing = [
            *([] if resource_allows or account_allows else [f"the {policy} does not allow it"]),
            *([] if identity_allows else ["no identity policy allows it"]),
        ]
        return decision(False, "cross-account access needs both: " + " and ".join(missing))
    if mandatory:
        if resource_allows:
            return decision(True, f"the {policy} allows the principal")
        if account_allows and identity_allows:
            return decision(True, f"the {policy} allows the account and an identity policy allows")
        if account_allows:
            return decision(False, f"the {policy} allows the account only, and no identity policy allows")
        return decision(False, f"the {policy} must allow, and it does not (identity policies alone never suffice)")
    if identity_allows or resource_allows:
        return decision(
            True,
            "same account: "
            + ("an identity policy allows" if identity_allows else "the resource policy allows the principal"),
        )
    if account_allows:
        return decision(
            False, "same account: the resource policy allows the account only, and no identity policy allows"
        )
    return decision(False, "no policy allows it (implicit deny)")
