"""A multilayer perceptron classifier for tabular features."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from training_code import choices

ACTIVATIONS: dict[str, type[nn.Module]] = dict(
    zip(choices.ACTIVATIONS, (nn.ReLU, nn.Tanh, nn.SELU, nn.Sigmoid), strict=True)
)


@dataclass(frozen=True)
class ModelConfig:
    input_size: int
    hidden_sizes: tuple[int, ...]
    num_classes: int
    activation: str
    dropout: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        return cls(**{**values, "hidden_sizes": tuple(values["hidden_sizes"])})


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        # SELU self-normalizes only with alpha dropout, which keeps the activations' mean and variance.
        dropout = nn.AlphaDropout if config.activation == "selu" else nn.Dropout
        layers: list[nn.Module] = []
        width = config.input_size
        for hidden in config.hidden_sizes:
            layers += [nn.Linear(width, hidden), ACTIVATIONS[config.activation]()]
            if config.dropout > 0:
                layers.append(dropout(config.dropout))
            width = hidden
        layers.append(nn.Linear(width, config.num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, features):
        return self.layers(features)

    def linear_layers(self) -> list[nn.Linear]:
        return [layer for layer in self.layers if isinstance(layer, nn.Linear)]
