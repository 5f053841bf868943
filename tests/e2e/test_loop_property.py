"""No change is ever lost: whatever the edits and their timing, the tree after the last edit gets a verdict."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlci.engine.config.loader import load_config
from mlci.engine.events import Notice, TestOutcome, TestResult, Tier, TierFinished, Verdict
from mlci.engine.loop.session import Session

from tests.loop_projects import EventLog, make_project, write

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning"),  # watchdog's, see test_session
    pytest.mark.usefixtures("only_testmon"),  # its subject is the loop, not the plugins of this environment
]

EDIT = st.tuples(
    st.sampled_from([0.0, 0.05, 0.3, 1.0, 2.5]),  # pause before the edit: mid-burst, mid-run, or after the run
    st.booleans(),  # whether the edited test passes
)
_COUNTER = itertools.count(1)


def edited_test(number: int, passes: bool) -> str:
    """A test whose name says which edit wrote it, so a verdict can be traced to the tree it ran on."""
    return f"import time\n\ndef test_edit_{number}():\n    time.sleep(0.3)\n    assert {passes}\n"


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, EventLog, Session]]:
    """One watched project for every example: each example's edits start from where the last left it."""
    root = make_project(tmp_path_factory.mktemp("property") / "p", tests={"tests/test_edit.py": edited_test(0, True)})
    log = EventLog()
    session = Session(load_config(root), emit=log)
    session.start()
    log.wait_for(lambda e: isinstance(e, Notice) and e.text.startswith("watching"), timeout=60)
    yield root, log, session
    session.stop()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(EDIT, min_size=1, max_size=5))
def test_the_tree_after_the_last_edit_always_gets_its_verdict(
    loop: tuple[Path, EventLog, Session], edits: list[tuple[float, bool]]
) -> None:
    root, log, session = loop
    start = len(log.snapshot())
    number, passes = 0, True
    for pause, passes in edits:
        time.sleep(pause)
        number = next(_COUNTER)
        write(root / "tests" / "test_edit.py", edited_test(number, passes))
    name = f"tests/test_edit.py::test_edit_{number}"
    result = log.wait_for(lambda e: isinstance(e, TestResult) and e.nodeid == name, after=start, timeout=180)
    assert isinstance(result, TestResult)
    assert result.outcome is (TestOutcome.PASSED if passes else TestOutcome.FAILED)
    assert session.wait_idle(180)
    verdicts = [
        e
        for e in log.snapshot()[start:]
        if isinstance(e, TierFinished) and e.tier is Tier.CODE and e.verdict is not Verdict.CANCELLED
    ]
    assert verdicts, "the last edit got no verdict"
    last = verdicts[-1]
    assert last.run_id == result.run_id  # nothing ran after it on an older tree
    assert last.verdict is (Verdict.PASSED if passes else Verdict.FAILED)
