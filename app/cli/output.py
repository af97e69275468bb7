"""What every verb prints through, so the terminal's rough edges are handled once:

- `console()`: the terminal's width on a terminal; into a pipe or a file, no wrapping (a line
  is as long as its content); no styling at all under NO_COLOR (https://no-color.org: no
  colour, no italics, no bold), as into a pipe;
- `plural(n, word)` (app.numbers): "3,000 users", "1 link";
- `PipeSafe`: standard output whose reader went away (`orgmig verify | head`). The rest of the
  output is dropped, and the command goes on to its own exit code, with no BrokenPipeError.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from app.numbers import plural

__all__ = ["PipeSafe", "console", "plural"]

if TYPE_CHECKING:
    from rich.console import Console

UNWRAPPED = 10_000  # columns into a pipe: wide enough that nothing wraps


def console(stderr: bool = False) -> Console:
    from rich.console import Console  # here: most commands print without it
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(stderr=stderr, width=None if terminal else UNWRAPPED, soft_wrap=not terminal,
                   color_system=None if "NO_COLOR" in os.environ else "auto", highlight=False)


class PipeSafe:
    """A text stream that drops what it is given once its reader has gone."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        # What is still buffered, and all that follows, goes to /dev/null: the interpreter's own
        # flush at exit would otherwise fail too ("Exception ignored ... BrokenPipeError").
        self.reader_gone = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)
