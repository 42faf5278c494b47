"""Reading what the children reported: a server's Prometheus /metrics, Locust's summary."""

from __future__ import annotations

import contextlib
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → {sample: value}; a sample with labels is keyed
    ``name{k="v",...}`` (labels sorted). Unlabelled ``ssevsws_*`` samples also appear
    under a short alias without prefix and ``_total`` (``tokens_wasted``), the names
    analysis looks for."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                key = f"{sample.name}{{{labels}}}"
            else:
                key = sample.name
            out[key] = float(sample.value)
    aliases = {}
    for key, value in out.items():
        if key.startswith("ssevsws_") and "{" not in key:
            short = key.removeprefix("ssevsws_").removesuffix("_total")
            if short not in out:
                aliases[short] = value
    out.update(aliases)
    return out


def server_info(text: str) -> dict[str, str]:
    """Labels of the server's own ``*_server_info`` gauge: its configuration as it runs."""
    with contextlib.suppress(Exception):
        for family in text_string_to_metric_families(text):
            if family.name.endswith("server_info"):
                for sample in family.samples:
                    return dict(sample.labels)
    return {}


def locust_stream_count(log_path: Path) -> int | None:
    """Streams Locust itself counted: the `stream*` rows of the final summary table it
    prints (--only-summary). Not the --csv stats file: that one is written periodically
    and can miss the last seconds of a phase. None when no summary was printed."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return None
    total = None
    for line in text.splitlines():
        if line.startswith("Response time percentiles"):
            break  # the request table ends here; the percentile table repeats the names
        head = line.split("|", 1)[0].split()
        # "SSE      stream (cancelled)      80     0(0.00%)"
        if len(head) >= 4 and head[1].startswith("stream") and head[-2].isdigit():
            total = (total or 0) + int(head[-2])
    return total
