"""The package as installed: pins agree between pyproject and environment.yml; importing it stays light."""

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def normalised(requirements):
    return {str(Requirement(r)).replace("_", "-").lower() for r in requirements}


def test_environment_yml_pins_the_same_packages_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = normalised(project["dependencies"] + sum(project["optional-dependencies"].values(), []))
    conda = yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]
    pip_section = next(entry["pip"] for entry in conda if isinstance(entry, dict))
    assert normalised(pip_section) == pinned
    assert all("==" in r for r in pinned), "every dependency is pinned"
    assert not any(r.startswith("torchvision") for r in pinned), "no torchvision (the package draws its own grids)"


def test_import_genmodels_does_not_load_tensorflow_and_silences_it():
    code = ("import os, sys, genmodels, genmodels.data, genmodels.training, genmodels.plotting; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules, "
            "os.environ['TF_CPP_MIN_LOG_LEVEL'], os.environ['TF_ENABLE_ONEDNN_OPTS'])")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("TF_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "False", "3", "0"] and out.stderr == ""


def test_tensorflow_imported_after_genmodels_writes_nothing_to_stderr():
    code = "import genmodels, tensorflow as tf; print(tf.reduce_sum(tf.ones(3)).numpy())"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("TF_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "3.0" and out.stderr == ""
