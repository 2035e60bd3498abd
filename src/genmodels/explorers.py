"""Explorers: a sampler's knobs under the student's hand.  Taught in 03_langevin_sampling, 04_energy_based_model and
07_ising_rbm.

An explorer is a function of its knobs and a drawing of what it computed. `update(**knobs)` runs the sampler at those
settings and returns what judges it (its numbers, and `seconds`, the time the computation took); `draw` draws one
row of panels per result. The same two make both of an explorer's views:

- `static(settings)`: a few settings side by side, one row and one printed line each. This is the lesson as a fixed
  figure, the one every reader sees: nbval, `make run`'s HTML and a reader without a kernel;
- `widget()`: ipywidgets controls, one per knob (a preset button sets a knob to a marked value); moving one
  recomputes, redraws the row and prints its line with the time the redraw took.

`show(explorer, profile)` displays the widget where a live notebook front end shows widgets: ipywidgets installed,
an IPython kernel, and a profile whose progress is "bar" (the full profile run by hand; the quick profile and
`make run` write outputs that must hold no widget state). Elsewhere it prints one line saying how to open it.

The explorers, in the course's order: `LangevinExplorer` (03: step, noise, steps and target; ULA beside MALA),
`EnergyModelExplorer` (04: the generation sampler of a trained energy model, judged by the judge's classes) and
`IsingExplorer` (07: Metropolis lattices at any temperature, the RBMs' at the temperatures they were trained at).
"""

from __future__ import annotations

import html
import math
import time
import warnings
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from . import ebm, ising, langevin, targets
from .device import one_thread, threads_for

__all__ = ["Knob", "Explorer", "show", "widgets_shown", "LangevinExplorer", "TUTORIAL_NOISE_MULTIPLE", "NOISE_PRESETS",
           "EnergyModelExplorer", "IsingExplorer"]


@dataclass(frozen=True)
class Knob:
    """One control: a slider from `low` to `high` (on a log scale with `log=True`; an int slider when `value` is an
    int), or a menu of `options`. `presets` are marked values, (label, value) pairs, each a button that sets it."""

    name: str
    label: str
    value: object
    low: float | None = None
    high: float | None = None
    log: bool = False
    options: tuple = ()
    presets: tuple[tuple[str, float], ...] = ()


class Explorer:
    """The common part of the explorers: knobs, `update`, `static` and `widget`. A subclass sets `knobs` and writes
    `compute(**knobs) -> dict`, `readout(result) -> str` (one line) and `draw(results, fig)` (one row per result)."""

    knobs: tuple[Knob, ...] = ()
    row_size: tuple[float, float] = (11.0, 3.2)  # inches of figure per row of panels

    def settings(self, **values) -> dict:
        """Every knob's value: the defaults, with `values` in place of some."""
        names = [knob.name for knob in self.knobs]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no knob {unknown[0]!r}; its knobs are {names}")
        return {knob.name: values.get(knob.name, knob.value) for knob in self.knobs}

    def update(self, **values) -> dict:
        """Compute at these settings (the others at their defaults): the result of `compute`, with the settings
        under "settings" and the computing time in seconds under "seconds"."""
        settings = self.settings(**values)
        start = time.perf_counter()
        result = self.compute(**settings)
        result["seconds"] = time.perf_counter() - start
        result["settings"] = settings
        return result

    def compute(self, **settings) -> dict:
        raise NotImplementedError

    def readout(self, result: dict) -> str:
        raise NotImplementedError

    def draw(self, results: list[dict], fig) -> None:
        raise NotImplementedError

    def figure(self, results: list[dict]) -> None:
        """Draw the results, one row each, in a new figure, and show it."""
        width, height = self.row_size
        fig = plt.figure(figsize=(width, height * len(results)))
        self.draw(results, fig)
        plt.show()

    def static(self, settings: list[dict]) -> None:
        """The lesson as a fixed figure: each setting (a dict of some knobs) computed, its line printed, and all drawn
        side by side, one row each. Draws and returns nothing; the results stay in `self.shown`."""
        self.shown = [self.update(**s) for s in settings]
        for result in self.shown:
            print(self.readout(result))
        self.figure(self.shown)

    def widget(self):
        """The explorer as ipywidgets controls above its readout and figure; moving a control recomputes and
        redraws. Returns the box; `box.controls` (knob name -> control), `box.readout` (the HTML line) and
        `box.result` (the latest result) let code (and the tests) drive it."""
        import ipywidgets as widgets

        controls, rows = {}, []
        for knob in self.knobs:
            controls[knob.name] = control = _control(widgets, knob)
            buttons = []
            for label, value in knob.presets:
                button = widgets.Button(description=label, layout=widgets.Layout(width="auto"))
                button.on_click(lambda _, c=control, v=value: setattr(c, "value", v))
                buttons.append(button)
            rows.append(widgets.HBox([control, *buttons]))
        readout, output = widgets.HTML(), widgets.Output()
        box = widgets.VBox([*rows, readout, output])
        box.controls, box.readout, box.output = controls, readout, output

        def redraw(_=None):
            start = time.perf_counter()
            box.result = result = self.update(**{name: c.value for name, c in controls.items()})
            with output:
                output.clear_output(wait=True)
                self.figure([result])
            seconds = time.perf_counter() - start
            readout.value = (f"<pre>{html.escape(self.readout(result))}\nredraw {seconds:.2f} s "
                             f"(computing {result['seconds']:.2f} s)</pre>")

        for control in controls.values():
            control.observe(redraw, names="value")
        redraw()
        return box


def _control(widgets, knob: Knob):
    style, layout = {"description_width": "initial"}, widgets.Layout(width="420px")
    common = {"description": knob.label, "style": style, "layout": layout, "continuous_update": False}
    if knob.options:
        return widgets.Dropdown(options=list(knob.options), value=knob.value, description=knob.label, style=style)
    if knob.log:
        return widgets.FloatLogSlider(value=knob.value, base=10, min=math.log10(knob.low), max=math.log10(knob.high),
                                      step=0.01, readout_format=".3g", **common)
    if isinstance(knob.value, int):
        return widgets.IntSlider(value=knob.value, min=knob.low, max=knob.high, **common)
    return widgets.FloatSlider(value=knob.value, min=knob.low, max=knob.high, step=(knob.high - knob.low) / 100,
                               readout_format=".3g", **common)


def widgets_shown(profile) -> str | None:
    """None where `show` displays a widget; otherwise why not (ipywidgets missing, no kernel, or a profile whose
    outputs must hold no widget state: progress "plain" or "none", as in the quick profile and `make run`)."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return "ipywidgets is not installed"
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return "no notebook kernel"
    if profile.progress != "bar":
        return f"the {profile.name} profile (progress {profile.progress!r}) keeps widgets out of the outputs"
    return None


def show(explorer: Explorer, profile) -> None:
    """Display the explorer's widget where a notebook front end shows it (widgets_shown); elsewhere print one line
    that says why not and how to open it anyway."""
    reason = widgets_shown(profile)
    if reason is None:
        from IPython.display import display

        display(explorer.widget())
    else:
        print(f"The explorer's sliders are not shown here ({reason}); in JupyterLab, `explorer.widget()` in a cell "
              "opens them.")


# --- 03: Langevin's knobs -------------------------------------------------------------------------------------------

# The UvA tutorials' image sampler (ebm.TUTORIAL_SAMPLER: η = 10, σ = 0.005) as a multiple of ULA's noise √(2η)
TUTORIAL_NOISE_MULTIPLE = ebm.TUTORIAL_SAMPLER.noise / math.sqrt(2 * ebm.TUTORIAL_SAMPLER.step_size)
NOISE_PRESETS = (("√(2η): ULA, T = 1", 1.0), ("√η: the lecture's, T = ½", 1 / math.sqrt(2)),
                 ("tutorials' σ = 0.005 at η = 10", TUTORIAL_NOISE_MULTIPLE))


class LangevinExplorer(Explorer):
    """ULA and MALA on a 2-D target with known density, from the same start (broad noise, N(0, 2² I)) and the same
    settings: the step η, the noise σ = k √(2η) (k = 1: ULA; k = 1/√2: the lecture's √η; the tutorials' k ≈ 0.0011),
    the number of steps, the target. ULA samples p^(1/T) at the temperature T = σ²/(2η) = k²; MALA's noise is always
    √(2η), and its accept/reject test makes p exact at any step. On the correlated Gaussian the chains' variance
    along each axis is compared with ULA's exact stationary one (langevin.ula_gaussian_stationary_covariance) and the
    target's; on the mixture, each sampler's total-variation distance from p on a 20 × 20 grid (targets.Target)
    beside the floor that as many exact draws reach.  Taught in 03_langevin_sampling."""

    knobs = (Knob("step_size", "step η", 0.05, 1e-3, 0.5, log=True),
             Knob("noise", "noise σ / √(2η)", 1.0, 1e-3, 2.0, log=True, presets=NOISE_PRESETS),
             Knob("n_steps", "steps", 300, 1, 1000),
             Knob("target", "target", "correlated Gaussian", options=("correlated Gaussian", "Gaussian mixture")))

    def __init__(self, n_chains: int = 1000, seed: int = 0):
        self.n_chains, self.seed = n_chains, seed
        self.targets = {"correlated Gaussian": targets.CorrelatedGaussian(rho=0.8),
                        "Gaussian mixture": targets.GaussianMixture()}
        self.start = 2 * torch.randn(n_chains, 2, generator=torch.Generator().manual_seed(seed))

    def compute(self, step_size, noise, n_steps, target) -> dict:
        with threads_for(self.n_chains * 2):  # one thread for small tensors (a second one costs more)
            return self._compute(step_size, noise, n_steps, self.targets[target])

    def _compute(self, step_size, noise, n_steps, p) -> dict:
        sigma = noise * math.sqrt(2 * step_size)
        result = {"target": p, "sigma": sigma, "temperature": ebm.temperature(step_size, sigma), "ula": None}
        try:
            result["ula"] = langevin.ula(p.log_prob, self.start, step_size, n_steps, burn_in=n_steps - 1,
                                         noise_scale=noise * math.sqrt(2), seed=self.seed).last.double()
        except FloatingPointError:  # the step is too large for this target: ULA's chains diverge
            pass
        with warnings.catch_warnings():  # no move accepted: the acceptance rate 0 says it
            warnings.simplefilter("ignore", RuntimeWarning)
            mala = langevin.mala(p.log_prob, self.start, step_size, n_steps, thin=n_steps, seed=self.seed)
        result["mala"], result["acceptance"] = mala.last.double(), mala.acceptance_rate
        if isinstance(p, targets.CorrelatedGaussian):
            target_variances, axes = torch.linalg.eigh(p.cov)  # the narrow axis first
            result["axes"], result["target_variances"] = axes, target_variances
            try:
                stationary = langevin.ula_gaussian_stationary_covariance(p.cov, step_size, noise * math.sqrt(2))
                result["stationary_covariance"] = stationary
                result["stationary_variances"] = torch.diagonal(axes.T @ stationary @ axes)
            except ValueError:  # η >= 2 σ²_min: no stationary law
                result["stationary_covariance"] = result["stationary_variances"] = None
            for name in ("ula", "mala"):
                if result[name] is not None:
                    result[f"{name}_variances"] = ((result[name] - p.mean) @ axes).pow(2).mean(0)
        else:
            for name in ("ula", "mala"):
                if result[name] is not None:
                    result[f"{name}_tv"] = p.total_variation(result[name])
            result["tv_floor"] = float(p.noise_floor(self.n_chains, repeats=50, seed=self.seed).median())
        return result

    def readout(self, r: dict) -> str:
        s = r["settings"]
        head = (f"η = {s['step_size']:.3g}, σ = {s['noise']:.3g}·√(2η) = {r['sigma']:.3g}, {s['n_steps']} steps, "
                f"{s['target']}: T = σ²/(2η) = {r['temperature']:.3g}")
        if "axes" in r:
            exact = r["stationary_variances"]
            ula = ("diverged" if r["ula"] is None else "variance along the axes " + _pair(r["ula_variances"])
                   + (" (exact stationary " + _pair(exact) + ")" if exact is not None else ""))
            mala = _pair(r["mala_variances"])
            target = _pair(r["target_variances"])
            return f"{head}\n  ULA {ula}; MALA {mala}, acceptance {r['acceptance']:.2f}; target {target}"
        ula = "diverged" if r["ula"] is None else f"TV {r['ula_tv']:.2f}"
        return (f"{head}\n  ULA {ula}; MALA TV {r['mala_tv']:.2f}, acceptance {r['acceptance']:.2f}; "
                f"exact draws: TV {r['tv_floor']:.2f}")

    def draw(self, results: list[dict], fig) -> None:
        grid = fig.add_gridspec(len(results), 3, width_ratios=[1, 1, 0.35])
        for row, r in enumerate(results):
            s, p = r["settings"], r["target"]
            ula, mala, scale = (fig.add_subplot(grid[row, k]) for k in range(3))
            if r["ula"] is None:
                p.plot(None, ax=ula, title=f"ULA, T = {r['temperature']:.3g}: diverged")
            else:
                p.plot(r["ula"], ax=ula, title=f"ULA, T = {r['temperature']:.3g}" + _measure(r, "ula"))
                if r.get("stationary_covariance") is not None:
                    _ellipse(ula, p.mean, r["stationary_covariance"], "ULA's exact stationary law (2 sd)")
                    ula.legend(fontsize=7, loc="upper left")
            p.plot(r["mala"], ax=mala, title=f"MALA, acceptance {r['acceptance']:.2f}" + _measure(r, "mala"))
            ula.set_ylabel(f"η = {s['step_size']:.3g}, {s['n_steps']} steps", fontsize=9)
            _temperature_scale(scale, r["temperature"])
        fig.tight_layout()


def _pair(values) -> str:
    return " and ".join(f"{v:.3g}" for v in values.tolist())


def _measure(r: dict, name: str) -> str:
    if "axes" in r:
        return "\nvariances " + _pair(r[f"{name}_variances"])
    return f"\nTV {r[f'{name}_tv']:.2f}"


def _ellipse(ax, mean, cov, label) -> None:
    """The 2-standard-deviation ellipse of N(mean, cov)."""
    angle = torch.linspace(0, 2 * math.pi, 100, dtype=torch.float64)
    circle = 2 * torch.stack([angle.cos(), angle.sin()], -1)
    points = mean + circle @ torch.linalg.cholesky(cov).T
    ax.plot(points[:, 0].numpy(), points[:, 1].numpy(), "k--", lw=1, label=label)


def _temperature_scale(ax, temperature: float) -> None:
    """A vertical log scale of T with the marked settings (ULA's 1, the lecture's ½, the tutorials') and T now."""
    for label, k in NOISE_PRESETS:
        ax.axhline(k**2, color="grey", lw=0.8)
        ax.text(1.05, k**2, label.split(":")[0].replace("tutorials' σ = 0.005 at η = 10", "tutorials"),
                transform=ax.get_yaxis_transform(), va="center", fontsize=7)
    ax.plot([0.5], [temperature], "v", color="C3", ms=10)
    ax.set(yscale="log", ylim=(1e-7, 10), xlim=(0, 1), xticks=[], title="T = σ²/(2η)")
    ax.title.set_fontsize(9)



# --- 07: the Ising model's temperature ------------------------------------------------------------------------------


class IsingExplorer(Explorer):
    """The L×L Ising model at a temperature T: lattices sampled by checkerboard Metropolis at T (ising.sample, burn-in
    and thinning from the measured τ) and their energy per site and ⟨|m|⟩ with standard errors, beside Onsager's
    infinite-lattice curves; and the RBMs trained at a few temperatures (`models`, T -> RBM), shown at the trained
    temperature nearest T (the RBM panel snaps to it), with their samples' energy and ⟨|m|⟩ on the same curves. The
    Monte Carlo points of every temperature already computed stay on the curves.  Taught in 07_ising_rbm."""

    row_size = (13.0, 3.0)

    def __init__(self, models: dict, L: int = 8, n_lattices: int = 50, n_samples: int = 20, seed: int = 0,
                 device=None):
        if not models:
            raise ValueError("IsingExplorer needs the RBMs trained at one temperature or more, {T: rbm.RBM}")
        self.models, self.trained = models, sorted(models)
        self.L, self.n_lattices, self.n_samples, self.seed = L, n_lattices, n_samples, seed
        self.device = torch.device(device or "cpu")
        self.knobs = (Knob("temperature", "temperature T", float(ising.CRITICAL_TEMPERATURE), 1.2, 3.6),)
        self.visited, self.rbm = {}, {}  # T -> Monte Carlo result; trained T -> RBM result (computed once)

    def nearest_trained(self, temperature: float) -> float:
        """The temperature of the RBM panel: the trained temperature nearest T."""
        return min(self.trained, key=lambda trained: abs(trained - temperature))

    def compute(self, temperature) -> dict:
        T = float(temperature)
        if T not in self.visited:
            mc = ising.sample(self.L, T, self.n_lattices, self.n_samples, method="metropolis", pilot=100,
                              device=self.device, seed=self.seed)
            self.visited[T] = {"spins": mc.spins[-1, :3].cpu(), "tau": mc.tau,
                               **ising.thermodynamics(mc.spins, T)}
        snapped = self.nearest_trained(T)
        if snapped not in self.rbm:
            generator = torch.Generator(device=self.device).manual_seed(self.seed)
            spins = ising.rbm_samples(self.models[snapped], self.n_lattices, self.n_samples, generator=generator)
            self.rbm[snapped] = {"spins": spins[-1, :3].cpu(), **ising.thermodynamics(spins, snapped)}
        return {"temperature": T, "monte_carlo": self.visited[T], "rbm_temperature": snapped,
                "rbm": self.rbm[snapped], "onsager_energy": float(ising.onsager_energy(T)),
                "onsager_magnetisation": float(ising.onsager_magnetisation(T))}

    def readout(self, r: dict) -> str:
        mc, fit = r["monte_carlo"], r["rbm"]
        return (f"T = {r['temperature']:.3f}: Metropolis u = {_error(mc['energy'])}, ⟨|m|⟩ = "
                f"{_error(mc['abs_magnetisation'])} (τ = {mc['tau']:.1f} sweeps; Onsager, infinite lattice: "
                f"u = {r['onsager_energy']:.3f}, m = {r['onsager_magnetisation']:.3f})\n"
                f"  RBM trained at T = {r['rbm_temperature']:.3f}: u = {_error(fit['energy'])}, ⟨|m|⟩ = "
                f"{_error(fit['abs_magnetisation'])}")

    def draw(self, results: list[dict], fig) -> None:
        from . import plotting

        grid = fig.add_gridspec(len(results), 4, width_ratios=[1.3, 1.3, 1, 1])
        temperatures = np.linspace(1.2, 3.6, 300)
        for row, r in enumerate(results):
            T, snapped = r["temperature"], r["rbm_temperature"]
            lattices, samples, energy, magnetisation = (fig.add_subplot(grid[row, k]) for k in range(4))
            plotting.show_images(ising.spins_to_visible(r["monte_carlo"]["spins"]), ncols=3, ax=lattices,
                                 pad_value=0.5, title=f"Metropolis at T = {T:.2f}")
            plotting.show_images(ising.spins_to_visible(r["rbm"]["spins"]), ncols=3, ax=samples, pad_value=0.5,
                                 title=f"RBM trained at T = {snapped:.2f}")
            for ax, name, curve, label in ((energy, "energy", ising.onsager_energy, "energy per site u"),
                                           (magnetisation, "abs_magnetisation", ising.onsager_magnetisation,
                                            "⟨|m|⟩")):
                ax.plot(temperatures, curve(temperatures), "k:", lw=1, label="Onsager (infinite lattice)")
                seen = sorted(self.visited)
                value, error = np.array([self.visited[t][name] for t in seen]).T
                ax.errorbar(seen, value, yerr=error, fmt="o", color="C0", ms=3, label=f"Metropolis ({self.L}×{self.L})")
                value, error = np.array([self.rbm[t][name] for t in sorted(self.rbm)]).T
                ax.errorbar(sorted(self.rbm), value, yerr=error, fmt="s", color="C1", ms=4, fillstyle="none",
                            label="RBM")
                ax.axvline(T, color="C3", lw=1)
                ax.axvline(ising.CRITICAL_TEMPERATURE, color="grey", lw=0.5)
                ax.set(xlim=(1.2, 3.6), xlabel="temperature T")
                ax.set_title(label, fontsize=10)
            energy.legend(fontsize=7, loc="lower right")
        fig.tight_layout()


def _error(pair) -> str:
    value, error = pair
    return f"{value:.3f} ± {error:.3f}"


# --- 04: the energy model's generation sampler ----------------------------------------------------------------------


class EnergyModelExplorer(Explorer):
    """A trained energy model's generation sampler under the student's hand: the number of Langevin steps, the step η,
    the noise σ (its temperature σ²/(2η) printed) and the start, uniform noise or the replay buffer; the gradient
    clamp stays GENERATE's. It draws `n` images (ebm.generate: at the defaults, exactly the course's generation
    sampler ebm.GENERATE) and shows them with what the judge sees in them: the classes covered
    (measures.classes_covered), its count per class and the fraction it labels with confidence above 0.9.
    Taught in 04_energy_based_model."""

    knobs = (Knob("n_steps", "Langevin steps", ebm.GENERATE.n_steps, 1, 200),
             Knob("step_size", "step η", ebm.GENERATE.step_size, 0.01, 100.0, log=True),
             Knob("noise", "noise σ", ebm.GENERATE.noise, 1e-4, 1.0, log=True,
                  presets=(("the tutorials' 0.005", ebm.TUTORIAL_SAMPLER.noise),)),
             Knob("start", "start from", "noise", options=("noise", "buffer")))
    row_size = (12.0, 3.4)

    def __init__(self, model, referee, n: int = 48, seed: int = 0):
        self.model, self.referee, self.n, self.seed = model, referee, n, seed

    def compute(self, n_steps, step_size, noise, start) -> dict:
        from . import judge, measures

        sampler = ebm.Sampler(n_steps=int(n_steps), step_size=step_size, noise=noise,
                              grad_clamp=ebm.GENERATE.grad_clamp)
        # one CPU thread: for a few dozen images a second one gains little, and on a busy machine it cost 4× (a
        # redraw of 48 images, 40 steps: 0.6 s on one thread, 2.7 s on two, while another job held both cores)
        with one_thread(next(self.model.parameters()).device):
            images = ebm.generate(self.model, self.n, sampler, from_buffer=start == "buffer", seed=self.seed)
        p = judge.probabilities(self.referee, images)
        return {"images": images, "temperature": sampler.temperature,
                "energy": ebm.energy(self.model, images).mean().item(),
                "classes": measures.classes_covered(p), "counts": p.argmax(1).bincount(minlength=p.shape[1]).tolist(),
                "confident": float((p.max(1).values > 0.9).double().mean())}

    def readout(self, r: dict) -> str:
        s = r["settings"]
        return (f"{s['n_steps']} steps of η = {s['step_size']:.3g}, σ = {s['noise']:.3g} from {s['start']}: "
                f"T = σ²/(2η) = {r['temperature']:.3g}, mean energy {r['energy']:.3f}\n  the judge: "
                f"{r['classes']} classes covered, counts per class {r['counts']}, confident > 0.9: "
                f"{r['confident']:.0%}")

    def draw(self, results: list[dict], fig) -> None:
        from . import plotting

        grid = fig.add_gridspec(len(results), 2, width_ratios=[2.2, 1])
        for row, r in enumerate(results):
            s = r["settings"]
            images, counts = fig.add_subplot(grid[row, 0]), fig.add_subplot(grid[row, 1])
            plotting.show_images(r["images"], ncols=16, ax=images,
                                 title=f"{s['n_steps']} steps, η = {s['step_size']:.3g}, σ = {s['noise']:.3g} from "
                                       f"{s['start']}: T = {r['temperature']:.3g}")
            counts.bar(range(len(r["counts"])), r["counts"], color="C0")
            counts.set(xticks=range(len(r["counts"])), xlabel="the judge's class", ylabel="images",
                       title=f"{r['classes']} classes covered, {r['confident']:.0%} confident")
            counts.title.set_fontsize(10)
        fig.tight_layout()
