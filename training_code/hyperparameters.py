"""The training hyperparameters: names, types, defaults and bounds, defined once.

SageMaker passes each hyperparameter as `--<name> <value>`, where <name> is the field name with hyphens; the
pipeline's tuning ranges and the local runner use `key(field)` to spell them the same way.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from typing import Any

from training_code.choices import ACTIVATIONS, AUTO_INITIALIZER, INITIALIZERS, OPTIMIZERS

WEIGHT_INITS = (AUTO_INITIALIZER, *INITIALIZERS)

MIXED_PRECISION_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class Hyperparameters:
    hidden_sizes: tuple[int, ...] = (256, 128)
    activation: str = "relu"
    weight_init: str = AUTO_INITIALIZER
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 64
    epochs: int = 60
    dropout: float = 0.1
    weight_decay: float = 1e-4
    patience: int = 8
    min_delta: float = 1e-4
    seed: int = 42
    mixed_precision: str = "auto"

    def __post_init__(self) -> None:
        checks = {
            "hidden_sizes": (bool(self.hidden_sizes) and min(self.hidden_sizes) >= 1, "positive layer widths"),
            "activation": (self.activation in ACTIVATIONS, f"one of {', '.join(ACTIVATIONS)}"),
            "weight_init": (self.weight_init in WEIGHT_INITS, f"one of {', '.join(WEIGHT_INITS)}"),
            "optimizer": (self.optimizer in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
            "learning_rate": (self.learning_rate > 0, "> 0"),
            "momentum": (0 <= self.momentum < 1, "in [0, 1)"),
            "batch_size": (self.batch_size >= 1, ">= 1"),
            "epochs": (self.epochs >= 1, ">= 1"),
            "dropout": (0 <= self.dropout < 1, "in [0, 1)"),
            "weight_decay": (self.weight_decay >= 0, ">= 0"),
            "patience": (self.patience >= 1, ">= 1"),
            "min_delta": (self.min_delta >= 0, ">= 0"),
            "mixed_precision": (self.mixed_precision in MIXED_PRECISION_MODES, f"one of {MIXED_PRECISION_MODES}"),
        }
        for name, (valid, expected) in checks.items():
            if not valid:
                raise ValueError(f"hyperparameter {key(name)} = {getattr(self, name)!r}: expected {expected}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Hyperparameters:
        return cls(**{**values, "hidden_sizes": tuple(values["hidden_sizes"])})

    def as_sagemaker(self) -> dict[str, str]:
        """The hyperparameters as SageMaker passes them: hyphenated keys, string values."""
        return {key(name): _as_argument(value) for name, value in self.to_dict().items()}


def key(field_name: str) -> str:
    """The SageMaker hyperparameter key (and command-line flag without dashes) of a Hyperparameters field."""
    if field_name not in {field.name for field in fields(Hyperparameters)}:
        raise KeyError(f"no hyperparameter {field_name!r}")
    return field_name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Hyperparameters()
    for field in fields(Hyperparameters):
        default = getattr(defaults, field.name)
        parser.add_argument(
            f"--{key(field.name)}",
            dest=field.name,
            type=_parse_sizes if field.name == "hidden_sizes" else type(default),
            default=default,
            help=f"default: {_as_argument(default)}",
        )


def from_arguments(arguments: argparse.Namespace) -> Hyperparameters:
    return Hyperparameters(**{field.name: getattr(arguments, field.name) for field in fields(Hyperparameters)})


def _parse_sizes(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(size) for size in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer widths such as 256,128, got {value!r}"
        ) from None


def _as_argument(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
