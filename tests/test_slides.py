"""`make slides` and `make html` render offline, and the lecture is a deck an instructor can project: in headless
Chromium (Debian's, driven by Playwright, the page served from loopback), at 1280x720 and at 1024x768, the right
arrow visits every slide and fragment in order, every slide fits once MathJax has typeset it and all its fragments
are shown, and no request leaves loopback (fonts imported by a style sheet included). `make handout` prints one PDF
page per slide, none blank (poppler-utils' pdfinfo and pdftoppm). No raw TeX is left in the deck, in `make html`'s
pages or in the exercise notebooks' HTML. Screenshots land in _build/test_slides/."""

import functools
import html.parser
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from browser import chromium, refuse_outside_loopback, serve
from conftest import REPO

LECTURE = REPO / "week13" / "week13.ipynb"
DECK = REPO / "_build" / "slides" / "week13.slides.html"
HANDOUT = REPO / "_build" / "slides" / "week13.pdf"
SCREENSHOTS = REPO / "_build" / "test_slides"
SIZES = [(1280, 720), (1024, 768)]  # a 16:9 projector, and an old 4:3 one


@functools.cache
def make(target: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    subprocess.run(["make", "--no-print-directory", target], cwd=REPO, env=env, check=True, capture_output=True)


class Loads(html.parser.HTMLParser):
    """Every address the page fetches by itself: src of any tag, href of stylesheets, scripts and icons."""

    def __init__(self):
        super().__init__()
        self.addresses = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("src"):
            self.addresses.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.addresses.append(attrs["href"])


class Sections(html.parser.HTMLParser):
    """The deck's slides as reveal counts them: <section> elements with no <section> inside; and, per top-level
    section, whether it holds speaker notes."""

    def __init__(self):
        super().__init__()
        self.stack, self.slides, self.notes = [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            if self.stack:
                self.stack[-1]["children"] = True
            self.stack.append({"children": False, "notes": False})
        elif tag == "aside" and ("class", "notes") in attrs and self.stack:
            for section in self.stack:
                section["notes"] = True

    def handle_endtag(self, tag):
        if tag == "section" and self.stack:
            section = self.stack.pop()
            self.slides += not section["children"]
            if not self.stack:
                self.notes.append(section["notes"])


def network_loads(page: Path) -> list[str]:
    text = page.read_text()
    parser = Loads()
    parser.feed(text)
    remote = [a for a in parser.addresses if re.match(r"(https?:)?//", a)]
    remote += re.findall(r"@import\s+url\(['\"]?(?:https?:)?//[^)]*\)", text)
    remote += [host for host in ("unpkg.com", "cdnjs.cloudflare.com", "cdn.jsdelivr.net") if host in text]
    return remote


def test_slides_load_nothing_from_the_network():
    make("slides")
    assert DECK.exists()
    assert network_loads(DECK) == []
    parser = Loads()
    parser.feed(DECK.read_text())
    local = [a for a in parser.addresses if "node_modules" in a]
    assert any("mathjax/MathJax.js" in a for a in local) and any("reveal.css" in a for a in local)
    for address in local:  # each asset the deck names is where the deck says it is
        assert (DECK.parent / address.split("?")[0]).resolve().is_file(), address


def test_html_of_every_notebook_loads_nothing_from_the_network():
    make("html")
    pages = sorted((REPO / "_build" / "html").glob("*.html"))
    notebooks = sorted(REPO.glob("notebooks/*.ipynb")) + sorted(REPO.glob("week13/*.ipynb"))
    assert {p.stem for p in pages} >= {n.stem for n in notebooks}
    for page in pages:
        assert network_loads(page) == [], page.name


class RawTeX(html.parser.HTMLParser):
    """Text blocks (paragraphs, list items, table cells, headings) whose text outside its maths delimiters still holds
    TeX: a `$`, a `\\command`, a `^{` or `_{`. MathJax typesets maths within one block only, so a formula that
    Markdown split across two blocks (a wrapped line that starts with `- ` becomes a list item) stays raw TeX on the
    page. Code, preformatted outputs and scripts are not text blocks."""

    BLOCKS = {"p", "li", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "blockquote", "figcaption"}
    NOT_TEXT = {"pre", "code", "script", "style", "svg", "textarea"}
    MATHS = re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|(?<!\\)\$.+?(?<!\\)\$", re.S)
    TEX = re.compile(r"(?<!\\)\$|\\[A-Za-z]+|[\^_]\{")

    def __init__(self):
        super().__init__()
        self.blocks, self.not_text, self.raw = [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag in self.NOT_TEXT:
            self.not_text += 1
        elif tag in self.BLOCKS:
            self.blocks.append([tag, ""])

    def handle_endtag(self, tag):
        if tag in self.NOT_TEXT:
            self.not_text = max(0, self.not_text - 1)
        elif tag in self.BLOCKS and self.blocks and self.blocks[-1][0] == tag:
            tag, text = self.blocks.pop()
            if self.TEX.search(self.MATHS.sub(" ", text)):
                self.raw.append(f"<{tag}> " + " ".join(text.split())[:160])

    def handle_data(self, data):
        if self.blocks and not self.not_text:
            self.blocks[-1][1] += data


def raw_tex(page_html: str) -> list[str]:
    parser = RawTeX()
    parser.feed(page_html)
    return parser.raw


def test_raw_tex_is_found_where_markdown_splits_a_formula():
    """The lecture's slide "The terms to compute" as it once was: the inline formula wrapped before its minus sign."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    split = "the gradient of $\\log p(\\boldsymbol{x}\\mid\\boldsymbol{h})\n- \\mathcal{D}[Q\\,\\|\\,p]$."
    whole = split.replace("\n- ", " -\n") + "\n\n$$\\sum_{i} x_i$$\n\n```\n$ \\x\n```"
    assert [block[:4] for block in raw_tex(markdown2html_mistune(split))] == ["<p> ", "<li>"]
    assert raw_tex(markdown2html_mistune(whole)) == []


def test_no_raw_tex_in_the_deck_the_html_or_the_exercises():
    from nbconvert import HTMLExporter

    make("slides")
    make("html")
    pages = {DECK.name: DECK.read_text()}
    pages |= {page.name: page.read_text() for page in sorted((REPO / "_build" / "html").glob("*.html"))}
    exporter = HTMLExporter()
    for notebook in sorted(REPO.glob("exercises/*.ipynb")) + sorted(REPO.glob("exercises/solutions/*.ipynb")):
        pages[notebook.relative_to(REPO).as_posix()] = exporter.from_filename(str(notebook))[0]
    raw = [f"{name}: {block}" for name, text in pages.items() for block in raw_tex(text)]
    assert not raw, "raw TeX on the rendered page (a formula split by Markdown?):\n" + "\n".join(raw)


def test_every_section_of_the_deck_has_speaker_notes():
    make("slides")
    sections = Sections()
    sections.feed(DECK.read_text())
    missing = [i + 1 for i, has_notes in enumerate(sections.notes) if not has_notes]
    assert sections.notes and not missing, f"sections (horizontal slides) without speaker notes: {missing}"


# In JupyterLab a speaker note (a markdown cell with slide_type "notes") shows like any other cell, so it opens with
# this label; the deck keeps it in reveal's notes window, label included.
NOTE_MARK = "**Speaker note.**"
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")


def markdown_cells(path: Path) -> list[tuple[int, str | None, str]]:
    """The notebook's cells as (index, slide_type, source), code cells with the slide_type "code"."""
    cells = json.loads(path.read_text())["cells"]
    return [(i, c["metadata"].get("slideshow", {}).get("slide_type") if c["cell_type"] == "markdown" else "code",
             "".join(c["source"])) for i, c in enumerate(cells)]


def unmarked_speaker_notes(path: Path) -> list[str]:
    return [f"cell {i}: {source.strip()[:60]!r}" for i, kind, source in markdown_cells(path)
            if kind == "notes" and not source.lstrip().startswith(NOTE_MARK)]


def ends_in_list(markdown: str) -> bool:
    """Whether the markdown's last block is a list item: its last non-blank line is an item, an indented
    continuation of one, or a lazy continuation line of the item's paragraph."""
    lazy = False
    for line in reversed(markdown.rstrip().splitlines()):
        if LIST_ITEM.match(line):
            return True
        if not line.strip():
            if lazy:
                return False
        elif not line[0].isspace():
            lazy = True
    return False


def split_lists(path: Path) -> list[str]:
    """Lists whose items are split between a markdown cell and the next one (speaker notes skipped): in JupyterLab
    each cell renders its own list, with a gap between them."""
    cells = [cell for cell in markdown_cells(path) if cell[1] != "notes"]
    return [f"cells {i} and {j}: ...{a.rstrip().splitlines()[-1][:50]!r} | {b.strip().splitlines()[0][:50]!r}..."
            for (i, kind_a, a), (j, kind_b, b) in zip(cells, cells[1:], strict=False)
            if "code" not in (kind_a, kind_b) and b.strip() and ends_in_list(a)
            and LIST_ITEM.match(b.strip("\n").splitlines()[0])]


def test_every_speaker_note_of_the_lecture_is_marked_as_one():
    notes = [cell for cell in markdown_cells(LECTURE) if cell[1] == "notes"]
    unmarked = unmarked_speaker_notes(LECTURE)
    assert notes and not unmarked, f"speaker notes that do not open with {NOTE_MARK}:\n" + "\n".join(unmarked)


def test_no_list_of_the_lecture_is_split_across_two_cells():
    split = split_lists(LECTURE)
    assert not split, "lists split across two markdown cells (JupyterLab shows a gap mid-list):\n" + "\n".join(split)


def test_split_lists_and_unmarked_notes_are_found(tmp_path):
    """Items wrapped, lazily continued or a speaker note apart still split a list; a paragraph after it does not."""

    def cell(kind, source):
        return {"cell_type": "markdown", "source": source, "metadata": {"slideshow": {"slide_type": kind}}}

    notebook = tmp_path / "split.ipynb"
    notebook.write_text(json.dumps({"cells": [
        cell("slide", "## A\n\n- one\n  wrapped\n"), cell("fragment", "- two"), cell("notes", "3 minutes."),
        cell("fragment", "1. three\nlazily continued"), cell("slide", "Text.\n\n- four\n\nA paragraph."),
        cell("fragment", "\n- five"), cell("notes", NOTE_MARK + " 2 minutes.")]}))
    assert [s.split(":")[0] for s in split_lists(notebook)] == ["cells 0 and 1", "cells 1 and 3"]
    assert [s.split(":")[0] for s in unmarked_speaker_notes(notebook)] == ["cell 2"]


@pytest.fixture(scope="module")
def served_deck():
    """The deck, built by `make slides` and served from loopback; yields its URL."""
    make("slides")
    with serve(REPO) as base:
        yield base + DECK.relative_to(REPO).as_posix()


# What does not fit on the current slide, measured in the slide's own coordinates (1280 x 720 whatever the screen):
# content taller than the slide, anything reaching past its edges, and any box that clips or scrolls its content.
MEASURE = """() => {
    const slide = Reveal.getCurrentSlide(), config = Reveal.getConfig(), scale = Reveal.getScale();
    const box = document.querySelector('.reveal .slides').getBoundingClientRect();
    const problems = [];
    if (slide.scrollHeight > config.height + 1)
        problems.push(`content ${slide.scrollHeight} px tall on a ${config.height} px slide`);
    const describe = (el) => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string'
        ? '.' + el.className.trim().split(/\\s+/)[0] : '') + ' "' + (el.textContent || '').trim().slice(0, 40) + '"';
    for (const el of slide.querySelectorAll('*')) {
        if (el.closest('aside.notes') || el.closest('.MJX_Assistive_MathML')) continue;
        const r = el.getBoundingClientRect();
        if (r.width === 0 && r.height === 0) continue;
        const past = Math.max(r.right - box.right, box.left - r.left, r.bottom - box.bottom) / scale;
        if (past > 2) { problems.push(`${describe(el)} reaches ${Math.round(past)} px past the slide`); break; }
        const style = getComputedStyle(el);
        const clips = (o) => o === 'auto' || o === 'scroll' || o === 'hidden';
        if ((clips(style.overflowX) && el.scrollWidth > el.clientWidth + 2) ||
            (clips(style.overflowY) && el.scrollHeight > el.clientHeight + 2)) {
            problems.push(`${describe(el)} clips or scrolls its content`); break;
        }
    }
    const i = Reveal.getIndices();
    let title = slide.querySelector('h1, h2, h3');
    if (title) {  // its text, with the TeX source of its maths rather than MathJax's rendering
        title = title.cloneNode(true);
        title.querySelectorAll('.MathJax_Preview, .MathJax_CHTML, .MJX_Assistive_MathML, .anchor-link')
            .forEach((el) => el.remove());
    }
    return {h: i.h, v: i.v || 0, f: i.f === undefined ? -1 : i.f, number: Reveal.getSlidePastCount() + 1,
            title: title ? title.textContent.trim().slice(0, 60) : '',
            fragments: slide.querySelectorAll('.fragment').length,
            hidden: slide.querySelectorAll('.fragment:not(.visible)').length, problems};
}"""


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_right_arrow_visits_every_slide_and_every_slide_fits(served_deck, chromium_browser, size):
    width, height = size
    context = chromium_browser.new_context(viewport={"width": width, "height": height})
    leaks = refuse_outside_loopback(context)
    page = context.new_page()
    try:
        page.goto(served_deck, wait_until="load")
        page.wait_for_function("window.deckReady === true", timeout=60_000)
        page.add_style_tag(content="* { transition: none !important; }")  # screenshots without half-faded fragments
        assert page.evaluate("document.querySelectorAll('.MathJax_CHTML').length") > 20, "MathJax typeset nothing"
        assert page.evaluate("document.querySelectorAll('.MathJax_CHTML .merror, .MathJax_Error').length") == 0
        total = page.evaluate("Reveal.getTotalSlides()")
        sections = Sections()
        sections.feed(DECK.read_text())
        assert total == sections.slides
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob(f"{width}x{height}-*.png"):
            old.unlink()
        steps, overflowing, shots = [], {}, set()
        for _ in range(10 * total):
            state = page.evaluate(MEASURE)
            steps.append(state)
            if state["hidden"] == 0:  # the slide as it ends, all fragments shown
                if state["problems"]:
                    overflowing[state["number"]] = f"slide {state['number']} ({state['title']}): " + "; ".join(
                        state["problems"])
                if state["number"] not in shots:
                    shots.add(state["number"])
                    page.screenshot(path=SCREENSHOTS / f"{width}x{height}-{state['number']:02d}.png")
            if page.evaluate("Reveal.isLastSlide() && !Reveal.availableFragments().next"):
                break
            page.keyboard.press("ArrowRight")
        visited = [(s["h"], s["v"]) for s in steps]
        slides = list(dict.fromkeys(visited))
        assert len(slides) == total, f"the right arrow visited {len(slides)} of {total} slides"
        assert slides == sorted(slides) and visited == sorted(visited), "the right arrow went back"
        fragments = sum(s["fragments"] for s in steps if s["hidden"] == 0)
        assert len(steps) == total + fragments, "the right arrow skipped a fragment"
        failures = [f"{len(overflowing)} slides do not fit at {width}x{height}:", *overflowing.values()] * bool(
            overflowing) + [f"requests that left loopback: {leaks}"] * bool(leaks)
        assert not failures, "\n".join(failures)
    finally:
        context.close()


def test_handout_has_one_page_per_slide_and_no_blank_page(tmp_path):
    chromium()
    if not (shutil.which("pdfinfo") and shutil.which("pdftoppm")):
        if os.environ.get("CI") == "true":
            pytest.fail("pdfinfo and pdftoppm are needed under CI=true (.ci/run installs Debian's poppler-utils)")
        pytest.skip("no pdfinfo/pdftoppm here: install Debian's poppler-utils to run this test")
    make("handout")
    sections = Sections()
    sections.feed(DECK.read_text())
    info = subprocess.run(["pdfinfo", HANDOUT], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    assert pages == sections.slides, f"{pages} pages for {sections.slides} slides"
    subprocess.run(["pdftoppm", "-gray", "-r", "24", HANDOUT, tmp_path / "page"], check=True)
    blank = []
    for number, pgm in enumerate(sorted(tmp_path.glob("page-*.pgm")), start=1):
        data = pgm.read_bytes()
        _, w, h, _, pixels = re.match(rb"(P5)\s+(\d+)\s+(\d+)\s+(\d+)\s(.*)", data, re.S).groups()
        ink = sum(1 for value in pixels if value < 160) / (int(w) * int(h))
        if ink < 0.005:  # a slide number alone is about 0.05 %
            blank.append(number)
    assert blank == [], f"blank pages: {blank}"
