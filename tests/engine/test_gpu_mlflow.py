"""The model tier's MLflow run gets the GPU figures as system metrics, in a real sqlite store."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlci.engine.telemetry.gpu.mlflow_log import GpuRunLogger, gpu_system_metrics, log_gpu_sample
from mlci.engine.telemetry.gpu.recorded import RecordedSampler

RECORDINGS = Path(__file__).resolve().parent.parent / "data" / "gpu"


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A real MLflow sqlite store (created once: its schema migrations take seconds): (URI, experiment id)."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    experiment_id = MlflowClient(uri).create_experiment("credit", artifact_location=(root / "artifacts").as_uri())
    return uri, experiment_id


@pytest.fixture
def store(experiment: tuple[str, str]) -> tuple[str, str]:
    """A fresh running run in the store: (tracking URI, run id)."""
    from mlflow.tracking import MlflowClient

    uri, experiment_id = experiment
    return uri, MlflowClient(uri).create_run(experiment_id).info.run_id


def _history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    from mlflow.tracking import MlflowClient

    return [(m.step, m.value) for m in sorted(MlflowClient(uri).get_metric_history(run_id, key), key=lambda m: m.step)]


def test_names_are_mlflows_own_system_metric_names() -> None:
    sample = RecordedSampler(RECORDINGS / "h200x2_multi.jsonl").sample()
    metrics = gpu_system_metrics(sample)
    assert set(metrics) == {
        f"system/gpu_{i}_{name}"
        for i in (0, 1)
        for name in (
            "utilization_percentage",
            "memory_usage_megabytes",
            "memory_usage_percentage",
            "power_usage_watts",
            "power_usage_percentage",
            "temperature_celsius",
        )
    }
    # MLflow's monitor logs memory in megabytes of 10^6 bytes (NVML bytes / 1e6).
    assert metrics["system/gpu_0_memory_usage_megabytes"] == round(22021 * 1024 * 1024 / 1e6, 1)
    assert metrics["system/gpu_0_memory_usage_percentage"] == 15.3
    assert metrics["system/gpu_1_power_usage_percentage"] == round(121.2 / 700 * 100, 1)


def test_the_run_gets_the_gpu_figures_as_system_metrics(store: tuple[str, str]) -> None:
    uri, run_id = store
    sampler = RecordedSampler(RECORDINGS / "h200_training.jsonl", loop=False)
    logger = GpuRunLogger(uri, run_id, flush_every=8)
    for _ in range(20):
        logger.log(sampler.sample())
    logger.close()
    assert logger.error is None
    utilisation = _history(uri, run_id, "system/gpu_0_utilization_percentage")
    assert [step for step, _ in utilisation] == list(range(20))
    assert [value for _, value in utilisation][:5] == [0.0, 3.0, 35.0, 68.0, 88.0]
    power = _history(uri, run_id, "system/gpu_0_power_usage_watts")
    assert power[-1] == (19, 535.8)
    temperature = _history(uri, run_id, "system/gpu_0_temperature_celsius")
    assert temperature[0] == (0, 30.0)


def test_a_device_that_stopped_answering_is_left_out_not_logged_as_zero(store: tuple[str, str]) -> None:
    from mlflow.tracking import MlflowClient

    uri, run_id = store
    sampler = RecordedSampler(RECORDINGS / "h200x2_lost.jsonl", loop=False)
    client = MlflowClient(uri)
    for step in range(8):
        log_gpu_sample(client, run_id, sampler.sample(), step)
    assert [s for s, _ in _history(uri, run_id, "system/gpu_0_utilization_percentage")] == list(range(8))
    assert [s for s, _ in _history(uri, run_id, "system/gpu_1_utilization_percentage")] == [0, 1, 2, 3]


def test_samples_without_a_gpu_log_nothing(store: tuple[str, str], tmp_path: Path) -> None:
    uri, run_id = store
    recording = tmp_path / "none.jsonl"
    recording.write_text('{"type": "GpuSample", "devices": [], "status": "no GPU: NVIDIA driver not loaded"}\n')
    logger = GpuRunLogger(uri, run_id, flush_every=1)
    logger.log(RecordedSampler(recording).sample())
    logger.close()
    from mlflow.tracking import MlflowClient

    assert MlflowClient(uri).get_run(run_id).data.metrics == {}
    assert logger.error is None


def test_a_store_that_refuses_the_write_never_raises_and_says_why(store: tuple[str, str]) -> None:
    uri, _ = store
    logger = GpuRunLogger(uri, "0" * 32, flush_every=2)
    sampler = RecordedSampler(RECORDINGS / "h200_idle.jsonl")
    for _ in range(4):
        logger.log(sampler.sample())
    logger.close()
    assert logger.error is not None
    assert logger.error.startswith(f"GPU metrics not logged to MLflow run {'0' * 32}: ")
