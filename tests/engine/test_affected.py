"""Affected tests first: real pytest runs with real pytest-testmon on a small real project.

Each test edits the project as a person would (a function, a data file) and runs the code
tier again, then checks what they would see: which tests ran first, the first verdict that
names them, and the tier's own verdict after it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlci.engine.cli.printer import format_event
from mlci.engine.config.loader import load_config
from mlci.engine.events import (
    AffectedVerdict,
    Event,
    Notice,
    TestResult,
    Tier,
    TierFinished,
    TierStarted,
    Verdict,
    event_from_json,
    event_to_json,
)
from mlci.engine.run.file_reads import READS_FILE, readers_of
from mlci.engine.run.tier_run import TierRun

from tests.loop_projects import EventLog, git, make_project, write

CALC = """
def add(a, b):
    return a + b


def mul(a, b):
    return a * b
"""

TESTS = {
    "tests/conftest.py": "import sys\nsys.path.insert(0, 'src')\n",
    "tests/test_add.py": """
        from calc import add

        def test_add():
            assert add(1, 2) == 3

        def test_add_zero():
            assert add(0, 0) == 0
    """,
    "tests/test_mul.py": """
        from calc import mul

        def test_mul():
            assert mul(2, 3) == 6
    """,
    "tests/test_rows.py": """
        def test_rows_have_two_columns():
            with open('data/rows.csv') as f:
                assert all(len(line.split(',')) == 2 for line in f)

        def test_unrelated():
            assert True
    """,
    "tests/test_labels.py": """
        import json

        LABELS = json.load(open('data/labels.json'))  # read when the module is collected

        def test_labels_are_known():
            assert set(LABELS) <= {'yes', 'no'}
    """,
}
ALL = 6


def project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path / "p",
        sources={"src/calc.py": CALC, "data/rows.csv": "1,2\n3,4\n", "data/labels.json": '["yes", "no"]\n'},
        tests=TESTS,
    )


def run_code(root: Path, run_id: int) -> list[Event]:
    log = EventLog()
    TierRun(load_config(root), Tier.CODE, run_id=run_id, plan_id=run_id, emit=log).run()
    return log.snapshot()


def first_verdict(events: list[Event]) -> AffectedVerdict:
    found = [e for e in events if isinstance(e, AffectedVerdict)]
    assert len(found) == 1, [type(e).__name__ for e in events]
    return found[0]


def tier_verdict(events: list[Event]) -> TierFinished:
    return next(e for e in events if isinstance(e, TierFinished))


def results(events: list[Event]) -> list[str]:
    return [e.nodeid for e in events if isinstance(e, TestResult)]


def test_the_first_run_counts_every_test_as_affected_and_says_so(tmp_path: Path) -> None:
    root = project(tmp_path)
    events = run_code(root, 1)
    first = first_verdict(events)
    assert len(first.nodeids) == first.total == first.passed == ALL
    assert first.why.startswith("first run")
    assert tier_verdict(events).verdict is Verdict.PASSED
    line = format_event(first)[0][0]
    assert f"{ALL} affected: {ALL} passed in " in line and "first run" in line


def test_editing_one_function_runs_its_tests_first_and_the_first_verdict_names_them(tmp_path: Path) -> None:
    root = project(tmp_path)
    run_code(root, 1)
    untouched = run_code(root, 2)
    assert first_verdict(untouched).nodeids == ()  # nothing changed: nothing is affected
    assert tier_verdict(untouched).passed == ALL  # and the rest still runs: the full verdict is complete

    write(root / "src/calc.py", CALC.replace("return a * b", "return b * a  # commutes"))
    events = run_code(root, 3)
    first = first_verdict(events)
    assert first.nodeids == ("tests/test_mul.py::test_mul",)
    assert (first.passed, first.failed, first.total, first.why) == (1, 0, ALL, "")
    # The affected test ran first, its verdict came before any other test's result, then the rest ran.
    ran = results(events)
    assert ran[0] == "tests/test_mul.py::test_mul" and len(ran) == ALL
    assert events.index(first) < [i for i, e in enumerate(events) if isinstance(e, TestResult)][1]
    finished = tier_verdict(events)
    assert (finished.verdict, finished.passed) == (Verdict.PASSED, ALL)
    assert events.index(first) < events.index(finished)
    text = format_event(first)[0][0]
    assert "1 affected: 1 passed in " in text and "tests/test_mul.py::test_mul" in text
    assert f"the other {ALL - 1} run now" in text


def test_changing_a_data_file_reruns_the_test_that_reads_it(tmp_path: Path) -> None:
    root = project(tmp_path)
    run_code(root, 1)

    (root / "data/rows.csv").write_text("1,2\n3,4\n5,6\n", encoding="utf-8")
    first = first_verdict(run_code(root, 2))
    assert first.nodeids == ("tests/test_rows.py::test_rows_have_two_columns",)
    assert first.data_changed == ("data/rows.csv",)

    # A file read while its module is collected belongs to every test of that module.
    (root / "data/labels.json").write_text('["no", "yes"]\n', encoding="utf-8")
    first = first_verdict(run_code(root, 3))
    assert first.nodeids == ("tests/test_labels.py::test_labels_are_known",)

    # Rewriting a file with the same content (a checkout, a `dvc pull`) is not a change.
    (root / "data/rows.csv").write_text("1,2\n3,4\n5,6\n", encoding="utf-8")
    assert first_verdict(run_code(root, 4)).nodeids == ()

    store = root / ".mlci/affected" / READS_FILE
    assert readers_of(store, ["data/rows.csv"]) == ("tests/test_rows.py::test_rows_have_two_columns",)
    assert readers_of(store, ["data/labels.json"]) == ("tests/test_labels.py",)
    assert readers_of(store, ["src/calc.py"]) == ()  # Python sources are testmon's


def test_a_watched_change_to_a_file_tests_read_runs_the_code_tier(tmp_path: Path) -> None:
    """The code tier's triggers name Python files only; the files its tests read trigger it too."""
    from mlci.engine.events import ChangeDetected
    from mlci.engine.loop.plan import READ_BY_TESTS, Planner

    root = project(tmp_path)
    planner = Planner(load_config(root))
    assert planner.plan(ChangeDetected(("data/rows.csv",)), plan_id=1) is None  # no run has read it yet
    run_code(root, 1)
    (root / "data/rows.csv").write_text("1,2\n", encoding="utf-8")
    plan = planner.plan(ChangeDetected(("data/rows.csv",)), plan_id=2)
    assert plan is not None and plan.tiers == (Tier.CODE,)
    assert [(t.rule, t.paths) for t in plan.triggers] == [(READ_BY_TESTS, ("data/rows.csv",))]
    assert planner.plan(ChangeDetected(("data/unread.csv",)), plan_id=3) is None
    assert first_verdict(run_code(root, 2)).nodeids == ("tests/test_rows.py::test_rows_have_two_columns",)


def test_a_data_file_loaded_by_a_shared_fixture_reruns_every_test_that_uses_it(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        sources={"data/train.csv": "a,b\n1,2\n"},
        tests={
            "tests/conftest.py": """
                import pytest

                @pytest.fixture(scope="session")
                def rows():
                    with open("data/train.csv") as f:
                        return f.read().splitlines()[1:]
            """,
            "tests/test_one.py": "def test_first_user(rows):\n    assert rows\n",
            "tests/test_two.py": "def test_second_user(rows):\n    assert rows\n\ndef test_no_data():\n    pass\n",
        },
    )
    run_code(root, 1)
    (root / "data/train.csv").write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    first = first_verdict(run_code(root, 2))
    assert set(first.nodeids) == {"tests/test_one.py::test_first_user", "tests/test_two.py::test_second_user"}
    assert first.data_changed == ("data/train.csv",)


def test_a_red_affected_test_makes_the_tier_red_at_once_and_the_rest_is_not_run(tmp_path: Path) -> None:
    root = project(tmp_path)
    run_code(root, 1)

    write(root / "src/calc.py", CALC.replace("return a + b", "return a - b"))
    events = run_code(root, 2)
    first = first_verdict(events)
    assert set(first.nodeids) == {"tests/test_add.py::test_add", "tests/test_add.py::test_add_zero"}
    assert (first.passed, first.failed) == (1, 1)
    finished = tier_verdict(events)
    assert finished.verdict is Verdict.FAILED
    assert (finished.passed, finished.failed) == (1, 1)
    assert finished.reason == f"1 affected test failed: the other {ALL - 2} were not run"
    assert set(results(events)) == set(first.nodeids)
    assert "the other 4 are not run" in format_event(first)[0][0]

    # The fix: the failing test is affected again (testmon reruns what failed), and it passes.
    write(root / "src/calc.py", CALC)
    events = run_code(root, 3)
    assert "tests/test_add.py::test_add" in first_verdict(events).nodeids
    assert first_verdict(events).failed == 0
    assert tier_verdict(events).verdict is Verdict.PASSED


def test_nothing_appears_in_the_users_tree(tmp_path: Path) -> None:
    root = project(tmp_path)  # committed: sources, tests and data
    run_code(root, 1)
    write(root / "src/calc.py", CALC.replace("return a * b", "return b * a"))
    run_code(root, 2)
    assert git(root, "status", "--porcelain", "--untracked-files=all") == " M src/calc.py\n"
    assert not (root / ".testmondata").exists()
    assert (root / ".mlci/affected/testmondata").is_file()


def test_installing_a_package_makes_every_test_affected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"  # a directory on the tier's sys.path, as site-packages is
    site.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(site))
    root = project(tmp_path)
    run_code(root, 1)
    assert first_verdict(run_code(root, 2)).nodeids == ()

    dist = site / "tinypkg-1.0.dist-info"  # what `pip install tinypkg` leaves
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n", encoding="utf-8")
    first = first_verdict(run_code(root, 3))
    assert len(first.nodeids) == ALL
    assert first.why == "the installed packages changed, so every test counts as affected"


def test_the_data_tier_runs_as_before(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        tests={"tests/data/test_schema.py": "def test_schema():\n    assert True\n"},
        config="tiers:\n  data:\n    tests: [tests/data]\n",
    )
    log = EventLog()
    TierRun(load_config(root), Tier.DATA, run_id=1, plan_id=1, emit=log).run()
    started = next(e for e in log.snapshot() if isinstance(e, TierStarted))
    assert not any("--mlci-affected" in arg for arg in started.command)
    assert not any(isinstance(e, AffectedVerdict) for e in log.snapshot())
    assert log.finished(Tier.DATA)[-1].verdict is Verdict.PASSED
    assert not (root / ".mlci/affected").exists()


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ("['-p', 'no:pytest-testmon']", "pytest-testmon is not installed"),
        ("['-n', '1']", "pytest-xdist spreads the tests over workers"),
    ],
    ids=["without-testmon", "with-xdist"],
)
def test_when_it_cannot_work_every_test_runs_in_one_go_with_one_notice(tmp_path: Path, args: str, why: str) -> None:
    root = make_project(
        tmp_path / "p",
        tests={"tests/test_one.py": "def test_one():\n    pass\n"},
        config=f"tiers:\n  code:\n    tests: [tests]\n    pytest_args: {args}\n",
    )
    events = run_code(root, 1)
    assert not any(isinstance(e, AffectedVerdict) for e in events)
    notices = [e.text for e in events if isinstance(e, Notice) and e.source == "code tier"]
    assert len(notices) == 1 and why in notices[0]
    assert tier_verdict(events).verdict is Verdict.PASSED


def test_the_first_verdict_survives_a_json_round_trip() -> None:
    verdict = AffectedVerdict(3, Tier.CODE, 4, 1, 0.09, ("t.py::a", "t.py::b"), total=36, data_changed=("data/x.csv",))
    assert event_from_json(json.loads(json.dumps(event_to_json(verdict)))) == verdict
