"""The notebooks: each .py/.ipynb pair holds the same cells, committed outputs are complete and stable."""

import json
import re
from pathlib import Path

import jupytext
import pytest

REPO = Path(__file__).resolve().parents[1]
PAIRS = sorted(p for folder in ("week13", "notebooks") for p in (REPO / folder).glob("*.py"))
NOTEBOOKS = sorted(p for folder in ("week13", "notebooks") for p in (REPO / folder).glob("*.ipynb"))


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_parameters_kernelspec_and_three_checked_cells(path):
    notebook = jupytext.read(path)
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: set the kernel"
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "profile = None" in tagged[0].source, f"{path.name}: needs one parameters cell"
    checked = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith("# NBVAL_CHECK_OUTPUT")]
    assert len(checked) >= 3, f"{path.name}: mark at least three cells of data facts with # NBVAL_CHECK_OUTPUT"
