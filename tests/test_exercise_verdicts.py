"""No wrong answer passes an exercise check, and every failure reads in one screen (issue 48).

For every check: wrong implementations of each kind that applies to it are rejected (an exception in the student's
code, a malformed return, a wrong dtype, a gradient cut by NumPy or .detach(), inputs where a coincidence of fixed
numbers would hide the mistake), and a right implementation written differently from the package's is accepted.
Every failure, as IPython shows it in a notebook, is the message first, with no frame of the library, in at most
MAX_LINES lines, and never an "expected" line identical to its "got" line. `COUNTS` tallies them for the closing
note (python tests/test_exercise_verdicts.py prints it).
"""

import importlib.util
import itertools
import json
import math
import runpy
import time

import keras
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import needed
from keras import ops

from genmodels import exercises, mcmc, vae
from genmodels.exercises import grading
from genmodels.keras_backends import BACKENDS, run_on_backend

SPECS = {spec.title: spec for spec in exercises.SPECS if isinstance(spec, grading.Exercise)}
CHECKS = {spec.title: getattr(exercises, f"check_{spec.name}") for spec in exercises.SPECS}


def failure(title, student) -> str:
    with pytest.raises(grading.WrongAnswer) as error:
        CHECKS[title](student)
    return str(error.value)


def passes(title, student, capsys) -> str:
    CHECKS[title](student)
    line = capsys.readouterr().out
    assert line.startswith("✓ "), line
    return line


def one_screen(message: str) -> None:
    """As IPython renders it: the message first, at most MAX_LINES lines, expected and got lines that differ."""
    lines = grading.rendered(message)
    assert lines[0].startswith("WrongAnswer: ") and len(lines) <= grading.MAX_LINES, "\n".join(lines)
    assert all(len(line) <= grading.WIDTH for line in lines)
    assert not any(word in message for word in ("Traceback", "grading.py", 'File "')), message
    expected = [line.split("expected", 1)[1].strip() for line in message.splitlines() if line.strip().startswith(
        "expected")]
    got = [line.split("got", 1)[1].strip() for line in message.splitlines() if line.strip().startswith("got ")]
    assert all(e != g for e, g in zip(expected, got, strict=False)), message


# --- right answers written differently from the package's: accepted --------------------------------------------


def _energy(v, h, W, b, c):
    return -(v * b).sum(1) - (h * c).sum(1) - torch.einsum("ni,ij,nj->n", v, W, h)


def _p_h_given_v(v, W, c):
    return 1 / (1 + torch.exp(-(v @ W + c)))


def _p_v_given_h(h, W, b):
    return torch.sigmoid(torch.einsum("nj,ij->ni", h, W) + b)


def _free_energy(v, W, b, c):  # float64 inside, softplus as logaddexp
    x = (v @ W + c).double()
    return (-(v.double() @ b.double()) - torch.logaddexp(torch.zeros_like(x), x).sum(-1)).float()


def _gibbs_step(v, W, b, c, u_h, u_v):
    h = torch.where(u_h < torch.sigmoid(v @ W + c), 1.0, 0.0)
    p_v = torch.sigmoid(h @ W.T + b)
    return torch.where(u_v < p_v, 1.0, 0.0), p_v


def _cd_statistics(v, v_neg, W, c):
    ph, ph_neg = torch.sigmoid(v @ W + c), torch.sigmoid(v_neg @ W + c)
    return (torch.einsum("ni,nj->ij", v, ph) / len(v) - torch.einsum("ni,nj->ij", v_neg, ph_neg) / len(v_neg),
            v.mean(0) - v_neg.mean(0), ph.mean(0) - ph_neg.mean(0))


def _pcd_chains(chains, W, b, c, uniforms):
    v = chains
    for k in range(len(uniforms)):
        v = _gibbs_step(v, W, b, c, *uniforms[k])[0]
    return v


def _ais_log_weight_increment(v, W, b, c, base_bias, beta_prev, beta):
    v, W, b, c, base_bias = (t.double() for t in (v, W, b, c, base_bias))
    x = v @ W + c
    return (beta - beta_prev) * (v @ (b - base_bias)) + (torch.logaddexp(torch.zeros_like(x), beta * x)
                                                         - torch.logaddexp(torch.zeros_like(x), beta_prev * x)).sum(1)


def _log_z_from_log_weights(log_w, log_z0):  # the max-shift by hand
    top = log_w.max()
    return float(log_z0 + top + torch.log(torch.exp(log_w - top).mean()))


def _pseudo_log_likelihood(v, W, b, c, i):
    flipped = v.clone()
    for n in range(len(v)):  # a loop over examples: right, and fast enough
        flipped[n, i[n]] = 1 - flipped[n, i[n]]

    def f(x):
        return -(x @ b) - F.softplus(x @ W + c).sum(1)

    return -W.shape[0] * F.softplus(-(f(flipped) - f(v)))  # log σ(x) = -softplus(-x)


def _free_energy_keras(v, W, b, c):
    """softplus as logaddexp(0, x), like np.logaddexp: a name in a docstring or comment is no NumPy call."""
    return -ops.sum(v * b, axis=1) - ops.sum(ops.logaddexp(0.0, ops.matmul(v, W) + c), axis=-1)


def _ula_step(x, grad_log_p, step_size, noise):
    return torch.addcmul(x + step_size * grad_log_p, noise, torch.full_like(x, (2 * step_size) ** 0.5))


def _mala_acceptance(x, y, log_p_x, log_p_y, grad_x, grad_y, step_size):
    forward = torch.distributions.Normal(x + step_size * grad_x, math.sqrt(2 * step_size)).log_prob(y).sum(-1)
    backward = torch.distributions.Normal(y + step_size * grad_y, math.sqrt(2 * step_size)).log_prob(x).sum(-1)
    return torch.exp(torch.clamp(log_p_y + backward - log_p_x - forward, max=0))


def _sgld_step(theta, grad_log_prior, grad_log_likelihood, n_data, batch_size, eps, noise):
    return theta + 0.5 * eps * grad_log_prior + 0.5 * eps * n_data * grad_log_likelihood / batch_size + eps**0.5 * noise


def _step_schedule(t, a, b, gamma):
    return a * torch.exp(-gamma * torch.log(b + t))


def _autocorrelation(x, max_lag):
    y = x - x.mean((0, 1))
    n = len(y)
    c = torch.stack([torch.einsum("tcd,tcd->cd", y[: n - k], y[k:]).mean(0) / n for k in range(max_lag + 1)])
    return c / c[0]


def _effective_sample_size(x):
    return x.shape[0] * x.shape[1] / mcmc.integrated_autocorrelation_time(x).clamp(min=1)


def _contrastive_loss(energy_data, energy_samples, alpha):
    return (energy_data - energy_samples).mean() + alpha * ((energy_data**2).mean() + (energy_samples**2).mean())


def _buffer_draw(buffer, slots, noise, restart):
    n_new = int(restart * len(slots) + 0.5)  # round half up: the same as round() away from the .5 boundaries
    return torch.cat([noise[:n_new], buffer[slots[n_new:]]])


def _temperature(step_size, noise):
    return noise * noise / step_size / 2


def _image_langevin_step(x, grad_energy, step_size, noise_std, noise, grad_clamp):
    step = x - step_size * torch.clamp(grad_energy, min=-grad_clamp, max=grad_clamp) + noise_std * noise
    return torch.clamp(step, min=-1.0, max=1.0)


def _kl_standard_normal(mu, log_var):
    return 0.5 * (torch.exp(log_var) + mu.pow(2) - 1 - log_var).sum(dim=1)


def _kl_gaussians(mu_q, log_var_q, mu_p, log_var_p):
    normal = torch.distributions.Normal
    return torch.distributions.kl_divergence(normal(mu_q, torch.exp(0.5 * log_var_q)),
                                             normal(mu_p, torch.exp(0.5 * log_var_p))).sum(-1)


def _reparameterise(mu, log_var, eps):
    return mu + torch.sqrt(torch.exp(log_var)) * eps


def _bernoulli_log_likelihood(x, logits):
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").reshape(len(x), -1).sum(1)


def _elbo(x, mu, log_var, eps, decode):
    h = mu + torch.exp(0.5 * log_var) * eps
    return (torch.distributions.Bernoulli(logits=decode(h)).log_prob(x).sum(-1)
            - 0.5 * (log_var.exp() + mu**2 - 1 - log_var).sum(-1))


def _iwae_bound(log_weights):
    return torch.logsumexp(log_weights - math.log(log_weights.shape[0]), dim=0)


def _ising_energy(spins):
    s = spins.float()
    return -(s * s.roll(1, -1)).sum((-2, -1)) - (s * s.roll(1, -2)).sum((-2, -1))


def _magnetisation(spins):
    return spins.float().flatten(-2).mean(-1)


def _local_field(spins):  # as floats: the next exercise multiplies it by the spins either way
    s = spins.float()
    return s.roll(-1, -2) + s.roll(1, -2) + s.roll(-1, -1) + s.roll(1, -1)


def _metropolis_half_sweep(spins, temperature, u, colour):
    L = spins.shape[-1]
    i, j = torch.meshgrid(torch.arange(L), torch.arange(L), indexing="ij")
    s = spins.int()
    field = s.roll(1, -1) + s.roll(-1, -1) + s.roll(1, -2) + s.roll(-1, -2)
    flip = (u < torch.exp(-2 * s * field / temperature)) & ((i + j) % 2 == colour)
    return torch.where(flip, -s, s).to(torch.int8)


def _exact_log_z(L, temperature):
    states = torch.tensor(list(itertools.product([-1, 1], repeat=L * L)), dtype=torch.float64).reshape(-1, L, L)
    energies = -(states * (states.roll(1, -1) + states.roll(1, -2))).sum((-2, -1))
    return torch.logsumexp(-energies / temperature, 0).item()


def _boltzmann_log_probabilities(energies, temperature):
    return torch.log_softmax(-energies / temperature, 0)


RIGHT = {
    "the energy E(v, h)": _energy, "p(h = 1 | v)": _p_h_given_v, "p(v = 1 | h)": _p_v_given_h,
    "the free energy F(v)": _free_energy, "the block-Gibbs step": _gibbs_step, "the CD statistics": _cd_statistics,
    "the PCD chain update": _pcd_chains, "the AIS log-weight increment": _ais_log_weight_increment,
    "log Z from the AIS weights": _log_z_from_log_weights, "the pseudo-log-likelihood": _pseudo_log_likelihood,
    "the free energy F(v) in keras.ops": _free_energy_keras, "the ULA step": _ula_step,
    "MALA's acceptance probability": _mala_acceptance, "the SGLD step": _sgld_step,
    "the step schedule": _step_schedule, "the autocorrelation": _autocorrelation,
    "the effective sample size": _effective_sample_size, "the contrastive loss": _contrastive_loss,
    "the replay-buffer draw": _buffer_draw, "the sampler's temperature": _temperature,
    "the Langevin step on images": _image_langevin_step, "KL(Q || N(0, I))": _kl_standard_normal,
    "KL(Q || P) between diagonal Gaussians": _kl_gaussians, "the reparameterised sample": _reparameterise,
    "the Bernoulli log-likelihood": _bernoulli_log_likelihood, "the ELBO": _elbo, "the IWAE bound": _iwae_bound,
    "the Ising energy": _ising_energy, "the magnetisation": _magnetisation, "the local field": _local_field,
    "the Metropolis half-sweep": _metropolis_half_sweep, "the exact log Z": _exact_log_z,
    "the Boltzmann log-probabilities": _boltzmann_log_probabilities,
}


class Sampling(keras.layers.Layer):  # σ as the square root of the variance, ε drawn in float32 explicitly
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mu, log_var = inputs
        return mu + ops.sqrt(ops.exp(log_var)) * keras.random.normal(ops.shape(mu), dtype="float32",
                                                                      seed=self.seed_generator)


def test_every_check_has_a_right_answer_written_differently():
    assert sorted(RIGHT) == sorted(SPECS)


@pytest.mark.parametrize("title", sorted(RIGHT))
def test_a_right_answer_written_differently_is_accepted(title, capsys):
    passes(title, RIGHT[title], capsys)


def test_a_right_sampling_layer_written_differently_is_accepted(capsys):
    passes("the Keras Sampling layer", Sampling, capsys)


# --- wrong answers of the kinds every check must catch ----------------------------------------------------------


def _raising(spec):
    def student(*args):
        result = spec.reference(*args)
        return result.no_such_method()  # the student's line

    return student


@pytest.mark.parametrize("title", sorted(SPECS))
def test_an_exception_in_the_students_code_is_one_message_naming_their_line(title):
    message = failure(title, _raising(SPECS[title]))
    assert message.startswith(f"{title}: your function raised AttributeError")
    assert "line" in message and "return result.no_such_method()  # the student's line" in message, message
    one_screen(message)


def _malformed(spec):
    if spec.returns == "tensors":
        return lambda *args: spec.reference(*args)[:-1]  # one output short
    if spec.returns in ("number", "keras"):
        return lambda *args: "a number"
    return lambda *args: [spec.reference(*args)]  # a list around the result


@pytest.mark.parametrize("title", sorted(SPECS))
def test_a_malformed_return_is_one_message(title):
    message = failure(title, _malformed(SPECS[title]))
    assert message.startswith(f"{title}: return ") or "returned" in message.split("\n")[0], message
    one_screen(message)


WRONG_DTYPES = {  # where the next exercise (or the notebook's model) needs the package's dtype exactly
    "p(h = 1 | v)": torch.float64, "p(v = 1 | h)": torch.float64, "the block-Gibbs step": torch.float64,
    "the PCD chain update": torch.bool, "the replay-buffer draw": torch.float64,
    "the Metropolis half-sweep": torch.float32, "the Ising energy": torch.int64}


def _wrong_dtype(spec, dtype):
    def student(*args):
        result = spec.reference(*args)
        return tuple(r.to(dtype) for r in result) if spec.returns == "tensors" else result.to(dtype)

    return student


@pytest.mark.parametrize("title", sorted(WRONG_DTYPES))
def test_a_result_of_the_wrong_dtype_is_named(title):
    spec = SPECS[title]
    message = failure(title, _wrong_dtype(spec, WRONG_DTYPES[title]))
    assert f"is {WRONG_DTYPES[title]} where the package returns" in message, message
    one_screen(message)


HALF = [title for title, spec in SPECS.items() if spec.returns in ("tensor", "tensors") and spec.dtype != "number"]


@pytest.mark.parametrize("title", HALF)
def test_a_half_precision_result_is_rejected(title):
    message = failure(title, _wrong_dtype(SPECS[title], torch.float16))
    assert "is torch.float16 where the package returns" in message or "not the expected values" in message, message
    one_screen(message)


def test_a_float64_result_is_accepted_where_nothing_multiplies_it_by_float32_weights(capsys):
    passes("KL(Q || N(0, I))", lambda mu, log_var: _kl_standard_normal(mu.double(), log_var.double()), capsys)


def test_a_boolean_gibbs_sample_is_named_before_it_breaks_the_next_exercise():
    def gibbs_step(v, W, b, c, u_h, u_v):
        h = (u_h < torch.sigmoid(c + v @ W)).float()
        p_v = torch.sigmoid(b + h @ W.T)
        return u_v < p_v, p_v

    message = failure("the block-Gibbs step", gibbs_step)
    assert "v_new is torch.bool where the package returns torch.float32: a comparison gives booleans" in message


GRADIENTS = [(title, i) for title, spec in SPECS.items() for i in spec.grad]


def _cut(spec, index, how):
    """The reference with argument `index` taken out of autograd's graph: by .detach(), or through NumPy."""
    def student(*args):
        args = list(args)
        if how == "detach":
            args[index] = args[index].detach()
        else:
            args[index] = torch.from_numpy(np.array(args[index].detach().numpy()))
        return spec.reference(*args)

    return student


@pytest.mark.parametrize("how", ["detach", "numpy"])
@pytest.mark.parametrize("title, index", GRADIENTS)
def test_a_result_whose_gradient_is_cut_is_rejected(title, index, how):
    spec = SPECS[title]
    message = failure(title, _cut(spec, index, how))
    name = spec.parameters[index]
    assert "the values are right, but" in message and f"`{name}`" in message, message
    one_screen(message)


def test_sigma_computed_through_numpy_is_rejected_and_not_called_differentiable():
    def reparameterise(mu, log_var, eps):
        return mu + torch.from_numpy(np.exp(0.5 * log_var.detach().numpy())) * eps

    assert "your result does not depend on `log_var` through autograd" in failure("the reparameterised sample",
                                                                                  reparameterise)


def test_energies_detached_before_the_loss_are_rejected():
    def contrastive_loss(energy_data, energy_samples, alpha):
        e_data, e_samples = energy_data.detach(), energy_samples.detach()
        return e_data.mean() - e_samples.mean() + alpha * (e_data**2 + e_samples**2).mean()

    assert "autograd cannot differentiate your result" in failure("the contrastive loss", contrastive_loss)


# --- inputs that break the coincidences of fixed numbers ----------------------------------------------------------


def test_an_integer_ratio_n_over_n_is_caught_on_a_ratio_that_is_not_whole():
    def sgld_step(theta, grad_log_prior, grad_log_likelihood, n_data, batch_size, eps, noise):
        return theta + eps / 2 * (grad_log_prior + n_data // batch_size * grad_log_likelihood) + eps**0.5 * noise

    assert "N // n rounds the ratio down" in failure("the SGLD step", sgld_step)


@pytest.mark.parametrize("rounding, named", [(math.ceil, "ceil rounds up"), (int, "int() rounds down")])
def test_restart_counts_rounded_by_ceil_or_int_are_caught(rounding, named):
    def buffer_draw(buffer, slots, noise, restart):
        x0 = buffer[slots]
        n_new = rounding(restart * len(slots))
        x0[:n_new] = noise[:n_new]
        return x0

    assert named in failure("the replay-buffer draw", buffer_draw)


def test_the_cases_labelled_overflowing_in_float64_overflow_a_float64_formula():
    def exact_log_z(L, temperature):
        states = torch.tensor(list(itertools.product([-1, 1], repeat=L * L)), dtype=torch.float64).reshape(-1, L, L)
        energies = -(states * (states.roll(1, -1) + states.roll(1, -2))).sum((-2, -1))
        return torch.log(torch.exp(-energies / temperature).sum()).item()  # float64 throughout, but exp then log

    assert "overflows" in failure("the exact log Z", exact_log_z)

    def log_z_from_log_weights(log_w, log_z0):
        return log_z0 + torch.log(torch.exp(log_w.double()).mean()).item()

    assert "overflows" in failure("log Z from the AIS weights", log_z_from_log_weights)

    def boltzmann_log_probabilities(energies, temperature):
        weights = torch.exp(-energies.double() / temperature)
        return torch.log(weights / weights.sum())

    assert "overflows" in failure("the Boltzmann log-probabilities", boltzmann_log_probabilities)


def test_every_check_tries_several_shapes():
    for spec in SPECS.values():
        shapes = {tuple(np.shape(a)) for case in spec.cases for a in case.make()[:1] if hasattr(a, "shape")}
        assert len(shapes) >= 2 or spec.returns == "number", spec.title


def test_one_sweep_fewer_is_named_as_that_not_as_chains_that_did_not_move():
    def pcd_chains(chains, W, b, c, uniforms):
        for k in range(len(uniforms) - 1):  # k - 1 sweeps: at k = 1 the chains do not move
            u_h, u_v = uniforms[k]
            chains = _gibbs_step(chains, W, b, c, u_h, u_v)[0]
        return chains

    assert "you ran one sweep fewer" in failure("the PCD chain update", pcd_chains)


def test_a_student_who_consumes_the_list_of_uniforms_is_told_so_not_shown_a_grading_crash():
    def pcd_chains(chains, W, b, c, uniforms):
        while uniforms:
            u_h, u_v = uniforms.pop(0)
            chains = _gibbs_step(chains, W, b, c, u_h, u_v)[0]
        return chains

    message = failure("the PCD chain update", pcd_chains)
    assert "changed its input `uniforms` in place" in message and "list.pop()" in message
    one_screen(message)


# --- the first slips, named; a helper still a stub ------------------------------------------------------------------


def test_the_free_energy_without_its_visible_bias_term_is_named():
    def free_energy(v, W, b, c):
        return -F.softplus(c + v @ W).sum(1)

    message = failure("the free energy F(v)", free_energy)
    assert message.startswith("the free energy F(v): the visible-bias term -b·v is missing")
    one_screen(message)


def test_a_forgotten_half_and_swapped_arguments_are_named():
    assert "the ½ is missing" in failure("KL(Q || N(0, I))",
                                         lambda mu, log_var: (log_var.exp() + mu**2 - 1 - log_var).sum(-1))
    assert "μ and log σ² are swapped" in failure("the reparameterised sample",
                                                 lambda mu, log_var, eps: log_var + torch.exp(0.5 * mu) * eps)
    assert "the arguments of binary_cross_entropy_with_logits are swapped" in failure(
        "the Bernoulli log-likelihood",
        lambda x, logits: -F.binary_cross_entropy_with_logits(x, logits, reduction="none").flatten(1).sum(1))


def test_a_check_whose_function_calls_a_helper_still_a_stub_says_it_waits_and_checked_nothing(capsys):
    def reparameterise(mu, log_var, eps):
        raise NotImplementedError("exercise 3: the reparameterised sample")

    def elbo(x, mu, log_var, eps, decode):
        h = reparameterise(mu, log_var, eps)
        return vae.bernoulli_log_likelihood(x, decode(h)) - vae.kl_standard_normal(mu, log_var)

    CHECKS["the ELBO"](elbo)
    assert capsys.readouterr().out == ("the ELBO: not checked yet: it calls your reparameterise, which is not done "
                                       "yet (exercise 3)\n")


def test_a_not_implemented_error_from_torch_is_an_error_not_a_stub():
    def kl_standard_normal(mu, log_var):
        raise_from_torch = torch.nn.Module().forward  # torch's own NotImplementedError ("missing forward")
        return raise_from_torch(mu)

    message = failure("KL(Q || N(0, I))", kl_standard_normal)
    assert message.startswith("KL(Q || N(0, I)): your function raised NotImplementedError") and "line" in message


# --- one screen per failure ------------------------------------------------------------------------------------


MISTAKES = [(title, i) for title, spec in SPECS.items() for i in range(len(spec.mistakes))]


@pytest.mark.parametrize("title, index", MISTAKES)
def test_each_named_mistake_fits_one_screen_and_shows_where_the_values_differ(title, index):
    one_screen(failure(title, SPECS[title].mistakes[index].wrong))


def test_a_failure_in_ipython_is_the_message_alone_with_no_library_frames(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_cell("import torch\nfrom genmodels import exercises\n"
                   "def free_energy(v, W, b, c):\n    return -torch.nn.functional.softplus(c + v @ W).sum(1)\n"
                   "exercises.check_free_energy(free_energy)\n")
    shown = capsys.readouterr()
    lines = (shown.out + shown.err).strip().splitlines()
    assert lines[0].startswith("WrongAnswer: the free energy F(v): the visible-bias term -b·v is missing"), lines
    assert len(lines) <= grading.MAX_LINES and not any("File " in line or "frame" in line for line in lines), lines


def test_a_message_too_long_for_one_screen_shortens_the_input_and_keeps_expected_and_got():
    message = ("title: " + "word " * 60 + "\n  on the input: " + "x = tensor (3, 4) [1, 2, 3]; " * 30
               + "\n  expected [1.5]\n  got      [2.5]\n  1 of 5 entries differ; the first at index 3")
    lines = grading.rendered(message)
    assert len(lines) == grading.MAX_LINES and lines[-3:] == ["  expected [1.5]", "  got      [2.5]",
                                                              "  1 of 5 entries differ; the first at index 3"]


def test_a_wrong_shape_gets_no_advice_that_is_false_for_the_exercise():
    def bernoulli_log_likelihood(x, logits):
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)  # images: (N, 28) left

    message = failure("the Bernoulli log-likelihood", bernoulli_log_likelihood)
    assert "dim=-1" not in message and "x.flatten(1).sum(1)" in message, message


def test_an_unnamed_wrong_value_shows_the_first_entry_that_differs_with_the_digits_that_differ():
    def free_energy(v, W, b, c):
        wrong = 0.5 * (v[:, 0] > 0) if len(v) > 1 else 0  # off by ½ in some examples of a batch
        return -(v @ b) - F.softplus(c + v @ W).sum(1) + wrong

    message = failure("the free energy F(v)", free_energy)
    assert "not the expected values" in message and "entries differ; the first at index" in message, message
    one_screen(message)


def test_a_right_answer_slow_once_on_a_loaded_machine_is_accepted(monkeypatch, capsys):
    monkeypatch.setattr(grading, "TIME_LIMIT_S", 0.05)
    calls = []

    def free_energy(v, W, b, c):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.1)  # the first call meets a busy machine
        return -(v @ b) - F.softplus(c + v @ W).sum(1)

    passes("the free energy F(v)", free_energy, capsys)


# --- the Keras checks, on every installed backend --------------------------------------------------------------

KERAS_SCRIPT = """
import json

import keras
import numpy as np
import torch
from keras import layers, ops

from genmodels import exercises, vae_keras
from genmodels.exercises import grading


class RightSampling(layers.Layer):  # σ as the square root of the variance
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mu, log_var = inputs
        return mu + ops.sqrt(ops.exp(log_var)) * keras.random.normal(ops.shape(mu), seed=self.seed_generator)


class NumpyNoise(layers.Layer):  # eager: fresh noise at every call; compiled: drawn once, when traced
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)

    def call(self, inputs):
        mu, log_var = inputs
        return mu + ops.exp(0.5 * log_var) * np.random.normal(size=tuple(mu.shape)).astype("float32")


class SharedEpsilon(RightSampling):  # one ε per example, shared across the latent dimensions
    def call(self, inputs):
        mu, log_var = inputs
        return mu + ops.exp(0.5 * log_var) * keras.random.normal((ops.shape(mu)[0], 1), seed=self.seed_generator)


class FixedSeed(RightSampling):  # the same ε at every call
    def call(self, inputs):
        mu, log_var = inputs
        return mu + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mu), seed=1)


def right_free_energy(v, W, b, c):
    return -ops.sum(v * b, axis=1) - ops.sum(ops.logaddexp(0.0, ops.matmul(v, W) + c), axis=-1)


def torch_free_energy(v, W, b, c):  # right values, on the torch backend only
    v, W, b, c = (torch.as_tensor(a) for a in (v, W, b, c))
    return -(v @ b) - torch.nn.functional.softplus(v @ W + c).sum(1)


def verdict(check, student):
    try:
        check(student)
    except grading.WrongAnswer as wrong:
        return str(wrong).splitlines()[0]
    return "passed"


def verdicts():
    results = {name: verdict(exercises.check_sampling_layer, layer) for name, layer in [
        ("course", vae_keras.Sampling), ("right", RightSampling), ("numpy", NumpyNoise), ("shared", SharedEpsilon),
        ("fixed", FixedSeed)]}
    results.update({name: verdict(exercises.check_free_energy_keras, f) for name, f in [
        ("free_energy_right", right_free_energy), ("free_energy_torch", torch_free_energy)]})
    return results


if __name__ == "__main__":
    print(json.dumps(verdicts()))
"""


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def keras_verdicts(request, tmp_path_factory):
    """KERAS_SCRIPT's verdicts on one backend, in a fresh process; run from a file, as a notebook's cells are kept,
    so that the check can read the layers' source."""
    if importlib.util.find_spec(BACKENDS[request.param]) is None:
        needed(f"the {request.param} backend needs {BACKENDS[request.param]}: pip install -e '.[keras]'")
    script = tmp_path_factory.mktemp("keras") / "verdicts.py"
    script.write_text(KERAS_SCRIPT)
    if request.param == keras.backend.backend():  # this process's backend: no second process needed
        return runpy.run_path(str(script))["verdicts"]()
    run = run_on_backend(request.param, script)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_keras_checks_accept_right_answers_on_every_backend(keras_verdicts):
    assert [keras_verdicts[k] for k in ("course", "right", "free_energy_right")] == ["passed"] * 3, keras_verdicts


def test_the_keras_checks_reject_numpy_torch_shared_and_fixed_noise_on_every_backend(keras_verdicts):
    assert "your layer calls np.random.normal" in keras_verdicts["numpy"], keras_verdicts
    assert "correlated" in keras_verdicts["shared"] and "one ε shared" in keras_verdicts["shared"], keras_verdicts
    assert "two calls gave the same draws" in keras_verdicts["fixed"], keras_verdicts
    assert "your function calls torch.as_tensor" in keras_verdicts["free_energy_torch"], keras_verdicts


def test_a_layer_whose_noise_is_fixed_when_traced_fails_inside_a_compiled_model():
    """Without its source (the source scan cannot see a helper's NumPy call), the compiled predict catches it."""
    def noise(shape):
        return np.random.normal(size=shape).astype("float32")

    class HelperNoise(keras.layers.Layer):
        def __init__(self, seed=None, **kwargs):
            super().__init__(**kwargs)

        def call(self, inputs):
            mu, log_var = inputs
            return mu + ops.exp(0.5 * log_var) * noise(tuple(mu.shape))

    if keras.backend.backend() == "torch":  # torch's Keras runs predict eagerly: the noise is fresh each call
        pytest.skip("Keras on torch does not compile predict")
    message = failure("the Keras Sampling layer", HelperNoise)
    assert "inside a compiled model" in message, message


def counts() -> dict:
    """Item 4's tally: per kind, how many wrong implementations the tests reject and right ones they accept."""
    return {"right answers written differently, accepted": len(RIGHT) + 1,
            "exceptions in the student's code, one message": len(SPECS),
            "malformed returns, one message": len(SPECS),
            "wrong dtypes, rejected": len(WRONG_DTYPES) + 1, "a float64 result, accepted where harmless": 1,
            "half-precision results, rejected": len(HALF),
            "gradients cut (.detach() and NumPy), rejected": 2 * len(GRADIENTS) + 2,
            "coincidences of fixed inputs (N // n, ceil, int, float64 overflow x3, k - 1 sweeps), rejected": 7,
            "named mistakes, named, one screen each": len(MISTAKES),
            "Keras: NumPy noise, shared ε, fixed seed, torch ops, helper NumPy noise (per backend), rejected": 5,
            "Keras: right answers on every backend (course layer, own layer, own free energy), accepted": 3}


if __name__ == "__main__":
    for kind, n in counts().items():
        print(f"{n:4d}  {kind}")
