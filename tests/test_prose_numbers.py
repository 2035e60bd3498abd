"""The prose of every notebook agrees with its own outputs: each number a markdown cell quotes is printed by a cell of
the same notebook, and each "within k standard errors" matches the gaps its cells print.

The rules, in the order they apply to each number of a markdown cell (the committed outputs are the quick profile's):

1. **What is a quoted number.** A number written with a decimal point or a thousands separator (0.33, 1,835), or with
   a result's unit after it (%, ×, nats, standard errors, s.e., seconds, minutes, hours), or after a word of
   measurement (≈, ~, about, roughly, nearly). Signs are ignored (prose may quote −ELBO where
   a cell prints the ELBO). Other integers are counts and sizes the
   text chooses (784 pixels, 500 hidden units, 10 epochs) and are not checked.
2. **Definitions are exempt**: a number right after `=` (a setting or a derivation: η = 10, 0.2 × 784 = 156.8), a
   number inside `code` or a link, a shape written with × between two numbers (784 × 500, 6×4), and the few numbers
   that `DEFINITIONS` lists for one notebook, each with the reason it is part of the text's definitions.
3. **Figures from papers are exempt** when the same sentence names their source: an author and a year, "et al.", a
   link, a book's section or chapter.
4. **The talk's own times are exempt**: minutes in speaker-note cells and in the lecture's plan.
5. **Everything else must be printed nearby**: by an output (stream, text/plain, text/markdown or text/html) of a
   code cell of the sentence's own section (from the heading above it to the next heading), or of the code cells
   right before and after its markdown cell (up to the neighbouring markdown cells: prose reads the cell above it or
   introduces the one below), to the decimals the prose shows (0.67 matches a printed 0.6712, not 0.6751); a
   percentage also matches a printed fraction (97.7 % and 0.977). A number printed only in another section does not
   count: a 0.3 printed somewhere in a long notebook says nothing about the sentence that quotes 0.3. Full-profile
   figures are therefore quoted only where a committed output prints them, which none does: the README's tables have
   the full profile's times and results.
6. **"Within k standard errors"** (also "within its standard error", "within their Monte Carlo error"): each gap in
   standard errors that the code cells on either side print ("1.4 s.e. off", "1.6 standard errors apart") is at
   most k; with no gap printed there, the sentence names the test that checks it (`tests/...`).

The student versions of the exercises (generated, outputs cleared) are skipped; their solutions are checked.
"""

import json
import re
from pathlib import Path

import pytest
from conftest import REPO

NOTEBOOKS = sorted(REPO.glob("week13/*.ipynb")) + sorted(REPO.glob("notebooks/*.ipynb")) + sorted(
    REPO.glob("exercises/solutions/*.ipynb"))

# Rule 2's list: (notebook, number as written) -> why it is part of the text's definitions, not a result.
DEFINITIONS = {
    ("01_rbm_pytorch", "88.7"): "log of float32's largest value, the threshold the text explains",
    ("01_rbm", "88.7"): "log of float32's largest value, the threshold the text explains",
    ("01_rbm_pytorch", "0.9"): "the training's momentum setting",
    ("01_rbm_pytorch", "0.5"): "the run's momentum setting",
    ("02_rbm_keras", "0.9"): "the training's momentum setting",
    ("02_rbm_keras", "0.005"): "the training's learning rate",
    ("01_rbm", "1,000"): "AIS settings the exercise asks to try",
    ("01_rbm", "5,000"): "AIS settings the exercise asks to try",
    ("01_rbm", "14,500"): "AIS settings the exercise asks to try",
    ("00_data_and_setup", "10,000"): "the size of MNIST's test split",
    ("00_data_and_setup", "60,000"): "the size of MNIST's training split",
    ("week13", "60,000"): "the size of MNIST's training split",
    ("04_energy_based_model", "60,000"): "the size of MNIST's training split",
    ("08_yardstick", "10,000"): "the sample size TTUR's README names",
    ("week13", "2,000"): "the number of chains the cell runs",
    ("week13", "100,000"): "the number of samples the cell draws",
    ("00_data_and_setup", "0.01"): "the exercise's target",
    ("03_langevin_sampling", "1.8"): "the target's variances, 1 ± ρ with ρ = 0.8",
    ("03_langevin_sampling", "0.2"): "the target's variances, 1 ± ρ with ρ = 0.8",
    ("04_energy_based_model", "95 %"): "the tutorial's replay-buffer fraction",
    ("04_energy_based_model", "5 %"): "the tutorial's restart fraction",
    ("04_energy_based_model", "0.97"): "the tutorial's learning-rate decay",
    ("04_energy_based_model", "0.5"): "the AUC of chance",
    ("04_energy_based_model", "1.25"): "the temperature of the tutorial's step and noise, (0.005)^2 / (2 * 10)",
    ("05_vae_pytorch", "0.05"): "the quantiles of the latent grid",
    ("05_vae_pytorch", "0.95"): "the quantiles of the latent grid",
    ("06_vae_keras", "0.05"): "the quantiles of the latent grid",
    ("06_vae_keras", "0.95"): "the quantiles of the latent grid",
    ("07_ising_rbm", "25 %"): "the rule that chooses the sampler",
    ("07_ising_rbm", "0.1"): "the scale of the initial weights",
    ("01_rbm", "0.05"): "the learning rate the exercise asks for",
    ("week13", "8,000"): "the size of the quick profile's training set",
    ("week13", "0.5"): "the range of the step-size schedule's exponent in Welling & Teh's conditions",
    ("04_energy_based_model", "0.1"): "the tutorial's gradient-clipping threshold",
    ("04_energy_based_model", "0.005"): "the tutorial's noise scale",
    ("07_ising_rbm", "2.269"): "Onsager's critical temperature, 2 / ln(1 + sqrt 2), which the sentence defines",
    ("08_yardstick", "0.3"): "the noise levels of two reference rows",
}

UNIT = r"%|×|nats?\b|s\.e\.|standard errors?\b|s\b|seconds?\b|minutes?\b|min\b|hours?\b"
NUMBER = re.compile(
    r"(?P<before>≈|~|\babout |\broughly |\bnearly )?(?P<sign>[−-])?(?<![\w.,])"
    r"(?P<digits>\d{1,3}(?:,\d{3})+(?!\d)|\d+\.\d+|\d+)(?![\w.]\d)(?:\s*(?P<unit>" + UNIT + r"))?")
PRINTED = re.compile(r"[−-]?\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|[−-]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
SOURCE = re.compile(r"\(\s*\d{4}\s*\)|\b(?:19|20)\d\d\b|et al\.|https?://|\b[Ss]ections?\b|\b[Cc]hapter|\bch\. \d")
WITHIN = re.compile(r"within (?:(?P<k>one|two|three|four|five|\d+)|its|their|the) (?:standard errors?|Monte Carlo "
                    r"errors?|s\.e\.)")
GAP = re.compile(r"(\d+(?:\.\d+)?) (?:s\.e\.|standard errors?\b)")
WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def printed_text(cell: dict) -> str:
    if cell["cell_type"] != "code":
        return ""
    texts = []
    for output in cell.get("outputs", []):
        texts.append("".join(output.get("text", "")))
        for kind in ("text/plain", "text/markdown", "text/html"):
            texts.append("".join(output.get("data", {}).get(kind, "")))
    return "\n".join(texts)


def printed_numbers(notebook_cells: list[dict]) -> set[float]:
    text = "\n".join(printed_text(cell) for cell in notebook_cells)
    return {float(m.replace(",", "").replace("−", "-")) for m in PRINTED.findall(text)}


def sentences(markdown: str) -> list[str]:
    return re.split(r"(?<=[.!?:;])\s+(?=[A-Z*$(`])|\n\s*\n|\n\s*[-*] ", markdown)


def prose(markdown: str) -> str:
    """The markdown without what rule 2 exempts wholesale: code spans, links' targets, shapes like 784 × 500."""
    text = re.sub(r"`[^`]*`", " ", markdown)
    text = re.sub(r"\]\([^)]*\)", "] ", text)
    return re.sub(r"\d+\s*(?:×|\\times|x)\s*\d+", " ", text)


def is_speaker_note(cell: dict, name: str, index: int) -> bool:
    return cell["metadata"].get("slideshow", {}).get("slide_type") == "notes" or (name == "week13" and index <= 1)


def quoted_numbers(markdown: str, note: bool):
    """The numbers of rule 1 that rules 2 to 4 do not exempt, as (number as written, value, decimals, unit, text)."""
    for sentence in sentences(prose(markdown)):
        if SOURCE.search(sentence):
            continue
        for m in NUMBER.finditer(sentence):
            digits, unit, before = m["digits"], (m["unit"] or "").strip(), m["before"]
            if not ("." in digits or "," in digits or unit or before):
                continue
            if re.search(r"=\s*\$?\s*$", sentence[:m.start()]) or (note and unit.startswith("min")):
                continue
            if unit in ("standard error", "standard errors", "s.e."):
                continue  # rule 6's business
            value = float(digits.replace(",", "")) * (-1 if m["sign"] else 1)
            decimals = len(digits.split(".")[1]) if "." in digits else 0
            written = digits + (f" {unit}" if unit == "%" else "")
            yield written, value, decimals, unit, " ".join(sentence[max(0, m.start() - 60):m.end() + 30].split())


def is_printed(value: float, decimals: int, unit: str, printed: set[float]) -> bool:
    """Whether a printed number rounds to `value` at the prose's `decimals` (a percentage: or a fraction, two more)."""
    wanted = [(abs(value), decimals)] + ([(abs(value) / 100, decimals + 2)] if unit == "%" else [])
    return any(abs(abs(p) - v) <= 0.5 * 10 ** -d + 1e-12 for p in printed for v, d in wanted)


def markdown_cells(notebook_cells: list[dict]):
    """(index, cell, its markdown) of each markdown cell."""
    return [(index, cell, "".join(cell["source"])) for index, cell in enumerate(notebook_cells)
            if cell["cell_type"] == "markdown"]


HEADING = re.compile(r"^#{1,6} ", re.M)


def nearby_code_cells(notebook_cells: list[dict], index: int) -> list[dict]:
    """Rule 5's cells for the markdown cell at `index`: the code cells of its section, and the runs of code cells
    right before and after it."""
    section, sections = 0, []
    for cell in notebook_cells:
        section += cell["cell_type"] == "markdown" and bool(HEADING.search("".join(cell["source"])))
        sections.append(section)
    nearby = [i for i, cell in enumerate(notebook_cells) if sections[i] == sections[index]]
    for step in (-1, 1):
        i = index + step
        while 0 <= i < len(notebook_cells) and notebook_cells[i]["cell_type"] == "code":
            nearby.append(i)
            i += step
    return [notebook_cells[i] for i in sorted(set(nearby)) if notebook_cells[i]["cell_type"] == "code"]


def unprinted_numbers(name: str, notebook_cells: list[dict]) -> list[str]:
    found = []
    for index, cell, markdown in markdown_cells(notebook_cells):
        note = is_speaker_note(cell, name, index)
        printed = printed_numbers(nearby_code_cells(notebook_cells, index))
        for written, value, decimals, unit, context in quoted_numbers(markdown, note):
            if (name, written) in DEFINITIONS or (name, written.split(" ")[0]) in DEFINITIONS:
                continue
            if not is_printed(value, decimals, unit, printed):
                found.append(f"{name}, markdown cell {index}: {written} is printed by no cell of its section or "
                             f"beside it: ...{context}...")
    return found


def standard_error_claims(name: str, notebook_cells: list[dict]) -> list[str]:
    found = []
    for index, cell, markdown in markdown_cells(notebook_cells):
        for sentence in sentences(markdown):
            for m in WITHIN.finditer(sentence):
                k = WORDS[m["k"]] if m["k"] in WORDS else float(m["k"] or 1)
                neighbours = [c for c in notebook_cells[max(0, index - 1):index + 2] if c is not cell]
                gaps = [float(g) for c in neighbours for g in GAP.findall(printed_text(c))]
                if not gaps and "tests/" not in sentence:
                    found.append(f"{name}, markdown cell {index}: '{m[0]}' but no cell beside it prints a gap in "
                                 "standard errors, and the sentence names no test")
                for gap in gaps:
                    if gap > k:
                        found.append(f"{name}, markdown cell {index}: '{m[0]}' but a cell beside it prints a gap "
                                     f"of {gap} standard errors")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_number_the_prose_quotes_is_printed(path):
    found = unprinted_numbers(path.stem, cells(path))
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_within_k_standard_errors_holds_for_the_printed_gaps(path):
    found = standard_error_claims(path.stem, cells(path))
    assert not found, "\n".join(found)


def test_the_rules_read_numbers_as_written():
    printed = printed_numbers([{"cell_type": "code", "outputs": [
        {"text": "sd per sample [0.33, 0.6712]  accuracy 0.977  energy -1.7549  1,835 s"}]}])
    quoted = {w: (v, d, u) for w, v, d, u, _ in quoted_numbers(
        "The sd is 0.67, its energy −1.75, accuracy 97.7 %, in 1,835 s; η = 0.25 and `lr=0.5` and a 784 × 500 RBM; "
        "about 0.5 nats.\n\nKingma and Welling (2014) report 0.99.", note=False)}
    assert set(quoted) == {"0.67", "1.75", "97.7 %", "1,835", "0.5"}
    assert all(is_printed(*quoted[w], printed) for w in ("0.67", "1.75", "97.7 %", "1,835"))
    assert not is_printed(*quoted["0.5"], printed) and not is_printed(0.58, 2, "", printed)
    assert not is_printed(0.68, 2, "", printed)  # 0.6712 rounds to 0.67, not 0.68


def markdown(text: str, notes: bool = False) -> dict:
    metadata = {"slideshow": {"slide_type": "notes"}} if notes else {}
    return {"cell_type": "markdown", "source": text, "metadata": metadata}


def test_the_rules_catch_a_wrong_standard_error_claim_an_unprinted_number_and_a_full_profile_figure():
    """Rule 6 against the gaps a neighbouring cell prints (as "1.4 s.e. off" or "1.6 standard errors apart"); rule 5
    against a number no cell prints, such as a full-profile figure; rule 4 for a talk's minutes."""
    printed = {"cell_type": "code", "outputs": [{"text": "KL = 2.9702 ± 0.0031 nats, 1.4 s.e. off\n"
                                                         "ELBO 1.6 standard errors apart\n"}]}
    wrong = [printed, markdown("They agree within their standard error.")]
    assert len(standard_error_claims("scratch", wrong)) == 2  # 1.4 and 1.6 both exceed one
    assert not standard_error_claims("scratch", [printed, markdown("They agree within two standard errors.")])
    assert standard_error_claims("scratch", [markdown("It agrees within one standard error.")])  # no gap printed
    assert not standard_error_claims("scratch", [markdown("Within its standard error (`tests/test_x.py`).")])
    assert unprinted_numbers("scratch", [printed, markdown("The KL is 2.97 nats; the full profile takes 564 s.")]) \
        == ["scratch, markdown cell 1: 564 is printed by no cell of its section or beside it: ...The KL is 2.97 nats; "
            "the full profile takes 564 s...."]
    assert not unprinted_numbers("scratch", [printed, markdown("About 15 minutes: the KL slide.", notes=True)])


def test_a_number_printed_in_another_section_does_not_count():
    def code(text):
        return {"cell_type": "code", "metadata": {}, "source": [], "outputs": [{"text": text}]}

    notebook = [markdown("## One"), code("accuracy 0.977"), markdown("## Two"), code("loss 1.25"),
                markdown("The loss is 1.25 and the accuracy 97.7 %."), markdown("## Three\n\nAgain 1.25."),
                code("nothing")]
    found = unprinted_numbers("demo", notebook)
    assert [line.split(":")[0] for line in found] == ["demo, markdown cell 4", "demo, markdown cell 5"]
    assert "97.7 %" in found[0] and "1.25" in found[1]
