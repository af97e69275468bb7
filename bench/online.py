"""Benchmark: revision 0004 run beside the application's traffic.

    python bench/online.py [--users 1000000] [--rate 200] [--login-rate 20] [--idle-seconds 60]
                           [--block-seconds 15] [--idle-before 20] [--runs 3] [--joiners 1,2,4]
                           [--only idle,default,workers1,join,steered,step] [--rates 0,100,200,400]
                           [--step-after 30] [--upgrade-seconds 0] [--seed 0] [--database-url URL] [--keep]
                           [--reuse]

Once: a template database at revision 0003 with `--users` legacy rows seeded by app.ops.seed (as
bench/migrate_users.py seeds them, then VACUUM ANALYZE), and min(5,000, users/20) of its users
migrated the way the application migrates them at login (the login path's statement), so the
application has users in the new tables before the upgrade. Every scenario runs on a fresh file
copy of that template.

The application: a process of its own issuing short transactions at a fixed rate (`--rate`,
default 200 a second) on 16 connections (threads), open loop: transaction i is due at
t0 + i/rate whether or not the earlier ones finished, and its latency is measured from that
scheduled start to its commit, so a stall counts for every transaction it delays (no
coordinated omission). The mix: 40% read a user_settings row by keycloak_user_id, 15% update a
user_settings row, 5% insert a new legacy row, 30% read the "user" and settings rows of an
already migrated user, 10% update that user's settings and "user" rows. Beside it, at
`--login-rate` (default 20 a second, same open loop), `app.migrate_user(connection,
keycloak_user_id)`: half for users not yet migrated (each once; a call that finds its user
migrated by the bulk run meanwhile counts as "already migrated"), half for migrated ones.

Scenarios (`--only`):

- `idle`: no upgrade; blocks of `--block-seconds` alternate without and with the live-write
  capture installed (the trigger and change log, by the SQL the revision installs them with,
  app/steps/user_settings/capture.sql), `--idle-seconds` in each state. The blocks without it
  are the idle figures; the two states compared give the capture's cost on the application's
  writes to user_settings, on the same database at the same time, apart from the upgrade's load.
- `default`, `workers1`: `--runs` times each (default 3), in turn: `--idle-before` seconds
  (20) of the traffic alone on a fresh copy, then `alembic upgrade 0004` with the default
  settings, or with `-x workers=1`, beside it. Each run's p99 during the upgrade (the alembic
  process's life) is set against the p99 of the 20 seconds just before it on the same copy; the
  median of those ratios is what the target is checked on. The WAL written, the WAL segment
  files before and after, the server's checkpoints (other sessions' count too) and what the
  application's backends waited for are given per run.
- `steered`: the steering with the defaults (`alembic upgrade 0004`), `--runs` times per rate
  of `--rates` (default 0,100,200,400 transactions a second; 0: no traffic at all, where the
  run should be alone and unheld), the rates taking turns, each on a fresh copy after
  `--idle-before` seconds of that traffic alone: the upgrade's rate, the application's p99
  against its idle p99 (the target holds in each run, not the median), migrate_user's p99 for
  users the call migrates and for users already migrated, the controller's decisions, and how
  well the signal tracks the application: at each reading the controller noted (once a 5 s
  signal window) the application's p99 over the same window, and Spearman's rank correlation
  of the two (the issue asks at least 0.7).
- `step`: the same at `--rate`, and `--step-after` seconds (30) into the upgrade a second
  application process at the same rate joins: the rate doubles. The application's p99 in 5 s
  windows from the start, the signal and the decisions beside them, and when the step's breach
  ended: the start of the first window back at or under 2x the idle p99 after the first one
  over it (the issue's target: corrected within 15 s); later windows over it are listed apart.
- `join`: no traffic; `alembic -x workers=1 upgrade 0004` alone, then with 1, 2 and 4
  (`--joiners`) `orgmig work --workers 1` processes started as soon as its run is open: the
  upgrade's rate by processes taking batches.

The first `--warmup` seconds (5) of traffic on a copy are not measured; an idle block is
measured from one second after the capture was switched. `--upgrade-seconds S` stops each
upgrade S seconds in (SIGTERM, which orgmig handles as Ctrl-C; the run left interrupted, its
copy dropped): every upgrade then gives a window of the same length however slowly the
steering lets it go, for before-and-after comparisons of what the application feels; its
rows/s are those of the batches done, and an upgrade stopped so is not counted as one that did
not finish.

migrate_user's figures come with where its time went: per round trip (each statement by its
name in the .sql files, and the commit), the per-call total's p50 and p99 and its mean over the
slowest 1% of calls, then the rest of the call (the driver, Python) and its wait for a
connection; the round trips per call, and the calls that made the upgrade statement again (a
retry).

Targets (exit 1 when one is missed, 2 when the bench could not run): the application's p99
during the upgrade at most 2x its idle p99 (the median ratio of the runs), with the default
settings and with -x workers=1; migrate_user's p99 under 20 ms, idle and during the upgrade,
for users migrated by the call and for users already migrated. The rates and the capture's cost
have no target. The 1-minute load average is given with each figure (the host may be shared).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import harness.server as db
from harness.appdata import build_template, workload
from harness.latency import Window, app_samples, load_text, logins, pooled, round_trips, row, stats
from harness.report import code_version, exit_code, fail, header, load1, say, verdict
from harness.scenarios import REVISION, Scenarios
from harness.steering import decisions_text, spearman, tracking, windows_p99
from harness.traffic import APP_KINDS, LEGACY_WRITES, MIX, POOL, Workload

TARGET_RATIO = 2.0
TARGET_LOGIN_MS = 20.0
SCENARIOS = ("idle", "default", "workers1", "join", "steered", "step")
DEFAULT_ONLY = "idle,default,workers1,join"
TARGET_TRACKING = 0.7
TARGET_STEP_S = 15.0
UPGRADES = {"default": ("default settings", []), "workers1": ("-x workers=1", ["workers=1"])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=1_000_000, help="legacy users (default 1,000,000)")
    p.add_argument("--rate", type=float, default=200, help="application transactions a second (default 200)")
    p.add_argument("--login-rate", type=float, default=20, help="migrate_user calls a second (default 20)")
    p.add_argument("--idle-seconds", type=float, default=60,
                   help="idle traffic measured without, and again with, the capture (default 60 each)")
    p.add_argument("--block-seconds", type=float, default=15, help="length of one idle block (default 15)")
    p.add_argument("--idle-before", type=float, default=20,
                   help="seconds of traffic alone before each upgrade, its idle reference (default 20)")
    p.add_argument("--runs", type=int, default=3,
                   help="upgrades of each kind (steered: of each rate) beside the traffic, in turn,"
                        " on fresh copies (default 3)")
    p.add_argument("--warmup", type=float, default=5, help="seconds of traffic not measured in each copy (default 5)")
    p.add_argument("--joiners", default="1,2,4", help="orgmig work processes to try beside alembic (default 1,2,4)")
    p.add_argument("--only", default=DEFAULT_ONLY,
                   help=f"scenarios to run, of {','.join(SCENARIOS)} (default {DEFAULT_ONLY})")
    p.add_argument("--rates", default="0,100,200,400", help="steered: traffic rates, 0 none (default 0,100,200,400)")
    p.add_argument("--step-after", type=float, default=30, help="step: seconds into the upgrade (default 30)")
    p.add_argument("--upgrade-seconds", type=float, default=0,
                   help="stop each upgrade this many seconds in, by SIGTERM (default 0: run it to its end)")
    p.add_argument("--seed", type=int, default=0, help="seed of the legacy rows and the traffic (default 0)")
    db.add_server_arguments(p, keep="keep the template database")
    p.add_argument("--reuse", action="store_true", help="use the template database if it exists (from --keep)")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    try:
        joiners = [int(j) for j in args.joiners.split(",") if j.strip()]
        rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        joiners, rates = [-1], [-1.0]
    if (args.users < 100 or args.rate <= 0 or args.login_rate < 0 or args.idle_seconds <= 0 or args.runs < 1
            or args.block_seconds <= 0 or args.idle_before <= 0 or set(only) - set(SCENARIOS)
            or any(j < 1 or j > 32 for j in joiners) or any(r < 0 for r in rates) or args.step_after <= 0
            or args.upgrade_seconds < 0):
        return fail("--users must be at least 100, --rate, --runs and the idle lengths positive, --login-rate"
                    f" and --upgrade-seconds not negative, --joiners 1-32 each, --only among {','.join(SCENARIOS)}")

    server, where = db.open_server(args.database_url)

    template = f"orgmig_bench_online_{args.users}"
    code = code_version()
    load_start = load1()
    windows: dict[str, Window] = {}
    runs: dict[str, list[tuple[Window, Window]]] = {k: [] for k in UPGRADES if k in only}
    joins: list[dict] = []
    steered: list[tuple[float, tuple[Window, Window]]] = []  # (rate, runs); the step's rate negative
    logs = Path(tempfile.mkdtemp(prefix="orgmig-bench-online-"))
    started = time.monotonic()
    try:
        build_template(server, template, args.users, args.seed, args.reuse)
        work = workload(server.url(template), args.users, args.rate, args.login_rate, args.seed)
        bench = Scenarios(server, template, work, logs, args.warmup, args.upgrade_seconds or None)
        if "idle" in only:
            say(f"idle: {args.rate:g} tx/s and {args.login_rate:g} logins/s, capture off and on in turn")
            windows["off"], windows["on"] = bench.idle(args.idle_seconds, args.block_seconds)
            say(progress_line("idle", None, windows["off"], windows["on"]))
        for i in range(1, args.runs + 1 if runs else 1):
            for key in runs:  # in turn, so a change in the host's load reaches both kinds alike
                label, x_args = UPGRADES[key]
                say(f"run {i}: {args.idle_before:g} s of traffic alone, then upgrade {REVISION} with {label}")
                runs[key].append(bench.upgrade(key, x_args, args.idle_before))
                say(progress_line(f"run {i}, {label}", *runs[key][-1]))
        for i in range(1, args.runs + 1 if "steered" in only else 1):
            for rate in rates:  # in turn, so a change in the host's load reaches every rate alike
                say(f"steered run {i}: {rate:g} tx/s, " + (f"{args.idle_before:g} s of it alone, then " if rate else "")
                    + f"upgrade {REVISION}, defaults")
                steered.append((rate, bench.upgrade(f"steered_{rate:g}", [], args.idle_before, rate=rate)))
                say(progress_line(f"steered run {i}, {rate:g} tx/s", *steered[-1][1]))
        if "step" in only:
            say(f"step: {args.rate:g} tx/s, doubled {args.step_after:g} s into the upgrade")
            steered.append((-args.rate, bench.upgrade("step", [], args.idle_before, step_after=args.step_after)))
        if "join" in only:
            for j in [0, *joiners]:
                say(f"upgrade {REVISION} with -x workers=1 and {j} orgmig work --workers 1, no traffic")
                joins.append(bench.join(j))
    except db.ERRORS as exc:
        return fail(f"{exc} (logs in {logs})")
    finally:
        if not args.keep:
            server.drop(template)

    return report(args, where, code, load_start, time.monotonic() - started, windows, runs, joins, work, logs,
                  steered)


def steered_lines(steered: list[tuple[float, tuple[Window, Window]]], step_after: float, missed: list[str]) -> list:
    """The steered runs: per traffic rate, the upgrade's rate, the application's p99 against its
    idle p99, the decisions and the signal's tracking of the application; the step's series."""
    out = ["  steered (defaults): the upgrade beside each traffic rate; the signal against the application;"
           " migrate_user p99 ms for users it migrates / already migrated",
           f"    {'tx/s':>6}{'idle p99':>10}{'p99':>8}{'ratio':>7}{'rows/s':>9}{'login p99':>14}{'readings':>10}"
           f"{'spearman':>10}  load average   decisions"]
    readings = []  # beside traffic, for the tracking over every run
    ratios: dict[str, list[float]] = {}  # per traffic rate, every run's (the target holds in each)
    during: list[Window] = []  # the steered upgrades beside traffic, for migrate_user's p99
    for rate, (idle, w) in steered:
        u, a, b = w.upgrade, stats(app_samples(idle)), stats(app_samples(w))
        points = tracking(w.samples, u["steering"], u["start"])
        readings += points if rate else []
        rho = spearman([p.ratio for p in points], [p.app_p99 for p in points])
        label = f"{-rate:g}x2" if rate < 0 else f"{rate:g}"
        figures = (f"{a['p99']:>10.2f}{b['p99']:>8.2f}{b['p99'] / a['p99']:>7.2f}" if a["n"] and b["n"]
                   else f"{'-':>10}{'-':>8}{'-':>7}")  # no traffic: nothing to compare
        if a["n"] and b["n"] and rate > 0:
            ratios.setdefault(label, []).append(b["p99"] / a["p99"])
            during.append(w)
        login = (f"{stats(logins(w, True))['p99']:.1f} / {stats(logins(w, False))['p99']:.1f}"
                 if rate else "-")
        out.append(f"    {label:>6}{figures}{u['rows'] / u['seconds']:>9,.0f}{login:>14}"
                   f"{len(points):>10}{'-' if rho is None else f'{rho:.2f}':>10}  {load_text(w.load):<14} "
                   + decisions_text(u["steering"], u["start"]))
        if u["status"] != "finished" and not u["stopped"]:
            missed.append(f"the steered upgrade at {label} tx/s did not finish")
        if rate == 0 or not points:
            continue
        if rate < 0:
            out += step_lines(w, a["p99"], step_after, points, missed)
    for label, values in ratios.items():
        ok = max(values) <= TARGET_RATIO
        missed += [] if ok else [f"application p99 beside the steered upgrade at {label} tx/s, in every run"]
        out.append(f"    {label} tx/s: ratio in each run {', '.join(f'{r:.2f}' for r in values)}"
                   f" (target <= {TARGET_RATIO:g} in each): {verdict(ok)}")
    if during:
        both = pooled("steered", during)
        for now, what in ((True, "migrated by the call"), (False, "already migrated")):
            st = stats(logins(both, now))
            ok = st["p99"] < TARGET_LOGIN_MS
            missed += [] if ok else [f"migrate_user p99 beside the steered upgrades, {what}"]
            out.append(f"    migrate_user beside the steered upgrades, {what}: n {st['n']:,}, p50 {st['p50']:.1f} ms,"
                       f" p99 {st['p99']:.1f} ms (the call alone {st['service_p50']:.1f} / {st['service_p99']:.1f} ms;"
                       f" target p99 < {TARGET_LOGIN_MS:g} ms): {verdict(ok)}")
            out.append(f"      where its time went: {round_trips(logins(both, now))}")
    rho = spearman([p.ratio for p in readings], [p.app_p99 for p in readings])
    if rho is not None:
        ok = rho >= TARGET_TRACKING
        missed += [] if ok else ["the signal's tracking of the application's p99"]
        out.append(f"    signal vs application p99, all readings pooled ({len(readings)}): Spearman {rho:.2f}"
                   f" (target >= {TARGET_TRACKING:g}): {verdict(ok)}")
    return out


def step_lines(w: Window, idle_p99: float, step_after: float, points, missed: list[str]) -> list[str]:
    """The step's series, 5 s windows from the upgrade's start: the application's p99, and the
    signal read at the end of each window; when the breach after the step ended."""
    u = w.upgrade
    step = (u["step_at"] or u["start"] + step_after) - u["start"]
    series = windows_p99(w.samples, u["start"], u["start"] + u["seconds"])
    signal = {round(p.at / 5): p.ratio for p in points}
    out = [f"    step at +{step:.1f} s; window start s, application p99 ms (x idle), signal at the window's end:"]
    cells = [f"{t:>4.0f} {p99:>6.1f} ({p99 / idle_p99:.1f}x) {signal.get(round(t / 5) + 1, float('nan')):.1f}"
             for t, p99, _ in series]
    out += ["      " + "  ".join(cells[i:i + 4]) for i in range(0, len(cells), 4)]
    after = [(t, p99 > TARGET_RATIO * idle_p99) for t, p99, _ in series if t + 5 > step]
    first = next((i for i, (_, over) in enumerate(after) if over), None)
    back = next((t for t, over in after[first:] if not over), None) if first is not None else None
    # corrected: the first window back at or under the target after the step's first breach
    lasted = 0.0 if first is None else math.inf if back is None else back - step
    ok = lasted <= TARGET_STEP_S
    missed += [] if ok else ["the step's breach corrected within 15 s"]
    later = [t for t, over in after[first:] if over and back is not None and t > back] if first is not None else []
    out.append(f"    the step's breach (windows over {TARGET_RATIO:g}x the idle p99) corrected "
               + ("at once (none)" if first is None else "never" if back is None
                  else f"by +{lasted:.0f} s after it (the first 5 s window back under it starts then)")
               + f" (target <= {TARGET_STEP_S:g} s): {verdict(ok)}"
               + (f"; later windows over it at +{', +'.join(f'{t - step:.0f}' for t in later)} s" if later else ""))
    return out


def progress_line(label: str, idle: Window | None, w: Window, capture_on: Window | None = None) -> str:
    """One run's figures as they come (the report at the end has them all)."""
    st = stats(app_samples(w))
    line = f"{label}: p50 {st['p50']:.2f} ms, p99 {st['p99']:.2f} ms"
    if idle is not None:
        line += f" (idle p99 just before {stats(app_samples(idle))['p99']:.2f} ms)"
    if capture_on is not None:
        line += (f"; writes to user_settings p99 {stats(app_samples(w, LEGACY_WRITES))['p99']:.2f} ms, with the capture"
                 f" {stats(app_samples(capture_on, LEGACY_WRITES))['p99']:.2f} ms")
    line += (f"; migrate_user p99 {stats(logins(w, True))['p99']:.1f} ms migrating,"
             f" {stats(logins(w, False))['p99']:.1f} ms migrated")
    if w.upgrade:
        u = w.upgrade
        line += (f"; {u['rows'] / u['seconds']:,.0f} rows/s, WAL {u['wal_gb']:.2f} GB, WAL files {u['segments']},"
                 f" checkpoints {u['checkpoints']}; waits " + ", ".join(f"{k} {v}" for k, v in w.waits.most_common(3)))
    return line


def report(args, where, code, load_start, seconds, windows: dict[str, Window],
           runs: dict[str, list[tuple[Window, Window]]], joins: list[dict], work: Workload, logs: Path,
           steered: list[tuple[float, tuple[Window, Window]]]) -> int:
    missed: list[str] = []
    defaults = {"rate": 200, "login_rate": 20, "idle_seconds": 60, "block_seconds": 15, "idle_before": 20,
                "runs": 3, "warmup": 5, "joiners": "1,2,4", "only": DEFAULT_ONLY, "rates": "0,100,200,400",
                "step_after": 30, "upgrade_seconds": 0, "seed": 0}
    cmd = f"python bench/online.py --users {args.users}" + "".join(
        f" --{k.replace('_', '-')} {getattr(args, k):g}" if isinstance(v, int | float)
        else f" --{k.replace('_', '-')} {getattr(args, k)}" for k, v in defaults.items() if getattr(args, k) != v)
    out = header(f"orgmig benchmark: revision {REVISION} beside the application's traffic", where,
                 f"load average {load_start:.2f} at the start, {load1():.2f} at the end", cmd, code) + [
        (f"  data         {args.users:,} legacy users; {len(work.migrated):,} migrated beforehand as at login;"
         f" the traffic picks from {len(work.legacy):,} legacy rows, those migrated users and"
         f" {len(work.new_logins):,} users not yet migrated"),
        (f"  traffic      {args.rate:g} tx/s (steered: each run's own, below) open loop on {POOL} connections"
         " (latency from each transaction's"
         f" scheduled start, so stalls count for every transaction they delay): "
         + ", ".join(f"{w}% {k}" for k, w in MIX)
         + f"; plus {args.login_rate:g} migrate_user calls/s (half for users not yet migrated)"),
        f"  took         {seconds / 60:.1f} min; logs in {logs}",
    ]
    columns = f"    {'':<48}{'n':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    during = {key: pooled(UPGRADES[key][0], [w for _, w in pairs]) for key, pairs in runs.items() if pairs}
    shown = ([("idle (capture-off blocks)", windows["off"])] if "off" in windows else []) + [
        (f"upgrade, {UPGRADES[key][0]} ({len(runs[key])} run{'s' if len(runs[key]) > 1 else ''})", w)
        for key, w in during.items()]
    if shown:
        out.append("  application transactions, all kinds")
        out.append(columns + "   load average")
        for label, w in shown:
            out.append(row(label, stats(app_samples(w)), f"   {load_text(w.load)}"))
        out.append("    p99 ms by kind: " + "; ".join(
            f"{label.split(' (')[0]}: " + ", ".join(f"{k} {stats(app_samples(w, (k,)))['p99']:.1f}" for k in APP_KINDS)
            for label, w in shown))
    if runs:
        out.append("  each upgrade beside the traffic: p99 against the same copy's idle p99 just before it")
        out.append(f"    {'':<18}{'run':>4}{'idle p99':>10}{'p50':>7}{'p99':>8}{'max':>8}{'ratio':>7}{'rows/s':>8}"
                   f"{'WAL GB':>8}{'WAL files':>11}{'ckpts':>6}  load average   waits of the application")
        for key, pairs in runs.items():
            ratios = []
            for i, (idle, w) in enumerate(pairs, 1):
                a, b = stats(app_samples(idle)), stats(app_samples(w))
                ratios.append(b["p99"] / a["p99"])
                u = w.upgrade
                files = "-" if u["segments"][0] is None else f"{u['segments'][0]}->{u['segments'][1]}"
                waits = sum(w.waits.values())
                out.append(
                    f"    {UPGRADES[key][0]:<18}{i:>4}{a['p99']:>10.2f}{b['p50']:>7.2f}{b['p99']:>8.2f}{b['max']:>8.0f}"
                    f"{ratios[-1]:>7.2f}{u['rows'] / u['seconds']:>8,.0f}{u['wal_gb']:>8.2f}{files:>11}"
                    f"{u['checkpoints']:>6}  {load_text(w.load):<14} "
                    + ", ".join(f"{k} {v / waits:.0%}" for k, v in w.waits.most_common(3)))
                if (u["status"] != "finished" and not u["stopped"]) or not u["capture_kept"]:
                    missed.append(f"the upgrade ({UPGRADES[key][0]}, run {i}) did not finish cleanly")
            ratio = statistics.median(ratios)
            ok = ratio <= TARGET_RATIO
            missed += [] if ok else [f"application p99 during the upgrade ({UPGRADES[key][0]})"]
            out.append(f"    {UPGRADES[key][0]}: median ratio {ratio:.2f} (target <= {TARGET_RATIO:g}): {verdict(ok)}")
    if "off" in windows:
        idle, on = windows["off"], windows["on"]
        out.append("  the live-write capture, idle (one copy, 15 s blocks without and with it in turn; no upgrade)")
        out.append(columns + "   load average")
        for kinds, what in ((LEGACY_WRITES, "writes to user_settings"), (APP_KINDS, "all transactions")):
            s_off, s_on = stats(app_samples(idle, kinds)), stats(app_samples(on, kinds))
            out.append(row(f"{what}, capture off", s_off, f"   {load_text(idle.load)}"))
            out.append(row(f"{what}, capture on", s_on, f"   {load_text(on.load)}"))
            out.append(f"    {what}: p50 x{s_on['p50'] / s_off['p50']:.2f}, p99 x{s_on['p99'] / s_off['p99']:.2f}"
                       " with the capture")
    login_windows = ([("idle", windows["off"])] if "off" in windows else []) + [
        (f"upgrade, {UPGRADES[key][0]}", w) for key, w in during.items()]
    if login_windows:
        out.append("  migrate_user (latency from the scheduled call; the call alone in brackets)")
        out.append(columns)
        for label, w in login_windows:
            for now, what in ((True, "migrated by the call"), (False, "already migrated")):
                st = stats(logins(w, now))
                ok = st["p99"] < TARGET_LOGIN_MS
                missed += [] if ok else [f"migrate_user p99, {label}, {what}"]
                out.append(row(f"{label}, {what}", st, f"  ({st['service_p99']:.2f})  target p99 < "
                                                       f"{TARGET_LOGIN_MS:g} ms: {verdict(ok)}"))
                out.append(f"      where its time went: {round_trips(logins(w, now))}")
    for key, pairs in runs.items():
        rates = ", ".join(f"{w.upgrade['rows'] / w.upgrade['seconds']:,.0f}" for _, w in pairs)
        retries = sum(w.upgrade["retries"] for _, w in pairs)
        busy = statistics.median(w.cpu_busy for _, w in pairs)
        out.append(f"  upgrade      {UPGRADES[key][0]}, beside the traffic: {rates} rows/s"
                   f" (wall time of alembic, start-up included); {retries} batch retries in all;"
                   f" CPUs {busy:.0%} busy (median)")
    if joins:
        base_rate = joins[0]["rows"] / joins[0]["seconds"]
        out.append("  processes    alembic -x workers=1, with N orgmig work --workers 1 joining (no traffic)")
        out.append(f"    {'N':<4}{'rows/s':>9}{'x alone':>9}{'seconds':>9}{'rows/s in batches':>19}   load average"
                   "   batches by the joiners")
        for j in joins:
            rate = j["rows"] / j["seconds"]
            out.append(f"    {j['joiners']:<4}{rate:>9,.0f}{rate / base_rate:>9.2f}{j['seconds']:>9.1f}"
                       f"{j['rows'] / j['batch_seconds']:>19,.0f}   {load_text(j['load']):<14} "
                       + (", ".join(j["joined"]) or "-"))
            if j["status"] != "finished":
                missed.append(f"the upgrade with {j['joiners']} joiners did not finish")
    if steered:
        out += steered_lines(steered, args.step_after, missed)
    for m in missed:
        out.append(f"  MISSED       {m}")
    print("\n".join(out))
    return exit_code(missed)


if __name__ == "__main__":
    sys.exit(main())
