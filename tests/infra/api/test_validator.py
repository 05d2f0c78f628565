"""The validator itself: a correct request passes, and each check catches its own violation."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from botocore.model import ShapeResolver

from tests.infra.api.validator import compiled_pattern, operation_model, problems, python_pattern, shape_problems

TRANSFORM_JOB = {
    "TransformJobName": "mlopskit-staging-6f1c2b9e-4d3a-4f7e-9a51-0c8d2e7b3f64",
    "ModelName": "Model2AD80A05-DM10VO07IGXZ",
    "MaxConcurrentTransforms": 1,
    "MaxPayloadInMB": 6,
    "BatchStrategy": "MultiRecord",
    "TransformInput": {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://data-bucket/batch-transform/input/"}},
        "ContentType": "text/csv",
        "SplitType": "Line",
    },
    "TransformOutput": {"S3OutputPath": "s3://artifacts-bucket/batch-transform/output/run/", "AssembleWith": "Line"},
    "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    "DataProcessing": {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "Input"},
    "Tags": [{"Key": "stage", "Value": "staging"}],
}


def transform_job(**changes: Any) -> dict[str, Any]:
    """The request with changes at dotted paths; a value of None removes the member."""
    request = copy.deepcopy(TRANSFORM_JOB)
    for path, value in changes.items():
        *parents, name = path.split("__")
        target = request
        for parent in parents:
            target = target[parent]
        if value is None:
            del target[name]
        else:
            target[name] = value
    return request


def test_a_correct_request_passes():
    assert problems("sagemaker", "CreateTransformJob", TRANSFORM_JOB) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"Bogus": 1},
            "Bogus: unknown member of CreateTransformJobRequest",
            id="unknown-member",
        ),
        pytest.param(
            {"TransformInput__DataSource__S3DataSource__S3Bucket": "x"},
            "TransformInput.DataSource.S3DataSource.S3Bucket: unknown member of TransformS3DataSource",
            id="unknown-nested-member",
        ),
        pytest.param(
            {"ModelName": None},
            "ModelName: required member of CreateTransformJobRequest is missing",
            id="missing-required",
        ),
        pytest.param(
            {"TransformResources__InstanceCount": None},
            "TransformResources.InstanceCount: required member of TransformResources is missing",
            id="missing-nested-required",
        ),
        pytest.param(
            {"MaxPayloadInMB": "6"},
            "MaxPayloadInMB: '6' is a string; expected an integer",
            id="string-for-integer",
        ),
        pytest.param(
            {"MaxPayloadInMB": True},
            "MaxPayloadInMB: True is a boolean; expected an integer",
            id="boolean-for-integer",
        ),
        pytest.param(
            {"TransformJobName": 7},
            "TransformJobName: 7 is an integer; expected a string",
            id="integer-for-string",
        ),
        pytest.param(
            {"TransformInput": "s3://x"},
            "TransformInput: 's3://x' is a string; expected a structure (TransformInput)",
            id="string-for-structure",
        ),
        pytest.param(
            {"Tags": {"Key": "stage"}},
            "Tags: {'Key': 'stage'} is an object; expected a list",
            id="object-for-list",
        ),
        pytest.param(
            {"Environment": ["MODE=batch"]},
            "Environment: ['MODE=batch'] is a list; expected a map",
            id="list-for-map",
        ),
        pytest.param(
            {"BatchStrategy": "MultiRecords"},
            "BatchStrategy: 'MultiRecords' is not one of MultiRecord, SingleRecord",
            id="enum",
        ),
        pytest.param(
            {"TransformJobName": "mlopskit-staging-" + "a" * 80},
            "TransformJobName: 'mlopskit-staging-aaaa… is 97 characters; at most 63",
            id="too-long",
        ),
        pytest.param(
            {"Tags": [{"Key": "", "Value": "x"}]},
            "Tags[0].Key: '' has 0 characters; at least 1",
            id="too-short",
        ),
        pytest.param(
            {"TransformJobName": "nightly_2024.06.01"},
            "TransformJobName: 'nightly_2024.06.01' does not match the pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
            id="pattern",
        ),
        pytest.param(
            {"MaxPayloadInMB": -1},
            "MaxPayloadInMB: -1 is below the minimum 0",
            id="numeric-minimum",
        ),
        pytest.param(
            {"Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(51)]},
            "Tags: it is 51 items; at most 50",
            id="list-too-long",
        ),
        pytest.param(
            {"Environment": {f"K{i}": "v" for i in range(17)}},
            "Environment: it is 17 entries; at most 16",
            id="map-too-large",
        ),
        pytest.param(
            {"Environment": {"1BAD": "v"}},
            "Environment<key '1BAD'>: '1BAD' does not match the pattern [a-zA-Z_][a-zA-Z0-9_]{0,1023}",
            id="map-key",
        ),
        pytest.param(
            {"Environment": {"GOOD": "x" * 10241}},
            "Environment['GOOD']: 'xxxxxxxxxx… is 10241 characters; at most 10240",
            id="map-value",
        ),
    ],
)
def test_each_check_catches_its_violation(changes: dict[str, Any], expected: str):
    found = problems("sagemaker", "CreateTransformJob", transform_job(**changes))
    head, _, tail = expected.partition("…")  # the value is shown shortened
    assert any(line.startswith(head) and line.endswith(tail) for line in found), found


def test_numbers_and_their_range():
    # CreateEndpointConfig: a variant's weight is a float of at least 0.
    def weighted(weight: Any) -> dict[str, Any]:
        variant = {"VariantName": "AllTraffic", "ModelName": "m", "InitialVariantWeight": weight}
        return {"EndpointConfigName": "c", "ProductionVariants": [variant]}

    assert problems("sagemaker", "CreateEndpointConfig", weighted(0.5)) == []
    assert problems("sagemaker", "CreateEndpointConfig", weighted(1)) == []
    assert problems("sagemaker", "CreateEndpointConfig", weighted(-0.5)) == [
        "ProductionVariants[0].InitialVariantWeight: -0.5 is below the minimum 0"
    ]
    assert problems("sagemaker", "CreateEndpointConfig", weighted("1")) == [
        "ProductionVariants[0].InitialVariantWeight: '1' is a string; expected a number"
    ]
    # A float with a maximum: AutoML's validation fraction lies within [0, 1].
    fraction = operation_model("sagemaker", "CreateEndpointConfig").service_model.shape_for("ValidationFraction")
    assert shape_problems(fraction, 0.2, "ValidationFraction") == []
    assert shape_problems(fraction, 1.5, "ValidationFraction") == ["ValidationFraction: 1.5 is above the maximum 1"]


def test_numeric_maximum_on_an_integer():
    # CreateEndpointConfig: a serverless variant's MemorySizeInMB lies within [1024, 6144].
    request = {
        "EndpointConfigName": "c",
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": "m",
                "ServerlessConfig": {"MemorySizeInMB": 8192, "MaxConcurrency": 5},
            }
        ],
    }
    assert problems("sagemaker", "CreateEndpointConfig", request) == [
        "ProductionVariants[0].ServerlessConfig.MemorySizeInMB: 8192 is above the maximum 6144"
    ]


def test_booleans_are_not_strings():
    request = {
        "ModelName": "m",
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r",
        "EnableNetworkIsolation": "true",
    }
    assert problems("sagemaker", "CreateModel", request) == [
        "EnableNetworkIsolation: 'true' is a string; expected a boolean"
    ]


def test_members_the_caller_leaves_to_the_service_are_not_required():
    request = transform_job(TransformJobName=None)
    assert problems("sagemaker", "CreateTransformJob", request, not_required={"TransformJobName"}) == []
    # An idempotency token is filled in by every SDK: CreatePipeline's ClientRequestToken is never required.
    pipeline = {"PipelineName": "p", "RoleArn": "arn:aws:iam::123456789012:role/r", "PipelineDefinition": "{}"}
    assert problems("sagemaker", "CreatePipeline", pipeline) == []


def test_a_union_takes_exactly_one_member():
    union = ShapeResolver(
        {
            "Choice": {"type": "structure", "union": True, "members": {"A": {"shape": "S"}, "B": {"shape": "S"}}},
            "S": {"type": "string"},
        }
    ).get_shape_by_name("Choice")
    assert shape_problems(union, {"A": "x"}) == []
    assert shape_problems(union, {"A": "x", "B": "y"}) == [
        "(request): Choice is a union; exactly one member must be set, not 2 (A, B)"
    ]


@pytest.mark.parametrize(
    ("pattern", "accepted", "refused"),
    [
        # Unicode general categories (tag keys of many services)
        (r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)", ["héllo wörld 1_2", "日本語", ""], ["a*b", "tab\there"]),
        # …with Java's quantified end anchor
        (r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,128}", ["key:1"], ["key!"]),
        # Java's POSIX classes are ASCII
        (r"\p{Print}+", ["Scale out when busy"], ["é", "", "a\nb"]),
        (
            r"arn:[\p{Alnum}\-]+:lambda:[\p{Alnum}\-]+:[0-9]{12}:function:.*",
            ["arn:aws:lambda:eu-west-1:123456789012:function:f"],
            ["arn:aws:lambda:eu_west_1:123456789012:function:f"],
        ),
        # UTF-16 surrogate pairs stand for the supplementary planes
        (
            r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*",
            ["endpoint/x", "emoji \U0001f600"],
            ["bell\x07"],
        ),
        # a pattern matches the whole value, not a part of it
        (r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", ["mlopskit-staging-run-1"], ["run_1", "-run", "a" * 64]),
    ],
)
def test_model_patterns_translate_to_python(pattern: str, accepted: list[str], refused: list[str]):
    compiled = compiled_pattern(pattern)
    assert [value for value in accepted if not compiled.fullmatch(value)] == []
    assert [value for value in refused if compiled.fullmatch(value)] == []


def test_untranslatable_patterns_are_refused_not_ignored():
    with pytest.raises(ValueError, match="does not translate"):
        python_pattern(r"\p{IsGreek}+")


def test_blobs_and_timestamps():
    shapes = ShapeResolver(
        {
            "Bytes": {"type": "blob", "max": 4},
            "When": {"type": "timestamp"},
        }
    )
    assert shape_problems(shapes.get_shape_by_name("Bytes"), b"abcd", "Body") == []
    assert shape_problems(shapes.get_shape_by_name("Bytes"), "abcdé", "Body") == ["Body: it is 6 bytes; at most 4"]
    assert shape_problems(shapes.get_shape_by_name("Bytes"), 5, "Body") == ["Body: 5 is an integer; expected bytes"]
    assert shape_problems(shapes.get_shape_by_name("When"), "2024-06-01T04:00:00Z", "At") == []
    assert shape_problems(shapes.get_shape_by_name("When"), True, "At") == [
        "At: True is a boolean; expected a timestamp"
    ]
