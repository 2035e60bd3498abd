"""The notebooks: each .py/.ipynb pair holds the same cells, committed outputs are complete and stable.

nbval reads its instructions from cell tags (`nbval-check-output`, `nbval-ignore-output`, `nbval-skip`,
`nbval-raises-exception`), which jupytext keeps in the .py twin's cell header: `# %% tags=["nbval-check-output"]`.
To move cells marked the old way (a first line `# NBVAL_CHECK_OUTPUT`) to tags, in both twins:
`.venv/bin/python tests/test_notebooks.py --convert-nbval-markers`.
"""

import ast
import json
import re
import sys
from pathlib import Path

import jupytext
import pytest
from conftest import REPO

PAIRS = sorted(p for folder in ("week13", "notebooks") for p in (REPO / folder).glob("*.py"))
NOTEBOOKS = sorted(p for folder in ("week13", "notebooks") for p in (REPO / folder).glob("*.ipynb"))


NBVAL_TAGS = {"NBVAL_CHECK_OUTPUT": "nbval-check-output", "NBVAL_IGNORE_OUTPUT": "nbval-ignore-output",
              "NBVAL_RAISES_EXCEPTION": "nbval-raises-exception", "NBVAL_SKIP": "nbval-skip"}


def nbval_marker(source: str) -> str | None:
    """The nbval comment marker on a cell's first line (`# NBVAL_CHECK_OUTPUT`), if there is one."""
    first = source.split("\n", 1)[0].strip()
    marker = first.lstrip("#").strip()
    return marker if first.startswith("#") and marker in NBVAL_TAGS else None


def marker_to_tag(source: str, metadata: dict) -> str:
    """The cell's source without its marker line; the marker's tag added to metadata["tags"]."""
    marker = nbval_marker(source)
    if marker is None:
        return source
    tags = metadata.setdefault("tags", [])
    if NBVAL_TAGS[marker] not in tags:
        tags.append(NBVAL_TAGS[marker])
    return source.split("\n", 1)[1] if "\n" in source else ""


def convert_nbval_markers_to_tags(scripts=PAIRS) -> list[Path]:
    """Rewrite each pair so that nbval's comment markers become cell tags, outputs kept; returns the files changed.
    The .ipynb is edited as JSON (nothing else in it changes); the .py is written by jupytext from its own cells."""
    changed = []
    for script in scripts:
        ipynb = script.with_suffix(".ipynb")
        notebook = json.loads(ipynb.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code" and nbval_marker("".join(cell["source"])):
                cell["source"] = marker_to_tag("".join(cell["source"]), cell["metadata"]).splitlines(keepends=True)
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"  # how Jupyter and nbformat write it
        if text != ipynb.read_text():
            ipynb.write_text(text)
            changed.append(ipynb)
        paired = jupytext.read(script)
        for cell in paired.cells:
            if cell.cell_type == "code":
                cell.source = marker_to_tag(cell.source, cell.metadata)
        text = jupytext.writes(paired, fmt="py:percent")
        if text != script.read_text():
            script.write_text(text)
            changed.append(script)
    return changed


def cells(notebook):
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def test_every_notebook_has_its_twin():
    assert NOTEBOOKS, "no notebooks found"
    assert [p.with_suffix(".ipynb") for p in PAIRS] == NOTEBOOKS


@pytest.mark.parametrize("script", PAIRS, ids=lambda p: p.name)
def test_py_and_ipynb_cells_are_identical(script):
    assert cells(jupytext.read(script)) == cells(jupytext.read(script.with_suffix(".ipynb"))), (
        f"{script.name} and its .ipynb differ: run `make sync`, then `make baseline`")


@pytest.mark.parametrize("script", PAIRS, ids=lambda p: p.name)
def test_no_control_characters(script):
    r"""A Python escape in a string that wrote the file (\theta written as "\theta") leaves a tab in the maths."""
    lines = enumerate(script.read_text().splitlines(), 1)
    bad = [(n, line) for n, line in lines if re.search(r"[\x00-\x08\t\x0b-\x1f]", line)]
    assert not bad, f"control characters in {script.name}: {bad[:3]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_was_executed_without_errors(path):
    notebook = json.loads(path.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    unexecuted = [i for i, c in enumerate(code) if c["execution_count"] is None]
    assert not unexecuted, f"{path.name}: code cells {unexecuted} were never executed (nbval would skip them): " \
                           "run `make baseline`"
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: not executed top to bottom in one run"
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"{path.name}: committed with an error output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_hold_no_stderr_widgets_or_figure_reprs(path):
    """Stable outputs for nbval: no TensorFlow or tqdm noise on stderr, no widget ids, no `<Figure ...>` lines."""
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            assert output.get("name") != "stderr", f"{path.name}: stderr output {''.join(output['text'])[:200]!r}"
            data = output.get("data", {})
            assert "application/vnd.jupyter.widget-view+json" not in data, f"{path.name}: a widget in the outputs"
            if output["output_type"] == "execute_result":
                text = "".join(data.get("text/plain", []))
                assert not text.lstrip("[").startswith(("<Figure", "<matplotlib")), (
                    f"{path.name}: a plot's return value was shown ({text[:60]}); end the line with ;")


@pytest.mark.parametrize("path", NOTEBOOKS + PAIRS, ids=lambda p: p.name)
def test_every_committed_notebook_leaves_the_profile_to_the_environment(path):
    """`profile = None`, so GENMODELS_PROFILE decides: quick under `make test`, full under `make run` (which also
    passes it with papermill). A notebook committed with "full" would ignore `make test`; with "quick", a student."""
    notebook = jupytext.read(path)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged parameters, found {len(tagged)}"
    values = {target.id: node.value for node in ast.parse(tagged[0].source).body if isinstance(node, ast.Assign)
              for target in node.targets if isinstance(target, ast.Name)}
    assert "profile" in values, f"{path.name}: the parameters cell does not set profile"
    assert isinstance(values["profile"], ast.Constant) and values["profile"].value is None, (
        f"{path.name}: the parameters cell says profile = {ast.unparse(values['profile'])}; commit it with "
        "profile = None (GENMODELS_PROFILE then decides)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_parameters_kernelspec_and_three_checked_cells(path):
    notebook = jupytext.read(path)
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: set the kernel"
    checked = [c for c in notebook.cells if "nbval-check-output" in c.metadata.get("tags", [])]
    assert len(checked) >= 3, f"{path.name}: tag at least three cells of data facts nbval-check-output"


@pytest.mark.parametrize("path", NOTEBOOKS + PAIRS, ids=lambda p: p.name)
def test_nbval_reads_tags_not_comment_markers(path):
    """One way to say it: tags, which the .py shows in the cell header; a leftover comment would override the tag."""
    notebook = jupytext.read(path)
    marked = [c.source.split("\n", 1)[0] for c in notebook.cells if c.cell_type == "code" and nbval_marker(c.source)]
    assert not marked, (f"{path.name}: {len(marked)} cells carry an nbval comment marker ({marked[0]}): run "
                        "`.venv/bin/python tests/test_notebooks.py --convert-nbval-markers`")


# Notebooks explain, genmodels computes: timing belongs to benchmarks/, threads to genmodels.device.threads_for,
# another Keras backend to genmodels.keras_backends.
PACKAGE_WORK = {"time": "timing (benchmarks/ measure speed)", "timeit": "timing (benchmarks/ measure speed)",
                "subprocess": "a subprocess (genmodels runs other backends)",
                "set_num_threads": "the thread count (genmodels.device.threads_for sets it)",
                "set_num_interop_threads": "the thread count (genmodels.device.threads_for sets it)",
                "perf_counter": "timing (benchmarks/ measure speed)", "system": "a subprocess"}
SOLUTIONS = sorted((REPO / "exercises" / "solutions").glob("*.py"))


def package_work(source: str) -> list[str]:
    """What a notebook's code does that belongs to the package: the imports and calls PACKAGE_WORK names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = ([alias.name.split(".")[0] for alias in node.names] if isinstance(node, ast.Import) else
                 [node.module.split(".")[0]] if isinstance(node, ast.ImportFrom) and node.module else
                 [node.func.attr] if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else [])
        found += [f"line {node.lineno}: {name}, {PACKAGE_WORK[name]}" for name in names if name in PACKAGE_WORK]
    return sorted(found, key=lambda line: int(line.split(":")[0].split()[1]))


@pytest.mark.parametrize("script", PAIRS + SOLUTIONS, ids=lambda p: p.name)
def test_no_notebook_times_code_sets_threads_or_starts_a_subprocess(script):
    found = [f"cell {index}, {work}" for index, cell in enumerate(jupytext.read(script).cells)
             if cell.cell_type == "code" and not cell.source.lstrip().startswith(("%", "!"))
             for work in package_work(cell.source)]
    assert not found, f"{script.name} does package work:\n" + "\n".join(found)


ALL_PAIRS = sorted(p for folder in ("week13", "notebooks", "exercises", "exercises/solutions")
                   for p in (REPO / folder).glob("*.ipynb"))


@pytest.mark.parametrize("path", ALL_PAIRS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_committed_notebook_names_a_tools_version_or_lacks_what_jupyterlab_writes(path):
    """Opening and saving an unedited notebook must leave the clone clean: no jupytext version in either twin (a
    newer jupytext would rewrite it; jupytext.toml's notebook_metadata_filter leaves it out), and the kernel's
    language_info in the .ipynb (JupyterLab adds it on saving)."""
    assert "jupytext_version:" not in path.with_suffix(".py").read_text()
    metadata = json.loads(path.read_text())["metadata"]
    assert "jupytext_version" not in json.dumps(metadata.get("jupytext", {}).get("text_representation", {}))
    assert metadata.get("language_info", {}).get("name") == "python", f"{path.name}: no language_info"


def test_package_work_is_found_in_imports_and_calls():
    code = "import time\nfrom subprocess import run\nimport torch\ntorch.set_num_threads(1)\nx = torch.zeros(3)"
    assert [line.split(":")[0] for line in package_work(code)] == ["line 1", "line 2", "line 4"]


if __name__ == "__main__":
    if sys.argv[1:] != ["--convert-nbval-markers"]:
        sys.exit(f"usage: {sys.argv[0]} --convert-nbval-markers  (rewrites every notebook pair in place)")
    for path in convert_nbval_markers_to_tags():
        print(f"converted {path.relative_to(REPO)}")
