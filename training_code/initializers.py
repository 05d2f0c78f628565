"""Weight initialization schemes, and the default that suits each activation.

Variance targets for a layer with fan_in inputs and fan_out outputs: He 2/fan_in (ReLU halves the variance),
Xavier/Glorot 2/(fan_in + fan_out) (tanh, sigmoid), LeCun 1/fan_in (SELU). Zeros makes every hidden unit of a
layer compute, and learn, the same thing: the symmetry problem; it is offered to demonstrate exactly that.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from training_code import choices
from training_code.model import MLP

SCHEMES = choices.INITIALIZERS
AUTO = choices.AUTO_INITIALIZER
DEFAULT_FOR_ACTIVATION = {
    "relu": "he_normal",
    "tanh": "xavier_uniform",
    "sigmoid": "xavier_uniform",
    "selu": "lecun_normal",
}
# Plain random schemes use a fixed small scale, as common frameworks do (e.g. Keras' RandomNormal/RandomUniform).
RANDOM_SCALE = 0.05


def resolve_scheme(scheme: str, activation: str) -> str:
    return DEFAULT_FOR_ACTIVATION[activation] if scheme == AUTO else scheme


def initialize(model: MLP, scheme: str) -> None:
    """Initialize every linear layer's weights with `scheme`; biases start at zero."""
    with torch.no_grad():
        for layer in model.linear_layers():
            _initialize_weight(layer.weight, scheme)
            nn.init.zeros_(layer.bias)


def _initialize_weight(weight: torch.Tensor, scheme: str) -> None:
    fan_out, fan_in = weight.shape
    if scheme == "zeros":
        nn.init.zeros_(weight)
    elif scheme == "normal":
        nn.init.normal_(weight, std=RANDOM_SCALE)
    elif scheme == "uniform":
        nn.init.uniform_(weight, -RANDOM_SCALE, RANDOM_SCALE)
    elif scheme == "xavier_uniform":
        nn.init.xavier_uniform_(weight)
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(weight)
    elif scheme == "he_normal":
        nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")
    elif scheme == "he_uniform":
        nn.init.kaiming_uniform_(weight, mode="fan_in", nonlinearity="relu")
    elif scheme == "lecun_normal":
        nn.init.normal_(weight, std=1 / math.sqrt(fan_in))
    else:
        raise ValueError(f"unknown weight initialization {scheme!r}; allowed: {', '.join(SCHEMES)}")
