"""A function's or class's code as the lecture's slides show it: the code alone, highlighted.  Used in week13.

    text  = inspect.getsource(obj), dedented
    drop  every comment, and a line that held only a comment (tokenize finds them: a '#' inside a string stays)
    drop  every docstring: the first statement of a module, class or function body when it is a string constant
          (ast finds them, with their first and last lines)
    close the gaps those leave: runs of blank lines become one

The docstrings and comments are for readers of the file; on a slide the code beside the formula is the point.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import textwrap
import tokenize

__all__ = ["source_without_docstrings", "show_source"]


def source_without_docstrings(obj) -> str:
    """The source of a Python function, method or class without its docstrings and comments (steps above)."""
    text = textwrap.dedent(_source(obj))
    lines = text.splitlines()
    dropped = set()  # line numbers, from 1: comment-only lines and docstrings
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            lines[row - 1] = lines[row - 1][:col].rstrip()
            if not lines[row - 1]:
                dropped.add(row)
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            dropped.update(range(body[0].lineno, body[0].end_lineno + 1))
    kept = [line for number, line in enumerate(lines, 1) if number not in dropped]
    return re.sub(r"\n\s*\n(\s*\n)+", "\n\n", "\n".join(kept)).strip()


def show_source(obj) -> None:
    """Display source_without_docstrings(obj), highlighted as Python, in a notebook (or print it elsewhere)."""
    code = source_without_docstrings(obj)
    try:
        from IPython.display import Code, display
    except ImportError:  # outside Jupyter: plain text
        print(code)
        return
    display(Code(code, language="python"))


def _source(obj) -> str:
    """inspect.getsource, with an error that says why an object has no source to show."""
    name = getattr(obj, "__qualname__", None) or type(obj).__name__
    if not (inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isclass(obj)):
        what = "built into Python or a compiled extension" if inspect.isbuiltin(obj) else f"a {type(obj).__name__}"
        raise TypeError(f"show_source shows the code of a Python function, method or class; {name} is {what}, which "
                        f"has no Python source here: pass a function defined in Python (or read help({name}))")
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError) as error:  # defined where no file keeps its text (exec, a deleted file)
        raise TypeError(f"show_source could not find the source of {name} ({error}): it must be defined in a "
                        "file or a notebook cell") from None
