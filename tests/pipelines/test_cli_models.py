"""`mlops models ...`, `promote`, `rollback`, `deployed` and `smoke-test` against moto, with manifests in tmp dirs."""

from __future__ import annotations

import json
import re
import shlex
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber
from moto.sagemakerruntime.models import sagemakerruntime_backends
from typer.testing import CliRunner

from infra import manifest
from pipelines.cli import app
from pipelines.cli.common import CommandError
from pipelines.cli.smoke_test import invoke_with_zeros
from pipelines.registry import ModelSignature
from tests.pipelines.registry_fakes import ACCOUNT, BUCKET, CALLER, CLASSES, FEATURES, GROUPS, REGION

STAGING = GROUPS["staging"]
ENDPOINT = "mlopskit-staging-realtime"


@pytest.fixture
def manifests(tmp_path):
    return tmp_path / "deployments"


def mlops(*arguments: str):
    return CliRunner().invoke(app, list(arguments), env={"COLUMNS": "200"})  # rich tables as wide as they need


def succeeded(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def refused(result, message: str, stdout: str = "") -> None:
    """Exit 1 with one line on stderr that starts with `error: ` and contains `message`."""
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith(stdout) and (stdout or result.stdout == "")
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr, result.stderr


def approved(aws, **registration) -> str:
    arn = aws.register(**registration)
    succeeded(mlops("models", "approve", arn.rsplit("/", 1)[1], "-s", "staging", "--reason", "fixture"))
    return arn


def served(stage: str, manifests=None) -> list[tuple[str, str]]:
    return [(d.action, d.model_package_arn) for d in manifest.load(stage, manifests).history]


def run_suggested(line: str):
    """The command that `line` suggests (after `run: `), run as the operator would type it next. Tests that run
    suggestions use the default manifest directory (the aws fixture's), as the typed command does."""
    program, *arguments = shlex.split(line.rsplit("run: ", 1)[1])
    assert program == "mlops", line
    return mlops(*arguments)


@pytest.mark.parametrize(
    "command",
    [
        ["models"],
        ["models", "list"],
        ["models", "show"],
        ["models", "approve"],
        ["models", "reject"],
        ["models", "resolve"],
        ["promote"],
        ["rollback"],
        ["deployed"],
        ["smoke-test"],
    ],
)
def test_every_command_has_help(command):
    output = succeeded(mlops(*command, "--help"))
    assert "Usage: " in output
    assert "--manifest-dir" not in output


# models list


def test_list_shows_versions_newest_first_with_accuracy_status_and_decider(aws):
    aws.register(accuracy=0.91)
    approved(aws, accuracy=0.95)
    output = succeeded(mlops("models", "list", "--stage", "staging"))
    assert "┃ version ┃ status" in output and "decided by" in output
    rows = [line for line in output.splitlines() if line.startswith("│")]
    assert rows[0].split()[1:4:2] == ["2", "Approved"] and "0.9500" in rows[0] and "user/moto" in rows[0]
    assert rows[1].split()[1:4:2] == ["1", "PendingManualApproval"] and "0.9100" in rows[1]


def test_list_as_json_and_filtered_by_status(aws):
    aws.register(accuracy=None)
    arn = approved(aws)
    rows = json.loads(succeeded(mlops("models", "list", "--group", STAGING, "--json")))
    assert [row["version"] for row in rows] == [2, 1]
    assert rows[0] == rows[0] | {"arn": arn, "status": "Approved", "accuracy": 0.95, "decided_by": CALLER}
    assert rows[1]["accuracy"] is None and "NoSuchKey" in rows[1]["metrics_problem"]
    only_approved = json.loads(succeeded(mlops("models", "list", "-s", "staging", "--status", "Approved", "--json")))
    assert [row["version"] for row in only_approved] == [2]


def test_list_of_an_empty_group_says_so(aws):
    assert (
        succeeded(mlops("models", "list", "-s", "prod"))
        == "model package group mlopskit-prod-models has no versions yet\n"
    )
    assert json.loads(succeeded(mlops("models", "list", "-s", "prod", "--json"))) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--group", "nope-models"], "model package group nope-models does not exist"),
        ([], "give either --stage or --group"),
        (["-s", "dev", "-g", STAGING], "give either --stage or --group"),
        (["-s", "qa"], "unknown stage 'qa'"),
        (
            ["-s", "dev", "--status", "Maybe"],
            "unknown status 'Maybe'; allowed: PendingManualApproval, Approved, Rejected",
        ),
    ],
)
def test_list_refusals_are_one_line(aws, arguments, message):
    refused(mlops("models", "list", *arguments), message)


# models show


def test_show_prints_everything_about_a_version(aws):
    arn = approved(aws)
    output = succeeded(mlops("models", "show", "1", "--stage", "staging"))
    for expected in (
        arn,
        "Approved",
        "fixture",
        "GeneratedBy",
        ":pipeline/p/execution/1",
        "mlopskit-serving:1",
        f"s3://{BUCKET}/models/{STAGING}/1/model.tar.gz",
        "accuracy: 0.9500 (sd ",
        "metrics per class",
        *CLASSES,
        "approval history",
        CALLER,
    ):
        assert expected in output, expected


def test_show_as_json_by_arn(aws):
    arn = approved(aws)
    document = json.loads(succeeded(mlops("models", "show", arn, "-s", "staging", "--json")))
    assert document["arn"] == arn and document["status"] == "Approved"
    assert document["metrics"]["accuracy"] == 0.95 and list(document["metrics"]["per_class"]) == list(CLASSES)
    assert document["containers"][0]["model_data_url"].endswith("/1/model.tar.gz")
    assert document["lineage"]["GeneratedBy"].endswith("/execution/1")
    (decision,) = document["decisions"]
    assert decision | {"at": None} == {
        "number": 1,
        "status": "Approved",
        "by": CALLER,
        "at": None,
        "reason": "fixture",
        "forced": "",
    }


def test_show_of_a_version_without_a_report_or_decisions(aws):
    aws.register(attach_metrics=False)
    output = succeeded(mlops("models", "show", "1", "-s", "staging"))
    assert "accuracy: unknown: version 1 has no metrics report attached" in output
    assert "no approval decisions recorded" in output


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("9", f"version 9 not found in model package group {STAGING}"),
        ("v1", "'v1' is neither a version number nor a model package version ARN"),
        (f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUPS['prod']}/1", "is a version of mlopskit-prod"),
        (f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{STAGING}/9", f"{STAGING}/9 not found"),
    ],
)
def test_show_of_an_unknown_version_is_one_line(aws, version, message):
    aws.register()
    refused(mlops("models", "show", version, "-s", "staging"), message)


# models approve / reject


def test_approve_records_the_decision_and_says_what_is_next(aws):
    arn = aws.register(accuracy=0.95)
    output = succeeded(mlops("models", "approve", "1", "-s", "staging", "-r", "better than v0, by 2 points"))
    assert output == f"approved {STAGING}/1 (accuracy 0.9500)\nnext: mlops promote --to staging --version 1\n"
    described = aws.describe(arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "better than v0, by 2 points"
    assert described["CustomerMetadataProperties"]["decision.1.by"] == CALLER


@pytest.mark.parametrize("reason", [None, "", "  "])
def test_approve_and_reject_without_a_reason_are_refused(aws, reason):
    arn = aws.register()
    option = [] if reason is None else ["--reason", reason]
    refused(mlops("models", "approve", "1", "-s", "staging", *option), "a reason is required (--reason TEXT)")
    refused(mlops("models", "reject", "1", "-s", "staging", *option), "a reason is required (--reason TEXT)")
    assert aws.status(arn) == "PendingManualApproval"


def test_approve_below_the_stage_threshold_is_refused_unless_forced(aws):
    arn = aws.register(accuracy=0.94)  # staging's threshold is 0.93, prod's 0.95
    prod_arn = aws.register("prod", accuracy=0.94)
    refused(
        mlops("models", "approve", "1", "-s", "prod", "-r", "ok"),
        f"approval of {GROUPS['prod']}/1 refused: accuracy 0.9400 is below the stage's threshold 0.95; --force",
    )
    assert "LastModifiedTime" not in aws.describe(prod_arn)
    output = succeeded(mlops("models", "approve", "1", "-s", "prod", "-r", "known gap", "--force"))
    assert "forced although accuracy 0.9400 is below the stage's threshold 0.95" in output
    assert aws.status(prod_arn) == "Approved"
    succeeded(mlops("models", "approve", "1", "-s", "staging", "-r", "above staging's threshold"))
    assert aws.status(arn) == "Approved"


def test_approve_with_an_unreadable_report_is_refused_unless_forced(aws):
    arn = aws.register(evaluation=b"<html>")
    refused(mlops("models", "approve", "1", "-s", "staging", "-r", "ok"), "its accuracy cannot be checked")
    assert aws.status(arn) == "PendingManualApproval"
    succeeded(mlops("models", "approve", "1", "-s", "staging", "-r", "ok", "--force"))
    assert aws.status(arn) == "Approved"


def test_approving_again_is_a_no_op_that_touches_nothing(aws):
    arn = approved(aws)
    before = aws.describe(arn)
    output = succeeded(mlops("models", "approve", "1", "-s", "staging", "-r", "again"))
    assert output == f"version {STAGING}/1 is already Approved; nothing changed\n"
    after = aws.describe(arn)
    assert after["LastModifiedTime"] == before["LastModifiedTime"]
    assert after["ApprovalDescription"] == "fixture"
    assert after["CustomerMetadataProperties"] == before["CustomerMetadataProperties"]


def test_reject_warns_when_a_stage_still_serves_the_version(aws, manifests):
    arn = approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    output = succeeded(mlops("models", "reject", "1", "-s", "staging", "-r", "drift", "--manifest-dir", str(manifests)))
    assert output.splitlines() == [
        f"rejected {STAGING}/1",
        "warning: staging still serves it; no other Approved version to serve, and none awaits approval; "
        "to train one, run: mlops pipeline start --stage staging",
    ]
    assert aws.status(arn) == "Rejected"
    assert aws.describe(arn)["CustomerMetadataProperties"]["decision.2.status"] == "Rejected"
    aws.sagemaker.create_pipeline(  # what the staging Pipeline stack deploys beside the group
        PipelineName="mlopskit-staging-training",
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
    )
    assert ":pipeline/mlopskit-staging-training/execution/" in succeeded(run_suggested(output.splitlines()[1]))


def test_reject_points_at_the_versions_awaiting_approval(aws):
    approved(aws)
    succeeded(mlops("promote", "--to", "staging"))
    aws.register()
    warning = succeeded(mlops("models", "reject", "1", "-s", "staging", "-r", "drift")).splitlines()[1]
    assert warning == (
        "warning: staging still serves it; no other Approved version to serve yet; to find one to approve, "
        "run: mlops models list --stage staging --status PendingManualApproval"
    )
    rows = [line for line in succeeded(run_suggested(warning)).splitlines() if line.startswith("│")]
    assert len(rows) == 1 and "PendingManualApproval" in rows[0]


def test_a_refusal_without_a_staging_group_says_so_instead_of_suggesting_commands(aws, monkeypatch):
    import pipelines.cli.common

    context = pipelines.cli.common.cdk_json_context()
    monkeypatch.setattr(pipelines.cli.common, "cdk_json_context", lambda: {**context, "project_name": "undeployed"})
    refused(
        mlops("rollback", "-s", "prod"),
        "prod serves no version yet; nothing to roll back; no other Approved version to serve: model package group "
        "undeployed-staging-models does not exist",
    )


def test_reject_of_served_versions_suggests_rollbacks_that_work(aws):
    first = approved(aws)
    succeeded(mlops("promote", "--to", "staging"))
    succeeded(mlops("promote", "--to", "prod"))
    second = approved(aws)
    succeeded(mlops("promote", "--to", "staging"))
    succeeded(mlops("promote", "--to", "prod"))
    warnings = succeeded(mlops("models", "reject", "2", "-s", "staging", "-r", "5xx")).splitlines()[1:]
    assert warnings == [
        "warning: staging still serves it; to roll back, run: mlops rollback --stage staging",
        "warning: prod still serves it; to roll back, run: mlops rollback --stage prod",
    ]
    for warning in warnings:
        succeeded(run_suggested(warning))
    assert served("staging")[-1] == served("prod")[-1] == ("rollback", first)
    assert second != first


def test_reject_suggests_another_approved_version_where_there_is_nothing_to_roll_back_to(aws):
    first = approved(aws)
    approved(aws)
    succeeded(mlops("promote", "--to", "staging"))
    output = succeeded(mlops("models", "reject", "2", "-s", "staging", "-r", "drift"))
    warning = "warning: staging still serves it; to serve another Approved version, run: mlops promote --to staging"
    assert output.splitlines()[1:] == [warning]
    succeeded(run_suggested(warning))
    assert served("staging")[-1] == ("promote", first)


def test_reject_of_what_prod_serves_suggests_staging_a_new_version_first(aws):
    approved(aws)
    succeeded(mlops("promote", "--to", "staging"))
    succeeded(mlops("promote", "--to", "prod"))
    second = approved(aws)
    warnings = succeeded(mlops("models", "reject", "1", "-s", "staging", "-r", "leak")).splitlines()[1:]
    assert warnings == [
        "warning: staging still serves it; to serve another Approved version, run: mlops promote --to staging",
        "warning: prod still serves it; to stage a new version for prod first, run: mlops promote --to staging",
    ]
    succeeded(run_suggested(warnings[1]))
    # Once staging serves it, the same question has the next step as its answer.
    result = mlops("rollback", "-s", "prod")
    refused(result, "prod serves version 1 and served nothing before it; to serve another Approved version, run: ")
    succeeded(run_suggested(result.stderr.strip()))
    assert served("prod")[-1] == served("staging")[-1] == ("promote", second)


# models resolve


def test_resolve_prints_only_the_latest_approved_arn(aws):
    first, second = approved(aws), approved(aws)
    aws.register()  # the latest created, still pending
    result = mlops("models", "resolve", "--stage", "staging")
    assert result.exit_code == 0
    assert result.stdout == f"{second}\n" and result.stderr == ""
    assert mlops("models", "resolve", "-s", "staging", "--version", "1").stdout == f"{first}\n"


def test_resolve_addresses_a_staging_registry_of_named_account_by_its_arn(aws, monkeypatch):
    """The delivery pipeline's synth runs in the tooling account; it finds staging's group in staging's account only
    by ARN (the group's policy admits it there)."""
    import pipelines.cli.common

    context = pipelines.cli.common.cdk_json_context()
    monkeypatch.setattr(
        pipelines.cli.common,
        "cdk_json_context",
        lambda: {**context, "staging.account": ACCOUNT, "staging.region": REGION},
    )
    latest = approved(aws)
    listed: list[str] = []

    def record(params, **_) -> None:
        listed.append(params["ModelPackageGroupName"])

    event = "provide-client-params.sagemaker.ListModelPackages"
    events = boto3.client("sagemaker").meta.events  # the client the command gets (tests.pipelines.registry_fakes)
    events.register(event, record)
    try:
        assert succeeded(mlops("models", "resolve", "--stage", "staging")) == f"{latest}\n"
        assert succeeded(mlops("models", "resolve", "--stage", "staging", "--version", "1")) == f"{latest}\n"
    finally:
        events.unregister(event, record)
    assert set(listed) == {f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{STAGING}"}


def test_resolve_refuses_an_unapproved_version_or_an_empty_group(aws):
    refused(mlops("models", "resolve", "-s", "staging"), f"model package group {STAGING} has no Approved version")
    aws.register()
    refused(
        mlops("models", "resolve", "-s", "staging", "-v", "1"), f"{STAGING}/1 is PendingManualApproval, not Approved"
    )
    refused(
        mlops("models", "resolve", "-s", "staging", "-v", "2"), f"version 2 not found in model package group {STAGING}"
    )


# promote


def test_promote_to_staging_picks_the_latest_approved_not_the_latest_created(aws, manifests):
    approved(aws)
    second = approved(aws)
    aws.register()
    output = succeeded(mlops("promote", "--to", "staging", "--reason", "weekly", "--manifest-dir", str(manifests)))
    path = manifests / "staging.json"
    assert output.splitlines() == [
        "staging: nothing -> version 2",
        f"  {second}",
        f"wrote {path}; deploy it by committing: git add {path} && git commit",
    ]
    current = manifest.load("staging", manifests).current
    assert (current.model_package_arn, current.action, current.by, current.reason) == (
        second,
        "promote",
        CALLER,
        "weekly",
    )
    assert current.at.endswith("Z")


def test_promote_records_the_versions_drift_baseline_and_prod_takes_it_with_the_version(aws, manifests):
    """Synth stays offline: the manifest carries what monitoring needs, read from the registry at promotion."""
    arn = aws.register(baseline_features=("age", "colour", "city"))
    succeeded(mlops("models", "approve", "1", "-s", "staging", "-r", "reviewed"))
    output = succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    folder = f"s3://{BUCKET}/pipeline-runs/p/1/baseline/"
    assert f"  drift baseline {folder} (3 features), which monitoring compares with" in output.splitlines()
    succeeded(mlops("promote", "--to", "prod", "--manifest-dir", str(manifests)))
    for stage in ("staging", "prod"):
        current = manifest.load(stage, manifests).current
        assert current.model_package_arn == arn
        assert current.baseline == manifest.DriftBaseline(
            folder, ("age", "colour", "city"), f"{folder}model_quality_constraints.json"
        )


def test_promote_of_a_version_without_a_baseline_records_none(aws, manifests):
    approved(aws)
    output = succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    assert "drift baseline" not in output
    assert manifest.load("staging", manifests).current.baseline is None


def test_promote_creation_time_decides_even_when_an_older_version_is_approved_later(aws, manifests):
    first, second = aws.register(), aws.register()
    succeeded(mlops("models", "approve", "2", "-s", "staging", "-r", "first approval"))
    succeeded(mlops("models", "approve", "1", "-s", "staging", "-r", "approved last, created first"))
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    assert served("staging", manifests) == [("promote", second)]
    assert first != second


def test_promote_prints_the_change_and_is_a_no_op_for_the_served_version(aws, manifests):
    approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    second = approved(aws)
    output = succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    assert output.startswith(f"staging: version 1 -> version 2\n  {second}\n")
    again = succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    assert again == "staging already serves version 2; nothing changed\n"
    assert len(served("staging", manifests)) == 2


def test_promote_refuses_unapproved_versions(aws, manifests):
    refused(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)), "has no Approved version")
    aws.register()
    aws.register(status="Rejected")
    refused(
        mlops("promote", "--to", "staging", "-v", "1", "--manifest-dir", str(manifests)),
        f"version {STAGING}/1 is PendingManualApproval, not Approved; approve it first",
    )
    refused(mlops("promote", "--to", "prod", "-v", "2", "--manifest-dir", str(manifests)), "is Rejected, not Approved")
    refused(mlops("promote", "--to", "dev", "--manifest-dir", str(manifests)), "--to 'dev': promote to one of staging")
    assert not manifests.exists()


def test_promote_to_prod_takes_what_staging_serves(aws, manifests):
    refused(mlops("promote", "--to", "prod", "--manifest-dir", str(manifests)), "staging serves no version yet")
    first = approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    approved(aws)  # approved after staging was promoted: prod still gets what staging serves
    output = succeeded(mlops("promote", "--to", "prod", "-r", "smoke test passed", "--manifest-dir", str(manifests)))
    assert output.startswith(f"prod: nothing -> version 1\n  {first}\n")
    assert served("prod", manifests) == [("promote", first)]


def test_promote_to_prod_refuses_a_staging_version_rejected_since(aws, manifests):
    approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    succeeded(mlops("models", "reject", "1", "-s", "staging", "-r", "found a bug"))
    refused(
        mlops("promote", "--to", "prod", "--manifest-dir", str(manifests)),
        f"staging serves version {STAGING}/1, which is Rejected now; not promoted",
    )
    assert not manifest.manifest_path("prod", manifests).exists()


def test_promote_to_prod_of_a_version_staging_never_served_needs_force(aws, manifests):
    approved(aws)
    second = approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--version", "1", "--manifest-dir", str(manifests)))
    never_served = f"staging never served version {STAGING}/2 (per {manifests / 'staging.json'})"
    refused(
        mlops("promote", "--to", "prod", "--version", "2", "--manifest-dir", str(manifests)),
        f"{never_served}; give --force to promote it to prod anyway, or to stage it first, "
        "run: mlops promote --to staging --version 2",
    )
    assert not manifest.manifest_path("prod", manifests).exists()
    output = succeeded(mlops("promote", "--to", "prod", "-v", "2", "--force", "--manifest-dir", str(manifests)))
    assert output.startswith(f"prod: nothing -> version 2 (forced: {never_served})\n  {second}\n")
    assert manifest.load("prod", manifests).current.forced == never_served
    deployed = succeeded(mlops("deployed", "-s", "prod", "--manifest-dir", str(manifests)))
    assert deployed.splitlines()[0].endswith(f", forced: {never_served})")


def test_prod_takes_what_staging_served_before_without_force(aws, manifests):
    first = approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    succeeded(mlops("promote", "--to", "prod", "--version", "1", "--manifest-dir", str(manifests)))
    assert served("prod", manifests) == [("promote", first)]
    assert manifest.load("prod", manifests).current.forced == ""


def test_the_suggested_staging_promotion_lets_prod_take_the_version(aws):
    approved(aws)
    second = approved(aws)
    result = mlops("promote", "--to", "prod", "--version", "2")
    refused(result, "give --force to promote it to prod anyway")
    succeeded(run_suggested(result.stderr.strip()))
    succeeded(mlops("promote", "--to", "prod", "--version", "2"))
    assert served("prod") == [("promote", second)]


def test_a_manifest_that_cannot_be_written_is_one_line(aws, tmp_path):
    approved(aws)
    (tmp_path / "not-a-directory").write_text("")
    refused(
        mlops("promote", "--to", "staging", "--manifest-dir", str(tmp_path / "not-a-directory")),
        f"error: [Errno 17] File exists: '{tmp_path / 'not-a-directory'}'",
    )


def test_promote_writes_the_default_manifest_directory_without_the_option(aws, tmp_path):
    arn = approved(aws)
    succeeded(mlops("promote", "--to", "staging"))
    assert manifest.deployed_model_package_arn("staging", tmp_path / "repository-manifests") == arn


# rollback


def test_rollback_returns_to_the_previous_version_once(aws, manifests):
    first = approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    second = approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    output = succeeded(mlops("rollback", "-s", "staging", "-r", "5xx alarms", "--manifest-dir", str(manifests)))
    assert output.startswith(f"staging: version 2 -> version 1 (rollback)\n  {first}\n")
    assert served("staging", manifests) == [("promote", first), ("promote", second), ("rollback", first)]
    assert manifest.load("staging", manifests).current.reason == "5xx alarms"
    refused(
        mlops("rollback", "-s", "staging", "--manifest-dir", str(manifests)),
        "staging serves version 1 and served nothing before it",
    )
    assert len(served("staging", manifests)) == 3


def test_a_refused_rollback_suggests_a_promotion_that_works(aws):
    approved(aws)
    second = approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--version", "1"))
    result = mlops("rollback", "-s", "staging")
    refused(
        result,
        "staging serves version 1 and served nothing before it; "
        "to serve another Approved version, run: mlops promote --to staging",
    )
    succeeded(run_suggested(result.stderr.strip()))
    assert served("staging")[-1] == ("promote", second)
    result = mlops("rollback", "-s", "prod")
    refused(result, "prod serves no version yet; nothing to roll back; to serve another Approved version, run: ")
    succeeded(run_suggested(result.stderr.strip()))
    assert served("prod") == [("promote", second)]


def test_rollback_refuses_a_version_rejected_since(aws, manifests):
    approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    succeeded(mlops("models", "reject", "1", "-s", "staging", "-r", "leaks labels"))
    refused(
        mlops("rollback", "-s", "staging", "--manifest-dir", str(manifests)),
        f"the previous version {STAGING}/1 is Rejected now; not rolled back; no other Approved version to serve, and",
    )
    assert len(served("staging", manifests)) == 2


def test_rollback_of_a_stage_that_serves_nothing(aws, manifests):
    refused(mlops("rollback", "-s", "prod", "--manifest-dir", str(manifests)), "prod serves no version yet")
    refused(mlops("rollback", "-s", "qa", "--manifest-dir", str(manifests)), "unknown stage 'qa'")


# deployed


def test_deployed_lists_each_stage_and_checks_approval(aws, manifests):
    arn = approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    output = succeeded(mlops("deployed", "--manifest-dir", str(manifests)))
    lines = output.splitlines()
    assert lines[0] == "dev: nothing promoted"
    assert re.fullmatch(rf"staging: version 1 of {STAGING} \(promoted 20[0-9T:-]+Z by user/moto\)", lines[1])
    assert lines[2:] == [f"  {arn}", "prod: nothing promoted"]
    checked = succeeded(mlops("deployed", "-s", "staging", "--check", "--manifest-dir", str(manifests)))
    assert checked.startswith(f"staging: version 1 of {STAGING} [Approved]")

    succeeded(mlops("models", "reject", "1", "-s", "staging", "-r", "withdrawn"))
    refused(
        mlops("deployed", "--check", "--manifest-dir", str(manifests)),
        f"staging serves {STAGING}/1, which is Rejected",
        stdout=f"dev: nothing promoted\nstaging: version 1 of {STAGING} [Rejected]",
    )


def test_deployed_after_a_rollback_says_what_it_replaced(aws, manifests):
    first = approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    promoted = succeeded(mlops("deployed", "-s", "staging", "--manifest-dir", str(manifests))).splitlines()
    assert promoted[0].endswith(", replacing version 1)") and "(promoted 20" in promoted[0]
    succeeded(mlops("rollback", "-s", "staging", "--manifest-dir", str(manifests)))
    rolled_back = succeeded(mlops("deployed", "-s", "staging", "--check", "--manifest-dir", str(manifests)))
    assert re.fullmatch(
        rf"staging: version 1 of {STAGING} \[Approved\] \(rolled back 20[0-9T:-]+Z by user/moto, replacing version 2\)"
        rf"\n  {first}\n",
        rolled_back,
    )
    # A refused second rollback changes neither the manifest nor what deployed says.
    mlops("rollback", "-s", "staging", "--manifest-dir", str(manifests))
    assert succeeded(mlops("deployed", "-s", "staging", "--check", "--manifest-dir", str(manifests))) == rolled_back


def test_deployed_check_fails_for_a_version_missing_from_the_registry(aws, manifests):
    missing = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{STAGING}/42"
    deployment = manifest.Deployment(missing, "promote", "2026-01-01T00:00:00Z", CALLER)
    manifest.save(manifest.Manifest("prod").with_deployment(deployment), manifests)
    refused(
        mlops("deployed", "--check", "--manifest-dir", str(manifests)),
        f"prod serves {STAGING}/42, which is not in the registry",
        stdout="dev: nothing promoted\nstaging: nothing promoted\nprod: version 42",
    )


# smoke-test


@pytest.fixture
def endpoint(aws):
    """Queues the answers of moto's canned endpoint, and records the requests it is sent."""
    backend = sagemakerruntime_backends[ACCOUNT][REGION]
    requests: list[dict] = []

    def record(params, **_):
        requests.append(dict(params))

    # Registered on the client the command gets (tests.pipelines.registry_fakes).
    event = "provide-client-params.sagemaker-runtime.InvokeEndpoint"
    events = boto3.client("sagemaker-runtime").meta.events
    events.register(event, record)
    yield SimpleNamespace(
        answer=lambda body: backend.results_queue.append((body, "text/csv", "AllTraffic", "")), requests=requests
    )
    events.unregister(event, record)


def test_smoke_test_sends_a_row_of_zeros_and_passes_on_a_known_class(aws, manifests, endpoint):
    approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    endpoint.answer("versicolor\n")
    output = succeeded(mlops("smoke-test", "--stage", "staging", "--manifest-dir", str(manifests)))
    assert output == f"smoke test passed: {ENDPOINT} answered 'versicolor' (one of 3 classes) for a row of 4 zeros\n"
    (request,) = endpoint.requests
    assert request == {"EndpointName": ENDPOINT, "ContentType": "text/csv", "Accept": "text/csv", "Body": b"0,0,0,0\n"}


def test_smoke_test_fails_on_an_answer_that_is_no_class(aws, manifests, endpoint):
    approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    endpoint.answer('{"error": "row 1: expected 5 values"}')
    refused(
        mlops("smoke-test", "-s", "staging", "--endpoint", "other", "--manifest-dir", str(manifests)),
        'smoke test of endpoint other failed: HTTP 200, answer \'{"error": "row 1: expected 5 values"}\' is not '
        "one of the model's classes (setosa, versicolor, virginica)",
    )


def test_smoke_test_of_a_named_version(aws, manifests, endpoint):
    arn = approved(aws)
    endpoint.answer("setosa")
    result = mlops("smoke-test", "-s", "staging", "--model-package-arn", arn, "--manifest-dir", str(manifests))
    assert succeeded(result).startswith(f"smoke test passed: {ENDPOINT} answered 'setosa'")


def test_smoke_test_needs_a_served_version_with_a_readable_model(aws, manifests):
    refused(
        mlops("smoke-test", "-s", "staging", "--manifest-dir", str(manifests)),
        "staging serves no model package (none promoted, no inference.model_package_arn); name it with",
    )
    approved(aws)
    succeeded(mlops("promote", "--to", "staging", "--manifest-dir", str(manifests)))
    aws.s3.delete_object(Bucket=BUCKET, Key=f"models/{STAGING}/1/model.tar.gz")
    refused(mlops("smoke-test", "-s", "staging", "--manifest-dir", str(manifests)), "model.tar.gz: NoSuchKey")


def test_smoke_test_reports_endpoint_errors_in_one_line():
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    with Stubber(runtime) as stub:
        stub.add_client_error("invoke_endpoint", "ModelError", "Received server error (500) from primary")
        with pytest.raises(CommandError, match=r"smoke test of endpoint e failed: .*ModelError.*server error \(500\)"):
            invoke_with_zeros(runtime, "e", ModelSignature(FEATURES, CLASSES))
