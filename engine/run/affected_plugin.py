"""Affected tests first, inside the test process: pytest-testmon's selection plus the files each test read.

mlci's pytest plugin registers this when the runner passes `--mlci-affected=DIR` (the code
tier does). It turns on testmon in "noselect" mode, so every test still runs but testmon
tells which ones the change affects (its per-test coverage fingerprints, kept in
`DIR/testmondata` rather than in the user's tree), adds the tests whose data files changed
(`file_reads`), and moves all of them to the front. Three more lines go to the report stream:

    {"kind": "affected", "nodeids": [...], "total": N, "why": "...", "data_changed": [...]}
        after collection: the affected tests, in the order they will run;
    {"kind": "affected_done"}
        after the last affected test's own line (at once when nothing is affected): the runner
        gives the first verdict on it;
    {"kind": "affected_off", "reason": "..."}
        instead of both, when affected tests first cannot work here (no testmon, xdist).

When an affected test is red, the rest is not run (`session.shouldfail`, so pytest ends as
after `-x`: its summary, exit status 1). Why: the rest are the tests testmon found unaffected
and green last time, so they would almost surely pass again, and the tier is red whatever
they do; the person is fixing the red test, and the next save reruns the tier anyway.

Stdlib and pytest only: it runs in the project's interpreter.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from mlci.engine.run.file_reads import READS_FILE, FileReads
from mlci.engine.run.pytest_plugin import TESTMON_FILE

__all__ = ["PACKAGES_FILE", "AffectedFirst"]
PACKAGES_FILE = "system_packages.json"
"""The installed distributions as testmon lists them, with the `sys.path` directories' mtimes they were read at."""
_TESTMON_PLUGIN = "pytest-testmon"
"""The name testmon's entry point registers under."""

_FIXTURE = "fixture:"
"""Prefix of the read-keys of shared fixtures: `fixture:<where it is defined>::<name>`."""

Write = Callable[[dict[str, Any]], None]


class AffectedFirst:
    """The pytest plugin object: order the affected tests first, say when they are done, record the files read."""

    def __init__(self, config: pytest.Config, state_dir: Path, write: Write) -> None:
        self._config = config
        self._write = write
        self._off = self._why_off(config)
        self._reads: FileReads | None = None
        self._affected: set[str] = set()
        self._left = 0
        self._red: set[str] = set()
        self._rest = 0
        self._session: pytest.Session | None = None
        if self._off:
            return
        state_dir.mkdir(parents=True, exist_ok=True)
        # Set before testmon configures itself (this runs in a tryfirst pytest_configure).
        os.environ["TESTMON_DATAFILE"] = str(state_dir / TESTMON_FILE)
        config.option.testmon_noselect = True
        _cache_system_packages(state_dir / PACKAGES_FILE)
        # The runner starts pytest in the project root: the files a test reads are the project's.
        self._reads = FileReads(Path.cwd(), state_dir / READS_FILE)
        self._reads.install()

    @staticmethod
    def _why_off(config: pytest.Config) -> str:
        if not config.pluginmanager.has_plugin(_TESTMON_PLUGIN):
            return f"pytest-testmon is not installed in {sys.executable} (or it was disabled with -p no:)"
        if getattr(config.option, "no-testmon", False):
            return "--no-testmon was given"
        # `--dist` alone (in addopts, say) distributes nothing: workers come from -n or --tx.
        workers = getattr(config.option, "numprocesses", None) or getattr(config.option, "tx", None)
        if workers or hasattr(config, "workerinput"):
            return "pytest-xdist spreads the tests over workers, so they cannot run in order"
        return ""

    # -- recording the files each test reads ----------------------------------------------------

    def pytest_collectstart(self, collector: pytest.Collector) -> None:
        if self._reads is not None and isinstance(collector, pytest.Module):
            self._reads.start(collector.nodeid)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if self._reads is not None:
            self._reads.stop()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any]) -> Generator[None, None, None]:
        # A function-scoped fixture is part of its test; a shared one is set up once, for the
        # first test that needs it, and what it reads belongs to every test that uses it.
        if self._reads is None or fixturedef.scope == "function":
            yield
            return
        previous = self._reads.frame(f"{_FIXTURE}{fixturedef.baseid}::{fixturedef.argname}")
        try:
            yield
        finally:
            self._reads.unframe(previous)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        if self._reads is not None:
            self._reads.start(item.nodeid)
        try:
            yield
        finally:
            if self._reads is not None:
                self._reads.stop()

    # -- selecting and ordering -----------------------------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None, None, None]:
        yield  # after every other plugin's ordering (testmon's, pytest-randomly's): the affected go first
        self._session = session
        if self._off:
            self._write({"kind": "affected_off", "reason": self._off})
            return
        select = config.pluginmanager.get_plugin("TestmonSelect")
        data = getattr(config, "testmon_data", None)
        if select is None or data is None:
            message = getattr(getattr(config, "testmon_config", None), "message", "") or "testmon is inactive"
            self._off = f"testmon did not start: {message}"
            self._write({"kind": "affected_off", "reason": self._off})
            return
        unaffected = set(select.deselected_tests)
        data_changed = self._reads.changed() if self._reads is not None else {}
        changed_files: set[str] = set()
        affected: list[pytest.Item] = []
        rest: list[pytest.Item] = []
        for item in items:
            module = item.nodeid.split("::", 1)[0]
            hit = data_changed.get(item.nodeid, ()) + data_changed.get(module, ()) + _fixture_hits(item, data_changed)
            changed_files.update(hit)
            (affected if item.nodeid not in unaffected or hit else rest).append(item)
        items[:] = affected + rest
        self._affected = {item.nodeid for item in affected}
        self._left = len(affected)
        self._rest = len(rest)
        why = ""
        if data.new_db:
            why = "first run: no affected-test data yet, so every test counts as affected"
        elif data.system_packages_change:
            why = "the installed packages changed, so every test counts as affected"
        self._write(
            {
                "kind": "affected",
                "nodeids": [item.nodeid for item in affected],
                "total": len(items),
                "why": why,
                "data_changed": sorted(changed_files),
            }
        )
        if not affected:
            self._done()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self._left == 1 and item.nodeid in self._affected:
            _testmon_saves_after(self._config)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # trylast: after mlci's report plugin has written this test's line, so that line comes first.
        if report.nodeid not in self._affected:
            return
        if report.failed:
            self._red.add(report.nodeid)
        if report.when == "teardown":
            self._affected.discard(report.nodeid)
            self._left -= 1
            if self._left == 0:
                self._done()

    def _done(self) -> None:
        if self._reads is not None:
            self._reads.save()  # before the line: the runner may stop the run once it has it
        self._write({"kind": "affected_done"})
        if self._red and self._rest and self._session is not None:
            n = len(self._red)
            self._session.shouldfail = (
                f"mlci: {n} affected test{'s' if n != 1 else ''} failed; the other {self._rest} tests were not run"
            )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._reads is not None:
            self._reads.save()
            self._reads.uninstall()


def _testmon_saves_after(config: pytest.Config) -> None:
    """Make testmon store the fingerprints of its current batch when this test ends.

    testmon stores them in batches of up to 250 tests, at the end of a batch or of the session.
    The last affected test ends a phase: the rest may not run (a red affected test stops the
    session), or be cancelled by the next save, and the affected tests' fingerprints (the
    failing ones above all, which must run first next time) must not be lost with it. testmon
    flushes when it is told there is no next test; that is its own attribute, so look before
    touching it (pytest-testmon 2.x).
    """
    collector = getattr(config.pluginmanager.get_plugin("TestmonCollect"), "testmon", None)
    if collector is not None and hasattr(collector, "_next_test_name"):
        collector._next_test_name = None


def _cache_system_packages(cache: Path) -> None:
    """Spare testmon listing every installed distribution on each run, while none can have changed.

    testmon reads the metadata of every distribution at each start (0.2 to 0.4 s with mlci's
    dependencies, the largest part of the time to the first verdict) to notice an install,
    which makes every test affected. Installing, upgrading or removing one adds or removes an
    entry (a `*.dist-info` directory, a `.pth`) in a `sys.path` directory, which changes that
    directory's mtime: the list is reused while those mtimes are unchanged. testmon calls
    `get_system_packages` through its plugin module's globals; look before replacing it.
    """
    module = sys.modules.get("testmon.pytest_testmon")
    original = getattr(module, "get_system_packages", None)
    if module is None or original is None:
        return

    def cached(ignore: Any = None) -> Any:
        key: list[Any] = [sorted(ignore or ())]
        for entry in sys.path:
            with contextlib.suppress(OSError):
                key.append([entry, os.stat(entry or ".").st_mtime_ns])
        try:
            stored = json.loads(cache.read_text(encoding="utf-8"))
            if stored["key"] == key:
                return stored["packages"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        packages = original(ignore=ignore)
        fd, tmp = tempfile.mkstemp(prefix=".packages-", dir=cache.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                json.dump({"key": key, "packages": packages}, stream)
            os.replace(tmp, cache)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return packages

    module.__dict__["get_system_packages"] = cached


def _fixture_hits(item: pytest.Item, changed: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The changed files read by the shared fixtures `item` uses (a fixture is visible below where it is defined)."""
    names = set(getattr(item, "fixturenames", ()))
    found: tuple[str, ...] = ()
    for key, files in changed.items():
        if key.startswith(_FIXTURE):
            baseid, _, name = key[len(_FIXTURE) :].rpartition("::")
            if name in names and item.nodeid.startswith(baseid):
                found += files
    return found
