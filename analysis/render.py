"""Where report text and figures go: the Markdown being built (``report.md``), the PNG
files under ``figures/``, and — inside a notebook — the cell's outputs, so the notebook,
its HTML export and report.md show the same numbers.

Anything with ``md`` (a list of Markdown blocks), ``figures`` (names written) and
``out_dir`` (where ``figures/`` goes, None: nowhere) can receive output: the run report,
the comparison, the cost explorer.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from matplotlib.figure import Figure

__all__ = [
    "FIG_DPI",
    "Sink",
    "emit",
    "emit_figure",
    "in_notebook",
    "png",
    "show_md",
    "titled",
    "write_markdown",
]

FIG_DPI = 110


class Sink(Protocol):
    md: list[str]
    figures: list[str]
    out_dir: Path | None


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def show_md(text: str) -> None:
    """Display Markdown in the notebook (nothing outside one)."""
    if in_notebook():
        from IPython.display import Markdown, display

        display(Markdown(text))


def emit(rep: Sink, text: str) -> None:
    """Add a Markdown block to the report and show it in the notebook."""
    rep.md.append(text.rstrip() + "\n")
    show_md(text)


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIG_DPI)
    try:  # cost_plots draws with pyplot: release its global figure
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # pragma: no cover - pyplot unavailable
        pass
    return buf.getvalue()


def emit_figure(rep: Sink, name: str, fig: Figure, caption: str = "") -> bytes:
    """Save ``figures/<name>.png``, link it from the Markdown (caption in italics under
    it), show it in the notebook."""
    data = png(fig)
    if rep.out_dir is not None:
        fdir = rep.out_dir / "figures"
        fdir.mkdir(parents=True, exist_ok=True)
        (fdir / f"{name}.png").write_bytes(data)
    rep.figures.append(name)
    alt = name.replace("_", " ")  # the caption goes under the figure, said once
    rep.md.append(f"![{alt}](figures/{name}.png)\n" + (f"\n*{caption}*\n" if caption else ""))
    if in_notebook():
        from IPython.display import Image, Markdown, display

        display(Image(data=data, format="png", metadata={"name": name}))
        if caption:
            display(Markdown(f"*{caption}*"))
    return data


def write_markdown(rep: Sink, name: str) -> Path | None:
    """Write what was emitted as ``<out_dir>/<name>`` (None without an output folder)."""
    if rep.out_dir is None:
        return None
    rep.out_dir.mkdir(parents=True, exist_ok=True)
    path = rep.out_dir / name
    path.write_text("\n".join(rep.md), encoding="utf-8")
    return path


def titled(fig: Figure, suffix: str) -> Figure:
    """Append ``suffix`` (e.g. the scenario) to the figure's title."""
    if fig.axes and suffix:
        ax = fig.axes[0]
        t = ax.get_title()
        sup = fig.get_suptitle()
        if sup:  # two-panel figures carry the title above
            fig.suptitle(f"{sup} — {suffix}")
        elif t:
            ax.set_title(f"{t} — {suffix}")
    return fig
