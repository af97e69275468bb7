#!/usr/bin/env python3
"""Lock safety, linted: the SQL that `alembic upgrade head --sql` writes, checked by squawk.

Each revision's offline SQL (`alembic upgrade <down>:<rev> --sql`, no database needed) is written
to its own file, named after the revision's file (`0006_identity_schema.sql`), so a finding
names the revision it is in; then squawk lints them all with the one configuration,
`.squawk.toml` at the top of the repository, where every ignored rule and path has its reason.

    .venv/bin/python .ci/squawk.py              # exit 0: clean; 1: findings (listed); 2: broken
    .venv/bin/python .ci/squawk.py --keep DIR   # also leave the SQL files in DIR to read
"""

from __future__ import annotations

import argparse
import io
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from alembic import command

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".squawk.toml"


def write_offline_sql(out: Path) -> list[Path]:
    """One file per revision, oldest first: what `alembic upgrade <down>:<rev> --sql` prints."""
    ini = str(ROOT / "alembic.ini")
    revisions = list(reversed(list(ScriptDirectory.from_config(Config(ini)).walk_revisions())))
    files = []
    for rev in revisions:
        buffer = io.StringIO()
        cfg = Config(ini, output_buffer=buffer)
        command.upgrade(cfg, f"{rev.down_revision or 'base'}:{rev.revision}", sql=True)
        path = out / f"{Path(rev.path).stem}.sql"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        files.append(path)
    return files


def squawk_binary() -> str:
    beside = Path(sys.executable).with_name("squawk")  # the virtual environment's, from the dev extra
    found = str(beside) if beside.exists() else shutil.which("squawk")
    if not found:
        sys.exit("squawk not found: install the dev extra (pip install -e '.[dev]'), which has squawk-cli")
    return found


def _one_based(line: str) -> str:
    """squawk's gcc reporter counts lines and columns from 0; editors and `sed -n Np` from 1."""
    return re.sub(r"^([^:]+):(\d+):(\d+):", lambda m: f"{m[1]}:{int(m[2]) + 1}:{int(m[3]) + 1}:", line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", metavar="DIR", type=Path, help="write the SQL files here and keep them")
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)  # alembic's "Running upgrade ..." lines
    with tempfile.TemporaryDirectory(prefix="orgmig-squawk-") as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        files = write_offline_sql(out)
        squawk = squawk_binary()
        version = subprocess.run([squawk, "--version"], capture_output=True, text=True).stdout.strip()
        print(f"{version}: {len(files)} revisions ({files[0].stem} .. {files[-1].stem}), config {CONFIG.name}")
        done = subprocess.run([squawk, "--config", str(CONFIG), "--reporter", "gcc", *map(str, files)],
                              capture_output=True, text=True)
    findings = [_one_based(line.replace(f"{out}/", "")) for line in done.stdout.splitlines()
                if ": warning: " in line or ": error: " in line]
    for line in findings:
        print(line)
    if done.returncode == 0 and not findings:
        print("squawk: no finding")
        return 0
    if not findings:  # squawk itself failed (a file it cannot parse, a bad configuration)
        print(done.stdout + done.stderr, file=sys.stderr)
        return 2
    print(f"squawk: {len(findings)} finding(s). Fix the revision (a revision not yet released), or, where"
          f" a rule does not apply, ignore it in {CONFIG.name} with the reason; rules:"
          " https://squawkhq.com/docs/rules", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
