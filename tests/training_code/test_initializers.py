"""Each initialization scheme's statistics, the defaults per activation, and the symmetry problem of zeros."""

from __future__ import annotations

import pytest
import torch

from training_code.initializers import DEFAULT_FOR_ACTIVATION, RANDOM_SCALE, SCHEMES, initialize, resolve_scheme
from training_code.model import ACTIVATIONS, MLP, ModelConfig

FAN_IN, FAN_OUT = 400, 600

EXPECTED_VARIANCE = {
    "he_normal": 2 / FAN_IN,
    "he_uniform": 2 / FAN_IN,
    "xavier_normal": 2 / (FAN_IN + FAN_OUT),
    "xavier_uniform": 2 / (FAN_IN + FAN_OUT),
    "lecun_normal": 1 / FAN_IN,
    "normal": RANDOM_SCALE**2,
    "uniform": RANDOM_SCALE**2 / 3,
}


def initialized(scheme: str, activation: str = "relu", hidden_sizes=(FAN_OUT,), seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    model = MLP(ModelConfig(FAN_IN, hidden_sizes, num_classes=10, activation=activation, dropout=0.0))
    initialize(model, scheme)
    return model


@pytest.mark.parametrize("scheme", sorted(EXPECTED_VARIANCE))
def test_weight_variance_matches_the_scheme(scheme):
    weight = initialized(scheme).linear_layers()[0].weight
    assert weight.shape == (FAN_OUT, FAN_IN)
    assert weight.mean().item() == pytest.approx(0, abs=2e-3)
    assert weight.var().item() == pytest.approx(EXPECTED_VARIANCE[scheme], rel=0.03)


@pytest.mark.parametrize("scheme", ["he_uniform", "xavier_uniform", "uniform"])
def test_uniform_schemes_stay_within_their_bound(scheme):
    weight = initialized(scheme).linear_layers()[0].weight
    bound = (3 * EXPECTED_VARIANCE[scheme]) ** 0.5
    assert weight.abs().max().item() <= bound
    assert weight.abs().max().item() > 0.95 * bound


@pytest.mark.parametrize("scheme", SCHEMES)
def test_biases_start_at_zero(scheme):
    for layer in initialized(scheme).linear_layers():
        assert torch.count_nonzero(layer.bias) == 0


def test_each_activation_gets_its_textbook_default():
    assert set(DEFAULT_FOR_ACTIVATION) == set(ACTIVATIONS)
    assert resolve_scheme("auto", "relu") == "he_normal"
    assert resolve_scheme("auto", "selu") == "lecun_normal"
    assert resolve_scheme("auto", "tanh") == resolve_scheme("auto", "sigmoid") == "xavier_uniform"
    assert resolve_scheme("uniform", "relu") == "uniform"


def test_unknown_scheme_is_rejected():
    with pytest.raises(ValueError, match="unknown weight initialization 'glorot'"):
        initialized("glorot")


def hidden_units_after_training(scheme: str) -> torch.Tensor:
    model = initialized(scheme, activation="sigmoid", hidden_sizes=(16,), seed=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    generator = torch.Generator().manual_seed(2)
    features, labels = torch.randn(64, FAN_IN, generator=generator), torch.randint(0, 10, (64,), generator=generator)
    for _ in range(5):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(features), labels).backward()
        optimizer.step()
    return model.linear_layers()[0].weight.detach()


def test_zero_init_leaves_hidden_units_identical_after_training():
    """The symmetry problem: every hidden unit gets the same gradient, so they never become different."""
    weight = hidden_units_after_training("zeros")
    assert weight.abs().max().item() > 0, "the hidden layer did learn"
    assert torch.equal(weight, weight[0].expand_as(weight)), "but every unit learned the same thing"


def test_random_init_breaks_the_symmetry():
    weight = hidden_units_after_training("xavier_uniform")
    assert not torch.allclose(weight[0], weight[1])
