"""The benches: each a script of what it measures, run from the checkout as `python bench/<name>.py`,
over the harness in bench/harness (imported as `harness`: a script's own folder is first on its
path).

Imported as a package instead (tests/batch/test_sql_names.py reads the statements a bench names),
the harness is registered under the same name here, so a bench module imports as it runs.
"""

import sys

from . import harness

sys.modules.setdefault("harness", harness)
