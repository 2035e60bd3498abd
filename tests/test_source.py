"""genmodels.source: the lecture's code listings show the code, not its docstrings or comments."""

import math

import pytest

from genmodels import vae
from genmodels.source import show_source, source_without_docstrings


def documented(x, y=2):
    """A docstring,
    over two lines."""
    # a comment on its own line
    z = x + y  # a comment after code

    text = "a '#' inside a string stays"


    return z, text  # the two blank lines above close up to one


class Documented:
    """The class's docstring."""

    def method(self):
        """The method's docstring."""
        return 1


def test_docstrings_comments_and_runs_of_blank_lines_go_and_the_code_stays():
    assert source_without_docstrings(documented) == (
        "def documented(x, y=2):\n"
        "    z = x + y\n"
        "\n"
        "    text = \"a '#' inside a string stays\"\n"
        "\n"
        "    return z, text")


def test_a_class_loses_its_own_and_its_methods_docstrings_and_a_method_is_dedented():
    assert source_without_docstrings(Documented) == "class Documented:\n\n    def method(self):\n        return 1"
    assert source_without_docstrings(Documented.method) == "def method(self):\n    return 1"


def test_the_lectures_listings_keep_their_code():
    listing = source_without_docstrings(vae.elbo_terms)
    assert listing.startswith("def elbo_terms(") and "rsample" in listing and '"""' not in listing


@pytest.mark.parametrize("obj, named", [(len, "len"), (math.sqrt, "sqrt"), (3, "int")])
def test_something_without_python_source_is_a_clear_error(obj, named):
    with pytest.raises(TypeError, match=rf"{named} is .*has no Python source here: pass a function defined in Python"):
        show_source(obj)


def test_a_function_whose_file_is_gone_is_a_clear_error():
    namespace = {}
    exec("def made_by_exec():\n    return 1", namespace)  # no file keeps this text
    with pytest.raises(TypeError, match="could not find the source of made_by_exec"):
        show_source(namespace["made_by_exec"])


def test_show_source_displays_the_listing_and_returns_nothing(capsys):
    assert show_source(Documented.method) is None
    assert "return 1" in capsys.readouterr().out  # IPython's display prints a Code object's text outside Jupyter
