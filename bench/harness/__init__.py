"""What every bench stands on: the server and its template databases (server.py), timed child
processes with their peak RSS (process.py), the application's open-loop traffic (traffic.py,
appdata.py), what the host and the server do meanwhile (sampling.py), latency figures
(latency.py), and one report format with the machine and code it ran on and the targets' verdicts
and exit codes (report.py).

The one path set-up of the benches is here: the checkout's root goes first on sys.path, so a bench
imports the checkout's `app` (the code it measures, as its child processes run it with the root as
their working directory) and the test fakes, installed or not.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
