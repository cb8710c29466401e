"""The status card: where the run stands this week, in words and numbers.

Figures come from ``model.stats`` (this week's aggregates), so the card costs nothing
to compute and always agrees with the charts.
"""

from __future__ import annotations

import solara
from mesa.visualization.utils import update_counter

from model import DefectionModel
from model.groups import GROUP_NAMES
from viz.style import SHORT_LABELS


def status_lines(model: DefectionModel) -> dict[str, str]:
    """The card's entries, label -> text, for the model's current week."""
    stats = model.stats
    weekly = {name: stats[f"{name}_defections"] for name in GROUP_NAMES}
    largest = max(weekly, key=weekly.__getitem__)
    cumulative = stats["cumulative_defections"]
    return {
        "Week": f"{model.week}",
        "Date": f"{model.date:%d %b %Y}",
        "IS-K members": (
            f"{stats['isk_strength']:,.0f} people "
            f"({_count(stats['isk_members'], 'agent')}, {_count(stats['isk_recruiters'], 'recruiter')})"
        ),
        "Defections so far": f"{_count(cumulative, 'agent')} ≈ {cumulative * model.scale:,.0f} people",
        "Largest defecting group this week": (
            f"{SHORT_LABELS[largest]} ({weekly[largest]})" if weekly[largest] else "none"
        ),
    }


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


@solara.component
def StatusCard(model: DefectionModel) -> None:
    """The current week's status of ``model``, refreshed on every frame (Mesa's update counter)."""
    update_counter.get()
    with solara.Card(margin=0), solara.Row(gap="28px", style={"flex-wrap": "wrap"}):
        for label, text in status_lines(model).items():
            css = "status-" + label.split()[0].lower().replace("-", "")
            with solara.Column(gap="0px", classes=[css]):
                solara.Text(label, style={"font-size": "12px", "color": "#666"})
                solara.Text(text, style={"font-size": "18px", "font-weight": "600"})
        solara.Text(
            f"scenario {model.preset} · seed {model.seed} · {model.population.n:,} agents, "
            f"1 agent ≈ {model.scale:,.0f} people",
            style={"font-size": "12px", "color": "#666", "align-self": "flex-end"},
        )
