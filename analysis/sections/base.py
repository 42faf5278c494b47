"""What a report section is made of (the interface every section module implements).

A `Section` declares

- ``needs``: a predicate on the `analysis.report_data.Report` — True when the run has the
  data the section is about. It is decided from the run's recorded configuration
  (analysis.traits: reconnects, cancels, a proxy, a ramp…) and from what was recorded,
  never from scenario names. ``needs_text`` says the same in words.
- ``blocks``: its content, in order — `Text` (Markdown prose), `Table` (a Markdown
  table), `Fig` (a figure file with its caption), `Items` (a run-dependent list of
  tables / figures / texts, e.g. one per platform pairing). Each block is a function of the
  report that returns its content, or None / nothing when it has nothing for this run.
- ``headline``: its one-line contribution to an executive summary (None: none).

The Markdown report, the notebook (one cell per section) and the HTML made from the
notebook are all rendered from `analysis.sections.SECTIONS` by `render_section`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from analysis.render import emit, emit_figure
from analysis.tables import md_table

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from analysis.report_data import Report

__all__ = [
    "Block",
    "Fig",
    "Item",
    "Items",
    "Section",
    "Table",
    "Text",
    "always",
    "render_item",
    "render_section",
]


@dataclass(frozen=True)
class Text:
    """Markdown prose (a heading of a sub-part, a paragraph, a list)."""

    write: Callable[[Report], str | None]


@dataclass(frozen=True)
class Table:
    """A Markdown table (with its lead-in / notes, if any) named ``name``."""

    name: str
    write: Callable[[Report], str | None]


@dataclass(frozen=True)
class Fig:
    """A figure written as ``figures/<name>.png``; ``caption`` (what to read in it) goes
    under it in the Markdown and the notebook."""

    name: str
    draw: Callable[[Report], Figure | None]
    caption: str = ""


class Item(Protocol):
    """One produced piece of an `Items` block: ``kind`` "text" | "table" | "figure",
    ``value`` Markdown / a DataFrame or Markdown table / a matplotlib figure."""

    name: str
    title: str
    kind: str
    value: Any
    caption: str


@dataclass(frozen=True)
class Items:
    """A list of items decided when the report is built (how many tables and figures
    depends on the run); figures are written as ``figures/<item.name>.png``."""

    name: str
    produce: Callable[[Report], Iterable[Item]]


Block = Text | Table | Fig | Items


def always(_: Report) -> bool:
    return True


def _no_headline(_: Report) -> str | None:
    return None


@dataclass(frozen=True)
class Section:
    key: str  # stable id: notebook cells and tests name sections by it
    title: str  # its "## title" ("" = no heading)
    needs: Callable[[Report], bool]
    needs_text: str
    blocks: tuple[Block, ...] = ()
    headline: Callable[[Report], str | None] = _no_headline

    @property
    def figures(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.blocks if isinstance(b, Fig))

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.blocks if isinstance(b, Table))


def render_section(rep: Report, section: Section) -> bool:
    """Write ``section`` into the report (and the notebook cell) if the run has what it
    needs; True when it was written."""
    if not section.needs(rep):
        return False
    if section.title:
        emit(rep, f"## {section.title}")
    for block in section.blocks:
        if isinstance(block, Fig):
            fig = block.draw(rep)
            if fig is not None:
                emit_figure(rep, block.name, fig, block.caption)
        elif isinstance(block, Items):
            for item in block.produce(rep):
                render_item(rep, item)
        else:
            text = block.write(rep)
            if text:
                emit(rep, text)
    rep.sections.append(section.key)
    return True


def render_item(rep: Report, item: Item) -> None:
    """One `Items` piece: its title (### when given), its value, its caption."""
    if item.title:
        emit(rep, f"### {item.title}")
    if item.kind == "figure":
        emit_figure(rep, item.name, item.value, item.caption)
        return
    value = item.value
    if item.kind == "table" and hasattr(value, "columns"):  # a DataFrame
        value = md_table(list(value.columns), value.astype(object).values.tolist())
    emit(rep, str(value) + (f"\n\n*{item.caption}*" if item.caption else ""))
