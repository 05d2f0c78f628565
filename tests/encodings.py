"""Encodings for tests that need a model of numeric features without preprocessing data first."""

from __future__ import annotations

from training_code.features import NUMERIC, Column, Encoding


def numbers_only(feature_names: tuple[str, ...], label_column: str = "label") -> Encoding:
    """Every feature a number, taken as it is (mean 0, scale 1), none of them ever missing."""
    return Encoding(tuple(Column(name, NUMERIC) for name in feature_names), label_column)
