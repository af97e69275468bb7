"""One report format for every bench: progress lines on stderr as it goes; at the end, on stdout, a
title, a header (the server, the machine and its load average, the command that reproduces the
figures, the code measured), then one labelled line per figure with its target's verdict; the exit
code from the targets (0 all met, 1 one missed, 2 the bench could not run)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from . import ROOT

MET, MISSED, COULD_NOT_RUN = 0, 1, 2


def say(message: str) -> None:
    """A progress line on stderr, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fail(message: str) -> int:
    """The bench could not run: the reason on stderr, and its exit code."""
    print(f"bench: {message}", file=sys.stderr)
    return COULD_NOT_RUN


def load1() -> float:
    """The 1-minute load average now."""
    return os.getloadavg()[0]


def machine() -> str:
    """The CPUs (count and model), the memory, the kernel and the Python that ran the bench."""
    model = "unknown CPU"
    try:
        for entry in Path("/proc/cpuinfo").read_text().splitlines():
            if entry.startswith("model name"):
                model = entry.split(":", 1)[1].strip()
                break
        mem_kib = int(next(x for x in Path("/proc/meminfo").read_text().splitlines()
                           if x.startswith("MemTotal")).split()[1])
        mem = f"{mem_kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        mem = "unknown RAM"
    return (f"{os.cpu_count()} CPUs ({model}), {mem}, {platform.system()} {platform.release()},"
            f" Python {platform.python_version()}")


def code_version(root=ROOT) -> str:
    """The commit the migration code comes from, and which files under app/ or alembic/ differ from it."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "app", "alembic"],
                               capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    paths = [line[3:] for line in dirty.splitlines() if line.strip()]
    if not paths:
        return f"commit {commit}"
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return f"commit {commit} with uncommitted changes in {shown}"


def verdict(ok: bool) -> str:
    """A figure against its target."""
    return "met" if ok else "MISSED"


def exit_code(missed) -> int:
    """MET when nothing was missed (an empty list, or False), else MISSED."""
    return MISSED if missed else MET


def line(label: str, text: str) -> str:
    """One labelled line of a report."""
    return f"  {label:<13}{text}"


def header(title: str, server: str, load: str, command: str, code: str | None = None) -> list[str]:
    """The lines every report opens with; `load` says when the load average was read."""
    return [title, line("server", server), line("machine", f"{machine()}; {load}"), line("command", command),
            line("code", code if code is not None else code_version())]
