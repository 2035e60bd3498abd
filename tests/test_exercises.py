"""The exercise notebooks and their checks (genmodels.exercises): every check passes on the package's own
implementation, names each known mistake (written here as small wrong functions, as a student would write them),
rejects bad input clearly, and reports an unfilled stub as "not done yet". The committed student versions are what
`make exercises` generates, and they run top to bottom with no error."""

import math
import re
import subprocess
import sys

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO

from genmodels import exercises, vae
from genmodels.exercises import grading

EXERCISES = REPO / "exercises"
STUDENT_NOTEBOOKS = sorted(EXERCISES.glob("[0-9][0-9]_*.ipynb"))
SOLUTION_NOTEBOOKS = sorted((EXERCISES / "solutions").glob("[0-9][0-9]_*.ipynb"))


EXERCISE_SPECS = {spec.title: spec for spec in exercises.SPECS if isinstance(spec, grading.Exercise)}  # all but
# the Keras Sampling layer's, which checks a class on the statistics of its draws
MISTAKES = [(title, i) for title, spec in EXERCISE_SPECS.items() for i in range(len(spec.mistakes))]


def failure(check, student) -> str:
    with pytest.raises(AssertionError) as error:
        check(student)
    return str(error.value)


# --- every check, generically -------------------------------------------------------------------------------------


def test_at_least_thirty_implementation_exercises_have_a_check_one_per_spec():
    checks = [name for name in exercises.__all__ if name.startswith("check_")]
    assert len(checks) >= 30 and checks == [f"check_{spec.name}" for spec in exercises.SPECS]
    assert len(EXERCISE_SPECS) == len(checks) - 1  # titles are unique


@pytest.mark.parametrize("title", sorted(EXERCISE_SPECS))
def test_each_check_passes_on_the_package_implementation(title, capsys):
    spec = EXERCISE_SPECS[title]
    grading.verify(spec.reference, spec)
    line = capsys.readouterr().out
    assert line.startswith(f"✓ {title}: matches the package on {len(spec.cases)} inputs") and line.count("\n") == 1


@pytest.mark.parametrize("title, index", MISTAKES)
def test_each_known_mistake_is_named_before_the_numbers(title, index):
    spec = EXERCISE_SPECS[title]
    message = failure(lambda student: grading.verify(student, spec), spec.mistakes[index].wrong)
    assert message.startswith(f"{title}: {spec.mistakes[index].message}")
    assert "expected" in message and "got" in message


def test_every_check_hides_its_frames_from_tracebacks():
    hidden = [name for name in exercises.__all__ if name.startswith("check_")
              and "__tracebackhide__" in getattr(exercises, name).__code__.co_varnames]
    assert len(hidden) == len([n for n in exercises.__all__ if n.startswith("check_")])
    for helper in (grading.verify, grading._verify_case, grading._call_student, grading._as_numbers):
        assert "__tracebackhide__" in helper.__code__.co_varnames


# --- the known mistakes, as a student writes them -----------------------------------------------------------------


def test_ula_noise_sqrt_eta_is_named_the_chain_samples_p_squared():
    def ula_step(x, grad_log_p, step_size, noise):
        return x + step_size * grad_log_p + math.sqrt(step_size) * noise

    assert failure(exercises.check_ula_step, ula_step).startswith(
        "the ULA step: your noise is √η: the chain samples p²")


def test_free_energy_with_log_one_plus_exp_is_named_overflow():
    def free_energy(v, W, b, c):
        return -(v @ b) - torch.log(1 + torch.exp(c + v @ W)).sum(1)

    assert "log(1 + exp(x)) overflows to inf once x > 88" in failure(exercises.check_free_energy, free_energy)


def test_free_energy_as_mean_energy_is_named():
    def free_energy(v, W, b, c):
        p = torch.sigmoid(c + v @ W)
        return -(v @ b) - (p * (c + v @ W)).sum(1)

    assert "that is ⟨E(v, h)⟩ under p(h|v), the mean energy, not the free energy" in failure(
        exercises.check_free_energy, free_energy)


def test_sampled_hidden_statistics_are_named_where_the_lecture_uses_probabilities():
    def cd_statistics(v, v_neg, W, c):
        h, h_neg = torch.bernoulli(torch.sigmoid(c + v @ W)), torch.bernoulli(torch.sigmoid(c + v_neg @ W))
        return v.T @ h / len(v) - v_neg.T @ h_neg / len(v_neg), v.mean(0) - v_neg.mean(0), h.mean(0) - h_neg.mean(0)

    assert "two calls on the same input gave different statistics: you sampled the hidden units" in failure(
        exercises.check_cd_statistics, cd_statistics)


def test_cd_sign_error_is_named():
    def cd_statistics(v, v_neg, W, c):
        ph, ph_neg = torch.sigmoid(c + v @ W), torch.sigmoid(c + v_neg @ W)
        return (v_neg.T @ ph_neg / len(v_neg) - v.T @ ph / len(v), v_neg.mean(0) - v.mean(0),
                ph_neg.mean(0) - ph.mean(0))

    assert "a sign error: the gradient of log p is the positive phase" in failure(
        exercises.check_cd_statistics, cd_statistics)


def test_sgld_without_n_over_n_is_named():
    def sgld_step(theta, grad_log_prior, grad_log_likelihood, n_data, batch_size, eps, noise):
        return theta + eps / 2 * (grad_log_prior + grad_log_likelihood) + math.sqrt(eps) * noise

    assert "the N/n factor is missing" in failure(exercises.check_sgld_step, sgld_step)


def test_sigma_as_exp_log_var_is_named_in_the_sample_and_in_the_keras_layer():
    def reparameterise(mu, log_var, eps):
        return mu + torch.exp(log_var) * eps

    assert "σ = exp(½ log σ²), not exp(log σ²)" in failure(exercises.check_reparameterise, reparameterise)

    import keras

    from genmodels import vae_keras

    class Sampling(vae_keras.Sampling):  # the course's layer, its seeded generator, and σ = exp(log σ²) in call
        def call(self, inputs):
            mu, log_var = inputs
            return mu + keras.ops.exp(log_var) * keras.random.normal(keras.ops.shape(mu), seed=self.seed_generator)

    assert "σ = exp(½ log σ²), not exp(log σ²)" in failure(exercises.check_sampling_layer, Sampling)


def test_the_keras_sampling_layer_passes_and_a_stub_is_not_done(capsys):
    from genmodels import vae_keras

    exercises.check_sampling_layer(vae_keras.Sampling)
    assert capsys.readouterr().out.startswith("✓ the Keras Sampling layer: 20,000 draws")

    import keras

    class Sampling(keras.layers.Layer):
        def __init__(self, seed=None, **kwargs):
            super().__init__(**kwargs)

        def call(self, inputs):
            raise NotImplementedError("exercise 7: the Keras Sampling layer")

    exercises.check_sampling_layer(Sampling)
    assert capsys.readouterr().out == "exercise 7: not done yet\n"


def test_kl_without_its_minus_k_term_is_named():
    def kl_standard_normal(mu, log_var):
        return 0.5 * (log_var.exp() + mu**2 - log_var).sum(-1)

    assert "the -k term is missing (-1 per latent dimension)" in failure(exercises.check_kl_standard_normal,
                                                                        kl_standard_normal)

    def kl_gaussians(mu_q, log_var_q, mu_p, log_var_p):
        return 0.5 * ((log_var_q - log_var_p).exp() + (mu_q - mu_p) ** 2 / log_var_p.exp() + log_var_p
                      - log_var_q).sum(-1)

    assert "the -k term is missing" in failure(exercises.check_kl_gaussians, kl_gaussians)


def test_iwae_without_log_k_is_named():
    def iwae_bound(log_weights):
        return torch.logsumexp(log_weights, 0)

    assert "log K is missing" in failure(exercises.check_iwae_bound, iwae_bound)


def test_a_sum_over_the_wrong_axis_is_named_as_a_shape_error():
    def kl_standard_normal(mu, log_var):
        return 0.5 * (log_var.exp() + mu**2 - 1 - log_var).sum(0)

    message = failure(exercises.check_kl_standard_normal, kl_standard_normal)
    assert "shape" in message.split("\n")[0] and "wrong axis" in message.split("\n")[0]

    def free_energy(v, W, b, c):
        return -(v @ b).sum() - F.softplus(c + v @ W).sum()

    message = failure(exercises.check_free_energy, free_energy)
    assert "shape" in message.split("\n")[0]


def test_numpy_where_a_tensor_is_needed_is_named():
    def free_energy(v, W, b, c):
        v, W, b, c = (t.detach().numpy() for t in (v, W, b, c))
        return -(v @ b) - np.logaddexp(0, c + v @ W).sum(1)

    assert "you returned a NumPy array where a torch tensor is needed" in failure(exercises.check_free_energy,
                                                                                   free_energy)


def test_a_result_autograd_cannot_differentiate_is_named():
    def kl_standard_normal(mu, log_var):
        return torch.tensor(vae.kl_standard_normal(mu, log_var).tolist())

    assert "autograd cannot differentiate your result" in failure(exercises.check_kl_standard_normal,
                                                                  kl_standard_normal)


# --- bad input --------------------------------------------------------------------------------------------------


def test_an_unfilled_stub_is_not_done_yet_not_an_error(capsys):
    def free_energy(v, W, b, c):
        raise NotImplementedError("exercise 4: the free energy, stably")

    exercises.check_free_energy(free_energy)
    assert capsys.readouterr().out == "exercise 4: not done yet\n"


def test_a_value_instead_of_a_function_is_named():
    message = failure(exercises.check_free_energy, torch.zeros(3))
    assert message.startswith("the free energy F(v): the check expects your function itself")


def test_a_function_with_the_wrong_signature_is_named():
    def free_energy(v, W):
        return v @ W

    message = failure(exercises.check_free_energy, free_energy)
    assert "your function's signature is free_energy(v, W)" in message and "free_energy(v, W, b, c)" in message


def test_a_function_that_changes_its_inputs_in_place_is_named():
    def pseudo_log_likelihood(v, W, b, c, i):
        rows = torch.arange(len(v))
        f_v = -(v @ b) - F.softplus(c + v @ W).sum(1)
        v[rows, i] = 1 - v[rows, i]  # flips the caller's data
        return len(W) * F.logsigmoid(-(v @ b) - F.softplus(c + v @ W).sum(1) - f_v)

    assert "changed its input `v` in place" in failure(exercises.check_pseudo_log_likelihood, pseudo_log_likelihood)


def test_a_function_returning_nan_is_named():
    def kl_standard_normal(mu, log_var):
        sigma = torch.exp(0.5 * log_var)
        return 0.5 * (sigma**2 + mu**2 - 1 - log_var).sum(-1) * (sigma - sigma).sum(-1) / (mu - mu).sum(-1)  # 0/0

    assert "your result holds NaN or infinite values" in failure(exercises.check_kl_standard_normal, kl_standard_normal)


def test_a_function_far_slower_than_the_reference_is_named(monkeypatch):
    monkeypatch.setattr(grading, "TIME_LIMIT_S", 0.01)  # the check's allowance, shrunk so that the test is fast
    monkeypatch.setattr(grading, "SLOWER_THAN_REFERENCE", 1)

    def free_energy(v, W, b, c):
        total = torch.zeros(len(v))
        for n in range(len(v)):  # a Python loop over examples and units
            for j in range(len(c)):
                total[n] = total[n] - F.softplus(c[j] + v[n] @ W[:, j])
        import time

        time.sleep(0.02)
        return total - v @ b

    assert "your function took" in failure(exercises.check_free_energy, free_energy)


# --- the notebooks ------------------------------------------------------------------------------------------------


def test_committed_student_versions_are_what_make_exercises_generates():
    generator = REPO / "tools" / "generate_exercises.py"
    result = subprocess.run([sys.executable, str(generator), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_implementation_exercise_has_a_stub_and_a_check_compared_by_nbval():
    for path in SOLUTION_NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in notebook.cells)
        assert re.findall(r"^### Exercise:", text, re.M) and not re.findall(r"^### Exercise \d", text, re.M), \
            f"{path.name}: the solutions' headings are unnumbered (### Exercise: title); make exercises numbers them"
        checks = [c for c in notebook.cells if "exercises.check_" in c.source]
        assert checks and all("nbval-check-output" in c.metadata.get("tags", []) for c in checks), path.name
        assert all(c.get("execution_count") for c in checks), f"{path.name} is not executed (nbval would skip it)"
        assert all(c.outputs and c.outputs[0].get("text", "").startswith("✓ ") for c in checks), path.name
    student = [nbformat.read(p, as_version=4) for p in STUDENT_NOTEBOOKS]
    for notebook in student:
        headings = re.findall(r"^### Exercise (\d+):", "\n".join(c.source for c in notebook.cells), re.M)
        assert headings and [int(h) for h in headings] == list(range(1, len(headings) + 1))
    assert not any("BEGIN SOLUTION" in c.source or "solution" in c.metadata.get("tags", []) or c.get("outputs")
                   for nb in student for c in nb.cells)


def test_each_solution_notebook_and_its_py_twin_hold_the_same_cells():
    import jupytext

    for path in SOLUTION_NOTEBOOKS:
        text = [c.source for c in jupytext.read(path.with_suffix(".py")).cells]
        assert [c.source for c in nbformat.read(path, as_version=4).cells] == text, f"{path.name}: run jupytext --sync"


@pytest.mark.parametrize("path", STUDENT_NOTEBOOKS, ids=lambda p: p.name)
def test_an_untouched_student_notebook_runs_to_the_end_and_every_check_is_not_done_yet(path, monkeypatch):
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    monkeypatch.setenv("GENMODELS_PROFILE", "quick")  # the kernel inherits it
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(EXERCISES)}}
                   ).execute()
    checks = [c for c in notebook.cells if "exercises.check_" in c.source]
    for cell in notebook.cells:
        assert not any(o.output_type == "error" or o.get("name") == "stderr" for o in cell.get("outputs", [])), \
            cell.source
    outputs = ["".join(o.get("text", "") for o in c.outputs) for c in checks]
    assert all(re.fullmatch(r"exercise \d+: not done yet\n", out) for out in outputs), outputs
