"""Checks for the exercise notebooks (exercises/): the student writes a formula, the check says which mistake it is.

    check_free_energy(free_energy)   # prints one line when it is right; names the mistake when it is a known one

Each check calls the student's function on fixed inputs (several shapes, fixed seeds, values where a naive formula
breaks, such as hidden inputs above 88 where exp overflows in float32; the random numbers a random function needs are
passed in as arguments), compares the result with the package's own implementation, and on success prints one line
saying what was verified. On failure it raises WrongAnswer, an AssertionError whose message comes first: it names the
mistake when it is a known one (the reference beside a few known wrong versions: "your noise is √η: the chain samples
p²"), else it shows one input, the expected and the returned value. An unfilled stub (NotImplementedError) is not an
error: the check prints "exercise 3: not done yet" and the notebook carries on. Check frames set __tracebackhide__,
which IPython and pytest honour, and the mistake is raised afresh from one short frame (training.stop), so a failure
shows the student's line and the message, not pages of this module.

The checks are grouped by exercise notebook, in its order: 01_rbm, 03_langevin, 04_energy_based_model, 05_vae,
07_ising. These are not the package's input checks (which live with the code they guard): they grade code.
"""

from __future__ import annotations

import copy
import inspect
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from . import ebm, ising, langevin, rbm, vae
from .training import stop

__all__ = [
    # 01_rbm
    "check_energy", "check_p_h_given_v", "check_p_v_given_h", "check_free_energy", "check_gibbs_step",
    "check_cd_statistics", "check_pcd_chains", "check_ais_log_weight_increment", "check_log_z_from_log_weights",
    "check_pseudo_log_likelihood", "check_free_energy_keras",
    # 03_langevin
    "check_ula_step", "check_mala_acceptance", "check_sgld_step", "check_step_schedule", "check_autocorrelation",
    "check_effective_sample_size",
    # 04_energy_based_model
    "check_contrastive_loss", "check_buffer_draw", "check_temperature", "check_image_langevin_step",
    # 05_vae
    "check_kl_standard_normal", "check_kl_gaussians", "check_reparameterise", "check_bernoulli_log_likelihood",
    "check_elbo", "check_iwae_bound", "check_sampling_layer",
    # 07_ising
    "check_ising_energy", "check_magnetisation", "check_local_field", "check_metropolis_half_sweep",
    "check_exact_log_z", "check_boltzmann_log_probabilities",
    "WrongAnswer", "TIME_LIMIT_S", "SLOWER_THAN_REFERENCE",
]

TIME_LIMIT_S = 2.0  # a student's function may always take this long per call ...
SLOWER_THAN_REFERENCE = 200  # ... and beyond it, at most this many times the package's own time


# --- the machinery every check shares -----------------------------------------------------------------------------


@dataclass
class Mistake:
    """A known wrong version of the exercise (same arguments as the reference) and what to tell the student."""

    wrong: Callable
    message: str


@dataclass
class Case:
    """One input: `note` says what is special about it (printed on success), `make()` builds fresh arguments."""

    note: str
    make: Callable[[], tuple]


@dataclass
class Exercise:
    title: str  # "the free energy", as the success line and the errors name it
    call: str  # how the check calls the student's function: "free_energy(v, W, b, c)"
    reference: Callable
    cases: Sequence[Case]
    mistakes: Sequence[Mistake] = ()
    grad: Sequence[int] = ()  # which arguments the result must be differentiable in (torch)
    returns: str = "tensor"  # "tensor", "tensors" (a tuple), "number", "keras"
    deterministic: str | None = None  # message when two calls on the same input differ (e.g. sampled statistics)
    verified: str = ""  # the end of the success line
    rtol: float = 1e-4
    atol: float = 1e-5
    parameters: list[str] = field(init=False)

    def __post_init__(self):
        self.parameters = [p.strip() for p in self.call[self.call.index("(") + 1:-1].split(",") if p.strip()]


class _NotDone(Exception):
    pass


def _not_done_label(error: NotImplementedError, title: str) -> str:
    """'exercise 3' from the stub's NotImplementedError("exercise 3: the free energy"), else the title."""
    found = re.search(r"exercise \d+", str(error), re.IGNORECASE)  # Keras wraps a layer's errors in its own text
    return found.group(0).lower() if found else title


def _clone(value):
    if torch.is_tensor(value):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_clone(v) for v in value)
    return value


def _same(a, b) -> bool:
    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.shape == b.shape and torch.equal(a.detach(), b.detach())
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    return True


def _show(value, limit: int = 4) -> str:
    """A short description of a value: its shape and first few entries."""
    if torch.is_tensor(value) or isinstance(value, np.ndarray):
        array = np.asarray(value.detach().cpu() if torch.is_tensor(value) else value)
        kind = "tensor" if torch.is_tensor(value) else "NumPy array"
        flat = array.reshape(-1)
        values = ", ".join(f"{float(x):.4g}" for x in flat[:limit]) + (", ..." if flat.size > limit else "")
        return f"{kind} of shape {tuple(array.shape)} [{values}]"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_show(v, limit) for v in value) + ")"
    if callable(value):
        return getattr(value, "__name__", "a function")
    return repr(value)


def _show_inputs(exercise: Exercise, args) -> str:
    return "\n".join(f"    {name} = {_show(arg)}" for name, arg in zip(exercise.parameters, args, strict=False))


def _as_numbers(value, exercise: Exercise):
    """The result as float64 NumPy (or a tuple of them), after checking its type; an AssertionError otherwise."""
    __tracebackhide__ = True
    if value is None:
        raise WrongAnswer(f"{exercise.title}: your function returned None: did you forget `return`?")
    if exercise.returns == "tensors":
        if not isinstance(value, (tuple, list)):
            raise WrongAnswer(f"{exercise.title}: return a tuple of tensors (see the exercise); got {_show(value)}")
        return tuple(_as_numbers(v, _single(exercise)) for v in value)
    if exercise.returns == "tensor":
        if isinstance(value, np.ndarray):
            raise WrongAnswer(f"{exercise.title}: you returned a NumPy array where a torch tensor is needed (the "
                                 "model trains on it, on any device, through autograd): compute it with torch "
                                 "operations (torch.sigmoid, F.softplus, x @ W, ...), without .numpy()")
        if not torch.is_tensor(value):
            raise WrongAnswer(f"{exercise.title}: return a torch tensor; got {type(value).__name__} {_show(value)}")
        return value.detach().cpu().double().numpy()
    if exercise.returns == "keras":
        if isinstance(value, np.ndarray):
            raise WrongAnswer(f"{exercise.title}: you returned a NumPy array: write it with keras.ops, which "
                                 "returns the backend's tensor, so that it runs inside fit and on every backend")
        import keras

        return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise WrongAnswer(f"{exercise.title}: return one number; got {_show(value)}")
        value = value.item()
    try:
        return np.float64(value)
    except (TypeError, ValueError):
        raise WrongAnswer(f"{exercise.title}: return a number; got {type(value).__name__} {_show(value)}") from None


def _single(exercise: Exercise) -> Exercise:
    single = copy.copy(exercise)
    single.returns = "tensor"
    return single


def _close(got, expected, exercise: Exercise) -> bool:
    if isinstance(expected, tuple):
        return isinstance(got, tuple) and len(got) == len(expected) and all(
            _close(g, e, exercise) for g, e in zip(got, expected, strict=True))
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return False
    finite = np.isfinite(expected)
    if not np.array_equal(np.isfinite(got), finite):
        return False
    scale = max(1.0, float(np.abs(expected[finite]).max())) if finite.any() else 1.0
    return bool(np.allclose(got[finite], expected[finite], rtol=exercise.rtol, atol=exercise.atol * scale))


def _shapes(value):
    return tuple(np.shape(v) for v in value) if isinstance(value, tuple) else np.shape(value)


def _numbers(value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_numbers(v) for v in value) + ")"
    array = np.asarray(value)
    flat = array.reshape(-1)
    shown = ", ".join(f"{x:.6g}" for x in flat[:6]) + (", ..." if flat.size > 6 else "")
    return f"[{shown}]" + (f" (shape {array.shape})" if array.ndim else "")


def _expect_function(student, exercise: Exercise) -> None:
    __tracebackhide__ = True
    if isinstance(student, type) or not callable(student):
        raise WrongAnswer(f"{exercise.title}: the check expects your function itself, e.g. "
                             f"check(my_function), not its result; got {type(student).__name__} {_show(student)}")
    try:
        signature = inspect.signature(student)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*exercise.parameters)
    except TypeError:
        name = getattr(student, "__name__", "your function")
        raise WrongAnswer(f"{exercise.title}: your function's signature is {name}{signature}, but the check "
                             f"calls it as {exercise.call}: give it these parameters, in this order") from None


def _timed(fn, args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def _call_student(student, args, exercise: Exercise):
    """The student's result on fresh copies of args, with the checks that need the call itself."""
    __tracebackhide__ = True
    before = _clone(args)
    try:
        result, seconds = _timed(student, args)
    except NotImplementedError as error:
        raise _NotDone(_not_done_label(error, exercise.title)) from None
    for name, old, new in zip(exercise.parameters, before, args, strict=False):
        if not _same(old, new):
            raise WrongAnswer(f"{exercise.title}: your function changed its input `{name}` in place (an "
                                 "in-place operation such as x += ..., x[i] = ..., x.add_(...) on an argument); the "
                                 "caller's data must stay as they were: work on a copy, x = x.clone(), or write "
                                 "x = x + ...")
    return result, seconds


class WrongAnswer(AssertionError):
    """A mistake a check found (an assertion in the student's own code stays an AssertionError, with its frames)."""


def _reported(check, *args) -> None:
    """Run `check`; a mistake it finds is raised afresh from training.stop's short frame, so that the student sees
    their line and the message, not the source lines of the check (IPython never hides the last frame)."""
    __tracebackhide__ = True
    try:
        check(*args)
    except WrongAnswer as wrong:
        stop(WrongAnswer(str(wrong)))


def _verify(student, exercise: Exercise) -> None:
    """The whole check of one exercise; prints the success line or the not-done line, raises on a mistake."""
    __tracebackhide__ = True
    _reported(_verify_all, student, exercise)


def _verify_all(student, exercise: Exercise) -> None:
    __tracebackhide__ = True
    _expect_function(student, exercise)
    state = torch.random.get_rng_state()
    try:
        if exercise.deterministic:  # first: random results would otherwise fail as wrong values, unnamed
            args = exercise.cases[-1].make()
            torch.manual_seed(1)
            first = _as_numbers(_call_student(student, _clone(args), exercise)[0], exercise)
            torch.manual_seed(2)
            second = _as_numbers(_call_student(student, _clone(args), exercise)[0], exercise)
            if _shapes(first) == _shapes(second) and not _close(first, second, exercise):
                raise WrongAnswer(f"{exercise.title}: {exercise.deterministic}")
        notes = []
        for case in exercise.cases:
            _verify_case(student, exercise, case)
            notes.append(case.note)
    except _NotDone as not_done:
        print(f"{not_done}: not done yet")
        return
    finally:
        torch.random.set_rng_state(state)
    special = [n for n in notes if n]
    print(f"✓ {exercise.title}: matches the package on {len(notes)} inputs"
          + (f" ({'; '.join(special)})" if special else "") + (f"; {exercise.verified}" if exercise.verified else ""))


def _verify_case(student, exercise: Exercise, case: Case) -> None:
    __tracebackhide__ = True
    args = case.make()
    reference_args = _clone(args)
    expected_raw, reference_seconds = _timed(exercise.reference, reference_args)
    expected = _as_numbers(expected_raw, exercise)
    student_args = _clone(args)
    for i in exercise.grad:
        student_args[i].requires_grad_(True)
    result, seconds = _call_student(student, student_args, exercise)
    limit = max(TIME_LIMIT_S, SLOWER_THAN_REFERENCE * reference_seconds)
    if seconds > limit:
        raise WrongAnswer(f"{exercise.title}: your function took {seconds:.2g} s on one input where the package "
                             f"takes {reference_seconds:.2g} s: is there a Python loop over examples or units? Use "
                             "whole-tensor operations (x @ W, .sum(dim), broadcasting)")
    got = _as_numbers(result, exercise)
    shown = f"on the input\n{_show_inputs(exercise, args)}\n  expected {_numbers(expected)}\n  got      {_numbers(got)}"
    if _shapes(got) != _shapes(expected):
        for mistake in exercise.mistakes:
            if _matches(mistake, args, got, exercise):
                raise WrongAnswer(f"{exercise.title}: {mistake.message} (a shape error: your result has shape "
                                     f"{_shapes(got)}, the expected shape is {_shapes(expected)})\n{shown}")
        raise WrongAnswer(f"{exercise.title}: your result has shape {_shapes(got)}, the expected shape is "
                             f"{_shapes(expected)}: a sum or mean over the wrong axis, or a missing one? "
                             f"(reduce with dim=-1 for one value per example)\n{shown}")
    if _close(got, expected, exercise):
        if exercise.grad and exercise.returns in ("tensor", "tensors"):
            outputs = result if isinstance(result, (tuple, list)) else (result,)
            if not all(torch.is_tensor(t) and t.requires_grad for t in outputs):
                names = ", ".join(exercise.parameters[i] for i in exercise.grad)
                raise WrongAnswer(f"{exercise.title}: the values are right, but autograd cannot differentiate "
                                     f"your result with respect to {names} (it has no grad_fn): avoid .detach(), "
                                     ".item(), .numpy(), torch.tensor(...) of a result and torch.no_grad() inside "
                                     "the function")
        return
    for mistake in exercise.mistakes:
        if _matches(mistake, args, got, exercise):
            raise WrongAnswer(f"{exercise.title}: {mistake.message}\n{shown}")
    if not np.all([np.isfinite(g).all() for g in (got if isinstance(got, tuple) else (got,))]):
        raise WrongAnswer(f"{exercise.title}: your result holds NaN or infinite values where the expected one "
                             f"is finite{': ' + case.note if case.note else ''}\n{shown}")
    raise WrongAnswer(f"{exercise.title}: not the expected values {shown}")


def _matches(mistake: Mistake, args, got, exercise: Exercise) -> bool:
    with np.errstate(all="ignore"):
        try:
            wrong = _as_numbers(mistake.wrong(*_clone(args)), exercise)
        except Exception:  # a wrong version that cannot run on this input does not match it
            return False
    return _shapes(wrong) == _shapes(got) and _close(got, wrong, exercise)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _binary(shape, seed: int, p: float = 0.5) -> torch.Tensor:
    return (torch.rand(shape, generator=_generator(seed)) < p).float()


def _normal(shape, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(shape, generator=_generator(seed)) * scale + shift


def _uniform(shape, seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=_generator(seed))


# --- 01_rbm: the restricted Boltzmann machine ---------------------------------------------------------------------


def _rbm(W, b, c) -> rbm.RBM:
    """The package's RBM holding these parameters (the reference every RBM check compares with)."""
    model = rbm.RBM(W.shape[0], W.shape[1], n_chains=1)
    with torch.no_grad():
        model.W.copy_(W), model.b.copy_(b), model.c.copy_(c)
    return model


def _rbm_params(n_visible, n_hidden, seed, scale=1.0):
    return (_normal((n_visible, n_hidden), seed, scale), _normal(n_visible, seed + 1, 0.5),
            _normal(n_hidden, seed + 2, 0.5))


def _rbm_cases(extra=(), batch=True):
    """(v, W, b, c) inputs: small, a batch of MNIST's size, and one whose hidden inputs exceed 88."""
    def small():
        return (_binary((1, 6), 0), *_rbm_params(6, 4, 1))

    def mnist_sized():
        return (_binary((5, 784), 2, 0.2), *_rbm_params(784, 20, 3, scale=0.05))

    def large_inputs():
        W, b, c = _rbm_params(8, 3, 4)
        return (_binary((4, 8), 5), W * 30, b, c + 60)  # c + v·W up to ~200: exp overflows in float32

    return [Case("", small), Case("784 visible units", mnist_sized),
            Case("hidden inputs above 88, where exp overflows in float32", large_inputs), *extra]


def _energy(v, h, W, b, c):
    return _rbm(W, b, c).energy(v, h)


def check_energy(energy: Callable) -> None:
    """Exercise: the RBM's energy.  energy(v, h, W, b, c) -> E(v, h) = -b·v - c·h - vᵀ W h, one value per example;
    v (N, n_visible), h (N, n_hidden), W (n_visible, n_hidden), b (n_visible,), c (n_hidden,)."""
    __tracebackhide__ = True

    def case(n, n_v, n_h, seed):
        return lambda: (_binary((n, n_v), seed), _binary((n, n_h), seed + 1), *_rbm_params(n_v, n_h, seed + 2))

    _verify(energy, Exercise(
        "the energy E(v, h)", "energy(v, h, W, b, c)", _energy,
        [Case("", case(1, 6, 4, 0)), Case("", case(5, 784, 20, 10)), Case("", case(3, 2, 7, 20))],
        mistakes=[
            Mistake(lambda v, h, W, b, c: -_energy(v, h, W, b, c),
                    "the sign is flipped: E(v, h) = -b·v - c·h - vᵀWh, so that p ∝ exp(-E) favours states that "
                    "match the biases and weights"),
            Mistake(lambda v, h, W, b, c: -(v @ b) - (h @ c) - (v @ W @ h.T).sum(1),
                    "vᵀWh must pair each example's v with its own h: ((v @ W) * h).sum(1), not (v @ W @ h.T), "
                    "which mixes examples"),
            Mistake(lambda v, h, W, b, c: -(v @ b).sum() - (h @ c).sum() - ((v @ W) * h).sum(),
                    "you summed over the examples too: return one energy per example, shape (N,)"),
        ], grad=(2,)))


def check_p_h_given_v(p_h_given_v: Callable) -> None:
    """Exercise: the hidden conditional.  p_h_given_v(v, W, c) -> p(h_j = 1 | v) = σ(c_j + v·W_:j), (N, n_hidden)."""
    __tracebackhide__ = True
    cases = [Case(c.note, _without_b(c.make)) for c in _rbm_cases()]
    _verify(p_h_given_v, Exercise(
        "p(h = 1 | v)", "p_h_given_v(v, W, c)", lambda v, W, c: _rbm(W, torch.zeros(len(W)), c).p_h_given_v(v), cases,
        mistakes=[
            Mistake(lambda v, W, c: torch.sigmoid(-(c + v @ W)),
                    "σ(-x) is the probability of h_j = 0: p(h_j = 1 | v) = σ(c_j + v·W_:j)"),
            Mistake(lambda v, W, c: c + v @ W, "that is the hidden input c + v·W; its sigmoid is the probability"),
            Mistake(lambda v, W, c: (torch.sigmoid(c + v @ W) > 0.5).float(),
                    "you thresholded (or sampled) the units: return the probabilities σ(c + v·W)"),
        ], grad=(1,)))


def _without_b(make):
    def without_b():
        v, W, _, c = make()
        return v, W, c
    return without_b


def check_p_v_given_h(p_v_given_h: Callable) -> None:
    """Exercise: the visible conditional.  p_v_given_h(h, W, b) -> p(v_i = 1 | h) = σ(b_i + W_i:·h), (N, n_visible)."""
    __tracebackhide__ = True

    def case(n, n_v, n_h, seed):
        return lambda: (_binary((n, n_h), seed), *_rbm_params(n_v, n_h, seed + 1)[:2])

    _verify(p_v_given_h, Exercise(
        "p(v = 1 | h)", "p_v_given_h(h, W, b)",
        lambda h, W, b: _rbm(W, b, torch.zeros(W.shape[1])).p_v_given_h(h),
        [Case("", case(1, 6, 4, 0)), Case("784 visible units", case(5, 784, 20, 3)), Case("", case(2, 3, 9, 6))],
        mistakes=[
            Mistake(lambda h, W, b: torch.sigmoid(-(b + h @ W.T)),
                    "σ(-x) is the probability of v_i = 0: p(v_i = 1 | h) = σ(b_i + W_i:·h)"),
            Mistake(lambda h, W, b: b + h @ W.T, "that is the visible input b + h·Wᵀ; its sigmoid is the probability"),
        ], grad=(1,)))


def _free_energy(v, W, b, c):
    return _rbm(W, b, c).free_energy(v)


def _mean_energy(v, W, b, c):
    """⟨E(v, h)⟩ under p(h|v): -b·v - Σ_j p_j (c_j + v·W_:j), the known confusion with F."""
    x = c + v @ W
    return -(v @ b) - (torch.sigmoid(x) * x).sum(1)


FREE_ENERGY_MISTAKES = [
    Mistake(lambda v, W, b, c: -(v @ b) - torch.log(1 + torch.exp(c + v @ W)).sum(1),
            "log(1 + exp(x)) overflows to inf once x > 88 in float32 (exp(89) is too large): use F.softplus(x), "
            "which computes the same value stably"),
    Mistake(_mean_energy,
            "that is ⟨E(v, h)⟩ under p(h|v), the mean energy, not the free energy: F(v) = -log Σ_h exp(-E(v, h)) "
            "= -b·v - Σ_j softplus(c_j + v·W_:j); the two differ by the hidden units' entropy"),
    Mistake(lambda v, W, b, c: (v @ b) + F.softplus(c + v @ W).sum(1),
            "the sign is flipped: F(v) = -b·v - Σ_j softplus(c_j + v·W_:j), so that p(v) = exp(-F(v)) / Z"),
    Mistake(lambda v, W, b, c: -(v @ b) - F.softplus(c + v @ W).sum(0).sum() + 0 * v[:, 0],
            "you summed over the examples instead of the hidden units: sum over dim=1 (one F per example)"),
]


def check_free_energy(free_energy: Callable) -> None:
    """Exercise: the free energy, stably.  free_energy(v, W, b, c) -> F(v) = -b·v - Σ_j softplus(c_j + v·W_:j), one
    value per example (N,), differentiable in W."""
    __tracebackhide__ = True
    _verify(free_energy, Exercise("the free energy F(v)", "free_energy(v, W, b, c)", _free_energy, _rbm_cases(),
                                  mistakes=FREE_ENERGY_MISTAKES, grad=(1,)))


def _gibbs_step(v, W, b, c, u_h, u_v):
    model = _rbm(W, b, c)
    h = (u_h < model.p_h_given_v(v)).float()
    pv = model.p_v_given_h(h)
    return (u_v < pv).float(), pv


def check_gibbs_step(gibbs_step: Callable) -> None:
    """Exercise: one block-Gibbs sweep.  gibbs_step(v, W, b, c, u_h, u_v) -> (v_new, p_v): h = (u_h < p(h=1|v)),
    p_v = p(v=1|h), v_new = (u_v < p_v), as floats 0./1.; u_h (N, n_hidden) and u_v (N, n_visible) are the uniform
    numbers the sweep uses (so that the result is reproducible)."""
    __tracebackhide__ = True

    def case(n, n_v, n_h, seed):
        return lambda: (_binary((n, n_v), seed), *_rbm_params(n_v, n_h, seed + 1), _uniform((n, n_h), seed + 4),
                        _uniform((n, n_v), seed + 5))

    def mean_field_h(v, W, b, c, u_h, u_v):
        model = _rbm(W, b, c)
        pv = model.p_v_given_h(model.p_h_given_v(v))
        return (u_v < pv).float(), pv

    def both_from_v(v, W, b, c, u_h, u_v):
        model = _rbm(W, b, c)
        pv = model.p_v_given_h(model.p_h_given_v(v))
        return pv, pv

    _verify(gibbs_step, Exercise(
        "the block-Gibbs step", "gibbs_step(v, W, b, c, u_h, u_v)", _gibbs_step,
        [Case("", case(1, 6, 4, 0)), Case("784 visible units", case(5, 784, 20, 10)), Case("", case(8, 5, 3, 20))],
        returns="tensors",
        mistakes=[
            Mistake(mean_field_h, "you passed p(h|v) (mean field) to p(v|h): a Gibbs sweep samples the hidden units, "
                                  "h = (u_h < p(h=1|v)).float(), then computes p(v|h) from those binary h"),
            Mistake(lambda v, W, b, c, u_h, u_v: _gibbs_step(v, W, b, c, u_h, u_v)[::-1],
                    "the order of the outputs: return (v_new, p_v), the binary sample first"),
            Mistake(lambda v, W, b, c, u_h, u_v: _gibbs_step(v, W, b, c, 1 - u_h, 1 - u_v),
                    "a unit is on when the uniform number is below its probability: (u < p).float(), not (u > p)"),
            Mistake(both_from_v, "return binary states v_new (0./1.) and the probabilities p_v"),
        ]))


def _cd_statistics(v, v_neg, W, c):
    return _rbm(W, torch.zeros(len(W)), c).cd_gradient(v, v_neg)


def check_cd_statistics(cd_statistics: Callable) -> None:
    """Exercise: the CD statistics.  cd_statistics(v, v_neg, W, c) -> (dW, db, dc), positive minus negative phase with
    hidden probabilities (mean field): dW = vᵀ p(h|v)/N - v⁻ᵀ p(h|v⁻)/N⁻, db = mean(v) - mean(v⁻),
    dc = mean p(h|v) - mean p(h|v⁻)."""
    __tracebackhide__ = True

    def case(n, n_neg, n_v, n_h, seed):
        def make():
            W, _, c = _rbm_params(n_v, n_h, seed)
            return _binary((n, n_v), seed + 3), _uniform((n_neg, n_v), seed + 4), W, c
        return make

    def flipped(v, v_neg, W, c):
        return tuple(-g for g in _cd_statistics(v, v_neg, W, c))

    def sums(v, v_neg, W, c):
        dW, db, dc = _cd_statistics(v, v_neg, W, c)
        return dW * len(v), db * len(v), dc * len(v)

    _verify(cd_statistics, Exercise(
        "the CD statistics", "cd_statistics(v, v_neg, W, c)", _cd_statistics,
        [Case("", case(1, 1, 6, 4, 0)), Case("784 visible units", case(10, 10, 784, 20, 10)),
         Case("more negatives than data", case(4, 7, 5, 3, 20))], returns="tensors",
        mistakes=[
            Mistake(flipped, "a sign error: the gradient of log p is the positive phase (data) minus the negative "
                             "phase (model samples), ⟨v hᵀ⟩_data - ⟨v hᵀ⟩_model; yours is the other way round"),
            Mistake(sums, "divide each phase by its own number of examples (a mean, not a sum), so that the step "
                          "does not grow with the batch size"),
        ],
        deterministic="two calls on the same input gave different statistics: you sampled the hidden units. The "
                      "lecture's statistics use the probabilities p(h=1|v) (mean field), which have the same "
                      "expectation and less noise"))


def _pcd_chains(chains, W, b, c, uniforms):
    v = chains
    for u_h, u_v in uniforms:
        v, _ = _gibbs_step(v, W, b, c, u_h, u_v)
    return v


def check_pcd_chains(pcd_chains: Callable) -> None:
    """Exercise: the PCD chain update.  pcd_chains(chains, W, b, c, uniforms) -> the persistent chains after one
    Gibbs sweep per pair (u_h, u_v) in `uniforms` (k pairs: PCD-k), as binary states; use your gibbs_step."""
    __tracebackhide__ = True

    def case(n, n_v, n_h, k, seed):
        return lambda: (_binary((n, n_v), seed), *_rbm_params(n_v, n_h, seed + 1),
                        [(_uniform((n, n_h), seed + 10 + i), _uniform((n, n_v), seed + 20 + i)) for i in range(k)])

    def one_sweep(chains, W, b, c, uniforms):
        return _pcd_chains(chains, W, b, c, uniforms[:1])

    def probabilities(chains, W, b, c, uniforms):
        v = _pcd_chains(chains, W, b, c, uniforms[:-1])
        return _gibbs_step(v, W, b, c, *uniforms[-1])[1]

    _verify(pcd_chains, Exercise(
        "the PCD chain update", "pcd_chains(chains, W, b, c, uniforms)", _pcd_chains,
        [Case("k = 1", case(3, 6, 4, 1, 0)), Case("k = 5", case(10, 784, 20, 5, 30)),
         Case("k = 3", case(4, 5, 3, 3, 60))],
        mistakes=[
            Mistake(one_sweep, "you ran one sweep only: run one Gibbs sweep per pair of uniforms (PCD-k runs k)"),
            Mistake(probabilities, "the persistent chains must stay binary states: you returned p(v=1|h) from the "
                                   "last sweep; keep the sample v_new"),
            Mistake(lambda chains, W, b, c, uniforms: chains,
                    "the chains did not move: each sweep's output is the next sweep's input"),
        ]))


def _ais_increment(v, W, b, c, base_bias, beta_prev, beta):
    x = (c + v @ W).double()
    return (beta - beta_prev) * (v.double() @ (b - base_bias).double()) + (
        F.softplus(beta * x) - F.softplus(beta_prev * x)).sum(1)


def check_ais_log_weight_increment(ais_log_weight_increment: Callable) -> None:
    """Exercise: the AIS weight update.  ais_log_weight_increment(v, W, b, c, base_bias, beta_prev, beta) ->
    log p*_β(v) - log p*_β'(v) per run (n_runs,), with log p*_β(v) = (1-β) b_A·v + β b·v + Σ_j softplus(β (c_j +
    v·W_:j)) and b_A = base_bias, as genmodels.rbm.log_partition_ais accumulates it."""
    __tracebackhide__ = True

    def case(n, n_v, n_h, beta_prev, beta, seed, scale=1.0, shift=0.0):
        def make():
            W, b, c = _rbm_params(n_v, n_h, seed, scale)
            return _binary((n, n_v), seed + 3), W, b, c + shift, _normal(n_v, seed + 4), beta_prev, beta
        return make

    _verify(ais_log_weight_increment, Exercise(
        "the AIS log-weight increment", "ais_log_weight_increment(v, W, b, c, base_bias, beta_prev, beta)",
        _ais_increment,
        [Case("", case(4, 6, 4, 0.0, 0.1, 0)), Case("784 visible units", case(5, 784, 20, 0.5, 0.55, 10, 0.05)),
         Case("hidden inputs above 88", case(3, 8, 3, 0.9, 1.0, 20, 30, 60))],
        mistakes=[
            Mistake(lambda v, W, b, c, bA, bp, be: -_ais_increment(v, W, b, c, bA, bp, be),
                    "reversed: the weight grows by log p*_β(v) - log p*_β_prev(v), the new temperature minus the old"),
            Mistake(lambda v, W, b, c, bA, bp, be: (be - bp) * (v.double() @ b.double()) + (
                F.softplus(be * (c + v @ W).double()) - F.softplus(bp * (c + v @ W).double())).sum(1),
                    "the base-rate model is missing: the path is (1-β) b_A·v + β b·v, so the visible term is "
                    "(β - β') (b - b_A)·v"),
            Mistake(lambda v, W, b, c, bA, bp, be: (be - bp) * (v.double() @ (b - bA).double()) + (
                torch.log(1 + torch.exp(be * (c + v @ W))) - torch.log(1 + torch.exp(bp * (c + v @ W)))).sum(1),
                    "log(1 + exp(x)) overflows to inf once x > 88 in float32: use F.softplus"),
            Mistake(lambda v, W, b, c, bA, bp, be: (be - bp) * (v.double() @ (b - bA).double()) + (
                (be - bp) * F.softplus((c + v @ W).double())).sum(1),
                    "β multiplies the hidden input inside the softplus: softplus(β x) - softplus(β' x), not "
                    "(β - β') softplus(x)"),
        ], rtol=1e-4, atol=1e-4))


def _log_z_from_log_weights(log_w, log_z0):
    return log_z0 + torch.logsumexp(log_w.double(), 0) - math.log(len(log_w))


def check_log_z_from_log_weights(log_z_from_log_weights: Callable) -> None:
    """Exercise: log Z from the AIS weights.  log_z_from_log_weights(log_w, log_z0) -> log Z = log Z_0 + log mean(w),
    computed stably from the log-weights (n_runs,) (they reach several hundred: exp overflows)."""
    __tracebackhide__ = True

    def case(n, shift, spread, seed):
        return lambda: (_normal(n, seed, spread, shift).double(), 12.5)

    _verify(log_z_from_log_weights, Exercise(
        "log Z from the AIS weights", "log_z_from_log_weights(log_w, log_z0)", _log_z_from_log_weights,
        [Case("", case(10, 0.0, 1.0, 0)), Case("", case(100, -3.0, 2.0, 1)),
         Case("log-weights near 800, where exp overflows in float64", case(50, 800.0, 3.0, 2))],
        returns="number",
        mistakes=[
            Mistake(lambda log_w, log_z0: log_z0 + torch.log(torch.exp(log_w).mean()),
                    "exp(log w) overflows for large log-weights: log mean(w) = logsumexp(log w) - log n_runs "
                    "(torch.logsumexp)"),
            Mistake(lambda log_w, log_z0: log_z0 + torch.logsumexp(log_w, 0),
                    "log Σ w is not log mean w: subtract log n_runs"),
            Mistake(lambda log_w, log_z0: log_z0 + log_w.mean(),
                    "you averaged the log-weights: mean(log w) ≤ log mean(w) (Jensen), an underestimate of log Z; "
                    "average the weights, by logsumexp"),
            Mistake(lambda log_w, log_z0: torch.logsumexp(log_w, 0) - math.log(len(log_w)),
                    "log Z_0 is missing: log Z = log Z_0 + log mean(w)"),
        ]))


def _pseudo_log_likelihood(v, W, b, c, i):
    model = _rbm(W, b, c)
    flipped = v.clone()
    rows = torch.arange(len(v))
    flipped[rows, i] = 1 - flipped[rows, i]
    return len(W) * F.logsigmoid(model.free_energy(flipped) - model.free_energy(v))


def check_pseudo_log_likelihood(pseudo_log_likelihood: Callable) -> None:
    """Exercise: the pseudo-likelihood.  pseudo_log_likelihood(v, W, b, c, i) -> n_visible · log σ(F(ṽ) - F(v)) per
    example (N,), where ṽ is v with pixel i[n] of example n flipped (genmodels.rbm.pseudo_log_likelihood averages it
    over examples, with random i)."""
    __tracebackhide__ = True

    def case(n, n_v, n_h, seed, scale=1.0):
        return lambda: (_binary((n, n_v), seed), *_rbm_params(n_v, n_h, seed + 1, scale),
                        torch.randint(n_v, (n,), generator=_generator(seed + 5)))

    def log_of_sigmoid(v, W, b, c, i):
        model = _rbm(W, b, c)
        flipped = v.clone()
        flipped[torch.arange(len(v)), i] = 1 - flipped[torch.arange(len(v)), i]
        return len(W) * torch.log(torch.sigmoid(model.free_energy(flipped) - model.free_energy(v)))

    _verify(pseudo_log_likelihood, Exercise(
        "the pseudo-log-likelihood", "pseudo_log_likelihood(v, W, b, c, i)", _pseudo_log_likelihood,
        [Case("", case(4, 6, 4, 0)), Case("784 visible units", case(5, 784, 20, 10, 0.05)),
         Case("free-energy gaps of hundreds", case(6, 10, 5, 20, 100.0))],
        mistakes=[
            Mistake(lambda v, W, b, c, i: _pseudo_log_likelihood(v, W, b, c, i) / len(W),
                    "the factor n_visible is missing: one flipped pixel estimates the sum over all n_visible pixels"),
            Mistake(lambda v, W, b, c, i: len(W) * F.logsigmoid(
                _free_energy(v, W, b, c) - _free_energy(_flip(v, i), W, b, c)),
                    "the sign inside σ: p(v_i | v_-i) = σ(F(ṽ) - F(v)), the flipped example's free energy first"),
            Mistake(log_of_sigmoid, "log(σ(x)) underflows to -inf for very negative x: use F.logsigmoid(x)"),
        ]))


def _flip(v, i):
    flipped = v.clone()
    flipped[torch.arange(len(v)), i] = 1 - flipped[torch.arange(len(v)), i]
    return flipped


def check_free_energy_keras(free_energy: Callable) -> None:
    """Exercise: the free energy in keras.ops.  free_energy(v, W, b, c) -> F(v) = -b·v - Σ_j softplus(c_j + v·W_:j)
    with keras.ops (any backend), one value per example; v, W, b, c are float32 NumPy arrays."""
    __tracebackhide__ = True
    from keras import ops

    from . import rbm_keras

    def reference(v, W, b, c):
        model = rbm_keras.RBM(W.shape[0], W.shape[1], n_chains=1)
        model.W.assign(W), model.b.assign(b), model.c.assign(c)
        return model.free_energy(v)

    def numpy_case(make):
        return lambda: tuple(np.asarray(a, dtype=np.float32) for a in make())

    cases = [Case(c.note, numpy_case(c.make)) for c in _rbm_cases()]
    _verify(free_energy, Exercise(
        "the free energy F(v) in keras.ops", "free_energy(v, W, b, c)", reference, cases, returns="keras",
        mistakes=[
            Mistake(lambda v, W, b, c: -ops.matmul(v, b) - ops.sum(ops.log(1 + ops.exp(ops.matmul(v, W) + c)), 1),
                    "log(1 + exp(x)) overflows to inf once x > 88 in float32: use keras.ops.softplus(x)"),
            Mistake(lambda v, W, b, c: -ops.matmul(v, b) - ops.sum(ops.sigmoid(ops.matmul(v, W) + c)
                                                                    * (ops.matmul(v, W) + c), 1),
                    "that is ⟨E(v, h)⟩ under p(h|v), not the free energy: F(v) = -b·v - Σ_j softplus(c_j + v·W_:j)"),
            Mistake(lambda v, W, b, c: ops.matmul(v, b) + ops.sum(ops.softplus(ops.matmul(v, W) + c), 1),
                    "the sign is flipped: F(v) = -b·v - Σ_j softplus(c_j + v·W_:j)"),
        ]))


# --- 03_langevin: ULA, MALA, SGLD and the diagnostics -------------------------------------------------------------


def _gaussian_log_prob(mu):
    return lambda x: -0.5 * ((x - mu) ** 2).sum(-1)


def _ula_step(x, grad, step_size, noise):
    """genmodels.langevin.ula's update, fed the noise."""
    return x + step_size * grad + math.sqrt(2 * step_size) * noise


def check_ula_step(ula_step: Callable) -> None:
    """Exercise: the ULA step.  ula_step(x, grad_log_p, step_size, noise) -> x + η ∇log p(x) + √(2η) w for the chains
    x (n_chains, dim), their gradient ∇log p(x) and standard normal noise w of the same shape."""
    __tracebackhide__ = True
    cases = [Case("", lambda: (_normal((4, 2), 0), _normal((4, 2), 1), 0.1, _normal((4, 2), 2))),
             Case("one chain in 10 dimensions", lambda: (_normal((1, 10), 3), _normal((1, 10), 4), 0.01,
                                                         _normal((1, 10), 5))),
             Case("1,000 chains", lambda: (_normal((1000, 2), 6), _normal((1000, 2), 7), 0.5, _normal((1000, 2), 8)))]
    _verify(ula_step, Exercise(
        "the ULA step", "ula_step(x, grad_log_p, step_size, noise)", _ula_step, cases,
        mistakes=[
            Mistake(lambda x, g, eta, w: x + eta * g + math.sqrt(eta) * w,
                    "your noise is √η: the chain samples p² (the temperature σ²/(2η) is 1/2), not p; the Euler step "
                    "of the Langevin diffusion has noise √(2η) w"),
            Mistake(lambda x, g, eta, w: x + eta * g + 2 * eta * w,
                    "the noise's standard deviation is √(2η), not 2η: variance 2η per step"),
            Mistake(lambda x, g, eta, w: x + eta * g + eta * w,
                    "the noise's standard deviation is √(2η), not η: noise η w vanishes faster than the drift as "
                    "η → 0 and the chain collapses onto the mode"),
            Mistake(lambda x, g, eta, w: x - eta * g + math.sqrt(2 * eta) * w,
                    "the drift goes up the gradient of log p: x + η ∇log p(x) (down the energy, -η ∇E)"),
            Mistake(lambda x, g, eta, w: x + eta * g,
                    "the noise is missing: without √(2η) w the chain is gradient ascent and stops at a mode"),
            Mistake(lambda x, g, eta, w: x + eta / 2 * g + math.sqrt(eta) * w,
                    "that is SGLD's form with ε = η (drift ε/2, noise √ε): it samples p, but with step ε = 2η; "
                    "this exercise writes ULA as x + η ∇log p + √(2η) w"),
        ], verified="noise √(2η), so the chain samples p"))


def _mala_acceptance(x, y, log_p_x, log_p_y, grad_x, grad_y, step_size):
    def log_q(to, frm, grad_frm):  # as in genmodels.langevin.mala
        return -((to - frm - step_size * grad_frm) ** 2).sum(-1) / (4 * step_size)
    return torch.exp(log_p_y + log_q(x, y, grad_y) - log_p_x - log_q(y, x, grad_x)).clamp(max=1)


def _mala_case(n, dim, step_size, seed):
    def make():
        mu = _normal(dim, seed)
        x = _normal((n, dim), seed + 1)
        y = x + step_size * (mu - x) + math.sqrt(2 * step_size) * _normal((n, dim), seed + 2)
        log_p = _gaussian_log_prob(mu)
        return x, y, log_p(x), log_p(y), mu - x, mu - y, step_size
    return make


def check_mala_acceptance(mala_acceptance: Callable) -> None:
    """Exercise: MALA's acceptance probability.  mala_acceptance(x, y, log_p_x, log_p_y, grad_x, grad_y, step_size)
    -> α = min(1, p(y) q(x|y) / (p(x) q(y|x))) per chain, q(y|x) = N(y; x + η ∇log p(x), 2η I)."""
    __tracebackhide__ = True

    def symmetric(x, y, lpx, lpy, gx, gy, eta):
        return torch.exp(lpy - lpx).clamp(max=1)

    def log_q(to, frm, g, eta, variance):  # log N(to; frm + η g, variance · I), up to a constant
        return -((to - frm - eta * g) ** 2).sum(-1) / (2 * variance)

    def variance_eta(x, y, lpx, lpy, gx, gy, eta):
        return torch.exp(lpy + log_q(x, y, gy, eta, eta) - lpx - log_q(y, x, gx, eta, eta)).clamp(max=1)

    def reversed_q(x, y, lpx, lpy, gx, gy, eta):
        return torch.exp(lpy + log_q(y, x, gx, eta, 2 * eta) - lpx - log_q(x, y, gy, eta, 2 * eta)).clamp(max=1)

    _verify(mala_acceptance, Exercise(
        "MALA's acceptance probability", "mala_acceptance(x, y, log_p_x, log_p_y, grad_x, grad_y, step_size)",
        _mala_acceptance,
        [Case("", _mala_case(5, 2, 0.3, 0)), Case("large steps, many rejections", _mala_case(100, 2, 1.5, 1)),
         Case("in 10 dimensions", _mala_case(8, 10, 0.05, 2))],
        mistakes=[
            Mistake(symmetric, "that is the random-walk Metropolis ratio p(y)/p(x): the Langevin proposal is not "
                               "symmetric, so the ratio needs q(x|y)/q(y|x)"),
            Mistake(variance_eta, "the proposal's variance is 2η (noise √(2η) w): log q(y|x) = -|y - x - η∇log "
                                  "p(x)|²/(4η)"),
            Mistake(reversed_q, "the proposal densities are swapped: the ratio is q(x|y)/q(y|x), the reverse move "
                                "over the forward one"),
            Mistake(lambda x, y, lpx, lpy, gx, gy, eta: torch.exp(lpy - lpx + _mala_log_q_ratio(x, y, lpx, lpy, gx,
                                                                                              gy, eta)),
                    "cap the probability at 1: α = min(1, ratio)"),
        ]))


def _mala_log_q_ratio(x, y, lpx, lpy, gx, gy, eta):
    def log_q(to, frm, g):
        return -((to - frm - eta * g) ** 2).sum(-1) / (4 * eta)
    return log_q(x, y, gy) - log_q(y, x, gx)


def _sgld_step(theta, grad_log_prior, grad_log_likelihood, n_data, batch_size, eps, noise):
    return theta + eps / 2 * (grad_log_prior + n_data / batch_size * grad_log_likelihood) + math.sqrt(eps) * noise


def check_sgld_step(sgld_step: Callable) -> None:
    """Exercise: the SGLD step.  sgld_step(theta, grad_log_prior, grad_log_likelihood, n_data, batch_size, eps, noise)
    -> θ + (ε/2) [∇log p(θ) + (N/n) Σ_batch ∇log p(x_i|θ)] + √ε w, where grad_log_likelihood is the minibatch sum."""
    __tracebackhide__ = True

    def case(n, dim, n_data, batch, eps, seed):
        return lambda: (_normal((n, dim), seed), _normal((n, dim), seed + 1), _normal((n, dim), seed + 2, 5.0),
                        n_data, batch, eps, _normal((n, dim), seed + 3))

    _verify(sgld_step, Exercise(
        "the SGLD step", "sgld_step(theta, grad_log_prior, grad_log_likelihood, n_data, batch_size, eps, noise)",
        _sgld_step,
        [Case("N/n = 10", case(4, 2, 100, 10, 0.01, 0)), Case("N/n = 1000", case(3, 2, 1000, 1, 1e-4, 1)),
         Case("the full batch, N/n = 1", case(2, 5, 50, 50, 0.1, 2))],
        mistakes=[
            Mistake(lambda th, gp, gl, N, n, e, w: th + e / 2 * (gp + gl) + math.sqrt(e) * w,
                    "the N/n factor is missing: the minibatch sum estimates the full data set's gradient only once "
                    "scaled by N/n; without it the prior outweighs the data and the posterior is far too wide"),
            Mistake(lambda th, gp, gl, N, n, e, w: th + e / 2 * (gp + gl / n) + math.sqrt(e) * w,
                    "you averaged the minibatch (1/n) but did not scale it to the data set: the factor is N/n"),
            Mistake(lambda th, gp, gl, N, n, e, w: th + e / 2 * (gp + N / n * gl) + math.sqrt(2 * e) * w,
                    "SGLD's noise is √ε w with drift ε/2 (ULA with η = ε/2); √(2ε) doubles the temperature"),
            Mistake(lambda th, gp, gl, N, n, e, w: th + e * (gp + N / n * gl) + math.sqrt(e) * w,
                    "the drift is (ε/2) times the gradient, not ε: with noise √ε that is the Langevin step at T = 1"),
            Mistake(lambda th, gp, gl, N, n, e, w: th + e / 2 * (gp + N / n * gl),
                    "the injected noise √ε w is missing: without it SGLD is stochastic gradient ascent"),
        ], verified="N/n scaling and noise √ε"))


def check_step_schedule(step_schedule: Callable) -> None:
    """Exercise: SGLD's step schedule.  step_schedule(t, a, b, gamma) -> ε_t = a (b + t)^(-γ), for t a tensor of
    steps (float64)."""
    __tracebackhide__ = True

    def case(n, a, b, gamma):
        return lambda: (torch.arange(n, dtype=torch.float64), a, b, gamma)

    _verify(step_schedule, Exercise(
        "the step schedule", "step_schedule(t, a, b, gamma)", langevin.step_schedule,
        [Case("", case(10, 0.01, 1.0, 0.55)), Case("", case(1000, 0.5, 30.0, 1.0)), Case("", case(5, 1e-3, 2.0, 0.7))],
        mistakes=[
            Mistake(lambda t, a, b, g: a * (b + t) ** g, "the exponent is -γ: the step must decrease with t"),
            Mistake(lambda t, a, b, g: (a * (b + t)) ** (-g), "a multiplies the power: ε_t = a (b + t)^(-γ)"),
            Mistake(lambda t, a, b, g: a * (b * t) ** (-g),
                    "b is added to t (it sets how long the step stays near its start): (b + t)^(-γ)"),
        ]))


def _autocorrelation(x, max_lag):
    return langevin.autocorrelation(x, max_lag).double()


def _chains_case(n_steps, n_chains, dim, rho, seed, offset=0.0):
    """AR(1) chains with coefficient rho; `offset` shifts each chain by its index (chains stuck apart)."""
    def make():
        noise = _normal((n_steps, n_chains, dim), seed).double()
        x = torch.zeros_like(noise)
        for t in range(1, n_steps):
            x[t] = rho * x[t - 1] + noise[t]
        return x + offset * torch.arange(n_chains, dtype=torch.float64)[:, None]
    return make


def check_autocorrelation(autocorrelation: Callable) -> None:
    """Exercise: the autocorrelation of chains.  autocorrelation(x, max_lag) -> ρ(k) = C(k)/C(0), k = 0..max_lag, for
    x (n_steps, n_chains, dim), C(k) = (1/n_steps) Σ_t (x_t - x̄)(x_t+k - x̄) averaged over chains, x̄ the mean over
    all steps and chains; shape (max_lag + 1, dim)."""
    __tracebackhide__ = True

    def autocovariance(y, max_lag, divisor):  # Σ_t y_t y_t+k / divisor(n, k), averaged over chains, k = 0..max_lag
        n = len(y)
        return torch.stack([(y[: n - k] * y[k:]).sum(0).mean(0) / divisor(n, k) for k in range(max_lag + 1)])

    def own_means(x, max_lag):
        acov = autocovariance(x - x.mean(0), max_lag, lambda n, k: n)
        return acov / acov[:1]

    def unbiased(x, max_lag):
        acov = autocovariance(x - x.mean((0, 1)), max_lag, lambda n, k: n - k)
        return acov / acov[:1]

    def not_normalised(x, max_lag):
        return autocovariance(x - x.mean((0, 1)), max_lag, lambda n, k: n)

    def with_lag(make, max_lag):
        return lambda: (make(), max_lag)

    _verify(autocorrelation, Exercise(
        "the autocorrelation", "autocorrelation(x, max_lag)", _autocorrelation,
        [Case("", with_lag(_chains_case(200, 4, 2, 0.5, 0), 10)),
         Case("chains stuck apart", with_lag(_chains_case(300, 3, 1, 0.9, 1, offset=3.0), 30)),
         Case("one chain", with_lag(_chains_case(100, 1, 3, 0.0, 2), 5))],
        mistakes=[
            Mistake(own_means, "you centred each chain at its own mean: centre at the mean of all steps and chains, "
                               "so that chains stuck in different places show up as slow decay"),
            Mistake(unbiased, "divide C(k) by n_steps, not n_steps - k (the standard estimator, which stays "
                              "positive definite; n - k blows up the noisy tail)"),
            Mistake(not_normalised, "that is the autocovariance C(k): divide by C(0), so that ρ(0) = 1"),
        ]))


def _alone(make):
    return lambda: (make(),)


def _effective_sample_size(x):
    return langevin.effective_sample_size(x)


def check_effective_sample_size(effective_sample_size: Callable) -> None:
    """Exercise: the effective sample size.  effective_sample_size(x) -> ESS = n_steps · n_chains / τ per coordinate
    (dim,), for x (n_steps, n_chains, dim), with τ = -1 + 2 Σ_m Γ_m, Γ_m = ρ(2m) + ρ(2m+1) summed while positive and
    made non-increasing (Geyer's initial monotone sequence), clamped at τ ≥ 1 (you may use genmodels'
    autocorrelation, or your own)."""
    __tracebackhide__ = True

    def tau_all_lags(x):
        rho = langevin.autocorrelation(x)
        return x.shape[0] * x.shape[1] / (1 + 2 * rho[1:].sum(0)).clamp(min=1)

    def no_factor_two(x):  # τ = -½ + Σ_m Γ_m: half the right τ, before its clamp at 1
        return x.shape[0] * x.shape[1] / (langevin.integrated_autocorrelation_time(x) / 2).clamp(min=1)

    def steps_only(x):
        return langevin.effective_sample_size(x) / x.shape[1]

    _verify(effective_sample_size, Exercise(
        "the effective sample size", "effective_sample_size(x)", _effective_sample_size,
        [Case("", _alone(_chains_case(400, 4, 2, 0.5, 10))),
         Case("strongly correlated", _alone(_chains_case(500, 3, 1, 0.95, 11))),
         Case("independent draws", _alone(_chains_case(200, 2, 3, 0.0, 12)))],
        mistakes=[
            Mistake(steps_only, "count every chain: ESS = n_steps · n_chains / τ"),
            Mistake(no_factor_two, "τ = 1 + 2 Σ_k≥1 ρ(k): the factor 2 counts the lags on both sides"),
            Mistake(tau_all_lags, "summing ρ(k) over every lag adds the noisy tail (and its negative values): stop "
                                  "where the pair sums Γ_m first turn negative, and keep them non-increasing"),
        ], rtol=1e-4, atol=1e-4))


# --- 04_energy_based_model: the contrastive loss and the replay buffer --------------------------------------------


def check_contrastive_loss(contrastive_loss: Callable) -> None:
    """Exercise: the EBM's loss.  contrastive_loss(energy_data, energy_samples, alpha) -> the scalar mean E(data) -
    mean E(samples) + α mean(E(data)² + E(samples)²), differentiable in both energies."""
    __tracebackhide__ = True

    def case(n, m, alpha, seed, scale=1.0):
        return lambda: (_normal(n, seed, scale), _normal(m, seed + 1, scale, 0.5), alpha)

    def reference(e_data, e_samples, alpha):
        return ebm.contrastive_loss(e_data, e_samples, alpha)[0]

    _verify(contrastive_loss, Exercise(
        "the contrastive loss", "contrastive_loss(energy_data, energy_samples, alpha)", reference,
        [Case("", case(8, 8, 0.1, 0)), Case("", case(128, 128, 1.0, 1, 3.0)), Case("α = 0", case(5, 5, 0.0, 2))],
        returns="tensor", grad=(0, 1),
        mistakes=[
            Mistake(lambda ed, es, a: es.mean() - ed.mean() + a * (ed**2 + es**2).mean(),
                    "the sign of the contrastive term: minimising mean E(data) - mean E(samples) lowers the energy "
                    "of the data and raises that of the samples; yours does the opposite"),
            Mistake(lambda ed, es, a: ed.mean() - es.mean(),
                    "the regulariser α mean(E(data)² + E(samples)²) is missing: the contrastive term fixes only "
                    "energy differences, so the energies drift off without it"),
            Mistake(lambda ed, es, a: ed.mean() - es.mean() + a * (ed.mean() ** 2 + es.mean() ** 2),
                    "the regulariser is the mean of the squared energies, mean(E²), not the square of the mean"),
        ]))


def _buffer_draw(buffer, slots, noise, restart):
    x0 = buffer.index_select(0, slots)
    n_new = round(restart * len(slots))
    if n_new:
        x0[:n_new] = noise[:n_new]
    return x0


def check_buffer_draw(buffer_draw: Callable) -> None:
    """Exercise: a replay-buffer draw.  buffer_draw(buffer, slots, noise, restart) -> the chains' starts x0: the
    buffer's states at the indices `slots` (n,), the first round(restart · n) of them replaced by `noise` (n, ...)
    (fresh uniform noise in [-1, 1]), as genmodels.ebm.negative_samples draws them. The buffer stays as it was."""
    __tracebackhide__ = True

    def case(size, n, restart, seed):
        def make():
            buffer = _uniform((size, 1, 4, 4), seed) * 2 - 1
            slots = torch.randperm(size, generator=_generator(seed + 1))[:n]
            return buffer, slots, _uniform((n, 1, 4, 4), seed + 2) * 2 - 1, restart
        return make

    _verify(buffer_draw, Exercise(
        "the replay-buffer draw", "buffer_draw(buffer, slots, noise, restart)", _buffer_draw,
        [Case("5% restarted", case(100, 40, 0.05, 0)), Case("none restarted", case(10, 10, 0.0, 1)),
         Case("half restarted", case(50, 7, 0.5, 2))],
        mistakes=[
            Mistake(lambda buf, slots, noise, r: buf.index_select(0, slots),
                    "no chain was restarted: replace the first round(restart · n) starts by the fresh noise, or the "
                    "buffer never sees new states"),
            Mistake(lambda buf, slots, noise, r: buf[: len(slots)].clone(),
                    "take the states at the indices `slots` (buffer[slots]), not the first n of the buffer"),
            Mistake(lambda buf, slots, noise, r: torch.cat([buf.index_select(0, slots)[: len(slots) - round(
                r * len(slots))], noise[: round(r * len(slots))]]),
                    "the restarted chains come first: x0[:n_new] = noise[:n_new]"),
        ]))


def check_temperature(temperature: Callable) -> None:
    """Exercise: the temperature of a Langevin sampler.  temperature(step_size, noise) -> T = σ²/(2η): the chain
    x' = x - η ∇E + σ w samples exp(-E/T)."""
    __tracebackhide__ = True
    _verify(temperature, Exercise(
        "the sampler's temperature", "temperature(step_size, noise)", ebm.temperature,
        [Case("ULA's noise, T = 1", lambda: (0.01, math.sqrt(0.02))), Case("the tutorial's", lambda: (10.0, 0.005)),
         Case("", lambda: (0.5, 0.3))], returns="number",
        mistakes=[
            Mistake(lambda eta, s: s / (2 * eta), "the noise enters squared: T = σ²/(2η)"),
            Mistake(lambda eta, s: s**2 / eta, "T = σ²/(2η): ULA's noise σ = √(2η) must give T = 1"),
            Mistake(lambda eta, s: 2 * eta / s**2, "upside down: T = σ²/(2η), hotter with more noise"),
        ]))


def _image_langevin_step(x, grad_energy, step_size, noise_std, noise, grad_clamp):
    return (x - step_size * grad_energy.clamp(-grad_clamp, grad_clamp) + noise_std * noise).clamp(-1, 1)


def check_image_langevin_step(image_langevin_step: Callable) -> None:
    """Exercise: a Langevin step on images.  image_langevin_step(x, grad_energy, step_size, noise_std, noise,
    grad_clamp) -> clamp(x - η clamp(∇E(x), ±grad_clamp) + σ w, -1, 1), as genmodels.ebm.langevin_sample steps."""
    __tracebackhide__ = True

    def case(n, step, sigma, clamp, seed, grad_scale=1.0):
        return lambda: (_uniform((n, 1, 6, 6), seed) * 2 - 1, _normal((n, 1, 6, 6), seed + 1, grad_scale), step,
                        sigma, _normal((n, 1, 6, 6), seed + 2), clamp)

    _verify(image_langevin_step, Exercise(
        "the Langevin step on images", "image_langevin_step(x, grad_energy, step_size, noise_std, noise, grad_clamp)",
        _image_langevin_step,
        [Case("", case(2, 0.1, 0.05, 0.5, 0)), Case("the tutorial's step 10", case(4, 10.0, 0.005, 0.03, 1)),
         Case("large gradients", case(3, 0.05, 0.3, 1.0, 2, grad_scale=20.0))],
        mistakes=[
            Mistake(lambda x, g, eta, s, w, c: (x + eta * g.clamp(-c, c) + s * w).clamp(-1, 1),
                    "you climbed the energy: sampling exp(-E) moves down its gradient, x - η ∇E(x)"),
            Mistake(lambda x, g, eta, s, w, c: (x - eta * g + s * w).clamp(-1, 1),
                    "the gradient is not clamped: clamp each coordinate of ∇E to [-grad_clamp, grad_clamp] first"),
            Mistake(lambda x, g, eta, s, w, c: x - eta * g.clamp(-c, c) + s * w,
                    "the new state is not clamped to the data range [-1, 1]"),
            Mistake(lambda x, g, eta, s, w, c: (x - eta * g.clamp(-c, c) + math.sqrt(2 * eta) * w).clamp(-1, 1),
                    "the noise is σ w with the sampler's σ = noise_std, not √(2η) w"),
        ]))


# --- 05_vae: the ELBO's pieces, the reparameterisation, IWAE, the Keras Sampling layer ----------------------------


def _latent_cases():
    return [Case("", lambda: (_normal((1, 2), 0), _normal((1, 2), 1))),
            Case("a batch of 20-D codes", lambda: (_normal((16, 20), 2), _normal((16, 20), 3))),
            Case("log σ² from -5 to 3", lambda: (_normal((4, 3), 4, 2.0), torch.linspace(-5, 3, 12).reshape(4, 3)))]


def check_kl_standard_normal(kl_standard_normal: Callable) -> None:
    """Exercise: the closed-form KL to N(0, I).  kl_standard_normal(mu, log_var) -> 1/2 Σ_j (σ_j² + μ_j² - 1 -
    log σ_j²) with σ² = exp(log_var), summed over the last axis (N,), differentiable."""
    __tracebackhide__ = True
    _verify(kl_standard_normal, Exercise(
        "KL(Q || N(0, I))", "kl_standard_normal(mu, log_var)", vae.kl_standard_normal, _latent_cases(), grad=(0, 1),
        mistakes=[
            Mistake(lambda mu, lv: 0.5 * (lv.exp() + mu**2 - lv).sum(-1),
                    "the -k term is missing (-1 per latent dimension): KL = 1/2 Σ_j (σ_j² + μ_j² - 1 - log σ_j²), "
                    "zero when Q = N(0, I)"),
            Mistake(lambda mu, lv: 0.5 * ((2 * lv).exp() + mu**2 - 1 - lv).sum(-1),
                    "σ² is exp(log σ²) itself, not its square: you used exp(2 log σ²)"),
            Mistake(lambda mu, lv: 0.5 * (lv.exp() + mu**2 - 1 - lv).sum(0),
                    "a sum over the wrong axis: sum over the latent dimensions (dim=-1), one KL per example"),
            Mistake(lambda mu, lv: 0.5 * (lv.exp() + mu**2 - 1 - lv).mean(-1),
                    "the KL sums over the latent dimensions; you averaged them"),
            Mistake(lambda mu, lv: -0.5 * (lv.exp() + mu**2 - 1 - lv).sum(-1),
                    "a KL divergence is ≥ 0: the sign is flipped (this is the -KL the ELBO adds)"),
            Mistake(lambda mu, lv: 0.5 * (lv.exp() + mu**2 - 1 + lv).sum(-1),
                    "the log-variance enters with a minus: ... - 1 - log σ_j²"),
        ]))


def check_kl_gaussians(kl_gaussians: Callable) -> None:
    """Exercise: the general Gaussian KL.  kl_gaussians(mu_q, log_var_q, mu_p, log_var_p) -> KL(N(μ_q, Σ_q) ||
    N(μ_p, Σ_p)) for diagonal covariances, 1/2 [tr(Σ_p⁻¹Σ_q) + (μ_p - μ_q)ᵀΣ_p⁻¹(μ_p - μ_q) - k + log det Σ_p/det Σ_q],
    summed over the last axis (N,)."""
    __tracebackhide__ = True

    def case(shape, seed):
        return lambda: (_normal(shape, seed), _normal(shape, seed + 1), _normal(shape, seed + 2), _normal(shape,
                                                                                                         seed + 3))

    _verify(kl_gaussians, Exercise(
        "KL(Q || P) between diagonal Gaussians", "kl_gaussians(mu_q, log_var_q, mu_p, log_var_p)", vae.kl_gaussians,
        [Case("", case((1, 2), 0)), Case("a batch of 20-D codes", case((16, 20), 10)),
         Case("P = N(0, I): the standard-normal KL", lambda: (_normal((4, 3), 20), _normal((4, 3), 21),
                                                              torch.zeros(4, 3), torch.zeros(4, 3)))],
        grad=(0, 1),
        mistakes=[
            Mistake(lambda mq, lq, mp, lp: vae.kl_gaussians(mq, lq, mp, lp) + 0.5 * mq.shape[-1],
                    "the -k term is missing (-1 per latent dimension): the KL of Q from itself must be 0"),
            Mistake(lambda mq, lq, mp, lp: vae.kl_gaussians(mp, lp, mq, lq),
                    "that is KL(P || Q): the KL is not symmetric; the trace term is tr(Σ_p⁻¹ Σ_q)"),
            Mistake(lambda mq, lq, mp, lp: 0.5 * ((lq - lp).exp() + (mq - mp) ** 2 - 1 + lp - lq).sum(-1),
                    "the mean term is weighted by Σ_p⁻¹: (μ_p - μ_q)² / σ_p²"),
            Mistake(lambda mq, lq, mp, lp: 0.5 * ((lq - lp).exp() + (mq - mp) ** 2 / lp.exp() - 1 + lq - lp).sum(-1),
                    "the log-determinant term is log det Σ_p - log det Σ_q: + log σ_p² - log σ_q²"),
        ]))


def _reparameterise(mu, log_var, eps):
    return mu + torch.exp(0.5 * log_var) * eps


def check_reparameterise(reparameterise: Callable) -> None:
    """Exercise: the reparameterised sample.  reparameterise(mu, log_var, eps) -> h = μ + σ ε with σ = exp(½ log σ²),
    for ε ~ N(0, I) given; differentiable in μ and log σ² (that is the point of the trick)."""
    __tracebackhide__ = True
    cases = [Case(c.note, (lambda m, s: lambda: (*m(), _normal(m()[0].shape, s)))(c.make, 50 + i))
             for i, c in enumerate(_latent_cases())]
    _verify(reparameterise, Exercise(
        "the reparameterised sample", "reparameterise(mu, log_var, eps)", _reparameterise, cases, grad=(0, 1),
        mistakes=[
            Mistake(lambda mu, lv, eps: mu + torch.exp(lv) * eps,
                    "σ = exp(½ log σ²), not exp(log σ²) (which is the variance σ²): your samples are too spread "
                    "where σ > 1 and too narrow where σ < 1"),
            Mistake(lambda mu, lv, eps: mu + lv * eps, "log_var is the log-variance: σ = exp(½ log_var)"),
            Mistake(lambda mu, lv, eps: mu + torch.exp(0.5 * lv),
                    "multiply σ by the noise ε: h = μ + σ ε"),
            Mistake(lambda mu, lv, eps: mu * torch.exp(0.5 * lv) + eps, "h = μ + σ ε: the noise is scaled, not μ"),
        ], verified="differentiable in μ and log σ²"))


def check_bernoulli_log_likelihood(bernoulli_log_likelihood: Callable) -> None:
    """Exercise: the decoder's log-likelihood.  bernoulli_log_likelihood(x, logits) -> Σ_pixels [x log σ(l) + (1 - x)
    log(1 - σ(l))] for binary x and logits l, summed over all but the first axis (N,), computed stably."""
    __tracebackhide__ = True

    def case(shape, seed, scale=1.0):
        return lambda: (_binary(shape, seed), _normal(shape, seed + 1, scale))

    _verify(bernoulli_log_likelihood, Exercise(
        "the Bernoulli log-likelihood", "bernoulli_log_likelihood(x, logits)", vae.bernoulli_log_likelihood,
        [Case("", case((2, 10), 0)), Case("images (N, 28, 28)", case((3, 28, 28), 1)),
         Case("logits of ±100, where σ rounds to 0 or 1", case((4, 16), 2, 60.0))],
        grad=(1,),
        mistakes=[
            Mistake(lambda x, logits: (x * torch.log(torch.sigmoid(logits))
                                       + (1 - x) * torch.log(1 - torch.sigmoid(logits))).flatten(1).sum(-1),
                    "log σ(l) and log(1 - σ(l)) overflow to -inf once σ rounds to 0 or 1: use F.logsigmoid or "
                    "-F.binary_cross_entropy_with_logits(logits, x, reduction='none')"),
            Mistake(lambda x, logits: -vae.bernoulli_log_likelihood(x, logits),
                    "that is the binary cross-entropy, minus the log-likelihood: flip the sign"),
            Mistake(lambda x, logits: vae.bernoulli_log_likelihood(x, logits) / x[0].numel(),
                    "the log-likelihood sums the pixels; you averaged them (F.binary_cross_entropy's default "
                    "reduction='mean')"),
            Mistake(lambda x, logits: vae.bernoulli_log_likelihood(x, logits).sum() if len(x) > 1 else None,
                    "you summed over the examples too: one value per example, shape (N,)"),
        ]))


def _elbo(x, mu, log_var, eps, decode):
    h = _reparameterise(mu, log_var, eps)
    return vae.bernoulli_log_likelihood(x, decode(h)) - vae.kl_standard_normal(mu, log_var)


def _decoder(latent, pixels, seed):
    W = _normal((latent, pixels), seed, 2.0)
    return lambda h: h @ W


def check_elbo(elbo: Callable) -> None:
    """Exercise: the ELBO.  elbo(x, mu, log_var, eps, decode) -> log p(x | h) - KL(Q(h|x) || N(0, I)) per example, with
    h = μ + σ ε (one sample), decode(h) the decoder's logits, the Bernoulli log-likelihood and the closed-form KL
    (your functions above, or genmodels.vae's)."""
    __tracebackhide__ = True

    def case(n, latent, pixels, seed):
        return lambda: (_binary((n, pixels), seed), _normal((n, latent), seed + 1), _normal((n, latent), seed + 2, 0.5),
                        _normal((n, latent), seed + 3), _decoder(latent, pixels, seed + 4))

    _verify(elbo, Exercise(
        "the ELBO", "elbo(x, mu, log_var, eps, decode)", _elbo,
        [Case("", case(1, 2, 10, 0)), Case("784 pixels, 20-D codes", case(8, 20, 784, 10)),
         Case("", case(3, 5, 30, 20))], grad=(1, 2),
        mistakes=[
            Mistake(lambda x, mu, lv, eps, dec: vae.bernoulli_log_likelihood(x, dec(_reparameterise(mu, lv, eps)))
                    + vae.kl_standard_normal(mu, lv),
                    "the ELBO subtracts the KL: log p(x|h) - KL(Q || p(h))"),
            Mistake(lambda x, mu, lv, eps, dec: vae.bernoulli_log_likelihood(x, dec(mu + torch.exp(lv) * eps))
                    - vae.kl_standard_normal(mu, lv),
                    "σ = exp(½ log σ²), not exp(log σ²), in the sample h = μ + σ ε"),
            Mistake(lambda x, mu, lv, eps, dec: vae.bernoulli_log_likelihood(x, dec(_reparameterise(mu, lv, eps)))
                    - 0.5 * (lv.exp() + mu**2 - lv).sum(-1),
                    "the KL's -k term is missing (-1 per latent dimension): KL = 1/2 Σ_j (σ_j² + μ_j² - 1 - log σ_j²)"),
            Mistake(lambda x, mu, lv, eps, dec: vae.bernoulli_log_likelihood(x, dec(mu)) - vae.kl_standard_normal(mu,
                                                                                                                 lv),
                    "you decoded μ, not the sample h = μ + σ ε: the ELBO's first term is an expectation over Q"),
            Mistake(lambda x, mu, lv, eps, dec: vae.bernoulli_log_likelihood(x, dec(_reparameterise(mu, lv, eps))),
                    "the KL term is missing: ELBO = log p(x|h) - KL(Q(h|x) || p(h))"),
        ]))


def _iwae_bound(log_weights):
    return torch.logsumexp(log_weights, 0) - math.log(len(log_weights))


def check_iwae_bound(iwae_bound: Callable) -> None:
    """Exercise: the IWAE bound.  iwae_bound(log_weights) -> log (1/K) Σ_k w_k per example (N,), from the log-weights
    log w_k = log p(x|h_k) + log p(h_k) - log Q(h_k|x) of shape (K, N), stably (they are about -100 to -800 nats)."""
    __tracebackhide__ = True

    def case(k, n, shift, seed):
        return lambda: (_normal((k, n), seed, 3.0, shift),)

    _verify(iwae_bound, Exercise(
        "the IWAE bound", "iwae_bound(log_weights)", _iwae_bound,
        [Case("K = 5", case(5, 3, -100.0, 0)), Case("K = 1: the ELBO", case(1, 4, -90.0, 1)),
         Case("log-weights near -800, where exp underflows", case(50, 6, -800.0, 2))],
        mistakes=[
            Mistake(lambda lw: torch.logsumexp(lw, 0),
                    "log K is missing: the bound is log of the mean of the K weights, logsumexp - log K; without it "
                    "the 'bound' exceeds log p(x) by log K"),
            Mistake(lambda lw: lw.mean(0), "you averaged the log-weights: that is the ELBO (K samples of it), not the "
                                           "IWAE bound, which averages the weights inside the log"),
            Mistake(lambda lw: torch.log(torch.exp(lw).mean(0)),
                    "exp(log w) underflows to 0 for log-weights of hundreds of nats (log 0 = -inf): use "
                    "torch.logsumexp(log_weights, dim=0) - log K"),
            Mistake(lambda lw: torch.logsumexp(lw, 1) - math.log(lw.shape[1]),
                    "a sum over the wrong axis: the K samples are along dim 0; one bound per example (N,)"),
        ]))


def check_sampling_layer(Sampling) -> None:
    """Exercise: the Keras `Sampling` layer.  Sampling(seed=None) is a keras.layers.Layer whose call((mu, log_var))
    returns h = μ + exp(½ log σ²) ε with ε ~ N(0, I) drawn by keras.random.normal from a keras.random.SeedGenerator.
    Checked on 20,000 draws: their mean and standard deviation, and that draws differ from call to call."""
    __tracebackhide__ = True
    _reported(_check_sampling_layer, Sampling)


def _check_sampling_layer(Sampling) -> None:
    __tracebackhide__ = True
    import keras

    title = "the Keras Sampling layer"
    if not isinstance(Sampling, type):
        raise WrongAnswer(f"{title}: the check expects your class itself (check_sampling_layer(Sampling)), not "
                             f"an instance or a call of it; got {type(Sampling).__name__}")
    if not issubclass(Sampling, keras.layers.Layer):
        raise WrongAnswer(f"{title}: Sampling must subclass keras.layers.Layer (class Sampling(layers.Layer))")
    try:
        layer = Sampling(seed=0)
    except NotImplementedError as error:
        print(f"{_not_done_label(error, title)}: not done yet")
        return
    except (TypeError, ValueError):  # Keras refuses an unknown keyword with a ValueError
        raise WrongAnswer(f"{title}: Sampling(seed=0) failed: give __init__ a seed argument, (self, seed=None, "
                             "**kwargs), and pass **kwargs to super().__init__") from None
    mu = np.tile(np.array([[0.0, 3.0, -1.0]], dtype=np.float32), (20000, 1))
    log_var = np.tile(np.log(np.array([[1.0, 4.0, 0.25]], dtype=np.float32)), (20000, 1))
    try:
        h = layer((mu, log_var))
    except NotImplementedError as error:
        print(f"{_not_done_label(error, title)}: not done yet")
        return
    if isinstance(h, np.ndarray):
        raise WrongAnswer(f"{title}: call returned a NumPy array: use keras.ops and keras.random, which return "
                             "the backend's tensors (and run inside fit)")
    h = np.asarray(keras.ops.convert_to_numpy(h), dtype=np.float64)
    if h.shape != mu.shape:
        raise WrongAnswer(f"{title}: h must have μ's shape {mu.shape}; got {h.shape}")
    std, mean = h.std(0), h.mean(0)
    expected = np.array([1.0, 2.0, 0.5])  # 4 standard errors of the standard deviation at 20,000 draws: ±2.8%
    shown = f"\n  for σ = {expected.tolist()}, μ = [0, 3, -1]: your draws have std {np.round(std, 3).tolist()}, mean " \
            f"{np.round(mean, 3).tolist()}"
    if np.allclose(std, expected**2, rtol=0.03):
        raise WrongAnswer(f"{title}: σ = exp(½ log σ²), not exp(log σ²) (the variance): your draws spread too "
                             f"much where σ > 1 and too little where σ < 1{shown}")
    if np.allclose(std, np.sqrt(expected), rtol=0.03):
        raise WrongAnswer(f"{title}: σ = exp(½ log σ²); you took exp(¼ log σ²) (√σ){shown}")
    if np.allclose(std, 0, atol=1e-6):
        raise WrongAnswer(f"{title}: the draws do not vary: add σ times keras.random.normal(shape, "
                             f"seed=self.seed_generator){shown}")
    if not np.allclose(std, expected, rtol=0.03):
        raise WrongAnswer(f"{title}: the standard deviation of your draws is not σ = exp(½ log σ²){shown}")
    if not np.allclose(mean, mu[0], atol=4 * expected / math.sqrt(len(mu))):
        raise WrongAnswer(f"{title}: the mean of your draws is not μ: h = μ + σ ε{shown}")
    again = np.asarray(keras.ops.convert_to_numpy(layer((mu[:5], log_var[:5]))))
    if np.allclose(again, np.asarray(keras.ops.convert_to_numpy(layer((mu[:5], log_var[:5]))))):
        raise WrongAnswer(f"{title}: two calls gave the same draws: pass the layer's keras.random.SeedGenerator "
                             "as seed= (a fixed integer seed repeats the same ε at every step)")
    print(f"✓ {title}: 20,000 draws have mean μ and standard deviation exp(½ log σ²) for σ = 1, 2, 0.5; fresh "
          "noise at every call")


# --- 07_ising: the Ising model ------------------------------------------------------------------------------------


def _spins(shape, seed, p=0.5):
    return (2 * _binary(shape, seed, p) - 1).to(torch.int8)


def _spin_cases():
    return [Case("a batch of 4×4 lattices", lambda: (_spins((5, 4, 4), 1),)),
            Case("6×6, mostly up", lambda: (_spins((3, 6, 6), 2, 0.9),)),
            Case("one lattice without a batch axis", lambda: (_spins((8, 8), 3),)),
            Case("2×2", lambda: (_spins((1, 2, 2), 0),))]


def check_ising_energy(energy: Callable) -> None:
    """Exercise: the Ising energy.  energy(spins) -> H(s) = -Σ_⟨ij⟩ s_i s_j over the nearest-neighbour bonds of the
    periodic lattice, each bond once, for spins (..., L, L) of ±1 (int8); one float per lattice."""
    __tracebackhide__ = True

    def twice(s):
        s = s.float()
        return -(s * (s.roll(1, -1) + s.roll(-1, -1) + s.roll(1, -2) + s.roll(-1, -2))).sum((-2, -1))

    def open_boundaries(s):
        s = s.float()
        return -((s[..., :, 1:] * s[..., :, :-1]).sum((-2, -1)) + (s[..., 1:, :] * s[..., :-1, :]).sum((-2, -1)))

    _verify(energy, Exercise(
        "the Ising energy", "energy(spins)", lambda s: ising.energy(s), _spin_cases(), returns="tensor",
        mistakes=[
            Mistake(twice, "each bond counted twice: sum over the right and down neighbours only (4 neighbours "
                           "per site count every bond from both ends)"),
            Mistake(open_boundaries, "the boundaries are periodic: the last column bonds to the first (torch.roll), "
                                     "so every site has four neighbours"),
            Mistake(lambda s: -ising.energy(s), "the sign is flipped: H = -Σ s_i s_j, lowest when neighbours align"),
            Mistake(lambda s: ising.energy(s) / s.shape[-1] ** 2,
                    "that is the energy per site: return the lattice's energy H(s)"),
        ]))


def check_magnetisation(magnetisation: Callable) -> None:
    """Exercise: the magnetisation per site.  magnetisation(spins) -> m = (1/N) Σ_i s_i for each lattice of spins
    (..., L, L), N = L²."""
    __tracebackhide__ = True
    _verify(magnetisation, Exercise(
        "the magnetisation", "magnetisation(spins)", lambda s: ising.magnetisation(s), _spin_cases(),
        mistakes=[
            Mistake(lambda s: s.float().sum((-2, -1)), "m is per site: divide the sum by the N = L² sites (a mean)"),
            Mistake(lambda s: ising.magnetisation(s).abs(),
                    "that is |m|: return the signed magnetisation (its absolute value is a separate observable)"),
            Mistake(lambda s: s.float().mean(-1), "average over both lattice axes (dim=(-2, -1)), one m per lattice"),
        ]))


def _local_field(s):
    return s.roll(1, -1) + s.roll(-1, -1) + s.roll(1, -2) + s.roll(-1, -2)


def check_local_field(local_field: Callable) -> None:
    """Exercise: the local field.  local_field(spins) -> h_i = Σ_j∈nn(i) s_j, the sum of the four nearest neighbours
    of each site on the periodic lattice, same shape as spins (..., L, L)."""
    __tracebackhide__ = True

    def open_boundaries(s):
        padded = F.pad(s.float(), (1, 1, 1, 1))
        return (padded[..., 1:-1, :-2] + padded[..., 1:-1, 2:] + padded[..., :-2, 1:-1] + padded[..., 2:, 1:-1])

    _verify(local_field, Exercise(
        "the local field", "local_field(spins)", _local_field, _spin_cases(), rtol=0, atol=1e-9,
        mistakes=[
            Mistake(open_boundaries, "the boundaries are periodic: torch.roll wraps the edges, so each edge site has "
                                     "four neighbours too"),
            Mistake(lambda s: _local_field(s) + s, "the site itself is not its own neighbour: four neighbours only"),
            Mistake(lambda s: s.roll(1, -1) + s.roll(1, -2),
                    "all four neighbours: left, right, up and down (you have two)"),
        ]))


def _half_sweep(spins, temperature, u, colour):
    s = spins.to(torch.int32)
    L = s.shape[-1]
    i, j = torch.meshgrid(torch.arange(L), torch.arange(L), indexing="ij")
    delta_e = 2 * s * _local_field(s)
    flip = (u < torch.exp(-delta_e / temperature)) & ((i + j) % 2 == colour)
    return (s - 2 * s * flip).to(torch.int8)


def check_metropolis_half_sweep(metropolis_half_sweep: Callable) -> None:
    """Exercise: a checkerboard Metropolis half-sweep.  metropolis_half_sweep(spins, temperature, u, colour) -> the
    spins after trying to flip every site with (i + j) % 2 == colour at once, accepting where u < exp(-ΔE/T),
    ΔE = 2 s_i h_i; u (..., L, L) holds one uniform number per site. Returns int8 spins, the input unchanged."""
    __tracebackhide__ = True

    def case(shape, T, colour, seed, p=0.5):
        return lambda: (_spins(shape, seed, p), T, _uniform(shape, seed + 1), colour)

    _verify(metropolis_half_sweep, Exercise(
        "the Metropolis half-sweep", "metropolis_half_sweep(spins, temperature, u, colour)", _half_sweep,
        [Case("black sites at T = 2", case((3, 4, 4), 2.0, 0, 0)), Case("white sites at T_c", case(
            (2, 8, 8), ising.CRITICAL_TEMPERATURE, 1, 1)), Case("ordered at T = 1", case((4, 6, 6), 1.0, 0, 2, 0.9))],
        returns="tensor", rtol=0, atol=1e-9,
        mistakes=[
            Mistake(lambda s, T, u, c: _half_sweep_with(s, T, u, c, lambda s, h: -2 * s * h),
                    "ΔE has the wrong sign: flipping s_i changes the energy by +2 s_i h_i (an aligned spin costs "
                    "energy to flip)"),
            Mistake(lambda s, T, u, c: _half_sweep_with(s, T, u, c, lambda s, h: s * h),
                    "flipping s_i changes the energy by ΔE = 2 s_i h_i: the factor 2 is missing"),
            Mistake(lambda s, T, u, c: _half_sweep_with(s, T, u, c, lambda s, h: 2 * s * h, times=True),
                    "the Boltzmann factor is exp(-ΔE / T): divide by T"),
            Mistake(lambda s, T, u, c: _flip_all(s, T, u),
                    "you updated every site at once: neighbours flip together, which is not a Metropolis chain; "
                    "update only the sites of one colour ((i + j) % 2 == colour)"),
        ]))


def _half_sweep_with(spins, T, u, colour, delta, times=False):
    s = spins.to(torch.int32)
    L = s.shape[-1]
    i, j = torch.meshgrid(torch.arange(L), torch.arange(L), indexing="ij")
    d = delta(s, _local_field(s))
    flip = (u < torch.exp(-d * T if times else -d / T)) & ((i + j) % 2 == colour)
    return (s - 2 * s * flip).to(torch.int8)


def _flip_all(spins, T, u):
    s = spins.to(torch.int32)
    flip = u < torch.exp(-2 * s * _local_field(s) / T)
    return (s - 2 * s * flip).to(torch.int8)


def _exact_log_z(L, temperature):
    return ising.exact(L, temperature).log_z


def check_exact_log_z(exact_log_z: Callable) -> None:
    """Exercise: the exact log Z of a small lattice.  exact_log_z(L, temperature) -> log Z = log Σ_s exp(-H(s)/T) over
    all 2^(L²) states (L = 2 or 3), stably; use your energy()."""
    __tracebackhide__ = True
    _verify(exact_log_z, Exercise(
        "the exact log Z", "exact_log_z(L, temperature)", _exact_log_z,
        [Case("3×3 at T_c", lambda: (3, ising.CRITICAL_TEMPERATURE)), Case("2×2 at T = 3", lambda: (2, 3.0)),
         Case("3×3 at T = 0.05, where exp(-H/T) overflows", lambda: (3, 0.05))], returns="number",
        mistakes=[
            Mistake(lambda L, T: torch.logsumexp(ising.energy(ising.all_states(L)).double() / T, 0),
                    "the sign: the Boltzmann weight is exp(-H/T)"),
            Mistake(lambda L, T: torch.logsumexp(-ising.energy(ising.all_states(L)).double() * T, 0),
                    "divide the energy by T: exp(-H/T), not exp(-H·T)"),
            Mistake(lambda L, T: _exact_log_z(L, T) - L * L * math.log(2),
                    "log Z sums the weights; you averaged them over the 2^(L²) states"),
            Mistake(lambda L, T: torch.log(torch.exp(-ising.energy(ising.all_states(L)) / T).sum()),
                    "exp(-H/T) overflows at low temperature: use torch.logsumexp(-H / T, 0)"),
        ]))


def check_boltzmann_log_probabilities(boltzmann_log_probabilities: Callable) -> None:
    """Exercise: the Boltzmann distribution.  boltzmann_log_probabilities(energies, temperature) -> log p(s) = -H(s)/T
    - log Z for each state's energy in `energies` (n_states,), log Z = logsumexp(-H/T) over the same states."""
    __tracebackhide__ = True

    def case(L, T):
        return lambda: (ising.energy(ising.all_states(L)).double(), T)

    def reference(energies, T):
        return -energies / T - torch.logsumexp(-energies / T, 0)

    _verify(boltzmann_log_probabilities, Exercise(
        "the Boltzmann log-probabilities", "boltzmann_log_probabilities(energies, temperature)", reference,
        [Case("2×2 at T = 3", case(2, 3.0)), Case("3×3 at T_c", case(3, ising.CRITICAL_TEMPERATURE)),
         Case("3×3 at T = 0.01, where exp(-H/T) overflows", case(3, 0.01))],
        mistakes=[
            Mistake(lambda E, T: -E / T, "log Z is missing: the probabilities must sum to one"),
            Mistake(lambda E, T: E / T - torch.logsumexp(E / T, 0), "the sign: p(s) ∝ exp(-H(s)/T)"),
            Mistake(lambda E, T: -E * T - torch.logsumexp(-E * T, 0), "divide the energy by T: exp(-H/T)"),
            Mistake(lambda E, T: torch.log(torch.exp(-E / T) / torch.exp(-E / T).sum()),
                    "exp(-H/T) overflows at low temperature: compute log Z by torch.logsumexp"),
        ]))
