"""README.md's claims about the repository itself, each checked against what it describes: the disk the environment
takes, the notebooks and exercises it lists, the commands and pins it quotes, the test workers, the command line's
exit statuses and flags. Claims about behaviour are tested where the behaviour lives (tests/test_data.py for the
offline wait, tests/test_lab.py for make lab, tests/test_command_line.py for the messages); README.md's measured times
are not tested (no test times anything but waits)."""

import os
import re
import sys
import tomllib

import pytest
from conftest import REPO

README = (REPO / "README.md").read_text()
TEXT = " ".join(README.split())  # prose with its line breaks undone


def section(heading: str) -> str:
    start = README.index(f"\n## {heading}\n")
    return README[start:README.find("\n## ", start + 1)]


def disk_bytes(path) -> int:
    """What the files under path take on disk (du's figure), symlinks not followed."""
    total = 0
    for root, dirs, files in os.walk(path):
        total += sum(os.lstat(os.path.join(root, name)).st_blocks * 512 for name in files + dirs)
    return total


def test_the_environment_takes_the_disk_the_readme_states():
    import torch

    if sys.prefix == sys.base_prefix:
        pytest.skip("not running in a virtual environment such as make's .venv")
    if torch.version.cuda is not None:
        pytest.skip("PyTorch's CUDA build: the README measures the CPU builds")
    stated = re.search(r"takes about ([\d.]+) GB \(([\d.]+) GiB, as `du -sh .venv` shows it", TEXT)
    measured = disk_bytes(sys.prefix)
    gb, gib = float(stated.group(1)), float(stated.group(2))
    # 10 %: the same pins install the same wheels; __pycache__ files come and go as code runs
    assert abs(measured / 1e9 - gb) <= 0.1 * gb and abs(measured / 2**30 - gib) <= 0.1 * gib, (
        f"{sys.prefix} takes {measured / 1e9:.2f} GB ({measured / 2**30:.2f} GiB); README.md says {gb} GB ({gib} GiB)")


def test_what_is_here_lists_every_notebook_once():
    listed = re.findall(r"^\| `(\w+/\w+)` \|", section("What is here"), re.M)
    notebooks = sorted(str(p.relative_to(REPO).with_suffix("")) for pattern in ("week13/*.py", "notebooks/*.py")
                       for p in REPO.glob(pattern))
    assert sorted(listed) == notebooks


def test_the_exercises_named_are_the_student_notebooks():
    named = re.search(r"has an exercise notebook in `exercises/`: (.*?)\. Each holds", TEXT).group(1)
    student = sorted(p.stem for p in REPO.glob("exercises/[0-9]*.ipynb"))
    assert sorted(re.findall(r"`(\d\d_\w+)`", named)) == student


def test_other_commands_are_make_targets():
    makefile = (REPO / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY: (.*)$", makefile, re.M).group(1).split())
    listed = re.findall(r"^\| `make ([\w-]+)` \|", section("Other commands"), re.M)
    assert listed and set(listed) <= phony, set(listed) - phony


def test_the_pins_the_readme_quotes_are_pyprojects():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    python = project["requires-python"].removeprefix(">=")
    assert f"Python {python} (or newer)" in TEXT and f"sys.version_info >= ({python.replace('.', ', ')})" in (
        REPO / "Makefile").read_text()
    pins = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    torch_pin = next(p for p in pins if p.startswith("torch=="))
    tensorflow_version = next(p for p in pins if p.startswith("tensorflow-cpu==")).split(";")[0].split("==")[1]
    assert f"`{torch_pin}` from PyPI" in TEXT and f"torch=={torch_pin.split('==')[1]} --index-url" in (
        REPO / "Makefile").read_text()
    assert f"`tensorflow[and-cuda]=={tensorflow_version}`" in TEXT
    assert "sys_platform == 'linux' and platform_machine == 'x86_64'" in next(p for p in pins if "tensorflow-cpu" in p)


def test_make_test_runs_the_workers_the_readme_says():
    workers = int(re.search(r"^TEST_WORKERS \?= (\d+)$", (REPO / "Makefile").read_text(), re.M).group(1))
    words = {2: "two", 3: "three", 4: "four"}
    assert f"`make test` runs the test files and notebooks on {words[workers]} pytest-xdist workers" in TEXT


def test_the_command_lines_exit_statuses_and_flags_are_the_readmes(capsys):
    from genmodels import cli

    statuses = re.search(r"the exit status says what happened: (.*?)\. `--traceback`", TEXT).group(1)
    assert sorted(int(n) for n in re.findall(r"(?<![\w-])(\d+) [a-z]", statuses)) == sorted(cli.EXIT_CODES.values())
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["train", "--help"])
    help_text = capsys.readouterr().out
    torchrun = {"--nproc-per-node", "--nnodes", "--rdzv-backend", "--rdzv-endpoint"}  # torchrun's own
    flags = set(re.findall(r"--[a-z-]+", section("GPUs and PyTorch builds"))) - torchrun
    assert {"--lr", "--no-resume", "--traceback"} <= flags and not [f for f in flags if f not in help_text], flags
