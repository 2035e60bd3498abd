"""The grading machinery every exercise check shares: a spec (`Exercise`: the call, the package function it compares
with, its `Case`s and named `Mistake`s) becomes a check by `check_function`, which the notebooks call as
`exercises.check_free_energy(free_energy)`.

Each check calls the student's function on fixed inputs (several shapes; values where a naive formula breaks, such
as hidden inputs above 88 where exp overflows in float32, or log-weights near 800 where it overflows in float64;
ratios and counts where `//`, `int` and `ceil` differ from `/` and `round`; the random numbers a random function
needs are passed in as arguments) and compares the result with the package's own implementation: its values, then
its dtype and device, then its gradients (those of a fixed random projection, with respect to each argument in
`grad`, against the reference's: a σ computed through NumPy, or energies detached, have none). On success it prints
one line saying what was verified. On failure it raises WrongAnswer, an AssertionError whose message comes first: it
names the mistake when it is a known one, and only when that wrong version gives the student's result on every
input (so that one input's numbers cannot name the wrong mistake), else it says what is wrong; then one input, and
expected and got from the first entry where they differ, with the digits that tell them apart. An exception in the
student's code, or a malformed return, is one message naming the student's line. In a notebook, IPython shows
WrongAnswer through its `_render_traceback_`: the message alone, wrapped to WIDTH columns, at most MAX_LINES lines,
no frames. An unfilled stub (NotImplementedError) is not an error: the check prints "exercise 3: not done yet"; a
function that calls the student's own helper, still a stub, says it was not checked and which helper it waits for.
"""

from __future__ import annotations

import ast
import copy
import inspect
import linecache
import math
import re
import sysconfig
import textwrap
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
    grad: Sequence[int] = ()  # the arguments whose gradients must match the reference's (torch)
    returns: str = "tensor"  # "tensor", "tensors" (a tuple), "number", "keras"
    deterministic: str | None = None  # message when two calls on the same input differ (e.g. sampled statistics)
    verified: str = ""  # the end of the success line
    rtol: float = 1e-4
    atol: float = 1e-5
    name: str = ""  # the check is check_<name>; by default the name of the function in `call`
    doc: str = ""  # the check's docstring: what the student writes
    shape_hint: str = ""  # said after a wrong shape, where it is true for this exercise: "one value per example"
    outputs: Sequence[str] = ()  # the names of a tuple's outputs, as the messages call them
    dtype: str = "kind"  # the result's dtype: "exact" (the next exercise multiplies it by float32 weights), "kind"
    # (float32 or float64 for a float; bool and integers exactly), "number" (any but bool)
    parameters: list[str] = field(init=False)

    def __post_init__(self):
        self.name = self.name or self.call[: self.call.index("(")]
        self.parameters = [p.strip() for p in self.call[self.call.index("(") + 1:-1].split(",") if p.strip()]

    def verify(self, student) -> None:
        __tracebackhide__ = True
        _verify_all(student, self)


class WrongAnswer(AssertionError):
    """A mistake a check found. IPython shows a raised exception through its `_render_traceback_` when it has one:
    here, the message alone (wrapped to the notebook's width), with no frames of the library before it."""

    def _render_traceback_(self) -> list[str]:
        return rendered(str(self))


WIDTH = 100  # the columns a notebook's output shows before it wraps a line
MAX_LINES = 12  # a failure fits one screen


def rendered(message: str) -> list[str]:
    """The lines a student sees for `message` in a notebook: 'WrongAnswer: ' and the message, each line wrapped to
    WIDTH columns (a continuation indented), at most MAX_LINES: the description of the input gives way first."""
    blocks = []
    for line in ("WrongAnswer: " + message).splitlines():
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        blocks.append(textwrap.wrap(line, WIDTH, subsequent_indent=indent, break_long_words=True) or [""])
    excess = sum(map(len, blocks)) - MAX_LINES
    for block in blocks:
        if excess > 0 and block[0].lstrip().startswith("on the input") and len(block) > 1:
            kept = max(1, len(block) - excess)
            excess -= len(block) - kept
            block[kept:] = []
            block[-1] = block[-1][: WIDTH - 4] + " ..."
    lines = [line for block in blocks for line in block]
    return lines if len(lines) <= MAX_LINES else lines[: MAX_LINES - 1] + ["  ..."]


class _NotDone(Exception):
    pass


class _Waiting(Exception):
    """The student's function calls one of their own helpers that is still a stub."""


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
    if isinstance(a, (list, tuple)):  # a list the student emptied (uniforms.pop()) is changed, not a crash
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(
            _same(x, y) for x, y in zip(a, b, strict=True))
    return True


def _show(value, limit: int = 3) -> str:
    """A short description of a value: its shape and first few entries."""
    if torch.is_tensor(value) or isinstance(value, np.ndarray):
        array = np.asarray(value.detach().cpu() if torch.is_tensor(value) else value)
        kind = "tensor" if torch.is_tensor(value) else "array"
        flat = array.reshape(-1)
        values = ", ".join(f"{float(x):.4g}" for x in flat[:limit]) + (", ..." if flat.size > limit else "")
        return f"{kind} {tuple(array.shape)} [{values}]" if limit else f"{kind} {tuple(array.shape)}"
    if isinstance(value, (list, tuple)):  # the entries' shapes only
        if len(value) > 2:
            return f"{type(value).__name__} of {len(value)}: {_show(value[0], 0)}, ..."
        inside = ", ".join(_show(v, 0) for v in value)
        return f"[{inside}]" if isinstance(value, list) else f"({inside})"
    if callable(value):
        return "a function"
    return repr(value)


def _show_inputs(exercise: Exercise, args, note: str) -> str:
    shown = "; ".join(f"{name} = {_show(arg)}" for name, arg in zip(exercise.parameters, args, strict=False))
    return f"  on the input{f' ({note})' if note else ''}: {shown}"


def _names(exercise: Exercise, n: int) -> list[str]:
    return list(exercise.outputs) if len(exercise.outputs) == n else [f"output {i + 1}" for i in range(n)]


def _as_numbers(value, exercise: Exercise, expected=None):
    """The result as float64 NumPy (or a tuple of them), after checking its type; WrongAnswer otherwise."""
    __tracebackhide__ = True
    if value is None:
        raise WrongAnswer(f"{exercise.title}: your function returned None: did you forget `return`?")
    if exercise.returns == "tensors":
        n = len(expected) if isinstance(expected, (tuple, list)) else None
        if not isinstance(value, (tuple, list)):
            raise WrongAnswer(f"{exercise.title}: return a tuple of {n or 'several'} tensors "
                              f"({', '.join(_names(exercise, n or 0)) or 'see the exercise'}); got {_show(value)}")
        if n is not None and len(value) != n:
            raise WrongAnswer(f"{exercise.title}: return {n} tensors ({', '.join(_names(exercise, n))}); you "
                              f"returned {len(value)}")
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
        if torch.is_tensor(value) and _keras_backend() != "torch":
            raise WrongAnswer(f"{exercise.title}: you returned a torch tensor: write it with keras.ops, which "
                              "runs on every backend (and inside a compiled fit)")
        import keras

        try:
            return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)
        except (TypeError, ValueError):
            raise WrongAnswer(f"{exercise.title}: return the backend's tensor (keras.ops); got "
                              f"{type(value).__name__}") from None
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise WrongAnswer(f"{exercise.title}: return one number; got {_show(value)}")
        value = value.item()
    try:
        return np.float64(value)
    except (TypeError, ValueError):
        raise WrongAnswer(f"{exercise.title}: return a number; got {type(value).__name__} {_show(value)}") from None


def _keras_backend() -> str:
    import keras

    return keras.backend.backend()


def _single(exercise: Exercise) -> Exercise:
    single = copy.copy(exercise)
    single.returns = "tensor"
    return single


def _agree(got, expected, exercise: Exercise) -> np.ndarray:
    """Entry by entry, whether got is close to expected (same shape): infinities where expected has them, the
    tolerance relative to the largest finite expected value."""
    finite = np.isfinite(expected)
    scale = max(1.0, float(np.abs(expected[finite]).max())) if finite.any() else 1.0
    with np.errstate(invalid="ignore"):
        close = np.isclose(got, expected, rtol=exercise.rtol, atol=exercise.atol * scale)
    return np.where(finite, close & np.isfinite(got), (got == expected) | (np.isnan(got) & np.isnan(expected)))


def _close(got, expected, exercise: Exercise) -> bool:
    if isinstance(expected, tuple):
        return isinstance(got, tuple) and len(got) == len(expected) and all(
            _close(g, e, exercise) for g, e in zip(got, expected, strict=True))
    got, expected = np.asarray(got), np.asarray(expected)
    return got.shape == expected.shape and bool(_agree(got, expected, exercise).all())


def _shapes(value):
    return tuple(np.shape(v) for v in value) if isinstance(value, tuple) else np.shape(value)


def _window(flat, start: int, digits: int) -> str:
    shown = ", ".join(f"{x:.{digits}g}" for x in flat[start:start + 4])
    return f"[{'..., ' if start else ''}{shown}{', ...' if flat.size > start + 4 else ''}]"


def _difference(got, expected, exercise: Exercise) -> list[str]:
    """Expected and got, from the first entry where they differ, with the digits that tell them apart."""
    if isinstance(expected, tuple):
        names = _names(exercise, len(expected))
        for name, g, e in zip(names, got, expected, strict=False):
            if not _close(g, e, exercise):
                return [f"  {name}:"] + ["  " + line for line in _difference(g, e, exercise)]
        return []
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return [f"  expected shape {expected.shape} {_window(expected.reshape(-1), 0, 5)}",
                f"  got      shape {got.shape} {_window(got.reshape(-1), 0, 5)}"]
    wrong = ~_agree(got, expected, exercise).reshape(-1)
    first = int(np.argmax(wrong))
    e, g = expected.reshape(-1), got.reshape(-1)
    digits = next((d for d in range(5, 18) if f"{e[first]:.{d}g}" != f"{g[first]:.{d}g}"), 17)
    lines = [f"  expected {_window(e, first, digits)}", f"  got      {_window(g, first, digits)}"]
    if e.size > 1:
        index = tuple(int(i) for i in np.unravel_index(first, expected.shape))
        lines.append(f"  {int(wrong.sum())} of {e.size} entries differ; the first at index "
                     f"{index[0] if len(index) == 1 else index}")
    return lines


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


_LIBRARY = (str(Path(__file__).resolve().parents[1]), sysconfig.get_paths()["stdlib"],
            sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])


def _library(filename: str) -> bool:
    return filename.startswith(_LIBRARY) or filename.startswith("<frozen")


def _student_frame(error: BaseException) -> traceback.FrameSummary | None:
    """The last frame of the student's own code in error's traceback (not the grading's, not a library's)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename != __file__]
    own = [f for f in frames if not _library(f.filename)]
    return (own or frames or [None])[-1]


def _where(frame: traceback.FrameSummary | None) -> str:
    if frame is None:
        return ""
    line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
    return f"\n  in {frame.name}, line {frame.lineno}: {line}"


def _timed(fn, args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def _call_student(student, args, exercise: Exercise, note: str = ""):
    """The student's result on args (fresh copies), with the checks that need the call itself: a stub is not done
    (or waits for a helper that is a stub), an exception is one message naming the student's line, a changed
    input is named."""
    __tracebackhide__ = True
    before = _clone(args)
    try:
        result, seconds = _timed(student, args)
    except NotImplementedError as error:
        frame, raised_in = _student_frame(error), traceback.extract_tb(error.__traceback__)[-1]
        code = getattr(student, "__code__", None)
        if _library(raised_in.filename) and raised_in.filename != __file__:  # torch's "not implemented for 'Half'"
            raise WrongAnswer(f"{exercise.title}: your function raised NotImplementedError: {_first_line(error)}"
                              f"{_where(frame)}\n{_show_inputs(exercise, before, note)}") from None
        if frame is None or code is None or (frame.filename, frame.name) == (code.co_filename, code.co_name):
            raise _NotDone(_not_done_label(error, exercise.title)) from None
        raise _Waiting(f"{exercise.title}: not checked yet: it calls your {frame.name}, which is not done yet "
                       f"({_not_done_label(error, frame.name)})") from None
    except Exception as error:
        text = _first_line(error)
        raise WrongAnswer(f"{exercise.title}: your function raised {type(error).__name__}"
                          f"{': ' + text if text else ''}{_where(_student_frame(error))}\n"
                          f"{_show_inputs(exercise, before, note)}") from None
    for name, old, new in zip(exercise.parameters, before, args, strict=False):
        if not _same(old, new):
            raise WrongAnswer(f"{exercise.title}: your function changed its input `{name}` in place (an "
                              "in-place operation such as x += ..., x[i] = ..., x.add_(...), or list.pop() on an "
                              "argument); the caller's data must stay as they were: work on a copy, "
                              "x = x.clone(), or write x = x + ...")
    return result, seconds


def _reported(check, *args) -> None:
    """Run `check`; a mistake it finds is raised afresh from basics.stop's short frame, so that a plain traceback
    shows the student's line and the message, not the source lines of the check."""
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
    if exercise.returns == "keras" and (foreign := _foreign_operation(student, "function")):
        try:  # a stub is not done yet, whatever its imports
            student(*exercise.cases[0].make())
        except NotImplementedError as error:
            print(f"{_not_done_label(error, exercise.title)}: not done yet")
            return
        except Exception:  # noqa: BLE001 -- the foreign call is the message
            pass
        raise WrongAnswer(f"{exercise.title}: {foreign}")
    state = torch.random.get_rng_state()
    try:
        if exercise.deterministic:  # first: random results would otherwise fail as wrong values, unnamed
            args = exercise.cases[-1].make()
            expected = exercise.reference(*_clone(args))
            torch.manual_seed(1)
            first = _as_numbers(_call_student(student, _clone(args), exercise)[0], exercise, expected)
            torch.manual_seed(2)
            second = _as_numbers(_call_student(student, _clone(args), exercise)[0], exercise, expected)
            if _shapes(first) == _shapes(second) and not _close(first, second, exercise):
                raise WrongAnswer(f"{exercise.title}: {exercise.deterministic}")
        for index in range(len(exercise.cases)):
            _verify_case(student, exercise, index)
    except _NotDone as not_done:
        print(f"{not_done}: not done yet")
        return
    except _Waiting as waiting:
        print(waiting)
        return
    finally:
        torch.random.set_rng_state(state)
    special = [c.note for c in exercise.cases if c.note]
    print(f"✓ {exercise.title}: matches the package on {len(exercise.cases)} inputs"
          + (f" ({'; '.join(special)})" if special else "") + (f"; {exercise.verified}" if exercise.verified else ""))


def _verify_case(student, exercise: Exercise, index: int) -> None:
    __tracebackhide__ = True
    case = exercise.cases[index]
    args = case.make()
    expected_raw, reference_seconds = _timed(exercise.reference, _clone(args))
    expected = _as_numbers(expected_raw, exercise, expected_raw)
    student_args = _clone(args)
    for i in exercise.grad:
        student_args[i].requires_grad_(True)
    result, seconds = _call_student(student, student_args, exercise, case.note)
    _check_time(student, exercise, args, seconds, reference_seconds)
    got = _as_numbers(result, exercise, expected_raw)
    inputs = _show_inputs(exercise, args, case.note)
    if not _close(got, expected, exercise):
        named = _named_mistake(student, exercise, index, got)
        shape = _shapes(got) != _shapes(expected)
        if named:
            head = named.message + (f" (your result has shape {_shapes(got)}, the expected shape is "
                                    f"{_shapes(expected)})" if shape else "")
        elif shape:
            head = (f"your result has shape {_shapes(got)}, the expected shape is {_shapes(expected)}"
                    + (f": {exercise.shape_hint}" if exercise.shape_hint else ""))
        elif not all(np.isfinite(g).all() for g in (got if isinstance(got, tuple) else (got,))) and all(
                np.isfinite(e).all() for e in (expected if isinstance(expected, tuple) else (expected,))):
            head = "your result holds NaN or infinite values where the expected one is finite"
        else:
            head = "not the expected values"
        raise WrongAnswer("\n".join([f"{exercise.title}: {head}", inputs, *_difference(got, expected, exercise)]))
    _check_dtype(result, expected_raw, exercise)
    if exercise.grad:
        _check_gradients(exercise, args, student_args, result)


def _check_time(student, exercise: Exercise, args, seconds: float, reference_seconds: float) -> None:
    """A function far slower than the package's fails, measured as the best of three calls of each (a loaded
    machine slows one call, rarely three), and only beyond both the floor and the factor."""
    __tracebackhide__ = True
    if seconds <= max(TIME_LIMIT_S, SLOWER_THAN_REFERENCE * reference_seconds):
        return
    for _ in range(2):
        seconds = min(seconds, _timed(student, _clone(args))[1])
        reference_seconds = min(reference_seconds, _timed(exercise.reference, _clone(args))[1])
    if seconds > max(TIME_LIMIT_S, SLOWER_THAN_REFERENCE * reference_seconds):
        raise WrongAnswer(f"{exercise.title}: the values may be right, but your function took {seconds:.2g} s per "
                          f"call (the best of three) where the package takes {reference_seconds:.2g} s, more than "
                          f"{SLOWER_THAN_REFERENCE} times as long; the notebook's training calls it thousands of "
                          "times. Python loops over examples or units are the usual cause: whole-tensor operations "
                          "(x @ W, .sum(dim), broadcasting) do the same work in one call")


def _check_dtype(result, expected, exercise: Exercise) -> None:
    """The result's device and dtype as the package's (exercise.dtype says how strictly): a boolean sample, or a
    float64 one, breaks the next exercise's x @ W with float32 weights."""
    __tracebackhide__ = True
    if exercise.returns not in ("tensor", "tensors"):
        return
    several = exercise.returns == "tensors"
    names = _names(exercise, len(expected)) if several else ["your result"]
    for name, got, want in zip(names, result if several else [result], expected if several else [expected],
                               strict=True):
        if got.device != want.device:
            raise WrongAnswer(f"{exercise.title}: {name} is on {got.device}, the inputs on {want.device}: create "
                              "new tensors on the inputs' device (torch.zeros(..., device=x.device), or "
                              "torch.zeros_like(x))")
        if got.dtype == want.dtype or (exercise.dtype == "kind" and got.dtype in (torch.float32, torch.float64)
                                       and want.dtype.is_floating_point) or (
                exercise.dtype == "number" and got.dtype != torch.bool):
            continue
        how = ("a comparison gives booleans: convert it with .float() (PyTorch does not multiply a bool matrix by a "
               "float one)") if got.dtype == torch.bool and want.dtype.is_floating_point else \
            f"convert it with .to({want.dtype})"
        raise WrongAnswer(f"{exercise.title}: the values are right, but {name} is {got.dtype} where the package "
                          f"returns {want.dtype}: {how}")


def _check_gradients(exercise: Exercise, args, student_args, result) -> None:
    """The gradients of a fixed random projection of the result, with respect to each argument in exercise.grad,
    compared with the reference's: a value computed through NumPy, .item() or .detach() has none."""
    __tracebackhide__ = True
    reference_args = _clone(args)
    for i in exercise.grad:
        reference_args[i].requires_grad_(True)
    expected = exercise.reference(*reference_args)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = result if isinstance(result, (tuple, list)) else (result,)
    weights = [torch.randn(e.shape, generator=generator(99), dtype=torch.float64) for e in expected]
    inputs = [reference_args[i] for i in exercise.grad]
    want = torch.autograd.grad(sum((w * e.double()).sum() for w, e in zip(weights, expected, strict=True)), inputs,
                               allow_unused=True)
    names = [exercise.parameters[i] for i in exercise.grad]
    pieces = [(w * g.double()).sum() for w, g in zip(weights, got, strict=True) if g.requires_grad]
    if not pieces:
        quoted = ", ".join(f"`{n}`" for n in names)
        raise WrongAnswer(f"{exercise.title}: the values are right, but autograd cannot differentiate your result "
                          f"with respect to {quoted} (it has no grad_fn): avoid .detach(), .item(), .numpy(), "
                          "torch.tensor(...) of a result and torch.no_grad() inside the function")
    have = torch.autograd.grad(sum(pieces), [student_args[i] for i in exercise.grad], allow_unused=True)
    for name, g, w, x in zip(names, have, want, inputs, strict=True):
        w = torch.zeros_like(x, dtype=torch.float64) if w is None else w
        if g is None:
            raise WrongAnswer(f"{exercise.title}: the values are right, but your result does not depend on `{name}` "
                              "through autograd: part of it was computed outside torch's graph (NumPy, .item(), "
                              ".detach(), torch.tensor(...) of a tensor); compute every step with torch operations")
        if not _close(g.detach().double().numpy(), w.detach().double().numpy(), exercise):
            raise WrongAnswer("\n".join([
                f"{exercise.title}: the values are right, but the gradient with respect to `{name}` is not the "
                "package's: a step computed outside autograd (NumPy, .detach()) or one that cuts the gradient "
                "(rounding, clamping)", *_difference(g.detach().double().numpy(), w.detach().double().numpy(),
                                                     exercise)]))


def _named_mistake(student, exercise: Exercise, index: int, got) -> Mistake | None:
    """The known mistake the student made: one that gives the student's result on this input and on every other
    input where both run (so that a coincidence of one input's numbers does not name the wrong mistake)."""
    others: dict[int, object] = {}

    def student_on(j):
        if j not in others:
            try:
                args = exercise.cases[j].make()
                for i in exercise.grad:
                    args[i].requires_grad_(True)
                with np.errstate(all="ignore"):
                    expected = exercise.reference(*_clone(args))
                    others[j] = _as_numbers(student(*args), exercise, expected)
            except Exception:  # noqa: BLE001 -- a student's result that does not run on another input is no evidence
                others[j] = None
        return others[j]

    for mistake in exercise.mistakes:
        if not _matches(mistake, exercise.cases[index].make(), got, exercise):
            continue
        if all(student_on(j) is None or _matches(mistake, exercise.cases[j].make(), student_on(j), exercise,
                                                 unknown=True)
               for j in range(len(exercise.cases)) if j != index):
            return mistake
    return None


def _matches(mistake: Mistake, args, got, exercise: Exercise, unknown: bool = False) -> bool:
    """Whether the wrong version gives `got` on args; `unknown` is the answer where it cannot run there."""
    with np.errstate(all="ignore"):
        try:
            raw = mistake.wrong(*_clone(args))
            wrong = _as_numbers(raw, exercise, raw)
        except Exception:  # noqa: BLE001 -- a wrong version that cannot run on this input
            return unknown
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
        foreign = _foreign_operation(Sampling.call)
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
        except Exception as error:  # noqa: BLE001 -- the student's code: one message naming their line
            raised = f"{type(error).__name__}: {_first_line(error)}{_where(_student_frame(error))}"
            raise WrongAnswer(f"{title}: {foreign} (it raised {raised})" if foreign else
                              f"{title}: your layer raised {raised}") from None
        if foreign:
            raise WrongAnswer(f"{title}: {foreign}")
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
        correlation = np.corrcoef(((h - mean) / std).T)[np.triu_indices(h.shape[1], 1)]
        if np.abs(correlation).max() > 5 / math.sqrt(len(h)):  # 5 standard errors of a correlation
            raise WrongAnswer(f"{title}: the draws of different latent dimensions are correlated (r = "
                              f"{np.round(correlation, 2).tolist()}): one ε shared across dimensions? Draw one ε per "
                              "entry, keras.random.normal(ops.shape(mu), seed=self.seed_generator)")
        again = np.asarray(keras.ops.convert_to_numpy(layer((mu[:5], log_var[:5]))))
        if np.allclose(again, np.asarray(keras.ops.convert_to_numpy(layer((mu[:5], log_var[:5]))))):
            raise WrongAnswer(f"{title}: two calls gave the same draws: pass the layer's keras.random.SeedGenerator "
                              "as seed= (a fixed integer seed repeats the same ε at every step)")
        self._verify_compiled(Sampling, mu[:2000], log_var[:2000], expected)
        print(f"✓ {title}: {self.verified}")

    def _verify_compiled(self, Sampling, mu, log_var, expected) -> None:
        """The layer inside a compiled model (as fit and predict run it): draws with the right spread, fresh at
        every call of the compiled function."""
        __tracebackhide__ = True
        import keras

        title = self.title
        inputs = (keras.Input(mu.shape[1:]), keras.Input(mu.shape[1:]))
        try:
            model = keras.Model(inputs, Sampling(seed=0)(inputs))
            first, second = (model.predict((mu, log_var), batch_size=len(mu), verbose=0) for _ in range(2))
        except Exception as error:  # noqa: BLE001 -- the student's code, traced by Keras
            raise WrongAnswer(f"{title}: your layer works when called directly but fails inside a compiled model "
                              f"(as fit runs it): {type(error).__name__}: {_first_line(error)}"
                              f"{_where(_student_frame(error))}") from None
        if np.allclose(first, second):
            raise WrongAnswer(f"{title}: inside a compiled model (as fit runs it) two calls gave the same draws: "
                              "the noise was fixed when Keras traced the layer; draw it with keras.random.normal("
                              "..., seed=self.seed_generator)")
        if not np.allclose(np.asarray(first, dtype=np.float64).std(0), expected, rtol=0.1):
            raise WrongAnswer(f"{title}: inside a compiled model (as fit runs it) the draws' standard deviation is "
                              f"{np.round(np.asarray(first).std(0), 3).tolist()}, not σ = {expected.tolist()}")


def _first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an error's message that says something (Keras wraps a layer's error in its own lines)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    said = [line for line in lines if line and not line.startswith("Exception encountered when calling")]
    return said[0][:limit] if said else ""


_FOREIGN = {"np", "numpy", "torch", "tf", "tensorflow", "jax", "jnp"}


def _foreign_root(node: ast.AST) -> bool:
    """Whether node is a chain of attributes (np.random.normal) of torch, NumPy, TensorFlow or JAX."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id in _FOREIGN


def _foreign_operation(function, what: str = "layer") -> str:
    """What a Keras layer's call (or a keras.ops function) does with torch or NumPy, which run once when a compiled
    fit traces it (the same numbers at every step) or fail on another backend; '' when it uses keras.ops only."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return ""
    chains = sorted((node.lineno, node.col_offset, -len(ast.unparse(node)), ast.unparse(node))
                    for node in ast.walk(tree) if isinstance(node, ast.Attribute) and _foreign_root(node))
    if not chains:  # no np.random.normal, torch.randn, ... (in code, not in strings or comments)
        return ""
    found = chains[0][3]
    if what == "function":
        return (f"your function calls {found}: it runs on one backend only, and not inside a compiled fit; "
                "write it with keras.ops (keras.ops.matmul, keras.ops.softplus, ...), which runs on every backend")
    return (f"your layer calls {found}: inside a compiled fit such a call runs once, when Keras traces the "
            "layer (the same numbers at every step), and on another backend it fails; use keras.ops and "
            "keras.random.normal(..., seed=self.seed_generator)")
