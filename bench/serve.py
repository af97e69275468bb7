"""Benchmark: the login-time endpoint (`orgmig serve`) answering for users already migrated, the
call an identity provider's post-login hook makes at every login until the user's app id is
stored on its side.

    python bench/serve.py [--users 20000] [--requests 5000] [--clients 16] [--database-url URL]

It creates `orgmig_bench_serve`, migrates `--users` seeded legacy users (`alembic upgrade head`),
starts `orgmig serve` as a child process on a free loopback port, then sends `--requests`
`POST /v1/users/migrate` calls for random migrated keycloak_user_ids from `--clients` threads
(one keep-alive httpx client each), after a warm-up of 200. It prints requests/s and the p50,
p99 and max latency seen by the clients, the command, the machine and the load average. The
database is dropped at the end. Exit 2 when it could not run.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402 - after the path set-up above
from sqlalchemy import text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from app.db import make_engine, normalize_url  # noqa: E402
from app.ops import migrations  # noqa: E402
from app.ops.databases import Server  # noqa: E402
from app.ops.seed import seed_legacy  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL",
                                                                  "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    server = Server(normalize_url(args.database_url))
    url = server.create("orgmig_bench_serve", replace=True)
    engine = make_engine(url, poolclass=NullPool)
    token = secrets.token_hex(24)
    port = free_port()
    child = None
    try:
        cfg = migrations.alembic_config(url)
        cfg.attributes["configure_logger"] = False
        migrations.upgrade(cfg, "0003")
        seed_legacy(engine, args.users, seed=1)
        migrations.upgrade(cfg, "head")
        with engine.connect() as conn:
            ids = list(conn.execute(text('SELECT keycloak_user_id FROM "user"')).scalars())
        env = dict(os.environ, DATABASE_URL=url.render_as_string(hide_password=False), ORGMIG_SERVE_TOKEN=token,
                   ORGMIG_SERVE_RATE_PER_MINUTE="1000000")
        child = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or child.poll() is not None:
                print(f"serve: the endpoint did not start: {child.stderr.read() if child.poll() else ''}",
                      file=sys.stderr)
                return 2
            time.sleep(0.1)
        latencies: list[float] = []
        lock = threading.Lock()
        per_client = args.requests // args.clients

        def client(seed: int, n: int, record: bool) -> None:
            rng = random.Random(seed)
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                for _ in range(n):
                    started = time.perf_counter()
                    reply = http.post("/v1/users/migrate", json={"keycloak_user_id": rng.choice(ids)})
                    took = time.perf_counter() - started
                    if reply.status_code != 200:
                        raise RuntimeError(f"status {reply.status_code}: {reply.text[:200]}")
                    if record:
                        with lock:
                            latencies.append(took)

        client(0, 200, False)  # warm-up
        threads = [threading.Thread(target=client, args=(i + 1, per_client, True)) for i in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            child.wait(10)
        engine.dispose()
        server.drop("orgmig_bench_serve")
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    print("orgmig benchmark: the login-time endpoint, users already migrated")
    print(f"  command      python bench/serve.py --users {args.users} --requests {args.requests}"
          f" --clients {args.clients}")
    print(f"  machine      {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    print(f"  requests     {len(latencies):,} in {seconds:.1f} s = {len(latencies) / seconds:,.0f} requests/s")
    print(f"  latency      p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {latencies[-1] * 1000:.1f} ms"
          f" (mean {statistics.mean(latencies) * 1000:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
