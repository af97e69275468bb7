"""Benchmark: revision 0004 over several data shapes, with and without planner statistics, with
JIT pushed to compile everything, and on a server with a small shared_buffers. It looks for the
cliffs a friendly benchmark never sees.

    python bench/data_shapes.py [--users 100000] [--shapes clean,nulls,duplicates,sparse,wide]
                                [--batch-size 500] [--no-small-server] [--database-url URL] [--keep]

For each shape it loads `--users` legacy rows into a template database at revision 0003 the way
a fresh restore leaves them (autovacuum off, no ANALYZE: no statistics at all), then times
`python -m alembic upgrade head` in a child process on fresh copies of it:

- `analyzed`: after VACUUM ANALYZE, as a long-lived table would be (the reference);
- `no stats`: as loaded, no statistics for any column;
- `jit forced`: no statistics, and the database set to JIT-compile every statement
  (`jit_above_cost = 0`, inlining and optimisation too);
- `small buffers`: no statistics, on a private server started with shared_buffers = 16MB (needs
  PostgreSQL's pg_ctl and initdb on this machine; skipped with --no-small-server or without them).

Shapes:

=============  ===============================================================================
clean          every keycloak_user_id valid and unique, ids 1..N
nulls          40% of the rows NULL, empty or blank ids (reported, not migrated)
duplicates     ids shared in groups of 5 (one winner, four reported per group)
sparse         clean, ids 1000 apart
wide           clean, every row with a ~4 KB mcp_config JSON (stored out of line) and long texts
=============  ===============================================================================

It prints users/s (legacy rows processed per second of wall time, child start-up included) for
each shape and variant and its ratio to the clean, analyzed rate; the target is a ratio of at
least 0.8 everywhere (the wide shape moves several times the bytes per row, so its rate is also
given in MB/s of legacy data). Exit code 1 when a ratio misses the target, 2 when the bench
could not run. Databases (and the private server) are removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from harness import ROOT
from harness.server import execute
from sqlalchemy.engine import URL

from app.db import normalize_url
from app.ops import migrations
from app.ops.databases import Server

SHAPES = ("clean", "nulls", "duplicates", "sparse", "wide")
VARIANTS = ("analyzed", "no stats", "jit forced", "small buffers")
TARGET_RATIO = 0.8

# The legacy columns every shape fills; {kc}, {id} and {json} differ by shape.
LOAD = """
INSERT INTO user_settings (id, keycloak_user_id, language, agent, max_iterations, llm_model,
    llm_api_key, enable_default_condenser, billing_margin, enable_sound_notifications,
    enable_proactive_conversation_starters, user_version, accepted_tos, mcp_config, email,
    email_verified, git_user_name, git_user_email)
SELECT {id}, {kc}, (ARRAY['en', 'de', 'fr', 'ja'])[1 + g %% 4], 'CodeActAgent', 100 + g %% 50,
       'gpt-4o', 'gAAAAA' || md5(g::text) || md5((g + 1)::text), true, 1.0 + (g %% 7) / 10.0,
       g %% 2 = 0, true, g %% 3, timestamp '2024-01-01' + g * interval '1 minute', {json},
       'user' || g || '@example.org', g %% 5 <> 0, {name}, 'user' || g || '@example.org'
FROM generate_series(1, %(users)s) g
"""
KC = {
    "clean": "'kc-' || g",
    "nulls": "CASE WHEN g %% 10 < 4 THEN (ARRAY[NULL, '', '   ', E'\\t'])[1 + g %% 4] ELSE 'kc-' || g END",
    "duplicates": "'kc-' || (g / 5)",
    "sparse": "'kc-' || g",
    "wide": "'kc-' || g",
}
WIDE_JSON = ("json_build_object('servers', (SELECT json_agg(json_build_object('name', 'srv' || k,"
             " 'url', 'https://mcp.example.org/' || md5((g * 100 + k)::text), 'token', md5((g + k)::text)"
             " || md5((g - k)::text))) FROM generate_series(1, 40) k))")


def load_sql(shape: str) -> str:
    return LOAD.format(
        id="g * 1000" if shape == "sparse" else "g",
        kc=KC[shape],
        json=WIDE_JSON if shape == "wide" else "'{\"servers\": []}'::json",
        name="repeat('x', 300) || g" if shape == "wide" else "'user ' || g",
    )


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Timing:
    shape: str
    variant: str
    users: int
    seconds: float
    legacy_mb: float

    @property
    def rate(self) -> float:
        return self.users / self.seconds


def build_template(server: Server, name: str, shape: str, users: int) -> float:
    """A database at 0003 with the shape's legacy rows and no statistics; returns its legacy MB."""
    url = server.create(name, replace=True)
    cfg = migrations.alembic_config(url)
    cfg.attributes["configure_logger"] = False
    migrations.upgrade(cfg, "0003")
    execute(url, "ALTER TABLE user_settings SET (autovacuum_enabled = off)",
            load_sql(shape), "SELECT setval(pg_get_serial_sequence('user_settings', 'id'),"
            " (SELECT max(id) FROM user_settings))", params={"users": users})
    (rows,) = execute(url, "SELECT pg_total_relation_size('user_settings') / 1e6")
    return float(rows[0][0])


def time_upgrade(url: URL, batch_size: int, log: Path) -> float:
    env = dict(os.environ, DATABASE_URL=url.render_as_string(hide_password=False))
    cmd = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "-x", f"batch_size={batch_size}",
           "upgrade", "head"]
    with open(log, "w") as out:
        started = time.perf_counter()
        code = subprocess.call(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"alembic upgrade head exited {code}: see {log}")
    return seconds


def run_variant(server: Server, template: str, shape: str, variant: str, users: int, mb: float,
                batch_size: int, logs: Path) -> Timing:
    name = f"{template}_run"
    url = server.create(name, template=template, replace=True)
    try:
        if variant == "analyzed":
            execute(url, "VACUUM (ANALYZE) user_settings")
        elif variant == "jit forced":
            execute(url, f'ALTER DATABASE "{name}" SET jit = on',
                    f'ALTER DATABASE "{name}" SET jit_above_cost = 0',
                    f'ALTER DATABASE "{name}" SET jit_inline_above_cost = 0',
                    f'ALTER DATABASE "{name}" SET jit_optimize_above_cost = 0')
        (stats,) = execute(url, "SELECT count(*) FROM pg_stats WHERE tablename = 'user_settings'")
        say(f"{shape:<10} {variant:<13} {users:,} rows ({stats[0][0]} column statistics)")
        seconds = time_upgrade(url, batch_size, logs / f"{shape}_{variant.replace(' ', '_')}.log")
        return Timing(shape, variant, users, seconds, mb)
    finally:
        server.drop(name)


class PrivateServer:
    """A throw-away PostgreSQL cluster started with the given settings (initdb + pg_ctl)."""

    def __init__(self, settings: dict[str, str]) -> None:
        bindir = Path(subprocess.check_output(["pg_config", "--bindir"], text=True).strip())
        self.pg_ctl, initdb = bindir / "pg_ctl", bindir / "initdb"
        if not self.pg_ctl.exists() or not initdb.exists():
            raise FileNotFoundError(f"pg_ctl/initdb not found in {bindir}")
        self.dir = Path(tempfile.mkdtemp(prefix="orgmig-bench-pg-"))
        self.port = 5499
        # initdb refuses to run as root: run the server as the postgres account then.
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.run_as:
            shutil.chown(self.dir, "postgres")
        subprocess.run([*self.run_as, str(initdb), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust"],
                       check=True, capture_output=True)
        options = " ".join(f"-c {k}={v}" for k, v in {
            **settings, "port": str(self.port), "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.dir)}.items())
        subprocess.run([*self.run_as, str(self.pg_ctl), "-D", str(self.dir / "data"), "-o", options, "-w",
                        "-l", str(self.dir / "log"), "start"], check=True, capture_output=True)
        self.url = normalize_url(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")

    def stop(self) -> None:
        subprocess.run([*self.run_as, str(self.pg_ctl), "-D", str(self.dir / "data"), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--no-small-server", action="store_true", help="skip the small shared_buffers server")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL",
                                                                  "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--keep", action="store_true", help="keep the template databases")
    args = parser.parse_args()
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = set(shapes) - set(SHAPES)
    if unknown or args.users < 1:
        print(f"data_shapes: unknown shapes {sorted(unknown)} or --users < 1", file=sys.stderr)
        return 2
    server = Server(normalize_url(args.database_url))
    logs = Path(tempfile.mkdtemp(prefix="orgmig-bench-shapes-"))
    small = None
    if not args.no_small_server:
        try:
            small = PrivateServer({"shared_buffers": "16MB", "max_wal_size": "1GB"})
        except (FileNotFoundError, subprocess.CalledProcessError, OSError) as exc:
            say(f"small shared_buffers server not started ({exc}); that variant is skipped")
    timings: list[Timing] = []
    try:
        for shape in shapes:
            template = f"orgmig_shapes_{shape}"
            say(f"{shape}: loading {args.users:,} legacy rows")
            mb = build_template(server, template, shape, args.users)
            for variant in VARIANTS[:3]:
                timings.append(run_variant(server, template, shape, variant, args.users, mb, args.batch_size, logs))
            if small is not None:
                private = Server(small.url)
                build_template(private, template, shape, args.users)
                timings.append(run_variant(private, template, shape, "small buffers", args.users, mb,
                                           args.batch_size, logs))
                private.drop(template)
            if not args.keep:
                server.drop(template)
    except (RuntimeError, psycopg.Error) as exc:
        print(f"data_shapes: {exc}", file=sys.stderr)
        return 2
    finally:
        if small is not None:
            small.stop()
    return report(timings, args)


def report(timings: list[Timing], args: argparse.Namespace) -> int:
    reference = next((t for t in timings if t.shape == "clean" and t.variant == "analyzed"), None)
    (version,) = execute(Server(normalize_url(args.database_url)).admin_url, "SHOW server_version")
    print("orgmig benchmark: revision 0004 over data shapes, statistics, JIT and shared_buffers")
    print(f"  server       PostgreSQL {version[0][0]}; machine {os.cpu_count()} CPUs; load average"
          f" {os.getloadavg()[0]:.2f}")
    print(f"  command      python bench/data_shapes.py --users {args.users} --shapes {args.shapes}"
          f" --batch-size {args.batch_size}")
    print(f"  {'shape':<11}{'variant':<15}{'users/s':>10}{'MB/s':>8}{'ratio':>8}")
    missed = []
    for t in timings:
        ratio = t.rate / reference.rate if reference else float("nan")
        if reference and ratio < TARGET_RATIO:
            missed.append(t)
        print(f"  {t.shape:<11}{t.variant:<15}{t.rate:>10,.0f}{t.legacy_mb / t.seconds:>8.1f}{ratio:>8.2f}")
    if reference:
        worst = min(t.rate / reference.rate for t in timings)
        print(f"  reference    clean, analyzed: {reference.rate:,.0f} users/s; worst ratio {worst:.2f}"
              f" (target >= {TARGET_RATIO}); median ratio"
              f" {statistics.median(t.rate / reference.rate for t in timings):.2f}")
    for t in missed:
        print(f"  MISSED       {t.shape} {t.variant}: {t.rate / reference.rate:.2f} of the reference")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
