"""What a report section is made of (the interface every section module implements).

A `Section` declares

- ``needs``: a predicate on the `analysis.report_data.Report` — True when the run has the
  data the section is about. It is decided from the run's recorded configuration
  (analysis.traits: reconnects, cancels, a proxy, a ramp…) and from what was recorded,
  never from scenario names. ``needs_text`` says the same in words.
- ``blocks``: its content, in order — `Text` (Markdown prose), `Table` (a Markdown
  table), `Fig` (a figure file with its caption). Each block is a function of the report
  that returns its content, or None when it has nothing to show for this run.
- ``headline``: its one-line contribution to an executive summary (None: none).

The Markdown report, the notebook (one cell per section) and the HTML made from the
notebook are all rendered from `analysis.sections.SECTIONS` by `render_section`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.render import emit, emit_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from analysis.report_data import Report

__all__ = ["Block", "Fig", "Section", "Table", "Text", "always", "render_section"]


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


Block = Text | Table | Fig


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
        else:
            text = block.write(rep)
            if text:
                emit(rep, text)
    rep.sections.append(section.key)
    return True
