"""The baseline: the usual Flask app under gunicorn sync workers, forward pass in torch, same CSV parsing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from flask import Flask, Response, request

from training_code.artifact import ModelArtifact

torch.set_num_threads(1)
artifact = ModelArtifact.load(Path(os.environ["BASELINE_MODEL_DIR"]))
model = artifact.build_model()
app = Flask(__name__)


@app.get("/ping")
def ping() -> Response:
    return Response(status=200)


@app.post("/invocations")
def invocations() -> Response:
    rows = [line.split(",") for line in request.get_data(as_text=True).splitlines() if line]
    features = torch.from_numpy(artifact.scaling.apply(np.array(rows, dtype=np.float64)))
    with torch.inference_mode():
        predicted = model(features).argmax(dim=1).tolist()
    labels = [artifact.classes[index] for index in predicted]
    return Response("\n".join(labels) + "\n", mimetype="text/csv")
