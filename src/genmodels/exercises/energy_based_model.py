"""The checks of exercises/04_energy_based_model: the contrastive loss, the replay buffer and the image sampler. Each
spec compares with genmodels.ebm; its mistakes are the wrong versions it names."""

from __future__ import annotations

import math

import torch

from .. import ebm
from .grading import Case, Exercise, Mistake, generator, normal, uniform


def _loss_case(n, m, alpha, seed, scale=1.0):
    return lambda: (normal(n, seed, scale), normal(m, seed + 1, scale, 0.5), alpha)


CONTRASTIVE_LOSS = Exercise(
    "the contrastive loss", "contrastive_loss(energy_data, energy_samples, alpha)",
    lambda e_data, e_samples, alpha: ebm.contrastive_loss(e_data, e_samples, alpha)[0],
    [Case("", _loss_case(8, 8, 0.1, 0)), Case("", _loss_case(128, 128, 1.0, 1, 3.0)),
     Case("α = 0", _loss_case(5, 5, 0.0, 2)), Case("", _loss_case(3, 3, 0.5, 3))],
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
        Mistake(lambda ed, es, a: ed.mean() - es.mean() + a * torch.cat([ed, es]).pow(2).mean(),
                "the regulariser is α (mean E(data)² + mean E(samples)²): two means added, not one mean over both "
                "(which halves it)"),
    ], shape_hint="one number: a scalar tensor (shape ()), the mean over the batch",
    doc="""The EBM's loss.  contrastive_loss(energy_data, energy_samples, alpha) -> the scalar mean E(data) -
    mean E(samples) + α mean(E(data)² + E(samples)²), differentiable in both energies.""")


def _buffer_case(size, n, restart, seed):
    def make():
        buffer = uniform((size, 1, 4, 4), seed) * 2 - 1
        slots = torch.randperm(size, generator=generator(seed + 1))[:n]
        return buffer, slots, uniform((n, 1, 4, 4), seed + 2) * 2 - 1, restart
    return make


def _restarted(buffer, slots, noise, n_new):
    x0 = buffer.index_select(0, slots)
    x0[:n_new] = noise[:n_new]
    return x0


BUFFER_DRAW = Exercise(
    "the replay-buffer draw", "buffer_draw(buffer, slots, noise, restart)", ebm.buffer_draw,
    [Case("5% restarted", _buffer_case(100, 40, 0.05, 0)), Case("none restarted", _buffer_case(10, 10, 0.0, 1)),
     Case("half restarted", _buffer_case(50, 7, 0.5, 2)),
     Case("restart · n = 2.7: round gives 3, int 2", _buffer_case(40, 9, 0.3, 3)),
     Case("restart · n = 1.3: round gives 1, ceil 2", _buffer_case(40, 10, 0.13, 4))], dtype="exact",
    mistakes=[
        Mistake(lambda buf, slots, noise, r: buf.index_select(0, slots),
                "no chain was restarted: replace the first round(restart · n) starts by the fresh noise, or the "
                "buffer never sees new states"),
        Mistake(lambda buf, slots, noise, r: buf[: len(slots)].clone(),
                "take the states at the indices `slots` (buffer[slots]), not the first n of the buffer"),
        Mistake(lambda buf, slots, noise, r: torch.cat([buf.index_select(0, slots)[: len(slots) - round(
            r * len(slots))], noise[: round(r * len(slots))]]),
                "the restarted chains come first: x0[:n_new] = noise[:n_new]"),
        Mistake(lambda buf, slots, noise, r: _restarted(buf, slots, noise, int(r * len(slots))),
                "int() rounds down: restart round(restart · n) chains"),
        Mistake(lambda buf, slots, noise, r: _restarted(buf, slots, noise, math.ceil(r * len(slots))),
                "ceil rounds up: restart round(restart · n) chains"),
        Mistake(lambda buf, slots, noise, r: _restarted(buf, slots, noise, len(slots)),
                "every chain was restarted: only the first round(restart · n) take fresh noise, the rest continue "
                "from the buffer"),
    ],
    doc="""A replay-buffer draw.  buffer_draw(buffer, slots, noise, restart) -> the chains' starts x0: the
    buffer's states at the indices `slots` (n,), the first round(restart · n) of them replaced by `noise` (n, ...)
    (fresh uniform noise in [-1, 1]), as genmodels.ebm.negative_samples draws them. The buffer stays as it was.""")

TEMPERATURE = Exercise(
    "the sampler's temperature", "temperature(step_size, noise)", ebm.temperature,
    [Case("ULA's noise, T = 1", lambda: (0.01, math.sqrt(0.02))), Case("the tutorial's", lambda: (10.0, 0.005)),
     Case("", lambda: (0.5, 0.3))], returns="number",
    mistakes=[
        Mistake(lambda eta, s: s / (2 * eta), "the noise enters squared: T = σ²/(2η)"),
        Mistake(lambda eta, s: s**2 / eta, "T = σ²/(2η): ULA's noise σ = √(2η) must give T = 1"),
        Mistake(lambda eta, s: 2 * eta / s**2, "upside down: T = σ²/(2η), hotter with more noise"),
        Mistake(lambda eta, s: eta**2 / (2 * s), "the arguments are swapped: temperature(step_size, noise), the "
                                                 "step η first: T = σ²/(2η)"),
    ],
    doc="""The temperature of a Langevin sampler.  temperature(step_size, noise) -> T = σ²/(2η): the chain
    x' = x - η ∇E + σ w samples exp(-E/T).""")


def _step_case(n, step, sigma, clamp, seed, grad_scale=1.0):
    return lambda: (uniform((n, 1, 6, 6), seed) * 2 - 1, normal((n, 1, 6, 6), seed + 1, grad_scale), step,
                    sigma, normal((n, 1, 6, 6), seed + 2), clamp)


IMAGE_LANGEVIN_STEP = Exercise(
    "the Langevin step on images", "image_langevin_step(x, grad_energy, step_size, noise_std, noise, grad_clamp)",
    ebm.langevin_step,
    [Case("", _step_case(2, 0.1, 0.05, 0.5, 0)), Case("the tutorial's step 10", _step_case(4, 10.0, 0.005, 0.03, 1)),
     Case("large gradients", _step_case(3, 0.05, 0.3, 1.0, 2, grad_scale=20.0))],
    mistakes=[
        Mistake(lambda x, g, eta, s, w, c: (x + eta * g.clamp(-c, c) + s * w).clamp(-1, 1),
                "you climbed the energy: sampling exp(-E) moves down its gradient, x - η ∇E(x)"),
        Mistake(lambda x, g, eta, s, w, c: (x - eta * g + s * w).clamp(-1, 1),
                "the gradient is not clamped: clamp each coordinate of ∇E to [-grad_clamp, grad_clamp] first"),
        Mistake(lambda x, g, eta, s, w, c: x - eta * g.clamp(-c, c) + s * w,
                "the new state is not clamped to the data range [-1, 1]"),
        Mistake(lambda x, g, eta, s, w, c: (x - eta * g.clamp(-c, c) + math.sqrt(2 * eta) * w).clamp(-1, 1),
                "the noise is σ w with the sampler's σ = noise_std, not √(2η) w"),
        Mistake(lambda x, g, eta, s, w, c: (x - (eta * g).clamp(-c, c) + s * w).clamp(-1, 1),
                "clamp the gradient ∇E itself to ±grad_clamp, then multiply by η (you clamped η ∇E)"),
    ], shape_hint="the images' shape (N, 1, H, W): a step moves every pixel",
    doc="""A Langevin step on images.  image_langevin_step(x, grad_energy, step_size, noise_std, noise,
    grad_clamp) -> clamp(x - η clamp(∇E(x), ±grad_clamp) + σ w, -1, 1), as genmodels.ebm.langevin_sample steps.""")

SPECS = [CONTRASTIVE_LOSS, BUFFER_DRAW, TEMPERATURE, IMAGE_LANGEVIN_STEP]
