"""The grading machinery every exercise check shares: a spec (`Exercise`: the call, the package function it compares
with, its `Case`s and named `Mistake`s) becomes a check by `check_function`, which the notebooks call as
`exercises.check_free_energy(free_energy)`.

Each check calls the student's function on fixed inputs (several shapes, fixed seeds, values where a naive formula
breaks, such as hidden inputs above 88 where exp overflows in float32; the random numbers a random function needs are
passed in as arguments), compares the result with the package's own implementation, and on success prints one line
saying what was verified. On failure it raises WrongAnswer, an AssertionError whose message comes first: it names the
mistake when it is a known one (the reference beside a few known wrong versions: "your noise is √η: the chain samples
p²"), else it shows one input, the expected and the returned value. An unfilled stub (NotImplementedError) is not an
error: the check prints "exercise 3: not done yet" and the notebook carries on. Check frames set __tracebackhide__,
which IPython and pytest honour, and the mistake is raised afresh from one short frame (basics.stop), so a failure
shows the student's line and the message, not pages of this module.
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

from ..basics import stop

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
    name: str = ""  # the check is check_<name>; by default the name of the function in `call`
    doc: str = ""  # the check's docstring: what the student writes
    parameters: list[str] = field(init=False)

    def __post_init__(self):
        self.name = self.name or self.call[: self.call.index("(")]
        self.parameters = [p.strip() for p in self.call[self.call.index("(") + 1:-1].split(",") if p.strip()]

    def verify(self, student) -> None:
        __tracebackhide__ = True
        _verify_all(student, self)


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
    """Run `check`; a mistake it finds is raised afresh from basics.stop's short frame, so that the student sees
    their line and the message, not the source lines of the check (IPython never hides the last frame)."""
    __tracebackhide__ = True
    try:
        check(*args)
    except WrongAnswer as wrong:
        stop(WrongAnswer(str(wrong)))


def verify(student, spec) -> None:
    """The whole check of one exercise; prints the success line or the not-done line, raises on a mistake."""
    __tracebackhide__ = True
    _reported(spec.verify, student)


def check_function(spec) -> Callable:
    """The check a notebook calls, check_<spec.name>(student), made from its spec."""

    def check(student) -> None:
        __tracebackhide__ = True
        verify(student, spec)

    check.__name__ = check.__qualname__ = f"check_{spec.name}"
    check.__doc__ = spec.doc
    return check


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


# --- the inputs: fixed seeds, so that every run checks the same numbers ---------------------------------------------


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def binary(shape, seed: int, p: float = 0.5) -> torch.Tensor:
    return (torch.rand(shape, generator=generator(seed)) < p).float()


def normal(shape, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(shape, generator=generator(seed)) * scale + shift


def uniform(shape, seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=generator(seed))


# --- a layer that draws: checked on the statistics of many draws, not on fixed numbers -----------------------------


@dataclass
class SamplingLayerExercise:
    """A Keras layer class `Layer(seed=None)` whose call((mu, log_var)) draws h = μ + exp(½ log σ²) ε: checked on
    `n_draws` draws at the means `mean` and standard deviations `std` (their mean and spread, and fresh noise at every
    call). A mistake's `wrong(std)` is the standard deviation its draws have; `message` what to tell the student."""

    title: str
    name: str
    mean: Sequence[float]
    std: Sequence[float]
    n_draws: int
    mistakes: Sequence[Mistake]
    verified: str
    doc: str = ""
    rtol: float = 0.03  # 4 standard errors of a standard deviation from 20,000 draws: ±2.8%

    def verify(self, Sampling) -> None:
        __tracebackhide__ = True
        import keras

        title = self.title
        if not isinstance(Sampling, type):
            raise WrongAnswer(f"{title}: the check expects your class itself (check_{self.name}(Sampling)), not an "
                              f"instance or a call of it; got {type(Sampling).__name__}")
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
        expected = np.array(self.std)
        mu = np.tile(np.array([self.mean], dtype=np.float32), (self.n_draws, 1))
        log_var = np.tile(np.log(np.array([self.std], dtype=np.float32) ** 2), (self.n_draws, 1))
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
        shown = (f"\n  for σ = {expected.tolist()}, μ = [{', '.join(f'{m:g}' for m in self.mean)}]: your draws have "
                 f"std {np.round(std, 3).tolist()}, mean {np.round(mean, 3).tolist()}")
        for mistake in self.mistakes:
            if np.allclose(std, mistake.wrong(expected), rtol=self.rtol, atol=1e-6):
                raise WrongAnswer(f"{title}: {mistake.message}{shown}")
        if not np.allclose(std, expected, rtol=self.rtol):
            raise WrongAnswer(f"{title}: the standard deviation of your draws is not σ = exp(½ log σ²){shown}")
        if not np.allclose(mean, mu[0], atol=4 * expected / math.sqrt(len(mu))):
            raise WrongAnswer(f"{title}: the mean of your draws is not μ: h = μ + σ ε{shown}")
        again = np.asarray(keras.ops.convert_to_numpy(layer((mu[:5], log_var[:5]))))
        if np.allclose(again, np.asarray(keras.ops.convert_to_numpy(layer((mu[:5], log_var[:5]))))):
            raise WrongAnswer(f"{title}: two calls gave the same draws: pass the layer's keras.random.SeedGenerator "
                              "as seed= (a fixed integer seed repeats the same ε at every step)")
        print(f"✓ {title}: {self.verified}")
