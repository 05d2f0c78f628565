"""A model of a table as users bring it (a text column, missing cells, the label column in the middle), served over
HTTP to raw rows: the server encodes them as training did, and refuses what training could not have filled in."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipelines.sample_data import PEOPLE_COLUMNS, PEOPLE_LABEL, write_people_csv
from pipelines.steps.preprocess import preprocess
from tests.training_code.serving.conftest import ServerProcess, free_port, running_server
from training_code.artifact import ModelArtifact
from training_code.contract import CSV, JSON, NPY
from training_code.data import read_table
from training_code.train import main as train_main


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model directory, test split file) of a model trained on the mixed table."""
    root = tmp_path_factory.mktemp("mixed-model")
    raw = write_people_csv(root / "raw" / "people.csv", rows=900)
    preprocess(raw.parent, root / "splits", PEOPLE_LABEL, 0.15, 0.15, seed=0)
    train_main(
        [
            *("--train", str(root / "splits" / "train"), "--validation", str(root / "splits" / "validation")),
            *("--model-dir", str(root / "model"), "--failure-file", str(root / "failure")),
            *("--epochs", "40", "--hidden-sizes", "32", "--learning-rate", "0.01"),
        ]
    )
    return root / "model", root / "splits" / "test" / "test.csv"


@pytest.fixture(scope="module")
def mixed_server(mixed_model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    with running_server(
        tmp_path_factory.mktemp("mixed-server"),
        *("--model-dir", str(mixed_model[0]), "--port", str(port), "--workers", "1"),
        port=port,
    ) as process:
        yield process


def reference_labels(model_dir: Path, rows: list[dict[str, str]]) -> list[str]:
    """What the torch model answers for rows keyed by column, encoded as evaluation encodes the test split."""
    artifact = ModelArtifact.load(model_dir)
    cells = np.array([[row[name] for name in artifact.feature_names] for row in rows], dtype=object)
    probabilities = artifact.predict_proba(artifact.encoding.codes(cells))
    return [artifact.classes[index] for index in probabilities.argmax(axis=1)]


def test_raw_rows_with_the_users_header_are_answered_as_the_model_answers_them(mixed_model, mixed_server):
    model_dir, test_file = mixed_model
    body = test_file.read_bytes()
    assert body.splitlines()[0].decode() == ",".join(PEOPLE_COLUMNS), "the label column sits in the middle"
    test = read_table(test_file, PEOPLE_LABEL)
    rows = [dict(zip(test.feature_names, cells, strict=True)) for cells in test.cells.tolist()]
    assert any(row["age"] == "" for row in rows) and any(row["colour"] == "NA" for row in rows)

    response = mixed_server.invoke(body, CSV, CSV)

    assert response.status == 200, response.body
    header, *labels = response.body.decode().splitlines()
    assert header == PEOPLE_LABEL
    assert labels == reference_labels(model_dir, rows)
    accuracy = np.mean(np.array(labels) == test.labels)
    assert accuracy > 0.85, "the text column and the filled-in cells carry the signal"


def test_json_rows_by_name_with_null_cells_are_filled_in_as_training_filled_them(mixed_model, mixed_server):
    rows = [
        {"age": None, "colour": "red", "size": 0.5, "city": "Oslo"},
        {"age": 70, "colour": None, "size": -1.0, "city": "Riga"},
        {"age": 30, "colour": "purple", "size": 2.0, "city": "Lyon"},
    ]
    response = mixed_server.invoke(json.dumps({"instances": rows}).encode(), JSON, JSON)

    assert response.status == 200, response.body
    as_text = [{name: "" if value is None else str(value) for name, value in row.items()} for row in rows]
    expected = reference_labels(mixed_model[0], as_text)
    assert [prediction["label"] for prediction in response.json()["predictions"]] == expected


@pytest.mark.parametrize(
    ("body", "content_type", "named"),
    [
        (b"age,colour,size,city\n30,red,,Oslo\n", CSV, "size"),
        (b'[{"age": 30, "colour": "red", "size": 1.0, "city": null}]', JSON, "city"),
    ],
    ids=["csv-empty-cell", "json-null"],
)
def test_a_missing_cell_where_training_had_none_is_a_400_naming_row_and_column(mixed_server, body, content_type, named):
    response = mixed_server.invoke(body, content_type, JSON)

    assert response.status == 400
    error = response.json()
    assert error["row"] == 1 and named in error["error"]
    assert "training had no missing values in this column" in error["error"]


def test_numpy_arrays_are_refused_for_a_model_with_text_columns(mixed_server):
    array = io.BytesIO()
    np.save(array, np.zeros((1, 4)))

    response = mixed_server.invoke(array.getvalue(), NPY, JSON)

    assert response.status == 415
    assert "colour" in response.json()["error"] and "CSV or JSON" in response.json()["error"]
