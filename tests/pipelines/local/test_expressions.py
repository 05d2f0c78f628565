"""The definition expressions the local runner evaluates, and the ones it refuses."""

from __future__ import annotations

import pytest

from pipelines.local.expressions import DefinitionError, Scope, hyperparameter_value, path_parts, references


def scope(**step_properties) -> Scope:
    return Scope(
        parameters={"InputDataUri": "s3://data/raw/", "AccuracyThreshold": 0.9},
        execution={"PipelineExecutionId": "abc123"},
        step_properties=step_properties,
        read_property_file=lambda step, name: {"metrics": {"accuracy": {"value": 0.97}}, "step": step, "name": name},
    )


def test_gets_parameters_execution_variables_and_step_properties():
    outputs = {"ProcessingOutputConfig": {"Outputs": {"train": {"S3Output": {"S3Uri": "s3://a/train"}}}}}
    evaluated = scope(Preprocess=outputs, Tune={"TrainingJobSummaries": [{"TrainingJobName": "best"}]}).evaluate(
        {
            "data": {"Get": "Parameters.InputDataUri"},
            "id": {"Get": "Execution.PipelineExecutionId"},
            "train": {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
            "best": {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"},
            "plain": ["text", 3],
        }
    )
    assert evaluated == {
        "data": "s3://data/raw/",
        "id": "abc123",
        "train": "s3://a/train",
        "best": "best",
        "plain": ["text", 3],
    }


def test_join_renders_numbers_as_json_and_nests():
    joined = scope().evaluate(
        {
            "Std:Join": {
                "On": "/",
                "Values": [
                    {"Std:Join": {"On": "-", "Values": ["s3:", {"Get": "Execution.PipelineExecutionId"}]}},
                    {"Get": "Parameters.AccuracyThreshold"},
                ],
            }
        }
    )
    assert joined == "s3:-abc123/0.9"


def test_json_get_reads_the_step_property_file():
    value = scope().evaluate(
        {
            "Std:JsonGet": {
                "Path": "metrics.accuracy.value",
                "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
            }
        }
    )
    assert value == 0.97


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ({"Get": "Parameters.Missing"}, "unknown parameter 'Missing'"),
        ({"Get": "Steps.Later.Property"}, "step 'Later', which has not run"),
        ({"Get": "Execution.StartDateTime"}, "unknown execution variable"),
        ({"Std:Select": {"Values": []}}, "unsupported expression"),
        (
            {"Std:JsonGet": {"Path": "metrics.f1", "PropertyFile": {"Get": "Steps.E.PropertyFiles.R"}}},
            "has no metrics.f1",
        ),
    ],
)
def test_unknown_references_and_constructs_are_refused_by_name(expression, message):
    with pytest.raises(DefinitionError, match=message):
        scope().evaluate(expression)


def test_a_property_path_a_finished_step_lacks_is_refused_by_step_and_path():
    tuned = scope(Tune={"TrainingJobSummaries": [{"TrainingJobName": "best"}]})
    with pytest.raises(DefinitionError, match=r"step Tune has no TrainingJobSummaries\[1\]\.TrainingJobName"):
        tuned.evaluate({"Get": "Steps.Tune.TrainingJobSummaries[1].TrainingJobName"})


def test_references_lists_every_get_and_refuses_unknown_functions():
    value = {
        "a": {"Std:Join": {"On": "/", "Values": [{"Get": "Parameters.X"}, {"Get": "Steps.S.Outputs['o'].Uri"}]}},
        "b": [{"Std:JsonGet": {"Path": "p", "PropertyFile": {"Get": "Steps.E.PropertyFiles.R"}}}],
    }
    assert references(value) == ["Parameters.X", "Steps.S.Outputs['o'].Uri", "Steps.E.PropertyFiles.R"]
    with pytest.raises(DefinitionError, match="Std:Select"):
        references({"x": {"Std:Select": {}}})


def test_property_paths_parse_names_keys_and_indices():
    assert path_parts("Outputs['train'].S3Output[2].Uri") == ["Outputs", "train", "S3Output", 2, "Uri"]
    with pytest.raises(DefinitionError, match="cannot parse"):
        path_parts("Outputs[train]")


def test_hyperparameters_are_json_decoded_as_the_toolkit_does():
    assert hyperparameter_value('"relu"') == "relu"
    assert hyperparameter_value("0.001") == 0.001
    assert hyperparameter_value("256,128") == "256,128"
