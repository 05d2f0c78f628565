"""infra/manifest.py: the deployment manifest's JSON round trip, its validation, and what a rollback returns to."""

from __future__ import annotations

import json

import pytest

from infra.manifest import (
    MANIFEST_FORMAT_VERSION,
    Deployment,
    DriftBaseline,
    Manifest,
    ManifestError,
    deployed_model_package_arn,
    load,
    manifest_path,
    save,
)

PACKAGES = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlopskit-staging-models"
V1, V2, V3 = (f"{PACKAGES}/{version}" for version in (1, 2, 3))
BY = "arn:aws:sts::123456789012:assumed-role/Operator/alice"


def promote(arn: str) -> Deployment:
    return Deployment(arn, "promote", "2026-01-01T00:00:00Z", BY, "reason")


def rollback(arn: str) -> Deployment:
    return Deployment(arn, "rollback", "2026-01-02T00:00:00Z", BY)


def manifest_of(*deployments: Deployment) -> Manifest:
    manifest = Manifest("prod")
    for deployment in deployments:
        manifest = manifest.with_deployment(deployment)
    return manifest


def test_a_manifest_survives_a_round_trip_through_its_file(tmp_path):
    written = manifest_of(promote(V1), promote(V2), rollback(V1))
    path = save(written, tmp_path)
    assert path == manifest_path("prod", tmp_path) == tmp_path / "prod.json"
    assert load("prod", tmp_path) == written
    document = json.loads(path.read_text())
    assert document["format_version"] == MANIFEST_FORMAT_VERSION and document["stage"] == "prod"
    assert document["history"][2] == {
        "model_package_arn": V1,
        "action": "rollback",
        "at": "2026-01-02T00:00:00Z",
        "by": BY,
        "reason": "",
    }
    assert path.read_text().endswith("}\n")  # one reviewable diff per promotion


def test_a_stage_never_promoted_to_has_an_empty_manifest(tmp_path):
    assert load("staging", tmp_path) == Manifest("staging")
    assert load("staging", tmp_path).current is None
    assert deployed_model_package_arn("staging", tmp_path) is None


def test_the_deployed_arn_is_the_last_deployment(tmp_path):
    save(manifest_of(promote(V1), promote(V2), rollback(V1)), tmp_path)
    assert deployed_model_package_arn("prod", tmp_path) == V1


def test_the_default_directory_is_read_when_called(tmp_path, monkeypatch):
    from infra import manifest

    monkeypatch.setattr(manifest, "MANIFEST_DIR", tmp_path)
    save(manifest_of(promote(V2)))
    assert (tmp_path / "prod.json").exists()
    assert deployed_model_package_arn("prod") == V2


def test_a_deployment_names_its_group_and_version():
    assert (promote(V3).group, promote(V3).version) == ("mlopskit-staging-models", 3)


@pytest.mark.parametrize(
    ("history", "before"),
    [
        ([], None),
        ([promote(V1)], None),
        ([promote(V1), promote(V2)], V1),
        ([promote(V1), promote(V2), rollback(V1)], None),  # a rollback is not undone by another rollback
        ([promote(V1), promote(V2), promote(V3), rollback(V2)], V1),
        ([promote(V1), promote(V2), rollback(V1), promote(V3)], V1),
        ([promote(V1), promote(V1)], None),  # the same version twice: rolling back to it would change nothing
        ([rollback(V1)], None),  # hand-edited: no crash
        ([rollback(V2), promote(V3)], V2),
    ],
)
def test_serving_before_follows_promotions_and_rollbacks(history, before):
    deployment = manifest_of(*history).serving_before()
    assert (deployment.model_package_arn if deployment else None) == before


def test_rolling_back_twice_goes_back_two_promotions():
    manifest = manifest_of(promote(V1), promote(V2), promote(V3))
    manifest = manifest.with_deployment(rollback(manifest.serving_before().model_package_arn))
    assert manifest.current.model_package_arn == V2
    assert manifest.serving_before().model_package_arn == V1


def test_rolling_back_never_returns_to_the_version_served_now():
    manifest = manifest_of(promote(V1), promote(V2), promote(V2), promote(V1), promote(V1))
    assert manifest.serving_before().model_package_arn == V2


def test_what_the_current_deployment_replaced_and_what_was_ever_served():
    manifest = manifest_of(promote(V1), promote(V2), rollback(V1))
    assert manifest.replaced.model_package_arn == V2  # a rollback replaced what it rolled back from
    assert manifest_of(promote(V1)).replaced is None and Manifest("prod").replaced is None
    assert manifest.ever_served(V2) and not manifest.ever_served(V3)


def test_a_forced_promotion_keeps_why_and_other_entries_carry_no_forced_key(tmp_path):
    forced = Deployment(V2, "promote", "2026-01-03T00:00:00Z", BY, "hotfix", forced="staging never served it")
    path = save(manifest_of(promote(V1), forced), tmp_path)
    first, second = json.loads(path.read_text())["history"]
    assert "forced" not in first and second["forced"] == "staging never served it"
    assert load("prod", tmp_path).current == forced


def test_a_deployment_keeps_the_versions_baseline_and_an_entry_without_one_has_no_baseline_key(tmp_path):
    baseline = DriftBaseline("s3://artifacts-bucket/pipeline-runs/p/e2/baseline/", ("age", "city"))
    with_model_quality = DriftBaseline(baseline.uri, baseline.features, f"{baseline.uri}model_quality_constraints.json")
    monitored = Deployment(V2, "promote", "2026-01-03T00:00:00Z", BY, baseline=baseline)
    both = Deployment(V1, "rollback", "2026-01-04T00:00:00Z", BY, baseline=with_model_quality)
    path = save(manifest_of(promote(V1), monitored, both), tmp_path)
    first, second, third = json.loads(path.read_text())["history"]
    assert "baseline" not in first
    assert second["baseline"] == {"uri": baseline.uri, "features": ["age", "city"]}
    assert third["baseline"]["model_constraints"] == with_model_quality.model_constraints
    assert load("prod", tmp_path).history[1:] == (monitored, both)


def entry(**overrides):
    return {"model_package_arn": V1, "action": "promote", "at": "2026-01-01T00:00:00Z", "by": BY, **overrides}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{", "Expecting property name"),
        ("[]", "expected a JSON object"),
        ({"format_version": 2, "stage": "prod", "history": []}, "format_version 2 is not 1"),
        ({"stage": "prod", "history": []}, "format_version None is not 1"),
        ({"format_version": 1, "stage": "staging", "history": []}, "it names stage 'staging'"),
        ({"format_version": 1, "stage": "prod"}, "'history'"),
        ({"format_version": 1, "stage": "prod", "history": {}}, "history is not a list"),
        ({"format_version": 1, "stage": "prod", "history": [entry(model_package_arn="v1")]}, "'v1' is not a model"),
        (
            {"format_version": 1, "stage": "prod", "history": [entry(model_package_arn=f"{PACKAGES}/x")]},
            "is not a model package version ARN",
        ),
        ({"format_version": 1, "stage": "prod", "history": [entry(action="deploy")]}, "action 'deploy' is neither"),
        ({"format_version": 1, "stage": "prod", "history": [entry(color="red")]}, "unexpected keyword argument"),
        ({"format_version": 1, "stage": "prod", "history": [{"model_package_arn": V1}]}, "missing 3 required"),
        ({"format_version": 1, "stage": "prod", "history": [entry(by=None)]}, "by of a deployment must be text"),
        ({"format_version": 1, "stage": "prod", "history": ["promote"]}, "argument after ** must be a mapping"),
        (
            {"format_version": 1, "stage": "prod", "history": [entry(baseline={"uri": "s3://bucket-a/b/"})]},
            "baseline must be an object of uri, features and optionally model_constraints",
        ),
        (
            {
                "format_version": 1,
                "stage": "prod",
                "history": [entry(baseline={"uri": "s3://bucket-a/b/statistics.json", "features": ["age"]})],
            },
            "baseline uri 's3://bucket-a/b/statistics.json' is not an S3 folder",
        ),
        (
            {
                "format_version": 1,
                "stage": "prod",
                "history": [entry(baseline={"uri": "s3://bucket-a/b/", "features": []})],
            },
            "baseline features must be a non-empty list",
        ),
        (
            {
                "format_version": 1,
                "stage": "prod",
                "history": [
                    entry(baseline={"uri": "s3://bucket-a/b/", "features": ["age"], "model_constraints": "b/c.json"})
                ],
            },
            "baseline model_constraints 'b/c.json' is not an S3 URI",
        ),
    ],
)
def test_a_broken_manifest_is_one_error_naming_the_file(tmp_path, document, message):
    path = tmp_path / "prod.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(ManifestError) as raised:
        load("prod", tmp_path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
