"""genmodels.checks, the one home of the package's input checks: one definition per rule, used everywhere; and the
package's "Taught in" tags, each true."""

import ast
import re
from pathlib import Path

import pytest
import torch
from conftest import REPO

from genmodels import checks, mcmc, rbm, vae

PACKAGE = REPO / "src" / "genmodels"


def test_each_check_rule_is_defined_once_in_the_package():
    """A grep for the rules finds one definition each, in checks.py, and no copy of the momentum test elsewhere."""
    # genmodels.exercises checks a student's functions (check_energy, ...): another kind of check, not an input check
    sources = {p.name: p.read_text() for p in PACKAGE.glob("*.py")}  # not exercises/, the package of those checks
    for rule in ("check_count", "check_rate", "check_momentum", "check_progress", "check_binary", "check_grey_levels",
                 "check_lattice_size", "check_temperature", "check_spins", "check_chain_start", "check_chain_run"):
        homes = [name for name, text in sources.items() if re.search(rf"^def {rule}\(", text, re.M)]
        assert homes == ["checks.py"], (rule, homes)
    copies = [name for name, text in sources.items() if "0 <= mu < 1" in text]
    assert copies == ["checks.py"], copies


@pytest.mark.parametrize("momentum", [(0.5, 1.0), (-0.1, 0.9), 1.5, (), ("fast", 0.9), (True, 0.5)])
def test_momentum_outside_zero_one_is_refused_by_both_rbm_fits_with_one_message(momentum):
    with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\)"):
        rbm.check_cd_settings(k=1, batch_size=10, lr=0.1, momentum=momentum)
    assert checks.check_momentum((0.5, 0.9)) == (0.5, 0.9) and checks.check_momentum(0) == (0.0,)


def test_effective_sample_size_of_a_chain_that_never_moves_is_a_clear_error():
    stuck = torch.zeros(50, 4, 2)
    stuck[..., 1] = torch.randn(50, 4)  # the second coordinate moves, the first never does
    with pytest.raises(ValueError, match=r"never moved in coordinate 0 .*MALA rejected every proposal"):
        mcmc.effective_sample_size(stuck)
    with pytest.raises(ValueError, match=r"never moved"):
        mcmc.integrated_autocorrelation_time(torch.full((20, 3), 1.5))
    moving = torch.randn(50, 4, 2, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(mcmc.effective_sample_size(moving)).all()


@pytest.mark.parametrize("make", [vae.mlp_vae, vae.conv_vae, vae.mlp_autoencoder, vae.conv_autoencoder])
def test_a_vae_without_latent_dimensions_is_a_clear_error(make):
    with pytest.raises(ValueError, match=r"latent_dim must be a whole number >= 1, got 0"):
        make(latent_dim=0)


def _documented(path: Path):
    """(name, docstring) of a module and of every function and class in it."""
    tree = ast.parse(path.read_text())
    yield path.stem, ast.get_docstring(tree) or ""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            yield node.name, ast.get_docstring(node) or ""


def test_every_taught_in_tag_names_a_notebook_that_uses_or_names_the_thing():
    """"Taught in X" in a docstring: notebook X (or the lecture, week13) calls the name in a code cell or names it
    in its text."""
    wrong = []
    for path in sorted(PACKAGE.glob("*.py")):
        for name, doc in _documented(path):
            for notebook in re.findall(r"Taught in (\w+)", doc):
                source = REPO / ("week13/week13.py" if notebook == "week13" else f"notebooks/{notebook}.py")
                if not source.exists():
                    wrong.append(f"{path.stem}.{name}: no notebook {notebook}")
                elif not re.search(rf"(?<!\w){re.escape(name)}(?!\w)", source.read_text()):
                    wrong.append(f"{path.stem}.{name}: {notebook} never mentions {name}")
    assert not wrong, "\n".join(wrong)
