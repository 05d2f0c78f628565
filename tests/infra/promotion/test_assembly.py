"""Who owns staging and prod: the app (delivery disabled) or the delivery pipeline (enabled), never both."""

from __future__ import annotations

from collections import Counter

import pytest
from aws_cdk import App

from infra.assembly import DELIVERY_CONSTRUCT_ID, DELIVERY_DISABLED, DELIVERY_NOT_SELECTED, build_app
from infra.config import STAGE_NAMES, StageConfigError
from infra.promotion import DELIVERY_SUMMARY_METADATA
from infra.summary import delivery_summary


def test_delivery_disabled_leaves_every_stage_at_the_app_level(synthesized_app):
    assert DELIVERY_CONSTRUCT_ID not in synthesized_app.stacks
    assert not [name for name in synthesized_app.stacks if name.startswith(f"{DELIVERY_CONSTRUCT_ID}/")]
    assert {name.split("/")[0] for name in synthesized_app.stacks} == set(STAGE_NAMES)
    assert delivery_summary(list(synthesized_app.stacks.values())) == [DELIVERY_DISABLED]


def test_delivery_enabled_puts_staging_and_prod_under_the_pipeline_only(delivery_app):
    top_level = {name.split("/")[0] for name in delivery_app.stacks}
    assert top_level == {"dev", DELIVERY_CONSTRUCT_ID}
    delivered = {name.split("/")[1] for name in delivery_app.stacks if name.startswith(f"{DELIVERY_CONSTRUCT_ID}/")}
    assert delivered == {"staging", "prod"}


def test_no_stack_is_synthesized_twice(delivery_app):
    names = Counter(stack.stack_name for stack in delivery_app.stacks.values())
    assert [name for name, count in names.items() if count > 1] == []
    assert len(names) == 1 + 2 + 3 + 3  # delivery, dev (no serving), staging and prod


def test_a_selection_without_staging_and_prod_builds_no_pipeline_and_says_why(delivery_context):
    app = App(context={**delivery_context, "stage": "dev"})
    (dev,) = build_app(app)
    assert app.node.try_find_child(DELIVERY_CONSTRUCT_ID) is None
    recorded = [entry.data for entry in dev.foundation.node.metadata if entry.type == DELIVERY_SUMMARY_METADATA]
    assert recorded == [DELIVERY_NOT_SELECTED]


def test_a_selection_of_only_one_delivered_stage_is_refused(delivery_context):
    with pytest.raises(StageConfigError, match="select both or neither"):
        build_app(App(context={**delivery_context, "stage": "staging"}))
