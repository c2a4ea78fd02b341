"""Process measurements shared by the benchmark scripts."""

from __future__ import annotations

from pathlib import Path


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def rss_mib(pid: int) -> float:
    return rss_kib(pid) / 1024
