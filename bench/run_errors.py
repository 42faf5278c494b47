"""Exit codes and the two exceptions that stop a run (bench.run): a signal, and a run
folder that cannot be written (a full disk is reported in one line, not a traceback)."""

from __future__ import annotations

import errno
import re

EXIT_FAILED = 1
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
#: errno values that mean "the run folder cannot be written" (not a bug: say it in a line)
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}
#: The line the locustfile writes when a record writer failed (its error after the colon).
WRITER_FAILED_LINE = re.compile(r"ssevsws: record writer \S+ failed, stopping the phase: (.*)")


class Terminated(BaseException):
    """SIGTERM arrived (raised in the main thread by the signal handler)."""


class WriteFailed(Exception):
    """A record writer or the runner itself could not write the run folder (a full disk):
    the run stops at once, keeping what was flushed."""


def is_write_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS
