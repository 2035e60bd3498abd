"""benchmarks/README.md and the benchmark scripts agree: every target the README states, written as its line begins
(`target ours / bound ≤ 1.15`), is a line its script prints, and every target a script has is stated; each script
takes --repeats and writes _build/bench/NAME.json; `make bench` runs every script but harness.py. Nothing is timed:
the scripts are imported and read, not run."""

import ast
import importlib.util
import os
import re
import subprocess

import pytest
from conftest import REPO

BENCHMARKS = REPO / "benchmarks"
SCRIPTS = sorted(path for path in BENCHMARKS.glob("*.py") if path.name != "harness.py")


@pytest.fixture
def harness(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import harness as their neighbour
    import harness

    return harness


def load(script):
    spec = importlib.util.spec_from_file_location(f"benchmark_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme_sections() -> dict[str, str]:
    """benchmarks/README.md's section of each script, from its heading ## `benchmarks/NAME.py` to the next heading."""
    parts = re.split(r"^## ", (BENCHMARKS / "README.md").read_text(), flags=re.M)
    return {m.group(1): part for part in parts if (m := re.match(r"`benchmarks/(\w+)\.py`", part))}


def result_at(key: str, value: float) -> dict:
    """A benchmark's result holding `value` at `key` ("conv.ours_over_bound": {"conv": {"ours_over_bound": value}})."""
    result = value
    for part in reversed(key.split(".")):
        result = {part: result}
    return result


def calls(tree, name: str) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", None) == name]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_every_target_the_readme_states_is_a_line_its_benchmark_prints(script, harness, capsys):
    module = load(script)
    target_sets = {name: value for name, value in vars(module).items()
                   if isinstance(value, tuple) and value and all(isinstance(t, harness.Target) for t in value)}
    reported = {call.args[0].id for call in calls(ast.parse(script.read_text()), "report_targets")}
    assert target_sets and set(target_sets) <= reported, f"{script.name}: {set(target_sets)}, printed: {reported}"

    printed = set()
    for targets in target_sets.values():
        for target in targets:
            harness.report_targets([target], result_at(target.key, target.bound))  # the script's own call, its figure
            line = capsys.readouterr().out.strip()
            assert line.startswith(f"target {target.wording}: met ("), line
            printed.add(target.wording)
    section = readme_sections().get(script.stem)
    assert section is not None, f"benchmarks/README.md has no section ## `benchmarks/{script.name}`"
    stated = {" ".join(wording.split()) for wording in re.findall(r"`target ([^`…]+)`", section)}
    assert stated == printed, (f"stated in benchmarks/README.md only: {sorted(stated - printed)}; "
                               f"printed by {script.name} only: {sorted(printed - stated)}")


def test_a_target_line_says_met_not_met_or_why_it_was_not_judged(harness, capsys):
    at_most = harness.Target("convolutional VAE: ours / bound", "conv.ours_over_bound", 1.05)
    at_least = harness.Target("ours / numpy", "ours_over_numpy", 2.5, at_most=False)
    results = [{"conv": {"ours_over_bound": 0.98}, "ours_over_numpy": 2.31}, {"conv": {"ours_over_bound": 1.2}}]
    for result in results:
        harness.report_targets([at_most, at_least], result)
    harness.report_targets([at_least], {}, missing="not judged (no NumPy)")
    assert capsys.readouterr().out.splitlines() == [
        "target convolutional VAE: ours / bound ≤ 1.05: met (0.98)", "target ours / numpy ≥ 2.5: NOT met (2.31)",
        "target convolutional VAE: ours / bound ≤ 1.05: NOT met (1.2)", "target ours / numpy ≥ 2.5: not measured in "
        "this run", "target ours / numpy ≥ 2.5: not judged (no NumPy)"]
    assert results[0]["targets_met"] == {at_most.wording: True, at_least.wording: False}
    assert results[1]["targets_met"] == {at_most.wording: False}  # a figure not measured is neither met nor not


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_every_benchmark_takes_repeats_and_writes_its_json(script, harness):
    tree = ast.parse(script.read_text())
    assert calls(tree, "parser"), f"{script.name} does not build its arguments with harness.parser"
    assert "--repeats" in harness.parser("a benchmark", repeats=1).format_help()
    written = {call.args[1].value for call in calls(tree, "write") if isinstance(call.args[1], ast.Constant)}
    assert f"{script.stem}.json" in written, f"{script.name} writes {written}"


def test_make_bench_runs_every_benchmark_but_the_harness():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    commands = subprocess.run(["make", "--no-print-directory", "-n", "bench"], cwd=REPO, capture_output=True,
                              text=True, check=True, env=env).stdout
    loop = re.search(r"for script in ([^;]*);", commands)
    assert loop and loop.group(1).split() == [str(path.relative_to(REPO)) for path in SCRIPTS], commands
