"""Checks for the exercise notebooks (exercises/): the student writes a formula, the check says which mistake it is.

    exercises.check_free_energy(free_energy)   # prints one line when it is right; names the mistake when it is known

One module per exercise notebook, in the notebook's order, holds its specs as data (the call, the package function it
compares with, the inputs, the named mistakes): rbm (01_rbm, with notebook 02's Keras free energy), langevin
(03_langevin), energy_based_model (04_energy_based_model), vae (05_vae), ising (07_ising). `grading` turns each spec
into the check the notebook calls, check_<name>. These are not the package's input checks (genmodels.checks): they
grade code. Adding an exercise: its spec in its notebook's module (and in that module's SPECS), its solution cell in
exercises/solutions/, then `make exercises`.
"""

from . import energy_based_model, grading, ising, langevin, rbm, vae
from .grading import SLOWER_THAN_REFERENCE, TIME_LIMIT_S, WrongAnswer, check_function

NOTEBOOKS = {"01_rbm": rbm, "03_langevin": langevin, "04_energy_based_model": energy_based_model, "05_vae": vae,
             "07_ising": ising}
SPECS = [spec for module in NOTEBOOKS.values() for spec in module.SPECS]  # every spec, in the notebooks' order
CHECKS = {f"check_{spec.name}": check_function(spec) for spec in SPECS}
globals().update(CHECKS)

__all__ = [*CHECKS, "SPECS", "NOTEBOOKS", "grading", "WrongAnswer", "TIME_LIMIT_S", "SLOWER_THAN_REFERENCE"]
