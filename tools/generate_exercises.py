"""`make exercises`: the student version of each exercise notebook, generated from its solution notebook.

The solutions, exercises/solutions/NN_name.py (py:percent, the source), mark what a student writes:
- the headings `### Exercise: the free energy`, unnumbered: the student version numbers them in order (`### Exercise
  3: the free energy`), so that adding an exercise renumbers nothing by hand;
- code between `### BEGIN SOLUTION` and `### END SOLUTION` lines; inside a function it becomes
  `raise NotImplementedError("exercise 3: the free energy")`, named after the heading above it, so that the check
  cell after it reports "exercise 3: not done yet"; at the top level of a cell (an experiment) it becomes a comment
  inviting the student's own code;
- markdown cells tagged `solution` (the worked answers), which are left out.
The student version is written as exercises/NN_name.py and exercises/NN_name.ipynb, without outputs. With --check,
nothing is written: the exit status says whether the committed student versions are what this script generates.
"""

import argparse
import itertools
import re
import sys
from functools import partial
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parents[1] / "exercises"  # the student versions; the solutions below it
SOLUTIONS = HERE / "solutions"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HEADING = re.compile(r"^(#\s+)?###\s+Exercise\s*:\s*(.+?)\s*$", re.M)  # in a markdown cell (or its .py comment)


def student_source(source: str, label: str, title: str) -> str:
    """A code cell's source with each marked region replaced by its stub."""
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"{label}: {BEGIN} inside another solution region")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            if indent:
                out.append(f'{indent}raise NotImplementedError("{label.lower()}: {title}")')
            else:
                out.append(f"# {label.lower()}: your code here ({title})")
        elif stripped == END:
            if not inside:
                raise ValueError(f"{label}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{label}: {BEGIN} without {END}")
    return "\n".join(out)


def _numbered(numbers, match: re.Match) -> str:
    """A heading `### Exercise: title` as `### Exercise N: title`, N the next of `numbers`."""
    return f"{match.group(1) or ''}### Exercise {next(numbers)}: {match.group(2)}"


def student_notebook(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(metadata=solution.metadata)
    label, title, number = "exercise", "this exercise", 0
    for cell in solution.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "markdown":
            source, found = HEADING.subn(partial(_numbered, itertools.count(number + 1)), cell.source)
            if found:
                number += found
                label, title = f"Exercise {number}", HEADING.findall(cell.source)[-1][1]
            if "solution" in tags:
                continue
            notebook.cells.append(nbformat.v4.new_markdown_cell(source, metadata=cell.metadata))
        elif cell.cell_type == "code":
            source = student_source(cell.source, label, title) if BEGIN in cell.source else cell.source
            notebook.cells.append(nbformat.v4.new_code_cell(source, metadata=cell.metadata))
        else:
            notebook.cells.append(cell)
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number}"  # stable ids: the same solutions give the same file
    return notebook


def generated() -> dict[Path, str]:
    """Each student file (.py and .ipynb) and the text it should hold."""
    files = {}
    for source in sorted(SOLUTIONS.glob("[0-9][0-9]_*.py")):
        py = jupytext.writes(student_notebook(jupytext.read(source)), fmt="py:percent")
        files[HERE / source.name] = py
        # The .ipynb is what JupyterLab writes when a student opens the pair and saves it unedited: the cells as
        # jupytext reads them back from the .py (with its spacing hints), and the kernel's language_info, as in the
        # executed solution. Anything else would show the clone as modified after a save.
        notebook = jupytext.reads(py, fmt="py:percent")
        notebook.metadata["language_info"] = nbformat.read(source.with_suffix(".ipynb"), as_version=4).metadata[
            "language_info"]
        for number, cell in enumerate(notebook.cells):
            cell.id = f"cell-{number}"
        ipynb = jupytext.writes(notebook, fmt="ipynb")
        files[HERE / source.with_suffix(".ipynb").name] = ipynb if ipynb.endswith("\n") else ipynb + "\n"
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed student versions only")
    args = parser.parse_args()
    stale = []
    for path, text in generated().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(HERE.parent))
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print("out of date (run make exercises): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
