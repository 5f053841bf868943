"""A repository git refuses to read (dubious ownership, a corrupt index) is a notice; the dashboard stays open."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.tui.app import MlciApp
from mlci.tui.components.git_header import GitHeader

from tests.gitrepos import isolated_git, make_repo
from tests.pilot_wait import until


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolated_git(monkeypatch, tmp_path)


def _corrupt_index(root: Path) -> str:
    (root / ".git" / "index").write_bytes(b"DIRC garbage")
    return "index file smaller than expected"


def _dubious(root: Path) -> str:
    if os.geteuid() != 0:
        pytest.skip("making a repository owned by another user needs root")
    for path in [root, *root.rglob("*")]:
        os.lchown(path, 4242, 4242)
    return "detected dubious ownership"


@pytest.mark.parametrize("breakage", [_corrupt_index, _dubious], ids=["corrupt-index", "dubious-ownership"])
async def test_a_repository_git_cannot_read_is_a_notice_and_the_app_stays(tmp_path: Path, breakage: object) -> None:
    work, _ = make_repo(tmp_path)
    (work / "tests").mkdir()
    config = load_config(work)
    reason = breakage(work)  # type: ignore[operator]
    app = MlciApp(config, start_engine=False)

    def messages() -> list[str]:
        return [str(n.message) for n in app._notifications]

    def header() -> str:
        return str(app.query_one(GitHeader).render())

    async with app.run_test(size=(120, 36)) as pilot:
        # The first read starts after the first paint, which a busy machine may not have reached yet.
        await until(pilot, lambda: bool(messages()) and "git cannot read" in header())
        await app.workers.wait_for_complete()  # its worker ends: a second read would cancel it (one at a time)
        assert any(f"git cannot read {work}" in m and reason in m for m in messages()), messages()
        assert app.is_running
        assert "git cannot read this repository" in header()
        app.refresh_git_state()  # and again: still a notice, still running
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running
        await pilot.press("q")
