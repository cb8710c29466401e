"""Regenerate the tables of docs/ODD.md from the parameter registry (run after changes)."""

from __future__ import annotations

import re
from pathlib import Path

from isk_defection.model.parameters import group_table, markdown_table

ODD = Path(__file__).with_name("ODD.md")
SECTIONS = {"groups": group_table, "parameters": markdown_table}


def render(text: str) -> str:
    """``text`` with every generated section replaced by its current contents."""
    for name, table in SECTIONS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        text = pattern.sub(lambda m, t=table: m.group(1) + t() + "\n" + m.group(2), text)
    return text


if __name__ == "__main__":
    ODD.write_text(render(ODD.read_text()))
    print(f"updated {ODD}")
