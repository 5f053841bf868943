"""The planner on the demo sandbox (the sample project with real git, DVC and a committed pipeline run)."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.events import ChangeDetected, PlanMade, Tier, Trigger, Verdict
from mlci.engine.loop.plan import Planner, held_by
from mlci.engine.loop.watch import Watcher

CODE, DATA, MODEL = Tier.CODE, Tier.DATA, Tier.MODEL


def plan(root: Path, *paths: str, head_moved: bool = False) -> PlanMade | None:
    return Planner(load_config(root)).plan(ChangeDetected(paths, head_moved=head_moved), plan_id=7)


def rules(made: PlanMade) -> list[tuple[Tier, str]]:
    return [(t.tier, t.rule) for t in made.triggers]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_feature_code_runs_the_code_tier_and_the_stages_it_feeds(sandbox: Path) -> None:
    made = plan(sandbox, "src/credit/features.py")
    assert made is not None
    assert made.plan_id == 7
    assert made.tiers == (CODE, MODEL)
    assert made.triggers == (
        Trigger(CODE, "src/**/*.py", ("src/credit/features.py",)),
        Trigger(MODEL, "dependency of stage train", ("src/credit/features.py",)),
    )
    assert made.stages == ("train", "evaluate")
    assert made.changed == ("src/credit/features.py",)


def test_a_unit_test_runs_the_code_tier_only(sandbox: Path) -> None:
    made = plan(sandbox, "tests/unit/test_features.py")
    assert made is not None
    assert made.tiers == (CODE,)
    assert rules(made) == [(CODE, "tests/unit/**")]
    assert made.stages == ()


def test_new_raw_data_runs_the_data_tier_then_every_stage(sandbox: Path) -> None:
    made = plan(sandbox, "data/raw/credit.csv")
    assert made is not None
    assert made.tiers == (DATA, MODEL)
    assert rules(made) == [(DATA, "DVC-tracked data data/raw/credit.csv.dvc"), (MODEL, "dependency of stage prepare")]
    assert made.stages == ("prepare", "train", "evaluate")


def test_a_dvc_file_runs_the_data_tier_and_the_stages_of_its_data(sandbox: Path) -> None:
    made = plan(sandbox, "data/raw/credit.csv.dvc")
    assert made is not None
    assert rules(made) == [(DATA, "**/*.dvc"), (MODEL, "dependency of stage prepare")]
    assert made.stages == ("prepare", "train", "evaluate")


def test_data_tests_run_the_data_tier_and_model_tests_the_model_tier(sandbox: Path) -> None:
    data = plan(sandbox, "tests/data/test_schema.py")
    model = plan(sandbox, "tests/model/test_behavioral.py")
    assert data is not None and model is not None
    assert rules(data) == [(DATA, "tests/data/**")]
    assert rules(model) == [(MODEL, "tests/model/**")]
    assert model.stages == ()


def test_a_changed_training_param_is_named_with_its_stage(sandbox: Path) -> None:
    edit(sandbox / "params.yaml", "lr: 0.0001", "lr: 0.0005")
    made = plan(sandbox, "params.yaml")
    assert made is not None
    assert made.tiers == (MODEL,)
    assert rules(made) == [(MODEL, "params.yaml"), (MODEL, "param train.lr of stage train")]
    assert made.stages == ("train", "evaluate")


def test_a_changed_split_param_makes_the_whole_pipeline_stale(sandbox: Path) -> None:
    edit(sandbox / "params.yaml", "test_size: 0.2", "test_size: 0.25")
    made = plan(sandbox, "params.yaml")
    assert made is not None
    assert (MODEL, "param data.test_size of stage prepare") in rules(made)
    assert made.stages == ("prepare", "train", "evaluate")


def test_a_comment_in_params_stales_no_stage(sandbox: Path) -> None:
    edit(sandbox / "params.yaml", "# seed of the stratified", "# the seed of the stratified")
    made = plan(sandbox, "params.yaml")
    assert made is not None
    assert rules(made) == [(MODEL, "params.yaml")]
    assert made.stages == ()


def test_a_hand_edited_stage_output_stales_its_stage_and_what_follows(sandbox: Path) -> None:
    made = plan(sandbox, "data/prepared/train.csv")
    assert made is not None
    assert made.tiers == (MODEL,)
    assert rules(made) == [(MODEL, "dependency of stage train"), (MODEL, "output of stage prepare")]
    assert made.stages == ("prepare", "train", "evaluate")


def test_an_unrelated_file_plans_nothing(sandbox: Path) -> None:
    assert plan(sandbox, "README.md") is None
    assert plan(sandbox) is None


def test_head_moving_without_a_changed_file_runs_nothing(sandbox: Path) -> None:
    # A commit of the tree as it is: no content changed, and the committed lock matches the tree.
    assert plan(sandbox, head_moved=True) is None


def test_head_moving_asks_dvc_which_stages_the_move_left_stale(sandbox: Path) -> None:
    # A move can leave the lock behind the files (a checkout of a commit whose dvc.lock was not
    # updated): DVC's status names the stale stage, and the model tier reruns from it.
    edit(sandbox / "params.yaml", "lr: 0.0001", "lr: 0.0005")
    made = plan(sandbox, head_moved=True)
    assert made is not None
    assert made.tiers == (MODEL,)
    assert rules(made) == [(MODEL, "stale in dvc status")]
    assert made.stages == ("train", "evaluate")


def test_stale_stages_follow_dvc_status(sandbox: Path) -> None:
    planner = Planner(load_config(sandbox))
    assert planner.stale_stages() == ()
    with (sandbox / "data" / "raw" / "credit.csv").open("a") as f:
        f.write("1,2,3\n")
    assert planner.stale_stages() == ("prepare", "train", "evaluate")


def test_plan_all_runs_every_tier_for_the_reason_given(sandbox: Path) -> None:
    edit(sandbox / "src" / "credit" / "evaluate.py", "\n", "\n# reworded\n")
    made = Planner(load_config(sandbox)).plan_all(plan_id=3, reason="mlci run")
    assert made.tiers == (CODE, DATA, MODEL)
    assert rules(made) == [(CODE, "mlci run"), (DATA, "mlci run"), (MODEL, "mlci run")]
    assert made.stages == ("evaluate",)


def test_model_stage_targets_limit_the_stages(sandbox: Path) -> None:
    with (sandbox / "mlci.yaml").open("a") as f:
        f.write("  model:\n    stages: [prepare]\n")
    made = plan(sandbox, "data/raw/credit.csv", "src/credit/features.py")
    assert made is not None
    assert made.stages == ("prepare",)
    assert (MODEL, "dependency of stage train") not in rules(made)


def test_a_broken_dvc_yaml_still_plans_from_the_patterns_and_says_why(sandbox: Path) -> None:
    (sandbox / "dvc.yaml").write_text("stages:\n  prepare: [this is not a stage\n")
    planner = Planner(load_config(sandbox))
    made = planner.plan(ChangeDetected(("dvc.yaml",)), plan_id=1)
    assert made is not None
    assert rules(made) == [(MODEL, "dvc.yaml")]
    assert planner.dvc_error is not None and "dvc.yaml" in planner.dvc_error


def test_the_graph_is_reread_when_dvc_yaml_changes(sandbox: Path) -> None:
    planner = Planner(load_config(sandbox))
    first = planner.plan(ChangeDetected(("src/credit/evaluate.py",)), plan_id=1)
    assert first is not None and first.stages == ("evaluate",)
    edit(
        sandbox / "dvc.yaml",
        "      - src/credit/evaluate.py\n",
        "      - src/credit/evaluate.py\n      - src/credit/features.py\n",
    )
    planner.plan(ChangeDetected(("dvc.yaml",)), plan_id=2)
    again = planner.plan(ChangeDetected(("src/credit/features.py",)), plan_id=3)
    assert again is not None
    assert (MODEL, "dependency of stage evaluate") in rules(again)


def test_touching_data_plans_nothing_and_changing_it_runs_data_then_model(sandbox: Path) -> None:
    """The whole loop up to the plan: real watcher, real DVC-tracked file, real planner."""
    planner = Planner(load_config(sandbox))
    plans: list[PlanMade | None] = []
    changes: list[ChangeDetected] = []
    cond = threading.Condition()

    def on_change(change: ChangeDetected) -> None:
        with cond:
            changes.append(change)
            plans.append(planner.plan(change, plan_id=len(plans) + 1))
            cond.notify_all()

    watcher = Watcher(sandbox, on_change=on_change, quiet_period_s=0.3)
    watcher.start()
    try:
        assert watcher.wait_ready(30)
        data = sandbox / "data" / "raw" / "credit.csv"
        os.utime(data)
        with cond:
            cond.wait_for(lambda: False, 1.5)
            assert changes == []
        with data.open("a") as f:
            f.write(data.read_text().splitlines()[-1] + "\n")
        with cond:
            assert cond.wait_for(lambda: plans, 60)
        (made,) = plans
        assert made is not None
        assert made.tiers == (DATA, MODEL)
        assert made.stages == ("prepare", "train", "evaluate")
    finally:
        watcher.stop()


@pytest.mark.parametrize(
    ("verdicts", "tier", "holder"),
    [
        ({}, MODEL, None),
        ({CODE: Verdict.PASSED, DATA: Verdict.PASSED}, MODEL, None),
        ({CODE: Verdict.FAILED}, DATA, CODE),
        ({CODE: Verdict.FAILED, DATA: Verdict.HELD}, MODEL, CODE),
        ({CODE: Verdict.PASSED, DATA: Verdict.ERROR}, MODEL, DATA),
        ({CODE: Verdict.TIMED_OUT}, MODEL, CODE),
        ({CODE: Verdict.CANCELLED}, DATA, None),
        ({CODE: Verdict.FAILED}, CODE, None),
        ({DATA: Verdict.FAILED}, CODE, None),
    ],
)
def test_a_red_tier_holds_the_tiers_after_it(verdicts: dict[Tier, Verdict], tier: Tier, holder: Tier | None) -> None:
    assert held_by(tier, verdicts) is holder


def test_a_checkout_touching_2000_files_yields_exactly_one_plan(sandbox: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=sandbox, check=True, capture_output=True)

    git("checkout", "-q", "-b", "generated")
    for i in range(2000):
        folder = sandbox / "src" / "credit" / "generated" / f"g{i // 200}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rule_{i:04d}.py").write_text(f"THRESHOLD = {i}\n")
    git("add", "-A")
    git("commit", "-q", "-m", "2000 generated rules")
    git("checkout", "-q", "main")

    planner = Planner(load_config(sandbox))
    plans: list[PlanMade | None] = []
    cond = threading.Condition()

    def on_change(change: ChangeDetected) -> None:
        made = planner.plan(change, plan_id=len(plans) + 1)
        with cond:
            plans.append(made)
            cond.notify_all()

    watcher = Watcher(sandbox, on_change=on_change, quiet_period_s=0.3)
    watcher.start()
    try:
        assert watcher.wait_ready(30)
        git("checkout", "-q", "generated")
        with cond:
            assert cond.wait_for(lambda: plans, 60)
            cond.wait_for(lambda: len(plans) > 1, 1.5)  # a second plan must not come
        (made,) = plans
        assert made is not None
        # The move changed 2000 source files that no DVC stage depends on: the code tier alone.
        assert made.tiers == (CODE,)
        (code,) = made.triggers
        assert code.rule == "src/**/*.py" and len(code.paths) == 2000
    finally:
        watcher.stop()
