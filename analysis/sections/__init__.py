"""The run report as a list of sections (`SECTIONS`), in the order the report shows them.

Each entry is an `analysis.sections.base.Section`: what data it needs (a predicate on the
report, decided from the run's recorded configuration and records — never from scenario
names), its blocks (text, tables, figures with a caption slot) and its one-line
executive-summary contribution. The Markdown report, the notebook (one cell per section)
and the HTML exported from the notebook are all rendered from this list
(analysis.report). To add a section: write its module here, add it to `SECTIONS`
(docs/architecture.md, "Add a report section").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.sections.agent import CHAINS
from analysis.sections.base import Block, Fig, Item, Items, Section, Table, Text, render_section
from analysis.sections.browser import BROWSER
from analysis.sections.claims import CLAIMS
from analysis.sections.cost import COST
from analysis.sections.faults import CANCEL, RECONNECT
from analysis.sections.latency import LATENCY, RAMP, RESOURCES
from analysis.sections.network import NETWORK
from analysis.sections.proxy import PROXY_BUFFERING, PROXY_IDLE
from analysis.sections.run import HEADLINE, RUN, STATUS, TITLE
from analysis.sections.summary import METHODS, SUMMARY
from analysis.sections.wire import WIRE

if TYPE_CHECKING:  # pragma: no cover
    from analysis.report_data import Report

__all__ = [
    "SECTIONS",
    "Block",
    "Fig",
    "Item",
    "Items",
    "Section",
    "Table",
    "Text",
    "applicable",
    "executive_summary",
    "figure_names",
    "render_section",
    "section",
]

SECTIONS: tuple[Section, ...] = (
    TITLE,
    SUMMARY,
    STATUS,
    RUN,
    HEADLINE,
    LATENCY,
    RAMP,
    RESOURCES,
    RECONNECT,
    CANCEL,
    BROWSER,
    NETWORK,
    PROXY_BUFFERING,
    PROXY_IDLE,
    CHAINS,
    WIRE,
    COST,
    CLAIMS,
    METHODS,
)

_BY_KEY = {s.key: s for s in SECTIONS}


def section(key: str) -> Section:
    """The section named ``key`` (KeyError listing the known keys)."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no report section {key!r} (known: {', '.join(_BY_KEY)})") from None


def applicable(rep: Report) -> list[Section]:
    """The sections this run has the data for, in report order."""
    return [s for s in SECTIONS if s.needs(rep)]


def figure_names(sections: tuple[Section, ...] | list[Section] = SECTIONS) -> list[str]:
    """Every figure file the given sections may write."""
    return [name for s in sections for name in s.figures]


def executive_summary(rep: Report) -> list[str]:
    """The one-line contributions of the applicable sections, in report order (for an
    executive summary at the top of a publishable report)."""
    lines = []
    for s in applicable(rep):
        line = s.headline(rep)
        if line:
            lines.append(line)
    return lines
