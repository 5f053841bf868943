"""The report's doorbell: the runner wakes when a result line is written, not at its next poll."""

from __future__ import annotations

import select
import sys
from pathlib import Path

import pytest
from mlci.engine.run.file_bell import FileBell

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def rings(bell: FileBell) -> bool:
    assert bell.fd is not None
    readable, _, _ = select.select([bell.fd], [], [], 0)
    return bool(readable)


def test_the_bell_rings_on_each_write_and_is_quiet_once_cleared(tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"
    report.touch()
    bell = FileBell(report)
    try:
        assert bell.fd is not None and not rings(bell)
        with report.open("a") as stream:
            stream.write('{"kind": "affected_done"}\n')
        assert rings(bell)
        bell.clear()
        assert not rings(bell)
        with report.open("a") as stream:  # written after the clear: rings again
            stream.write('{"kind": "session"}\n')
        assert rings(bell)
    finally:
        bell.close()
    assert bell.fd is None


def test_a_file_that_cannot_be_watched_gives_a_bell_that_never_rings(tmp_path: Path) -> None:
    bell = FileBell(tmp_path / "missing.jsonl")
    assert bell.fd is None
    bell.clear()  # harmless: the runner keeps its polling interval
    bell.close()
