"""Following a training run's metrics live: sqlite store, a real `mlflow server`, and a store that is gone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mlci.engine.events import Event, MetricPoint, Notice
from mlci.engine.telemetry.live_metrics import MetricFollower
from mlflow.tracking import MlflowClient

WAIT_S = 60.0


class Collected:
    """Events the follower emitted, from its thread."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def points(self, key: str | None = None) -> list[tuple[str, int, float]]:
        with self._lock:
            return [
                (e.key, e.step, e.value)
                for e in self.events
                if isinstance(e, MetricPoint) and (key is None or e.key == key)
            ]

    def notices(self) -> list[Notice]:
        with self._lock:
            return [e for e in self.events if isinstance(e, Notice)]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def make_run(uri: str) -> tuple[MlflowClient, str]:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("live")
    return client, client.create_run(experiment).info.run_id


def follow_incrementally(uri: str) -> None:
    client, run_id = make_run(uri)
    got = Collected()
    follower = MetricFollower(uri, run_id, got, interval_s=0.1)
    follower.start()
    try:
        for step in range(3):
            client.log_metric(run_id, "train_loss", 1.0 / (step + 1), step=step)
        wait_until(lambda: len(got.points()) == 3, "the first three points")
        client.log_metric(run_id, "val_accuracy", 0.7, step=0)
        for step in range(3, 5):
            client.log_metric(run_id, "train_loss", 1.0 / (step + 1), step=step)
        wait_until(lambda: len(got.points()) == 6, "the next three points")
    finally:
        follower.stop()
    assert not follower.running
    assert got.points("train_loss") == [("train_loss", s, 1.0 / (s + 1)) for s in range(5)]
    assert got.points("val_accuracy") == [("val_accuracy", 0, 0.7)]
    assert got.notices() == []
    assert {e.mlflow_run_id for e in got.events if isinstance(e, MetricPoint)} == {run_id}


def test_follows_a_run_in_the_sqlite_store(tmp_path: Path) -> None:
    follow_incrementally(f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1, in its own process group, killed with it afterwards."""
    port = _free_port()
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [
            str(mlflow_bin),
            "server",
            "--backend-store-uri",
            f"sqlite:///{(tmp_path / 'server.db').as_posix()}",
            "--default-artifact-root",
            (tmp_path / "artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"mlflow server exited: {(tmp_path / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_until(healthy, "mlflow server to answer /health", timeout=180)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_follows_a_run_on_a_real_mlflow_server(mlflow_server: str) -> None:
    follow_incrementally(mlflow_server)


def test_an_unreachable_server_is_one_notice_and_no_crash() -> None:
    got = Collected()
    follower = MetricFollower(f"http://127.0.0.1:{_free_port()}", "0" * 32, got, interval_s=0.05, max_backoff_s=0.2)
    follower.start()
    try:
        wait_until(lambda: bool(got.notices()), "the unreachable notice")
        time.sleep(1.0)  # several more failed polls: still one notice, and the follower keeps trying
        assert follower.running
    finally:
        follower.stop()
    notices = got.notices()
    assert len(notices) == 1
    assert notices[0].level == "warning" and notices[0].source == "metrics"
    assert notices[0].text.startswith("MLflow tracking store unreachable: cannot connect to 127.0.0.1:")
    assert got.points() == []


def test_a_store_that_comes_back_is_followed_again(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db.as_posix()}"
    client, run_id = make_run(uri)
    client.log_metric(run_id, "loss", 0.5, step=0)
    got = Collected()
    follower = MetricFollower(uri, run_id, got, interval_s=0.05, max_backoff_s=0.2)
    follower.start()
    try:
        wait_until(lambda: len(got.points()) == 1, "the first point")
        db.rename(tmp_path / "away.db")
        wait_until(lambda: len(got.notices()) == 1, "the unreachable notice")
        assert "no MLflow database at" in got.notices()[0].text
        (tmp_path / "away.db").rename(db)
        client.log_metric(run_id, "loss", 0.25, step=1)
        wait_until(lambda: len(got.points()) == 2, "the point logged after the store came back")
    finally:
        follower.stop()
    assert [n.text for n in got.notices()][1] == "MLflow tracking store reachable again"
    assert got.points() == [("loss", 0, 0.5), ("loss", 1, 0.25)]


def test_stop_polls_once_more_so_the_last_epoch_is_not_lost(tmp_path: Path) -> None:
    uri = f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"
    client, run_id = make_run(uri)
    got = Collected()
    follower = MetricFollower(uri, run_id, got, interval_s=30.0)  # would not poll again on its own
    follower.start()
    wait_until(lambda: follower.polls >= 1, "the first poll")
    client.log_metric(run_id, "loss", 0.1, step=7)
    follower.stop()
    assert got.points() == [("loss", 7, 0.1)]
