"""Run the thin notebooks headless (nbclient) and turn what they write into pages — `ssevsws report`
and `ssevsws compare` end here.

Parameters are injected by replacing the source of the cell tagged ``parameters`` (as
papermill does) with ``NAME = repr(value)`` lines. The kernel is this interpreter
(`sys.executable`), described by a kernelspec written to a temporary folder, so the
notebook sees exactly the packages of the environment that runs the command — not
whatever ``python3`` kernel a user has installed elsewhere. The kernel's working
directory is the repository root, so relative paths such as ``results/latest`` work.

The notebook writes report.md (and figures/, summary.json); ``report.html`` is that
Markdown as a static page (analysis.html): self-contained, figures inlined as data URLs,
no script and nothing fetched from elsewhere — what a reader sees, without the notebook's
code, prompts or notes.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis.html import write_page

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "ssevsws-python"
DEFAULT_TIMEOUT_S = 600


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class NotebookError(RuntimeError):
    """A notebook cell failed; the message carries the cell's error."""


def _read(name: str) -> Any:
    import nbformat

    path = NOTEBOOKS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"notebook not found: {path} (run from a clone of the repository)")
    return nbformat.read(path, as_version=4)


def inject_parameters(nb: Any, params: Mapping[str, Any]) -> Any:
    """Replace the ``parameters``-tagged cell's source with ``NAME = value`` lines.

    KeyError if the notebook has no such cell: a silent no-op would run the defaults.
    """
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            cell.source = "\n".join(f"{k} = {v!r}" for k, v in params.items())
            return nb
    raise KeyError("notebook has no cell tagged 'parameters'")


def _kernel_dir(tmp: Path) -> Path:
    kdir = tmp / "kernels" / KERNEL_NAME
    kdir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "sse-vs-ws (this environment)",
        "language": "python",
        "env": {"MPLBACKEND": "Agg"},
    }
    (kdir / "kernel.json").write_text(json.dumps(spec))
    return tmp / "kernels"


def execute(nb: Any, *, cwd: Path = REPO_ROOT, timeout: int = DEFAULT_TIMEOUT_S) -> Any:
    """Execute `nb` in a fresh child process (see `_execute_here`); returns the executed nb.

    Kernel management (jupyter_client's event-loop runner threads) breaks inside a
    process whose threading is gevent-patched (anything that imported locust) or that
    already runs an event loop; a child interpreter of our own has neither.
    """
    import subprocess

    import nbformat

    with tempfile.TemporaryDirectory(prefix="ssevsws-nb-") as tmp:
        src, dst = Path(tmp) / "in.ipynb", Path(tmp) / "out.ipynb"
        nbformat.write(nb, src)
        proc = subprocess.run(
            [sys.executable, "-m", "analysis.report_notebook", *map(str, (src, dst, cwd, timeout))],
            capture_output=True,
            text=True,
            cwd=str(REPO_ROOT),
            env={**os.environ, "PYTHONPATH": _pythonpath()},
            timeout=timeout + 120,
        )
        if proc.returncode == 3:
            raise NotebookError(proc.stderr.strip()[-3000:])
        if proc.returncode != 0:
            raise RuntimeError(f"notebook execution failed:\n{proc.stderr[-4000:]}")
        done = nbformat.read(dst, as_version=4)
    nb.cells, nb.metadata = done.cells, done.metadata  # callers rely on in-place execution
    return nb


def _pythonpath() -> str:
    return os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)


def _execute_here(nb: Any, *, cwd: Path = REPO_ROOT, timeout: int = DEFAULT_TIMEOUT_S) -> Any:
    """Execute `nb` in a kernel running this interpreter; NotebookError on a failing cell."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    with tempfile.TemporaryDirectory(prefix="ssevsws-kernel-") as tmp:
        ksm = KernelSpecManager(kernel_dirs=[str(_kernel_dir(Path(tmp)))])
        km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
        env_path = os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            kernel_name=KERNEL_NAME,
            resources={"metadata": {"path": str(cwd)}},
        )
        old = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = env_path  # the kernel inherits it: repo packages importable
        try:
            client.execute(cleanup_kc=True)  # we made km: shut its kernel down too
        except CellExecutionError as exc:
            raise NotebookError(_ANSI.sub("", str(exc))) from None
        finally:
            if old is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old
    return nb


#: Cells tagged so are for someone running the notebook, not for the exported report.
NOTEBOOK_ONLY = "notebook-only"


def report_notebook() -> Any:
    """notebooks/report.ipynb as generated from `analysis.sections.SECTIONS`: a note for
    whoever opens it, the parameters cell, a load cell, one cell per section, finish.
    ``python -m analysis.report_notebook --write-report-notebook`` stores it (a test checks
    the stored notebook is this one)."""
    import nbformat

    from analysis.sections import SECTIONS

    v4 = nbformat.v4
    intro = v4.new_markdown_cell(
        "# SSE vs WebSocket — run report\n\n"
        "One cell per report section (`analysis.sections.SECTIONS`, in order); a section "
        "whose data the run does not have shows nothing. Set `RUN` below (a run folder or "
        "`results/latest`) and run all cells; `ssevsws report RUN` runs it headless and "
        "writes `report.html`, `report.md`, `figures/` and `summary.json` into the run "
        "folder. Generated by `python -m analysis.report_notebook --write-report-notebook`: "
        "edit the sections, not this file.",
        metadata={"tags": [NOTEBOOK_ONLY]},
    )
    params = v4.new_code_cell(
        'RUN = "results/latest"\n'
        "OUT = None  # None: write report.md, figures/ and summary.json into the run folder\n"
        'PROFILE = "support-assistant-10k"\n'
        "N_BOOT = 1000",
        metadata={"tags": ["parameters"]},
    )
    load = v4.new_code_cell(
        "from analysis import report\n\nrep = report.load(RUN, OUT, profile=PROFILE, n_boot=N_BOOT)"
    )
    cells = [intro, params, load]
    cells += [v4.new_code_cell(f'report.show(rep, "{s.key}");') for s in SECTIONS]
    cells.append(v4.new_code_cell("report.finish(rep);"))
    # unique, stable ids: named by what the cell does (a section's by its key), so the
    # stored file changes only where SECTIONS does
    ids = ["intro", "parameters", "load", *(f"section-{s.key}" for s in SECTIONS), "finish"]
    for cell, cid in zip(cells, ids, strict=True):
        cell["id"] = cid
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write_report_notebook(path: Path | None = None) -> Path:
    import nbformat

    path = path or NOTEBOOKS_DIR / "report.ipynb"
    nbformat.write(report_notebook(), path)
    return path


def strip_outputs(nb: Any) -> Any:
    """Outputs and execution counts removed (how notebooks are stored in git)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    return nb


def build_report(
    run: str | Path,
    out: str | Path | None = None,
    *,
    profile: str | None = None,
    n_boot: int = 1000,
    timeout: int = DEFAULT_TIMEOUT_S,
) -> dict[str, Path]:
    """report.ipynb on `run` → ``report.html``, ``report.md``, ``figures/``,
    ``summary.json`` in `out` (default: the run folder). Returns the paths written."""
    from analysis.report import DEFAULT_PROFILE, resolve_run

    run_dir = resolve_run(run)
    out_dir = Path(out).resolve() if out is not None else run_dir
    nb = inject_parameters(
        _read("report.ipynb"),
        {
            "RUN": str(run_dir),
            "OUT": str(out_dir),
            "PROFILE": profile or DEFAULT_PROFILE,
            "N_BOOT": n_boot,
        },
    )
    execute(nb, timeout=timeout)
    md = out_dir / "report.md"
    if not md.is_file():
        raise NotebookError(f"the report notebook wrote no {md}")
    html = write_page(
        out_dir / "report.html",
        md.read_text(encoding="utf-8"),
        f"SSE vs WebSocket — {run_dir.name}",
        embed_images=True,
    )
    paths = {"report.html": html, "report.md": md}
    if (out_dir / "summary.json").is_file():
        paths["summary.json"] = out_dir / "summary.json"
    paths["figures"] = out_dir / "figures"
    return paths


def build_compare(
    run_a: str | Path,
    run_b: str | Path,
    out: str | Path | None = None,
    *,
    n_boot: int = 1000,
    timeout: int = DEFAULT_TIMEOUT_S,
) -> dict[str, Path]:
    """compare.ipynb on two runs → ``compare.html``, ``compare.md`` in `out` (default: run
    B's folder). SchemaMismatch (before any notebook runs) if one's schema version is not
    readable."""
    from analysis.load import check_readable
    from analysis.report import resolve_run
    from core.runfolder import read_manifest

    a, b = resolve_run(run_a), resolve_run(run_b)
    check_readable([read_manifest(a), read_manifest(b)])
    out_dir = Path(out).resolve() if out is not None else b
    nb = inject_parameters(
        _read("compare.ipynb"),
        {"RUN_A": str(a), "RUN_B": str(b), "OUT": str(out_dir), "N_BOOT": n_boot},
    )
    execute(nb, timeout=timeout)
    md = out_dir / "compare.md"
    if not md.is_file():
        raise NotebookError(f"the compare notebook wrote no {md}")
    title = f"Compare {a.name} vs {b.name}"
    html = write_page(
        out_dir / "compare.html", md.read_text(encoding="utf-8"), title, embed_images=True
    )
    return {"compare.html": html, "compare.md": md}


def _main(argv: list[str]) -> int:
    """Child side of execute(): `python -m analysis.report_notebook IN OUT CWD TIMEOUT`;
    ``--write-report-notebook`` regenerates notebooks/report.ipynb from the sections."""
    import nbformat

    if argv == ["--write-report-notebook"]:
        print(write_report_notebook())
        return 0
    src, dst, cwd, timeout = argv
    nb = nbformat.read(src, as_version=4)
    try:
        nb = _execute_here(nb, cwd=Path(cwd), timeout=int(timeout))
    except NotebookError as exc:
        print(str(exc).replace("\n", " | ")[-3000:], file=sys.stderr)
        return 3
    nbformat.write(nb, dst)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
