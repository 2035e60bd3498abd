"""`make test-latest`: the course against the newest release of every dependency, before students meet it.

The pins in pyproject.toml keep `make test` green; they also hide the next PyTorch, Keras, TensorFlow, JAX, NumPy,
nbval or jupytext that breaks a notebook. This script tries tomorrow's environment today:

1. the requirements: every name in pyproject.toml's dependencies and extras with its pin dropped (markers kept);
2. `.venv-latest` (beside the pinned `.venv`): `pip install --upgrade --upgrade-strategy eager` of those names, so each
   takes the newest release the package index serves that fits the others (for PyTorch, the newest pip may install
   here), then the package itself, editable and without its pinned dependencies;
3. the newest release served of each name on its own (a dry run without dependencies), to show where the resolver
   held one back for another's sake;
4. what `make test` runs, in that environment: `ruff check .`, then pytest on the package tests and the notebooks'
   nbval regression tests in the quick profile, with a JUnit XML file;
5. `_build/latest/report.md`: the versions (pinned, installed, newest served), what `pip check` says beyond the
   package's own pins, and each failure with its test id and first line of message.

Results change with the day, so it is not part of `.ci/run`. It exits non-zero when a check failed. Run from the
repository root: `python3 tools/latest.py NOTEBOOK.ipynb ...` (the Makefile passes its list of notebooks).
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "_build" / "latest"
NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): jupyter_client and Jupyter-Client are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_requirements() -> list[tuple[str, str, str]]:
    """(name, pinned version, marker) for every dependency and extra of pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    pins = []
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        name = NAME.match(spec).group(1)
        pin = spec.split("==", 1)[1].strip() if "==" in spec else spec[len(name):].strip()
        pins.append((name, pin, marker.strip()))
    return pins


def run(command: list[str], log: Path, env: dict | None = None, echo: bool = False) -> int:
    """Run a command with its output going to `log` (and to the terminal too when `echo`); return its exit status."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(map(str, command))}\n")
        out.flush()
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, bufsize=1)
        for line in process.stdout:
            out.write(line)
            if echo:
                print(line, end="", flush=True)
        return process.wait()


def installed_versions(python: Path) -> dict[str, str]:
    listing = subprocess.run([python, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                             check=True).stdout
    return {canonical(p["name"]): p["version"] for p in json.loads(listing)}


def newest_served(python: Path, requirements: Path, log: Path) -> dict[str, str]:
    """The newest release of each requirement taken alone: pip's dry run without dependencies, its JSON report."""
    report = OUT / "newest.json"
    run([python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps", "--quiet",
         "--report", report, "-r", requirements], log)
    if not report.exists():
        return {}
    return {canonical(item["metadata"]["name"]): item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]}


def test_id(case: ET.Element) -> str:
    """pytest's node id from a JUnit test case (xunit1: `file` is the path, `classname` the dotted module.Class)."""
    path = case.get("file") or case.get("classname", "").replace(".", "/")
    module = re.sub(r"\.py$", "", path).replace("/", ".")  # a notebook keeps its .ipynb in the class name
    classes = case.get("classname", "").removeprefix(module).strip(".")
    return "::".join(part for part in (path, classes.replace(".", "::"), case.get("name")) if part)


ANSI = re.compile(r"(\x1b|#x1B)\[[0-9;]*m")  # colours, raw or as nbval's JUnit text writes them
EXCEPTION = re.compile(r"\b([A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit)): .+")


def summary(message: str, details: str) -> str:
    """One line that says what went wrong: JUnit's message when it says something, else the last exception line of
    the traceback (a notebook cell's, or a subprocess's printed in an assertion)."""
    first = ANSI.sub("", message).strip().splitlines()[:1]
    if first and not re.match(r"(AssertionError: )?(Traceback|assert False|.*Notebook cell execution failed)",
                              first[0]):
        return first[0][:300]
    found = [m.group(0) for m in EXCEPTION.finditer(ANSI.sub("", details).replace("\\n", "\n"))
             if "Traceback" not in m.group(0)]
    return (found[-1] if found else (first[0] if first else "")).replace("\\'", "'")[:300]


def junit_outcomes(junit: Path) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
    """Counts of each outcome, and (outcome, test id, first line of message) for each failure, error and skip."""
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    problems = []
    if not junit.exists():
        return counts, problems
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            counts["passed"] += 1
            continue
        kind = {"failure": "failed"}.get(outcome.tag, outcome.tag)
        counts[kind] += 1
        problems.append((kind, test_id(case), summary(outcome.get("message") or "", outcome.text or "")))
    return counts, problems


def collected_ids(python: Path, targets: list[str], env: dict) -> list[str]:
    """The node ids pytest collects from `targets`, in the order it runs them."""
    listing = subprocess.run([python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *targets],
                             cwd=REPO, env=env, capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if "::" in line and not line.startswith(("ERROR", "FAILED"))]


def started_tests(log: Path, ids: list[str]) -> list[tuple[str, str | None]]:
    """(node id, outcome) for each test the log shows, None for one that never finished: with -v, pytest prints a
    test's id as the test starts and its outcome on the same line when it ends."""
    by_length = sorted(ids, key=len, reverse=True)
    started = []
    for line in log.read_text().splitlines():
        test = next((i for i in by_length if line == i or line.startswith(i + " ")), None)
        if test:
            outcome = re.search(r" (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", line[len(test):])
            started.append((test, outcome and outcome.group(1).lower()))
    return started


def run_tests(python: Path, targets: list[str], env: dict):
    """pytest on the tests and notebooks, as `make test` runs it, with JUnit XML. A test that kills the process (a
    segfault in a native library) is recorded as crashed, and the tests after it run in a new process."""
    common = ["--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=900", "-v", "-p", "no:cacheprovider",
              "-o", "junit_family=xunit1"]
    ids, status = None, 0
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0, "crashed": 0}
    problems = []
    for attempt in range(1, 6):
        log, junit = OUT / f"pytest-{attempt}.log", OUT / f"junit-{attempt}.xml"
        print(f"== pytest, quick profile, run {attempt} (log: {log.relative_to(REPO)})", flush=True)
        code = run([python, "-m", "pytest", *targets, *common, f"--junitxml={junit}"], log, env, echo=True)
        status = status or code
        run_counts, run_problems = junit_outcomes(junit)
        for kind, n in run_counts.items():
            counts[kind] += n
        problems += run_problems
        if code >= 0 or junit.exists():
            break
        ids = ids or collected_ids(python, targets, env)
        started = started_tests(log, ids)
        crashed = started[-1][0] if started and started[-1][1] is None else None
        for test, outcome in dict(started).items():  # no JUnit file: the outcomes from the log
            if outcome is None:
                continue
            kind = {"xfail": "skipped", "xpass": "passed"}.get(outcome, outcome)
            counts[kind] += 1
            if kind != "passed":
                problems.append((kind, test, f"(the message is in {log.name})"))
        if crashed is None:
            problems.append(("crashed", f"pytest (signal {-code})", f"no test identified: see {log.name}"))
            break
        counts["crashed"] += 1
        problems.append(("crashed", crashed, f"the process died with signal {-code}: see {log.name}"))
        position = ids.index(crashed)
        done = {test for test, _ in started}
        # the rest, but never half a notebook (its cells run in one kernel, in order)
        broken_notebook = crashed.split("::")[0] if crashed.split("::")[0].endswith(".ipynb") else None
        targets = [i for i in ids[position + 1:] if i not in done and not i.startswith(f"{broken_notebook}::")]
        if not targets:
            break
    return status, counts, problems


def version_table(pins, installed, newest) -> list[str]:
    lines = ["| package | pinned | installed here | newest served | |", "|---|---|---|---|---|"]
    for name, pin, marker in pins:
        key = canonical(name)
        have, top = installed.get(key), newest.get(key)
        if have is None:
            lines.append(f"| {name} | {pin} | not for this platform ({marker}) | | |" if marker else
                         f"| {name} | {pin} | **not installed** | {top or ''} | |")
            continue
        notes = []
        if have != pin:
            notes.append("newer than the pin")
        if top and have != top:
            notes.append("**held back** by another package's requirement")
        lines.append(f"| {name} | {pin} | {have} | {top or '?'} | {'; '.join(notes)} |")
    return lines


def other_differences(pins, installed, beside_pins) -> list[str]:
    """The packages other than the direct dependencies whose versions differ between the two environments."""
    direct = {canonical(name) for name, _, _ in pins} | {"genmodels", "pip"}
    if not beside_pins:
        return ["(no `.venv` to compare with)"]
    changed = [f"{name} {installed.get(name, '-')} ({beside_pins.get(name, '-')})"
               for name in sorted(set(installed) | set(beside_pins))
               if name not in direct and installed.get(name) != beside_pins.get(name)]
    return [", ".join(changed)] if changed else ["None."]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="the notebooks nbval checks (the Makefile's NOTEBOOKS)")
    parser.add_argument("--venv", default=".venv-latest", help="the environment's folder (default: .venv-latest)")
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    for old in [*OUT.glob("pytest-*.log"), *OUT.glob("junit-*.xml"), *OUT.glob("*.log"), OUT / "newest.json"]:
        old.unlink(missing_ok=True)
    venv = REPO / args.venv
    python = venv / "bin" / "python"
    pins = pinned_requirements()
    requirements = OUT / "requirements.txt"
    requirements.write_text("".join(f"{name}{'; ' + marker if marker else ''}\n" for name, _, marker in pins))
    started = datetime.datetime.now().astimezone()
    timings = {}

    # 1-2. the environment: newest of everything, then the package without its pins
    tick = time.monotonic()
    install_log = OUT / "install.log"
    print(f"== {args.venv}: the newest release of {len(pins)} dependencies (log: {install_log.relative_to(REPO)})",
          flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    steps = [["install", "--upgrade", "pip"],
             ["install", "--upgrade", "--upgrade-strategy", "eager", "-r", requirements],
             ["install", "--no-deps", "-e", "."]]
    for step in steps:
        if run([python, "-m", "pip", *step], install_log) != 0:
            print(f"pip {' '.join(map(str, step))} failed: see {install_log}", file=sys.stderr)
            return 1
    (venv / ".installed").touch()
    installed = installed_versions(python)
    newest = newest_served(python, requirements, install_log)
    pip_check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True).stdout.splitlines()
    conflicts = [line for line in pip_check if not line.startswith("genmodels ") and "No broken" not in line]
    (OUT / "freeze.txt").write_text(
        subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True).stdout)
    pinned_venv = REPO / ".venv" / "bin" / "python"
    beside_pins = installed_versions(pinned_venv) if pinned_venv.exists() else {}
    timings["install"] = time.monotonic() - tick

    # 3-4. what `make test` runs, in that environment. VENV tells the Makefile, which the browser tests call
    # (`make slides`, `make html`), to render with this environment too.
    shared_data = REPO.parent / "shared" / "data"  # as .ci/run: the MNIST test files beside the clone
    data_note = os.environ.get("GENMODELS_DATA") or (str(shared_data) if (shared_data / "mnist").is_dir() else "")
    env = {**os.environ, "GENMODELS_DATA": data_note, "GENMODELS_PROFILE": "quick", "VENV": args.venv,
           "VIRTUAL_ENV": str(venv),
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}
    tick = time.monotonic()
    print("== ruff check .", flush=True)
    ruff_status = run([venv / "bin" / "ruff", "check", "--output-format", "concise", "."], OUT / "ruff.log", env,
                      echo=True)
    timings["ruff"] = time.monotonic() - tick

    tick = time.monotonic()
    pytest_status, counts, problems = run_tests(python, ["tests", *args.notebooks], env)
    timings["tests"] = time.monotonic() - tick

    # 5. the report
    total = sum(timings.values())
    failures = [p for p in problems if p[0] != "skipped"]
    skips = [p for p in problems if p[0] == "skipped"]
    python_version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                                    capture_output=True, text=True).stdout.strip()
    crashes = f", {counts['crashed']} crashed the process" if counts["crashed"] else ""
    ruff_lines = (OUT / "ruff.log").read_text().splitlines()[1:]
    lines = [
        f"# `make test-latest`, {started:%Y-%m-%d %H:%M %Z}",
        "",
        f"Python {python_version} in `{args.venv}`. {total / 60:.0f} min in all: install {timings['install']:.0f} s, "
        f"ruff {timings['ruff']:.0f} s, tests {timings['tests']:.0f} s. GENMODELS_DATA={data_note or '(unset)'}.",
        "",
        f"**ruff**: {'clean' if ruff_status == 0 else 'findings below'}. **pytest** (exit {pytest_status}): "
        f"{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, "
        f"{counts['skipped']} skipped{crashes}.",
        "",
        "## Versions",
        "",
        "Pinned is pyproject.toml; installed is what pip resolved for all names together; newest served is each name",
        "alone (a difference means another package's requirement held it back).",
        "",
        *version_table(pins, installed, newest),
        "",
        "## Other packages that differ from `.venv`",
        "",
        "What the dependencies brought in (installed here, in `.venv`; `-`: not installed there).",
        "",
        *other_differences(pins, installed, beside_pins),
        "",
        "## pip check",
        "",
        *([f"- {line}" for line in conflicts] or ["No conflicts between the installed packages (the package's own "
                                                   "pins aside, which this environment overrides on purpose)."]),
        "",
        "## Failures",
        "",
        *([f"- {kind}: `{test}`: {message}" for kind, test, message in failures] or ["None."]),
        "",
    ]
    if ruff_status != 0:
        lines += ["## ruff", "", *[f"- {line}" for line in ruff_lines if re.match(r"\S+:\d+:\d+: ", line)], ""]
    if skips:
        lines += ["## Skipped", "", *[f"- `{test}`: {message}" for _, test, message in skips], ""]
    lines += ["## Files", "",
              "In `_build/latest/`: `install.log` (pip), `freeze.txt` (every package installed), `ruff.log`, "
              "`pytest-N.log` (each failure's traceback; a run after a crash is N + 1), `junit-N.xml`, "
              "`requirements.txt` (the unpinned names), `newest.json` (pip's dry run).", ""]
    (OUT / "report.md").write_text("\n".join(lines))
    print(f"== report: {(OUT / 'report.md').relative_to(REPO)} ({total / 60:.0f} min)")
    return 0 if ruff_status == 0 and pytest_status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
