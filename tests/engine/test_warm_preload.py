"""What a tier's warm server preloads: the third-party modules that tier's tests reach, read from the code."""

from __future__ import annotations

from pathlib import Path

from mlci.engine.run.warm.preload import preload_modules

from tests.loop_projects import write

PROJECT = {
    "src/credit/__init__.py": "",
    "src/credit/train.py": "import mlflow\nimport torch\nfrom .features import scale\n",
    "src/credit/features.py": "import numpy as np\n\ndef scale(x):\n    import scipy.stats\n    return x\n",
    "src/credit/drift.py": "from . import features\nimport pandas as pd\n",
    "tests/conftest.py": "import pytest\n",
    "tests/unit/helpers.py": "import hypothesis\n",
    "tests/unit/test_features.py": "from credit.features import scale\nimport helpers\n",
    "tests/data/conftest.py": "import pandera\n",
    "tests/data/test_drift.py": "from credit import drift\n",
    "tests/model/test_model.py": "from credit import train\n",
    "scripts/deploy.py": "import boto3\n",
}


def project(tmp_path: Path) -> Path:
    for name, text in PROJECT.items():
        write(tmp_path / name, text)
    return tmp_path


def test_each_tier_preloads_only_what_its_tests_reach_through_the_projects_modules(tmp_path: Path) -> None:
    root = project(tmp_path)
    # A function-level import counts (it runs when a test calls the function); a helper beside the tests and
    # the conftests pytest loads are followed; the project's own modules are never preloaded.
    assert preload_modules(root, ["tests/unit"]) == ("hypothesis", "numpy", "pytest", "scipy.stats")
    # `from . import features` in the package is followed as the project's own module.
    assert preload_modules(root, ["tests/data"]) == ("numpy", "pandas", "pandera", "pytest", "scipy.stats")
    # `from credit import train` imports the submodule, and what it imports is the model tier's.
    assert preload_modules(root, ["tests/model"]) == ("mlflow", "numpy", "pytest", "scipy.stats", "torch")
    # A node id's file, and a script no test imports reaches nothing.
    assert preload_modules(root, ["tests/unit/test_features.py::test_x"]) == preload_modules(root, ["tests/unit"])
    assert "boto3" not in preload_modules(root, ["tests"])


def test_a_helper_of_the_same_name_beside_two_tiers_tests_is_followed_in_both(tmp_path: Path) -> None:
    # Which helpers.py an import finds depends on sys.path; both are read, so neither tier misses its own.
    write(tmp_path / "tests/unit/helpers.py", "import hypothesis\n")
    write(tmp_path / "tests/unit/test_a.py", "import helpers\n")
    write(tmp_path / "tests/data/helpers.py", "import pandera\n")
    write(tmp_path / "tests/data/test_b.py", "import helpers\n")
    write(tmp_path / "tools/shared/io.py", "import pyarrow\n")  # a namespace package (no __init__.py)
    write(tmp_path / "tests/data/test_c.py", "from tools.shared import io\n")
    assert {"hypothesis", "pandera"} <= set(preload_modules(tmp_path, ["tests/unit"]))
    assert {"hypothesis", "pandera", "pyarrow"} <= set(preload_modules(tmp_path, ["tests/data"]))
