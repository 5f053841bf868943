"""`python -m pytest`, ended without the interpreter's teardown: how mlci starts a cold pytest run.

    python -m mlci.engine.run.pytest_main ARGS...   (the same ARGS as `python -m pytest ARGS...`)

Once pytest has returned, Python's shutdown waits for the non-daemon threads, runs the atexit
handlers and flushes stdout and stderr; then it tears down every module, one by one. With torch
loaded that last step is over a second of CPU (the sample project's unit tests: 6.9 against 8.3
s a run), spent after the verdict, while a check's next tier waits for the process to go. This
runs pytest as `python -m pytest` does and ends the process as `process_exit` ends mlci's own
commands: threads, atexit handlers (a user's at-exit work still happens), flushed streams, then
`os._exit` with pytest's status. A warm run's forked child ends the same way.

Standard library and pytest only: it runs in the project's interpreter (see `interpreter`).
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    try:
        import pytest
    except ImportError:
        # What `python -m pytest` says when pytest is missing, with its status.
        sys.exit(f"{sys.executable}: No module named pytest")
    from mlci.engine.process_exit import exit_without_teardown

    exit_without_teardown(int(pytest.console_main()))


if __name__ == "__main__":
    main()
