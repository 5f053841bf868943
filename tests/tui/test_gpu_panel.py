"""The GPU panel and the tier's GPU line, fed recorded samples (no GPU is lent to these tests)."""

from __future__ import annotations

from pathlib import Path

from mlci.engine.events import GpuSample
from mlci.engine.telemetry.gpu.recorded import RecordedSampler
from mlci.tui.components.gpu_panel import GpuPanel
from mlci.tui.components.gpu_tier_line import GpuTierLine
from textual.app import App, ComposeResult
from textual.widgets import Static

RECORDINGS = Path(__file__).resolve().parent.parent / "data" / "gpu"
NO_DRIVER = GpuSample(devices=(), status="no GPU: NVIDIA driver not loaded", at=0.0)


class GpuHost(App[None]):
    """The panel as the dashboard shows it: the tier's GPU line under a stand-in training curve."""

    CSS = "#curve { height: 5; border: round $primary; }"

    def __init__(self, samples: list[GpuSample]) -> None:
        super().__init__()
        self.samples = samples

    def compose(self) -> ComposeResult:
        yield GpuPanel()
        yield Static("training curve", id="curve")
        yield GpuTierLine()

    def on_mount(self) -> None:
        for sample in self.samples:
            self.query_one(GpuPanel).update_sample(sample)
            self.query_one(GpuTierLine).update_sample(sample)


def recorded(name: str, count: int) -> list[GpuSample]:
    """`count` samples of a recording, looping, all stamped at time 0 so nothing depends on the clock."""
    sampler = RecordedSampler(RECORDINGS / f"{name}.jsonl")
    return [GpuSample(devices=sampler.sample().devices, at=0.0) for _ in range(count)]


def _lines(widget: GpuPanel | GpuTierLine) -> list[str]:
    return widget.render().plain.splitlines()


# --- snapshots -----------------------------------------------------------------------------


def test_snapshot_two_gpus_narrow(snap_compare) -> None:
    assert snap_compare(GpuHost(recorded("h200x2_multi", 30)), terminal_size=(80, 24))


def test_snapshot_two_gpus_wide(snap_compare) -> None:
    assert snap_compare(GpuHost(recorded("h200x2_multi", 30)), terminal_size=(160, 40))


def test_snapshot_device_that_stopped_answering_wide(snap_compare) -> None:
    assert snap_compare(GpuHost(recorded("h200x2_lost", 8)), terminal_size=(160, 40))


def test_snapshot_no_gpu_narrow(snap_compare) -> None:
    assert snap_compare(GpuHost([NO_DRIVER]), terminal_size=(80, 24))


def test_snapshot_no_gpu_wide(snap_compare) -> None:
    assert snap_compare(GpuHost([NO_DRIVER]), terminal_size=(160, 40))


# --- behaviour -----------------------------------------------------------------------------


async def test_no_gpu_is_a_single_line_and_the_rest_of_the_screen_is_untouched() -> None:
    app = GpuHost([NO_DRIVER])
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        panel = app.query_one(GpuPanel)
        assert _lines(panel) == ["no GPU: NVIDIA driver not loaded"]
        assert panel.border_title == "GPU"
        assert panel.content_region.height == 1
        assert app.query_one("#curve", Static).region.height == 5
        assert _lines(app.query_one(GpuTierLine)) == ["GPU  no GPU: NVIDIA driver not loaded"]


async def test_the_model_tiers_processes_are_marked_and_others_are_not() -> None:
    app = GpuHost(recorded("h200x2_multi", 3))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        lines = _lines(app.query_one(GpuPanel))
    gpu0, train, serve, gpu1, notebook = lines
    assert gpu0.startswith("▶ 0 NVIDIA H200")  # the GPU the model tier runs on
    assert gpu1.startswith("  1 NVIDIA H200")
    assert train.split() == [
        "▶",
        "4242",
        "python",
        "src/credit/train.py",
        "--mode",
        "quick",
        "30.0",
        "GiB",
        "model",
        "tier",
    ]
    assert serve.split()[:3] == ["3170", "python", "serve.py"]
    assert "model tier" not in serve and "▶" not in serve
    assert "▶" not in notebook and "model tier" not in notebook


async def test_sparkline_shows_recent_utilisation_and_figures_follow_the_latest_sample() -> None:
    samples = recorded("h200_training", 8)
    app = GpuHost(samples)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        panel = app.query_one(GpuPanel)
        assert panel.history(0) == (0.0, 3.0, 35.0, 68.0, 88.0, 94.0, 96.0, 97.0)
        (row, process) = _lines(panel)
    assert row.endswith("  ▁▁▃▆████")  # 0, 3, 35, 68, 88, 94, 96, 97 % on a fixed 0-100 scale
    assert " 97% " in row and "45.5/140.4 GiB" in row and "48°C" in row and "541/700 W" in row
    assert process.split()[:2] == ["▶", "4242"]


async def test_a_device_that_stopped_answering_says_so_on_its_row() -> None:
    app = GpuHost(recorded("h200x2_lost", 8))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        lines = _lines(app.query_one(GpuPanel))
    assert lines[-1] == "  1 NVIDIA H200  ✗ stopped answering (GPU is lost)"
    assert lines[0].startswith("▶ 0 NVIDIA H200")


async def test_the_tier_line_shows_only_the_gpus_the_model_tier_runs_on() -> None:
    app = GpuHost(recorded("h200x2_multi", 12))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert _lines(app.query_one(GpuTierLine)) == ["GPU  0 " + " " * 8 + "▄▆██████████  98%  60.0 GiB"]
    idle = GpuHost(recorded("h200_idle", 2))
    async with idle.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert _lines(idle.query_one(GpuTierLine)) == ["GPU  the model tier is not on a GPU"]


async def test_narrow_panel_keeps_every_gpu_on_one_line() -> None:
    app = GpuHost(recorded("h200x2_multi", 12))
    async with app.run_test(size=(44, 30)) as pilot:
        await pilot.pause()
        panel = app.query_one(GpuPanel)
        lines = _lines(panel)
        assert all(len(line) <= panel.content_region.width for line in lines)
    assert lines[0].startswith("▶ 0 H200") and lines[3].startswith("  1 H200")
    assert "61.5/140.4 GiB" in lines[0]
