"""Child processes timed by wall clock (start-up included), with their own peak RSS, the load
average when they started and the tail of their log; the median of several runs."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from . import ROOT
from .report import load1

T = TypeVar("T")


@dataclass
class Timed:
    seconds: float
    load: float          # the 1-minute load average just before the command
    exit_code: int
    tail: list[str]      # the last lines of its log
    peak_rss_kib: int    # the child's own peak resident set
    cpu_seconds: float   # the child's own user + system CPU time


def timed(cmd: Sequence[str], env: dict[str, str], log: Path, ok: tuple[int, ...] = (0,), tail: int = 15,
          what: str | None = None, watch: Callable[[int], object] | None = None) -> Timed:
    """`cmd` run from the checkout's root with its output in `log`; RuntimeError (with the log's
    tail) when it exits with a code not in `ok`. `watch(pid)`, when given, is called with the
    child's pid as soon as it is started (a sampler that follows it)."""
    load = load1()
    with open(log, "w") as out:
        started = time.perf_counter()
        child = subprocess.Popen(list(cmd), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        if watch is not None:
            watch(child.pid)
        # wait4 reports the resource use of this child alone: its own peak resident set.
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    child.returncode = code = os.waitstatus_to_exitcode(status)
    lines = log.read_text(errors="replace").splitlines()[-tail:]
    if code not in ok:
        shown = what or " ".join(cmd[2:])
        raise RuntimeError(f"{shown} exited with {code}:\n  " + "\n  ".join(lines))
    return Timed(seconds, load, code, lines, usage.ru_maxrss, usage.ru_utime + usage.ru_stime)


def median(runs: list[T], key: Callable[[T], float] = lambda t: t.seconds) -> T:
    """The median run by `key` (of an even number, the one with the higher key of the middle two)."""
    return sorted(runs, key=key)[len(runs) // 2]
