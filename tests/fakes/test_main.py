"""`python -m tests.fakes`: a fake in a process of its own, as the Okta export bench starts it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def test_a_fake_as_a_process_prints_its_settings_answers_stats_and_stops():
    with subprocess.Popen(
        [sys.executable, "-m", "tests.fakes", "okta", "--users", "300", "--groups", "10",
         "--option", "window_seconds=1", "--option", "rate_limit_per_minute=50"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as proc:
        ready = json.loads(proc.stdout.readline())
        settings = ready["settings"]
        assert settings["OKTA_BASE_URL"] == ready["base_url"]
        sizes = ready["sizes"]
        assert sizes["users"] + sizes["deprovisioned"] == 300
        assert sizes["groups"] == 11 and len(sizes["group_members"]) == 10  # Everyone is not listed

        reply = httpx.get(f"{ready['base_url']}/api/v1/users", params={"limit": 5},
                          headers={"Authorization": f"SSWS {settings['OKTA_API_TOKEN']}"})
        assert reply.status_code == 200 and len(reply.json()) == 5
        assert reply.headers["x-rate-limit-limit"] == "50"

        proc.stdin.write("stats\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == {"requests": 1, "statuses": {"200": 1}}
        proc.stdin.write("stop\n")
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0


def test_help_names_the_port_and_the_options_write_back_needs():
    out = subprocess.run([sys.executable, "-m", "tests.fakes", "--help"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert "--port PORT" in out and "--option NAME=VALUE" in out and "--users USERS" in out
    assert "manage-users" in out and "update:users" in out and "/api/v1/meta/schemas/user/default" in out


def test_a_fake_listens_on_the_port_given():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with subprocess.Popen([sys.executable, "-m", "tests.fakes", "auth0", "--users", "50", "--groups", "3",
                           "--port", str(port)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as proc:
        ready = json.loads(proc.stdout.readline())
        assert ready["base_url"] == f"http://127.0.0.1:{port}" == ready["settings"]["AUTH0_BASE_URL"]
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
