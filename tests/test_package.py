"""The package as installed: pins agree between pyproject and environment.yml; importing it stays light."""

import importlib
import re
import subprocess
import sys
import tomllib

import yaml
from conftest import REPO
from packaging.requirements import Requirement


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


def test_a_torch_optimizer_works_after_genmodels_and_tensorflow():
    """With a CUDA build of PyTorch, torch imports Triton at the first optimizer; Triton loaded after TensorFlow
    segfaults (two copies of LLVM), so `import genmodels` loads it first. CPU builds have no Triton: nothing changes."""
    code = "import genmodels, tensorflow, torch; torch.optim.Adam(torch.nn.Linear(2, 2).parameters()); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", f"exit status {out.returncode}: {out.stderr[-600:]}"


MODULES = sorted(p.stem for p in (REPO / "src" / "genmodels").glob("*.py") if p.stem not in ("__init__", "__main__"))


def used_names(text: str, module_path: str | None = None) -> dict[str, set[str]]:
    """The names each genmodels module is asked for in a source file: `from genmodels(.mod) import ...`,
    `from .mod import ...` inside the package, and `alias.name` for modules imported by name or alias."""
    used: dict[str, set[str]] = {}
    aliases = {}
    for names in re.findall(r"^\s*from (?:genmodels|\.)\s+import ([\w, ]+)", text, re.M):
        for item in names.split(","):
            name, _, alias = item.strip().partition(" as ")
            if name in MODULES:
                aliases[alias or name] = name
    for module, names in re.findall(r"^\s*from (?:genmodels|)\.(\w+) import ([\w, ]+)", text, re.M):
        used.setdefault(module, set()).update(n.strip().partition(" as ")[0] for n in names.split(","))
    for module in re.findall(r"^\s*import genmodels\.(\w+)", text, re.M):
        aliases[f"genmodels.{module}"] = module
    for alias, module in aliases.items():
        pattern = rf"(?<![\w./\"']){re.escape(alias)}\.([A-Za-z]\w*)"  # not inside a path or a longer name
        used.setdefault(module, set()).update(re.findall(pattern, text))
    return used


def test_the_package_map_names_every_module_and_each_module_lists_what_others_use():
    """genmodels/__init__'s docstring is the map (every module in it); each module's __all__ holds real names and
    everything the notebooks, the lecture, the benchmarks and the other modules take from it."""
    import genmodels

    missing_from_map = [m for m in MODULES if f"\n    {m} " not in genmodels.__doc__]
    assert not missing_from_map, f"modules missing from the map in genmodels/__init__.py: {missing_from_map}"
    sources = [*REPO.glob("notebooks/*.py"), *REPO.glob("week13/*.py"), *REPO.glob("benchmarks/*.py"),
               *(REPO / "src" / "genmodels").glob("*.py")]
    wanted: dict[str, set[str]] = {}
    for path in sources:
        for module, names in used_names(path.read_text()).items():
            wanted.setdefault(module, set()).update(names)
    problems = []
    for module in MODULES:
        text = (REPO / "src" / "genmodels" / f"{module}.py").read_text()
        if "\n__all__ = [" not in text:
            problems.append(f"genmodels.{module} has no __all__")
            continue
        if module in ("rbm_keras", "vae_keras", "keras_training"):  # they import Keras: read, not imported
            start = text.index("\n__all__ = [")
            listed = set(re.findall(r'"(\w+)"', text[start:text.index("]", start)]))
        else:
            imported = importlib.import_module(f"genmodels.{module}")
            listed = set(imported.__all__)
            problems += [f"{module}.__all__ lists {n}, which it does not define" for n in listed
                         if not hasattr(imported, n)]
        problems += [f"{module}.{n} is used but not in its __all__" for n in sorted(wanted.get(module, set()) - listed)]
    assert not problems, "\n".join(problems)


def test_make_help_lists_every_phony_target_with_its_comment():
    import os

    makefile = (REPO / "Makefile").read_text()
    phony = re.search(r"^\.PHONY: (.*)$", makefile, re.M).group(1).split()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    listed = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True,
                            check=True, env=env).stdout
    names = re.findall(r"^make (\S+)", listed, re.M)
    assert sorted(names) == sorted(phony), listed
    assert subprocess.run(["make", "--no-print-directory"], cwd=REPO, capture_output=True, text=True,
                          env=env).stdout == listed  # plain `make` shows the same list
