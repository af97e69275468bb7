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
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import harness.server as db
from harness.process import timed
from harness.report import exit_code, fail, header, line, load1, say
from harness.server import execute

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


@dataclass
class VariantRun:
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
    db.upgrade_to(url, "0003")
    execute(url, "ALTER TABLE user_settings SET (autovacuum_enabled = off)",
            load_sql(shape), "SELECT setval(pg_get_serial_sequence('user_settings', 'id'),"
            " (SELECT max(id) FROM user_settings))", params={"users": users})
    (rows,) = execute(url, "SELECT pg_total_relation_size('user_settings') / 1e6")
    return float(rows[0][0])


def run_variant(server: Server, template: str, shape: str, variant: str, users: int, mb: float,
                batch_size: int, logs: Path) -> VariantRun:
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
        upgrade = timed([*db.ALEMBIC, "-x", f"batch_size={batch_size}", "upgrade", "head"], db.child_env(url),
                        logs / f"{shape}_{variant.replace(' ', '_')}.log", what="alembic upgrade head")
        return VariantRun(shape, variant, users, upgrade.seconds, mb)
    finally:
        server.drop(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="legacy rows per shape (default 100,000)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"shapes to run (default {','.join(SHAPES)})")
    parser.add_argument("--batch-size", type=int, default=500, help="upgrade batch size (default 500)")
    parser.add_argument("--no-small-server", action="store_true", help="skip the small shared_buffers server")
    db.add_server_arguments(parser, keep="keep the template databases")
    args = parser.parse_args(argv)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = set(shapes) - set(SHAPES)
    if unknown or args.users < 1:
        return fail(f"unknown shapes {sorted(unknown)} or --users < 1")
    server, where = db.open_server(args.database_url)
    logs = Path(tempfile.mkdtemp(prefix="orgmig-bench-shapes-"))
    small = None
    if not args.no_small_server:
        try:
            small = db.PrivateServer({"shared_buffers": "16MB", "max_wal_size": "1GB"})
        except (FileNotFoundError, subprocess.CalledProcessError, OSError) as exc:
            say(f"small shared_buffers server not started ({exc}); that variant is skipped")
    runs: list[VariantRun] = []
    load_before = load1()
    try:
        for shape in shapes:
            template = f"orgmig_shapes_{shape}"
            say(f"{shape}: loading {args.users:,} legacy rows")
            mb = build_template(server, template, shape, args.users)
            for variant in VARIANTS[:3]:
                runs.append(run_variant(server, template, shape, variant, args.users, mb, args.batch_size, logs))
            if small is not None:
                private = Server(small.url)
                build_template(private, template, shape, args.users)
                runs.append(run_variant(private, template, shape, "small buffers", args.users, mb,
                                        args.batch_size, logs))
                private.drop(template)
            if not args.keep:
                server.drop(template)
    except db.ERRORS as exc:
        return fail(str(exc))
    finally:
        if small is not None:
            small.stop()
    command = (f"python bench/data_shapes.py --users {args.users} --shapes {','.join(shapes)}"
               f" --batch-size {args.batch_size}{' --no-small-server' if args.no_small_server else ''}")
    lines = header("orgmig benchmark: revision 0004 over data shapes, statistics, JIT and shared_buffers", where,
                   f"load average before {load_before:.2f}, after {load1():.2f}", command)
    return report(runs, lines)


def report(runs: list[VariantRun], lines: list[str]) -> int:
    reference = next((t for t in runs if t.shape == "clean" and t.variant == "analyzed"), None)
    lines.append(f"  {'shape':<11}{'variant':<15}{'users/s':>10}{'MB/s':>8}{'ratio':>8}")
    missed = []
    for t in runs:
        ratio = t.rate / reference.rate if reference else float("nan")
        if reference and ratio < TARGET_RATIO:
            missed.append(t)
        lines.append(f"  {t.shape:<11}{t.variant:<15}{t.rate:>10,.0f}{t.legacy_mb / t.seconds:>8.1f}{ratio:>8.2f}")
    if reference:
        worst = min(t.rate / reference.rate for t in runs)
        lines.append(line("reference", f"clean, analyzed: {reference.rate:,.0f} users/s; worst ratio {worst:.2f}"
                                       f" (target >= {TARGET_RATIO}); median ratio"
                                       f" {statistics.median(t.rate / reference.rate for t in runs):.2f}"))
    lines += [line("MISSED", f"{t.shape} {t.variant}: {t.rate / reference.rate:.2f} of the reference") for t in missed]
    print("\n".join(lines))
    return exit_code(missed)


if __name__ == "__main__":
    sys.exit(main())
