"""Every fixture is registered here, one way: as a plugin module.

- tests.support.fixtures: a real PostgreSQL (TEST_DATABASE_URL, testcontainers or embedded),
  per-test databases and engines, Alembic configs, pytest-alembic's runner;
- tests.support.idp: the export tests' snapshot database and provider environment;
- tests.support.collections: the collections tests' Redis database and migrated app database;
- tests.fakes.fixtures: the fake identity providers;
- tests.support.identity.databases: the identity step's template databases and fakes;
- tests.support.writeback: the write-back tests' linked database and writable fake (`case`);
- tests.batch.toy_copy.fixtures: the engine's toy step and its database;
- tests.service.serving: the login-time service's database (a copy of a template at 0006).
"""

import os
import signal

# The tests never read a developer's .env or DATABASE_URL by accident.
os.environ.pop("DATABASE_URL", None)

# A session started in the background of a non-interactive shell (`pytest &`) inherits SIGINT
# ignored, and so would every process it starts: the tests that stop one with SIGINT, as Ctrl-C
# does, need it to arrive.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

pytest_plugins = ["tests.support.fixtures", "tests.support.idp", "tests.support.collections",
                  "tests.fakes.fixtures",
                  "tests.support.identity.databases", "tests.support.writeback",
                  "tests.batch.toy_copy.fixtures", "tests.service.serving"]
