"""Credentials in tracking URIs and remote URLs never reach the output: `mlci config`, the printer, errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlci.engine.cli.printer import HumanPrinter, JsonPrinter
from mlci.engine.config.redact import mask_credentials
from mlci.engine.events import Notice, PushProgress

SECRET = "s3cr3t-Pa55"
TOKEN = "ghp_NeverPrintThisToken0123456789"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"https://ada:{SECRET}@mlflow.corp/", "https://***@mlflow.corp/"),
        (f"postgresql+psycopg2://ml:{SECRET}@db:5432/mlflow", "postgresql+psycopg2://***@db:5432/mlflow"),
        (f"https://x-access-token:{TOKEN}@github.com/a/b.git", "https://***@github.com/a/b.git"),
        (f"https://{TOKEN}@github.com/a/b.git", "https://***@github.com/a/b.git"),
        (f"https://ada:p@{SECRET}@host/x", "https://***@host/x"),
        (f"To https://ada:{SECRET}@host/a.git\n   1234..5678  main -> main", "To https://***@host/a.git\n"),
        ("ssh://git@github.com/a/b.git", "ssh://***@github.com/a/b.git"),
        (f"ssh://git:{SECRET}@host/a.git", "ssh://***@host/a.git"),
        ("git@github.com:a/b.git", "git@github.com:a/b.git"),
        ("sqlite:////tmp/a@b/mlflow.db", "sqlite:////tmp/a@b/mlflow.db"),
        ("mail ada@example.com", "mail ada@example.com"),
    ],
)
def test_mask_credentials(text: str, masked: str) -> None:
    assert mask_credentials(text).startswith(masked)
    assert SECRET not in mask_credentials(text) and TOKEN not in mask_credentials(text)


def test_mlci_config_masks_a_tracking_uri_with_a_password(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"https://ada:{SECRET}@mlflow.corp.example"}
    for args in ((), ("--json",)):
        done = subprocess.run(
            [sys.executable, "-m", "mlci.engine", "config", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr
        assert "https://***@mlflow.corp.example" in done.stdout
    assert json.loads(done.stdout)["mlflow"]["tracking_uri"] == "https://***@mlflow.corp.example"


def test_mlci_config_masks_a_written_tracking_uri(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "mlci.yaml").write_text(f"mlflow:\n  tracking_uri: https://ada:{SECRET}@mlflow.corp.example\n")
    done = subprocess.run(
        [sys.executable, "-m", "mlci.engine", "config"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout
    assert 'mlflow.tracking_uri = "https://***@mlflow.corp.example"' in done.stdout


def test_the_printer_masks_notices_and_push_messages() -> None:
    events = [
        Notice("warning", f"cannot reach the tracking server https://ada:{SECRET}@mlflow.corp", source="metrics"),
        PushProgress(stage="push", message=f"To https://x-access-token:{TOKEN}@github.com/a/b.git", ok=True),
    ]
    human, machine = io.StringIO(), io.StringIO()
    printer, json_printer = HumanPrinter(human, colour=False), JsonPrinter(machine)
    for event in events:
        printer(event)
        json_printer(event)
    out = human.getvalue() + machine.getvalue()
    assert SECRET not in out and TOKEN not in out
    assert out.count("https://***@") == 4
