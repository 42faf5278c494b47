"""Run folders: create, describe, append records to and read back one run (results/README.md).

Layout of ``results/<UTC yyyymmddTHHMMSSZ>_<scenario>_<git7>/``::

    manifest.json            schema_version, status (incomplete | failed | complete), git, host, ...
    <table>/<writer>-<part:05d>.parquet   one file per flush per writer (tables of core.records)
    server_metrics.json, summary.json, ...  written with write_json

Crash safety is by construction rather than by recovery: every file is written to a
hidden temp name in its final directory and renamed into place, so a reader sees a
whole file or none; a record writer only ever adds new part files, so whatever it
flushed before being killed stays readable; the manifest says ``incomplete`` from
the moment the folder exists until the orchestrator calls `mark_complete` (every phase
ended well) or `mark_failed` (a phase failed, records were lost, a write failed);
``status_reason`` says why. A run folder holds a small reserve file (`reserve_space`)
that the orchestrator releases when the disk fills up, so the final status can still be
written.

Several processes (Locust workers, the orchestrator, the sampler) share one run
folder: each record writer needs its own ``writer_id`` (e.g. ``<role>-<pid>``), and
manifest read-modify-writes are serialised with ``fcntl.flock`` on ``.manifest.lock``.

Reading (`read_table`) uses pandas nullable dtypes: int64 columns become ``Int64``
(monotonic-ns stamps must not round-trip through float64 when a column has nulls),
bool columns ``boolean``, floats stay ``float64`` with NaN for null, strings get
pandas' default string dtype (``str`` in pandas 3, missing = NaN). Pass
``dtypes="numpy"`` (ints with nulls → float64) or ``"pyarrow"`` (ArrowDtype) instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.hostinfo import DEFAULT_PACKAGES, git_info, host_facts, package_versions
from core.records import SCHEMA_VERSION, TABLES

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX: no cross-process lock
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_PACKAGES",
    "MANIFEST",
    "STATUS_COMPLETE",
    "STATUS_FAILED",
    "STATUS_INCOMPLETE",
    "CorruptPartWarning",
    "RecordWriter",
    "Run",
    "SchemaMismatch",
    "check_schema",
    "create_run_dir",
    "git_info",
    "host_facts",
    "mark_complete",
    "mark_failed",
    "mark_incomplete",
    "modify_manifest",
    "package_versions",
    "part_files",
    "read_arrow",
    "read_manifest",
    "read_run",
    "read_table",
    "release_reserve",
    "reserve_space",
    "sanitize_name",
    "start_run",
    "to_pandas",
    "update_manifest",
    "write_json",
    "write_manifest",
]

MANIFEST = "manifest.json"
LATEST = "latest"
STATUS_INCOMPLETE = "incomplete"
STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"
_LOCK = ".manifest.lock"
_RESERVE = ".reserve"
#: Bytes kept free for the final manifest (a full suite's manifest is ~70 KB).
RESERVE_BYTES = 256 * 1024
_TIME_FMT = "%Y%m%dT%H%M%SZ"


class SchemaMismatch(ValueError):
    """Runs recorded with different record-schema versions cannot be compared."""


class CorruptPartWarning(UserWarning):
    """A parquet part file could not be read and was skipped."""


# --------------------------------------------------------------------------- names


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def sanitize_name(name: str, *, default: str = "run", max_len: int = 80) -> str:
    """Keep ``[A-Za-z0-9_.-]`` (other runs become ``-``); no leading/trailing ``.``/``-``,
    never empty."""
    safe = _UNSAFE.sub("-", str(name)).strip(".-")[:max_len].rstrip(".-")
    return safe or default


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:  # naive: taken as UTC already
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


# --------------------------------------------------------------------------- atomic files


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write to a hidden temp file beside `path`, then rename it over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        _fsync_dir(path.parent)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    item = getattr(obj, "item", None)  # numpy / pandas scalars
    if callable(item):
        return item()
    tolist = getattr(obj, "tolist", None)  # numpy arrays
    if callable(tolist):
        return tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _dumps(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n").encode()


def write_json(run_dir: Path | str, name: str, obj: Any) -> Path:
    """Atomically write `obj` as ``<run_dir>/<name>`` (e.g. server_metrics.json, summary.json)."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"bad file name {name!r}")
    path = Path(run_dir) / name
    _atomic_write_bytes(path, _dumps(obj))
    return path


# --------------------------------------------------------------------------- manifest


@contextlib.contextmanager
def _manifest_lock(run_dir: Path) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(run_dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _with_defaults(manifest: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(manifest)
    out.setdefault("schema_version", SCHEMA_VERSION)
    out.setdefault("status", STATUS_INCOMPLETE)
    return out


def read_manifest(run_dir: Path | str) -> dict[str, Any]:
    """The run's manifest (FileNotFoundError if the folder has none)."""
    with open(Path(run_dir) / MANIFEST, encoding="utf-8") as f:
        return json.load(f)


def write_manifest(run_dir: Path | str, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Replace the manifest atomically; fills in `schema_version` and `status` if absent."""
    run_dir = Path(run_dir)
    out = _with_defaults(manifest)
    with _manifest_lock(run_dir):
        _atomic_write_bytes(run_dir / MANIFEST, _dumps(out))
    return out


def modify_manifest(
    run_dir: Path | str, fn: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> dict[str, Any]:
    """Read-modify-write under the cross-process lock. `fn` mutates the dict in place
    (or returns a new one); use it to merge into nested values such as a list of phases."""
    run_dir = Path(run_dir)
    with _manifest_lock(run_dir):
        try:
            current = read_manifest(run_dir)
        except FileNotFoundError:
            current = {}
        result = fn(current)
        out = _with_defaults(current if result is None else result)
        _atomic_write_bytes(run_dir / MANIFEST, _dumps(out))
    return out


def update_manifest(
    run_dir: Path | str, changes: Mapping[str, Any] | None = None, /, **kw: Any
) -> dict[str, Any]:
    """Set top-level keys (from `changes` and/or keywords) atomically; returns the result."""
    merged = {**(changes or {}), **kw}

    def apply(m: dict[str, Any]) -> None:
        m.update(merged)

    return modify_manifest(run_dir, apply)


def _mark(run_dir: Path | str, status: str, reason: str | None) -> dict[str, Any]:
    def apply(m: dict[str, Any]) -> None:
        m["status"] = status
        m["status_reason"] = reason
        if status == STATUS_COMPLETE:
            m["completed_utc"] = datetime.now(UTC).isoformat()
            m.pop("incomplete_reason", None)
        else:
            m["incomplete_reason"] = reason  # the field readers before `failed` know

    return modify_manifest(run_dir, apply)


def mark_complete(run_dir: Path | str) -> dict[str, Any]:
    """Only the orchestrator calls this, once every phase ended well and every file is
    written."""
    return _mark(run_dir, STATUS_COMPLETE, None)


def mark_incomplete(run_dir: Path | str, reason: str) -> dict[str, Any]:
    """The run stopped before its end (Ctrl-C, SIGTERM); what was flushed is readable."""
    return _mark(run_dir, STATUS_INCOMPLETE, reason)


def mark_failed(run_dir: Path | str, reason: str) -> dict[str, Any]:
    """A phase failed, records were lost or a write failed: the run's numbers are not
    to be trusted as a whole (`reason` says which)."""
    return _mark(run_dir, STATUS_FAILED, reason)


def reserve_space(run_dir: Path | str, nbytes: int = RESERVE_BYTES) -> bool:
    """Claim `nbytes` of disk in the run folder (a hidden file of zeros), for
    `release_reserve` to give back when a write fails for lack of space. False if even
    that much is not free (the run can still start; it just has no reserve)."""
    path = Path(run_dir) / _RESERVE
    try:
        with open(path, "wb") as f:
            f.write(b"\0" * nbytes)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
        return False
    return True


def release_reserve(run_dir: Path | str) -> bool:
    """Free the reserve (True if there was one): room for the final manifest."""
    try:
        (Path(run_dir) / _RESERVE).unlink()
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- run folder


def _update_latest(results_root: Path, target_name: str) -> None:
    """Point ``results/latest`` at `target_name` (relative) via temp symlink + rename."""
    latest = results_root / LATEST
    if latest.exists() and not latest.is_symlink():
        warnings.warn(f"{latest} is not a symlink; left alone", stacklevel=3)
        return
    for attempt in range(100):
        tmp = results_root / f".{LATEST}.{os.getpid()}.{attempt}.tmp"
        try:
            os.symlink(target_name, tmp)
        except FileExistsError:
            continue
        try:
            os.replace(tmp, latest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return


def create_run_dir(
    results_root: Path | str,
    scenario: str,
    *,
    git_sha7: str | None = None,
    now: datetime | None = None,
) -> Path:
    """Make a fresh run folder (never an existing one: ``-2``, ``-3`` ... on collision),
    write an initial ``incomplete`` manifest in it and point ``results/latest`` at it.

    `git_sha7` None is spelled ``nogit`` in the name.
    """
    root = Path(results_root)
    root.mkdir(parents=True, exist_ok=True)
    when = _utc(now)
    sha = sanitize_name(git_sha7, default="nogit") if git_sha7 else "nogit"
    base = f"{when.strftime(_TIME_FMT)}_{sanitize_name(scenario, default='scenario')}_{sha}"
    n = 1
    while True:
        name = base if n == 1 else f"{base}-{n}"
        path = root / name
        try:
            os.mkdir(path)  # atomic claim: fails if another process got there first
            break
        except FileExistsError:
            n += 1
    write_manifest(
        path,
        {
            "schema_version": SCHEMA_VERSION,
            "status": STATUS_INCOMPLETE,
            "status_reason": "running",
            "incomplete_reason": "running",
            "run_id": name,
            "scenario_name": scenario,
            "created_utc": when.isoformat(),
            "git_sha7": git_sha7,
        },
    )
    _update_latest(root, name)
    return path


def start_run(
    results_root: Path | str,
    scenario: str,
    *,
    repo_dir: Path | str | None = None,
    manifest: Mapping[str, Any] | None = None,
    packages: Iterable[str] = DEFAULT_PACKAGES,
    now: datetime | None = None,
) -> Path:
    """`create_run_dir` plus the descriptive manifest: git, host facts, package versions,
    and whatever the caller adds (resolved scenario, seeds, arms, phases...)."""
    git = git_info(repo_dir) if repo_dir is not None else {"sha": None, "sha7": None, "dirty": None}
    run_dir = create_run_dir(results_root, scenario, git_sha7=git["sha7"], now=now)
    update_manifest(
        run_dir,
        {
            "git": git,
            "host": host_facts(),
            "packages": package_versions(packages),
            **(manifest or {}),
        },
    )
    return run_dir


# --------------------------------------------------------------------------- writing records


_PART_RE = re.compile(r"^(?P<writer>.+)-(?P<part>\d{5,})\.parquet$")


class RecordWriter:
    """Buffers rows of one table and writes each flush as a new parquet part file.

    Flushes happen on `flush_rows` buffered rows or when `flush_seconds` have passed since
    the last flush — both checked on append (no threads; call `poll()` from a timer if rows
    may stop arriving). A flush blocks the caller for the parquet encode + write (a few ms
    for 5,000 rows), which is why it is batched.

    Rows are dicts keyed by column name (missing → null; unknown keys raise KeyError);
    `append_columns` takes a dict of equal-length lists (not copied: don't mutate them
    after). Types are checked by pyarrow at flush; a batch that fails to convert is
    dropped (counted in `rows_dropped`) and the error re-raised, so one bad row cannot
    block every later flush.

    Parts are renamed into place without ever replacing an existing file, so a re-used
    `writer_id` continues numbering instead of overwriting. `fsync=True` also survives
    power loss; a killed process loses only the unflushed buffer either way.
    """

    def __init__(
        self,
        run_dir: Path | str,
        table: str,
        writer_id: str,
        *,
        flush_rows: int = 5000,
        flush_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        fsync: bool = False,
        compression: str = "snappy",
    ) -> None:
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}; known: {sorted(TABLES)}")
        if flush_rows < 1:
            raise ValueError("flush_rows must be >= 1")
        self.table = table
        self.schema: pa.Schema = TABLES[table]
        self.writer_id = sanitize_name(writer_id, default="writer")
        self.dir = Path(run_dir) / table
        self.dir.mkdir(parents=True, exist_ok=True)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._fsync = fsync
        self._compression = compression
        self._names = tuple(self.schema.names)
        self._nameset = frozenset(self._names)
        self._rows: list[Mapping[str, Any]] = []
        self._pieces: list[Any] = []  # row lists and column dicts, in arrival order
        self._n = 0  # buffered rows
        self._last_flush = clock()
        self._part = self._next_part()
        self._closed = False
        self.rows_written = 0
        self.rows_dropped = 0
        self.parts: list[Path] = []

    def _next_part(self) -> int:
        highest = -1
        for p in self.dir.iterdir():
            m = _PART_RE.match(p.name)
            if m and m["writer"] == self.writer_id:
                highest = max(highest, int(m["part"]))
        return highest + 1

    # -- appending

    def append(self, row: Mapping[str, Any]) -> None:
        if self._closed:
            raise ValueError("RecordWriter is closed")
        if not self._nameset.issuperset(row):
            raise KeyError(f"{self.table}: unknown columns {sorted(set(row) - self._nameset)}")
        self._rows.append(row)
        self._n += 1
        if self._n >= self.flush_rows or self._clock() - self._last_flush >= self.flush_seconds:
            self.flush()

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.append(row)

    def append_columns(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """Columnar fast path (e.g. `StreamAccount.tokens_columns()`)."""
        if self._closed:
            raise ValueError("RecordWriter is closed")
        if not self._nameset.issuperset(columns):
            raise KeyError(f"{self.table}: unknown columns {sorted(set(columns) - self._nameset)}")
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"{self.table}: columns of different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        if n == 0:
            return
        if self._rows:
            self._pieces.append(self._rows)
            self._rows = []
        self._pieces.append(dict(columns))
        self._n += n
        if self._n >= self.flush_rows or self._clock() - self._last_flush >= self.flush_seconds:
            self.flush()

    def poll(self) -> bool:
        """Flush if `flush_seconds` have passed with rows buffered; True if it flushed."""
        if self._n and self._clock() - self._last_flush >= self.flush_seconds:
            self.flush()
            return True
        return False

    @property
    def buffered(self) -> int:
        return self._n

    # -- flushing

    def _to_arrow(self, pieces: list[Any]) -> pa.Table:
        tables = []
        for piece in pieces:
            if isinstance(piece, list):
                tables.append(pa.Table.from_pylist(piece, schema=self.schema))
            else:
                n = len(next(iter(piece.values())))
                cols = {name: piece.get(name, [None] * n) for name in self._names}
                tables.append(pa.Table.from_pydict(cols, schema=self.schema))
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    def flush(self) -> Path | None:
        """Write buffered rows as the next part file; returns its path (None if empty)."""
        self._last_flush = self._clock()
        if not self._n:
            return None
        pieces = self._pieces
        if self._rows:
            pieces.append(self._rows)
        n = self._n
        self._pieces, self._rows, self._n = [], [], 0
        try:
            table = self._to_arrow(pieces)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            self.rows_dropped += n
            exc.add_note(f"RecordWriter({self.table}, {self.writer_id}): {n} rows dropped")
            raise
        try:
            path = self._write_part(table)
        except OSError as exc:  # a full disk, a read-only folder: the batch is not on disk
            self.rows_dropped += n
            exc.add_note(f"RecordWriter({self.table}, {self.writer_id}): {n} rows dropped")
            raise
        self.rows_written += n
        self.parts.append(path)
        return path

    def _write_part(self, table: pa.Table) -> Path:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{self.writer_id}.", suffix=".tmp")
        os.close(fd)
        try:
            pq.write_table(table, tmp, compression=self._compression)
            if self._fsync:
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.chmod(tmp, 0o644)
            while True:
                path = self.dir / f"{self.writer_id}-{self._part:05d}.parquet"
                self._part += 1
                try:
                    os.link(tmp, path)  # atomic and never replaces an existing part
                except FileExistsError:
                    continue
                except OSError:  # filesystem without hard links
                    if path.exists():
                        continue
                    os.replace(tmp, path)
                break
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if self._fsync:
            _fsync_dir(self.dir)
        return path

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True

    def abandon(self) -> int:
        """Close without writing what is buffered (after a failed write); returns the rows
        dropped, which are counted in `rows_dropped`."""
        n = self._n
        self.rows_dropped += n
        self._pieces, self._rows, self._n = [], [], 0
        self._closed = True
        return n

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # flush even on error: the rows before the failure are still good


# --------------------------------------------------------------------------- reading records


Dtypes = Literal["nullable", "numpy", "pyarrow"]

_NULLABLE = {
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Missing columns (parts from an older writer) → nulls; extra columns dropped."""
    cols = []
    for f in schema:
        if f.name in table.column_names:
            cols.append(table.column(f.name).cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def part_files(run_dir: Path | str, table: str) -> list[Path]:
    """The table's finished part files, sorted (temp files start with '.' and are skipped)."""
    d = Path(run_dir) / table
    if not d.is_dir():
        return []
    return sorted(
        p for p in d.iterdir() if p.suffix == ".parquet" and not p.name.startswith((".", "_"))
    )


def read_arrow(
    run_dir: Path | str,
    table: str,
    *,
    columns: Sequence[str] | None = None,
    unreadable: list[dict[str, str]] | None = None,
) -> pa.Table:
    """All parts of `table` as one arrow table with the current schema (possibly 0 rows).

    A part that cannot be read (truncated, corrupt) is skipped with a CorruptPartWarning
    and, when `unreadable` is given, appended to it as ``{"table", "part" (relative to the
    run folder), "error"}`` — so a report can say which records it could not read.
    """
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; known: {sorted(TABLES)}")
    schema = TABLES[table]
    if columns is not None:
        unknown = set(columns) - set(schema.names)
        if unknown:
            raise KeyError(f"{table}: unknown columns {sorted(unknown)}")
        schema = pa.schema([schema.field(c) for c in columns])
    parts = []
    for path in part_files(run_dir, table):
        try:
            pf = pq.ParquetFile(path)
            present = set(pf.schema_arrow.names)
            t = pf.read(columns=[n for n in schema.names if n in present])
        except (pa.ArrowException, OSError) as exc:
            warnings.warn(
                f"skipping unreadable part {path}: {exc}", CorruptPartWarning, stacklevel=2
            )
            if unreadable is not None:
                part = f"{table}/{path.name}"
                unreadable.append({"table": table, "part": part, "error": str(exc)[:300]})
            continue
        parts.append(_conform(t, schema))
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts)


def to_pandas(table: pa.Table, dtypes: Dtypes = "nullable") -> pd.DataFrame:
    if dtypes == "nullable":
        return table.to_pandas(types_mapper=_NULLABLE.get)
    if dtypes == "pyarrow":
        return table.to_pandas(types_mapper=pd.ArrowDtype)
    if dtypes == "numpy":
        return table.to_pandas()
    raise ValueError(f"dtypes must be nullable, numpy or pyarrow, not {dtypes!r}")


def read_table(
    run_dir: Path | str,
    table: str,
    *,
    columns: Sequence[str] | None = None,
    dtypes: Dtypes = "nullable",
    unreadable: list[dict[str, str]] | None = None,
) -> pd.DataFrame:
    """All parts of `table` concatenated; an empty frame with the schema's columns if none.
    `unreadable`: see `read_arrow`."""
    return to_pandas(read_arrow(run_dir, table, columns=columns, unreadable=unreadable), dtypes)


@dataclass
class Run:
    """One run folder: its manifest, and its tables loaded on first access."""

    path: Path
    manifest: dict[str, Any]
    dtypes: Dtypes = "nullable"
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    #: Part files skipped as unreadable by the tables read so far (see `read_arrow`).
    unreadable: list[dict[str, str]] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id") or self.path.name)

    @property
    def status(self) -> str | None:
        return self.manifest.get("status")

    @property
    def complete(self) -> bool:
        return self.status == STATUS_COMPLETE

    @property
    def schema_version(self) -> int | None:
        return self.manifest.get("schema_version")

    def table(self, name: str) -> pd.DataFrame:
        if name not in self._cache:
            self._cache[name] = read_table(
                self.path, name, dtypes=self.dtypes, unreadable=self.unreadable
            )
        return self._cache[name]

    @cached_property
    def streams(self) -> pd.DataFrame:
        return self.table("streams")

    @cached_property
    def tokens(self) -> pd.DataFrame:
        return self.table("tokens")

    @cached_property
    def connections(self) -> pd.DataFrame:
        return self.table("connections")

    @cached_property
    def resources(self) -> pd.DataFrame:
        return self.table("resources")

    def json(self, name: str) -> Any:
        """A JSON side file (server_metrics.json, summary.json); None if absent."""
        try:
            with open(self.path / name, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None


def read_run(run_dir: Path | str, *, dtypes: Dtypes = "nullable") -> Run:
    """Open a run folder (``results/latest`` works too: the symlink is resolved)."""
    path = Path(run_dir).resolve()
    return Run(path=path, manifest=read_manifest(path), dtypes=dtypes)


def check_schema(
    manifests: Iterable[Mapping[str, Any] | Run], *, expected: int | None = None
) -> int | None:
    """The schema version shared by all runs; SchemaMismatch if they differ (or differ from
    `expected`, e.g. core.records.SCHEMA_VERSION). None for an empty input."""
    seen: dict[Any, list[str]] = {}
    for i, m in enumerate(manifests):
        if isinstance(m, Run):
            label, version = m.run_id, m.schema_version
        else:
            label, version = str(m.get("run_id", f"#{i}")), m.get("schema_version")
        seen.setdefault(version, []).append(label)
    if expected is not None and seen and set(seen) != {expected}:
        detail = "; ".join(f"v{v}: {', '.join(r)}" for v, r in seen.items())
        raise SchemaMismatch(
            f"runs recorded with schema version(s) other than {expected}: {detail}. "
            "Re-run or convert them; analysis does not mix schema versions."
        )
    if len(seen) > 1:
        detail = "; ".join(f"v{v}: {', '.join(r)}" for v, r in seen.items())
        raise SchemaMismatch(
            f"runs have different record schema versions ({detail}); "
            "analysis does not mix schema versions."
        )
    return next(iter(seen)) if seen else None
