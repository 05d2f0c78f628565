"""The table of inference modes that the serving stack composes."""

from __future__ import annotations

from infra.config import MODE_NAMES
from infra.serving.modes import SERVING_MODES


def test_every_configurable_mode_has_one_entry_in_config_order():
    """A mode added to the config serves nothing until it has an entry; the order is that of the dashboard rows,
    the outputs and the summary."""
    assert tuple(mode.section for mode in SERVING_MODES) == MODE_NAMES
