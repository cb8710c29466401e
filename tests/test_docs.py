"""The documentation stays true to the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from isk_defection.model.parameters import MECHANISMS, PARAMETERS

ROOT = Path(__file__).resolve().parents[1]


def load_updater():
    spec = importlib.util.spec_from_file_location("update_odd", ROOT / "docs" / "update_odd.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_odd_tables_match_the_parameter_registry():
    text = (ROOT / "docs" / "ODD.md").read_text()
    assert load_updater().render(text) == text, "run: python docs/update_odd.py"


def test_every_mechanism_switch_is_described_in_the_submodels():
    rules = (ROOT / "docs" / "ODD.md").read_text().split("## 8. Parameters")[0]
    for switch in MECHANISMS:
        assert f"`{switch}`" in rules, switch


def test_parameter_table_lists_every_parameter():
    table = (ROOT / "docs" / "ODD.md").read_text().split("<!-- parameters:start -->")[1]
    for name in PARAMETERS:
        assert f"| `{name}` |" in table, name
