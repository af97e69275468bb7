"""What every bench stands on:

- server.py: the server, its template databases and their copies, statements, alembic in process,
  a throw-away server with settings of its own;
- process.py: child processes timed by wall clock with their own peak RSS, the median run;
- traffic.py, appdata.py: the application's open-loop traffic and the data it works on;
- sampling.py: what the host and the server do meanwhile (waits, CPU, WAL, checkpoints, ledger);
- sessions.py: where one database's sessions spend their time, and the CPU seconds of each;
- latency.py: percentiles and windows of sampled transactions;
- scenarios.py: the traffic alone and upgrades beside it, on template copies;
- okta_snapshot.py, genenetwork.py: the identity and collections benches' data;
- profile.py: every statement of a step timed in process;
- report.py: one report format (header, labelled figures, verdicts) and the exit codes.

The one path set-up of the benches is here: the checkout's root goes first on sys.path, so a bench
imports the checkout's `app` (the code it measures, as its child processes run it with the root as
their working directory) and the test fakes, installed or not.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
