"""What every benchmark prints: the machine, and a Markdown table appended to a results file."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def emit(table: str, out: str | None) -> None:
    """Print ``table`` and, if ``out`` is given, append it to that file."""
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(table)
    print(table)
