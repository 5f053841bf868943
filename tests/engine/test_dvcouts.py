"""The DVC-tracked paths the watcher adds to git's view: read from `.dvc`, `dvc.yaml` and `dvc.lock`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlci.engine.loop.dvc_outs import dvc_tracked_paths, is_dvc_metafile


def test_outs_deps_and_metrics_of_every_dvc_file_are_named(tmp_path: Path) -> None:
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "credit.csv.dvc").write_text(
        "outs:\n- md5: 145da1\n  size: 8\n  hash: md5\n  path: credit.csv\n"
    )
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  prepare:\n"
        "    cmd: python prepare.py\n"
        "    deps: [data/raw/credit.csv, src/prepare.py]\n"
        "    params: [data]\n"
        "    outs: [data/prepared/train.csv, {data/prepared/test.csv: {cache: true}}]\n"
        "  evaluate:\n"
        "    cmd: python evaluate.py\n"
        "    wdir: reports\n"
        "    deps: [../models/model]\n"
        "    metrics:\n"
        "      - metrics.json:\n"
        "          cache: false\n"
        "  sweep:\n"
        "    foreach: [a, b]\n"
        "    do:\n"
        "      cmd: echo ${item}\n"
        "      outs:\n"
        "        - out/${item}.txt\n"
    )
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  sweep@a:\n    cmd: echo a\n    outs:\n    - path: out/a.txt\n      md5: x\n"
    )
    found = dvc_tracked_paths(tmp_path, ["data/raw/credit.csv.dvc", "dvc.yaml", "dvc.lock"])
    assert found == (
        "data/prepared/test.csv",
        "data/prepared/train.csv",
        "data/raw/credit.csv",
        "models/model",
        "out/a.txt",
        "reports/metrics.json",
        "src/prepare.py",
    )


def test_a_broken_file_or_a_path_outside_the_project_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("stages: [this is: not valid\n")
    (tmp_path / "x.dvc").write_text("outs:\n- path: ../../elsewhere.csv\n- path: s3://bucket/key\n- path: ok.csv\n")
    assert dvc_tracked_paths(tmp_path, ["dvc.yaml", "x.dvc", "missing.dvc"]) == ("ok.csv",)


def test_the_dvc_files_are_found_through_git_at_any_depth(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "dvc.yaml").write_text("stages:\n  s:\n    cmd: x\n    outs: [result.bin]\n")
    (tmp_path / "images.dvc").write_text("outs:\n- path: images\n")
    assert dvc_tracked_paths(tmp_path) == ("images", "sub/result.bin")


def test_which_files_name_dvc_tracked_paths() -> None:
    assert is_dvc_metafile("data/raw/credit.csv.dvc")
    assert is_dvc_metafile("dvc.yaml") and is_dvc_metafile("sub/dvc.lock")
    assert not is_dvc_metafile("params.yaml") and not is_dvc_metafile(".dvc/config")
