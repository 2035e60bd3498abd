"""The RBM's mathematics, checked numerically against brute-force enumeration (genmodels.rbm)."""

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from conftest import mnist_test_dir, random_rbm

from genmodels import data, rbm_fast
from genmodels import rbm as R
from genmodels.data import binarize_stochastic

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: thread start-up would dominate


def all_states(n):
    return R.binary_states(n)


def test_binary_states_count_in_the_order_of_itertools_product():
    torch.testing.assert_close(R.binary_states(5), torch.tensor(list(itertools.product([0.0, 1.0], repeat=5))))
    torch.testing.assert_close(R.binary_states(5, 7, 12), R.binary_states(5)[7:12])


def exact_p_v(rbm):
    v = all_states(rbm.n_visible)
    log_p = -rbm.free_energy(v).double()
    return v, torch.softmax(log_p, 0)


def test_free_energy_equals_marginal_over_hidden():
    rbm = random_rbm(5, 4)
    v, h = all_states(5), all_states(4)
    with torch.no_grad():
        energies = torch.stack([rbm.energy(v, hh.expand(len(v), 4)) for hh in h], 1)  # (2^5, 2^4)
        brute = -torch.logsumexp(-energies.double(), 1)
        torch.testing.assert_close(rbm.free_energy(v).double(), brute, rtol=0, atol=1e-5)  # float32 rounding


def test_free_energy_is_finite_where_exp_then_log_overflows():
    rbm = random_rbm(784, 10, scale=0.0)
    with torch.no_grad():
        rbm.W.fill_(0.2)  # c + v·W = 156.8 for an all-ones image: exp overflows float32 above ~88.7
    v = torch.ones(1, 784)
    naive = -(v @ rbm.b) - torch.log(1 + torch.exp(v @ rbm.W + rbm.c)).sum(1)
    assert torch.isinf(naive).all()
    assert torch.isfinite(rbm.free_energy(v)).all()
    assert rbm.free_energy(v).item() == pytest.approx(-10 * 784 * 0.2, rel=1e-4)  # float32 sums of 784 terms


def test_conditionals_are_ratios_of_joint_probabilities():
    rbm = random_rbm(4, 3, seed=1)
    v, h = all_states(4), all_states(3)
    with torch.no_grad():
        joint = torch.stack([torch.exp(-rbm.energy(v, hh.expand(len(v), 3)).double()) for hh in h], 1)
        p_h1 = torch.stack([joint[:, h[:, j] == 1].sum(1) for j in range(3)], 1) / joint.sum(1, keepdim=True)
        torch.testing.assert_close(rbm.p_h_given_v(v).double(), p_h1, rtol=0, atol=1e-6)
        p_v1 = torch.stack([joint[v[:, i] == 1].sum(0) for i in range(4)], 1) / joint.sum(0)[:, None]
        torch.testing.assert_close(rbm.p_v_given_h(h).double(), p_v1, rtol=0, atol=1e-6)


def test_exact_log_partition_over_visible_equals_over_hidden():
    rbm = random_rbm(12, 9, seed=2)
    over_v = R.log_partition_exact(rbm, over="visible")
    over_h = R.log_partition_exact(rbm, over="hidden")
    assert over_v == pytest.approx(over_h, abs=1e-9)  # both sums in float64
    small, v = random_rbm(6, 3), all_states(6)
    total = torch.exp(-small.free_energy(v).double() - R.log_partition_exact(small)).sum().item()
    assert total == pytest.approx(1.0, abs=1e-6)  # e^(-F(v)) / Z is normalised: F and log Z agree (float32 F)


def test_exact_log_partition_refuses_too_many_states():
    with pytest.raises(ValueError, match="log_partition_ais"):
        R.log_partition_exact(R.RBM(40, 30))


@pytest.fixture(scope="module")
def trained_digits_rbm():
    """A 64×16 RBM trained by CD-1 on scikit-learn's 8×8 digits, binarised at half intensity."""
    from sklearn.datasets import load_digits

    torch.set_num_threads(1)
    x = (load_digits().data / 16 > 0.5).astype(np.float32)
    rbm = R.RBM(64, 16, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    R.fit(rbm, x, epochs=15, batch_size=50, lr=0.1, momentum_epochs=3, progress="none")
    return rbm, x


def test_ais_log_partition_within_a_tenth_of_a_nat_of_exact(trained_digits_rbm):
    rbm, x = trained_digits_rbm
    exact = R.log_partition_exact(rbm)
    ais = R.log_partition_ais(rbm, n_betas=4000, n_runs=100, generator=torch.Generator().manual_seed(0))
    assert abs(ais.log_z - exact) < 0.1
    assert ais.log_z_low <= exact <= ais.log_z_high  # the reported ±3 standard errors cover the truth
    # the trained model is far from the base-rate one, so the check is not vacuous
    assert abs(exact - (torch.nn.functional.softplus(rbm.base_bias).sum().item() + 16 * math.log(2))) > 5


def test_training_raises_the_exact_log_likelihood(trained_digits_rbm):
    rbm, x = trained_digits_rbm
    untrained = R.RBM(64, 16, generator=torch.Generator().manual_seed(0))
    untrained.init_visible_bias(x)
    assert R.log_likelihood(rbm, x) > R.log_likelihood(untrained, x) + 5


def test_ais_spread_is_finite_and_its_ess_counts_the_runs_that_carry_the_weight(trained_digits_rbm):
    """With 3 temperatures the weights' spread exceeds their mean, so log(mean w - 3 SE), the old low end, was -inf;
    the delta method's log Z ± 3 SE is finite, and the ESS says how few runs carry the weight."""
    rbm, _ = trained_digits_rbm
    ais = R.log_partition_ais(rbm, n_betas=3, n_runs=100, generator=torch.Generator().manual_seed(0))
    w = torch.exp(ais.log_weights - ais.log_weights.max())
    assert w.std() / math.sqrt(100) > w.mean() / 3  # the old range's low end: log of a negative number
    assert math.isfinite(ais.log_z_low) and ais.log_z_low < ais.log_z < ais.log_z_high
    assert ais.ess == pytest.approx((w.sum() ** 2 / (w**2).sum()).item(), rel=1e-9)
    assert 1 <= ais.ess < 10  # measured 5.9 of 100: a handful of runs carry the estimate
    assert ais.std_error == pytest.approx(math.sqrt((100 / ais.ess - 1) / 99), rel=1e-9)
    assert ais.log_z_high - ais.log_z == pytest.approx(3 * ais.std_error)


def in_bracket(bracket, exact):
    """Each end is a bound in expectation only; one run may cross it by its Monte-Carlo error, so the margin is 3 of
    that end's standard errors."""
    return (bracket.pessimistic - 3 * bracket.pessimistic_std_error <= exact
            <= bracket.optimistic + 3 * bracket.optimistic_std_error)


def test_raise_and_ais_bracket_the_exact_log_likelihood(trained_digits_rbm):
    """On 300 digits, 1,000 temperatures: measured RAISE -0.05 ± 0.02 and AIS +0.04 ± 0.04 nats from the exact
    -17.85. Both ends lie within 3 standard errors (their Monte-Carlo error) of the truth's side, and within 0.3 nat
    of each other, so a bracket that merely held (say -inf to +inf) would fail here."""
    rbm, x = trained_digits_rbm
    v = torch.as_tensor(x[:300])
    exact = R.log_likelihood(rbm, v)
    bracket = R.log_likelihood_bracket(rbm, v, n_betas=1000, n_runs=100, generator=torch.Generator().manual_seed(0))
    assert in_bracket(bracket, exact)
    assert abs(bracket.optimistic - bracket.pessimistic) < 0.3 and not bracket.crossed
    assert bracket.forward.ess > 50 and bracket.reverse.ess > 150  # measured 86 of 100 and 262 of 300
    assert len(bracket.reverse.log_weights) == 300  # one reverse run from each image


def test_too_few_temperatures_widen_the_bracket_from_below(trained_digits_rbm):
    """With 10 temperatures RAISE's annealing model is a blurred RBM, and its end falls more than a nat below the
    exact value (measured -2.35 ± 0.14: a bias, not noise), while the bracket still holds."""
    rbm, x = trained_digits_rbm
    v = torch.as_tensor(x[:300])
    exact = R.log_likelihood(rbm, v)
    bracket = R.log_likelihood_bracket(rbm, v, n_betas=10, n_runs=100, generator=torch.Generator().manual_seed(0))
    assert in_bracket(bracket, exact)
    assert exact - bracket.pessimistic > 1 + 3 * bracket.pessimistic_std_error


def test_ais_spread_misses_the_exact_log_z_where_the_bracket_holds(trained_digits_rbm):
    """AIS's own log Z ± 3 SE is one estimator's Monte-Carlo error, computed from the same few weights; with 3
    temperatures it misses the exact log Z in 8 of 40 runs (a calibrated 3 SE would miss in 0.1), always on the side
    of a too small log Z. The bracket, two estimators biased in opposite directions, holds in all 40."""
    rbm, x = trained_digits_rbm
    v = torch.as_tensor(x[:300])
    exact_log_z, exact = R.log_partition_exact(rbm), R.log_likelihood(rbm, v)
    brackets = [R.log_likelihood_bracket(rbm, v, n_betas=3, n_runs=100, generator=torch.Generator().manual_seed(seed))
                for seed in range(40)]
    assert sum(not (b.forward.log_z_low <= exact_log_z <= b.forward.log_z_high) for b in brackets) >= 4
    assert all(b.forward.log_z_low <= exact_log_z for b in brackets)  # a miss is a log Z too small: Jensen's side
    assert all(in_bracket(b, exact) for b in brackets)


def test_reverse_weights_with_the_forward_sign_break_the_bracket(trained_digits_rbm, monkeypatch):
    """A wrong reverse AIS that accumulates log p*_βk - log p*_βk-1 on its way down (the forward increment) is
    caught: its end lands nats above the exact value, far outside 3 standard errors, and above AIS's end."""
    rbm, x = trained_digits_rbm
    v = torch.as_tensor(x[:300])
    exact = R.log_likelihood(rbm, v)
    anneal = R._anneal

    def forward_sign(rbm, v, betas, generator):
        log_w = anneal(rbm, v, betas, generator)
        return -log_w if betas[0] > betas[-1] else log_w

    monkeypatch.setattr(R, "_anneal", forward_sign)
    wrong = R.log_likelihood_bracket(rbm, v, n_betas=100, n_runs=100, generator=torch.Generator().manual_seed(0))
    assert not in_bracket(wrong, exact)
    assert wrong.pessimistic > exact + 5 and wrong.crossed  # the ends cross: a bracket's own warning


def test_reverse_ais_from_exact_samples_finds_log_z(trained_digits_rbm):
    """Reverse AIS started from 300 exact samples of the model (h from p(h) by enumerating the 2^16 hidden states,
    then v from p(v|h)), 1,000 temperatures: log Z within 3 standard errors (Monte-Carlo error) + 0.05 nat of
    exact (measured -0.01 ± 0.02)."""
    rbm, _ = trained_digits_rbm
    g = torch.Generator().manual_seed(5)
    h = R.binary_states(16)
    with torch.no_grad():
        log_p_h = h.double() @ rbm.c.double() + torch.nn.functional.softplus(h.double() @ rbm.W.double().t()
                                                                              + rbm.b.double()).sum(1)
        v = R.bernoulli(rbm.p_v_given_h(h[torch.multinomial(torch.softmax(log_p_h, 0), 300, True, generator=g)]), g)
    reverse = R.log_partition_reverse_ais(rbm, v, n_betas=1000, generator=torch.Generator().manual_seed(0))
    assert abs(reverse.log_z - R.log_partition_exact(rbm)) < 3 * reverse.std_error + 0.05


def exact_gradient(rbm, data):
    """∂ mean log p(v)/∂W = ⟨v p(h|v)ᵀ⟩_data - ⟨v p(h|v)ᵀ⟩_model, the model term by enumerating every v."""
    v, p = exact_p_v(rbm)
    with torch.no_grad():
        model = (v.double() * p[:, None]).t() @ rbm.p_h_given_v(v).double()
        positive = data.double().t() @ rbm.p_h_given_v(data).double() / len(data)
    return positive - model


def test_cd_k_with_large_k_approaches_the_exact_gradient():
    rbm = random_rbm(6, 4, scale=1.5, seed=3)
    g = torch.Generator().manual_seed(0)
    data = torch.bernoulli(torch.full((8, 6), 0.3), generator=g).repeat(4000, 1)  # 8 examples, 4000 chains each
    exact = exact_gradient(rbm, data)
    torch.manual_seed(0)
    dW_1, *_ = rbm.contrastive_divergence(data, k=1, sample_visible=True, generator=g)
    dW_k, *_ = rbm.contrastive_divergence(data, k=200, sample_visible=True, generator=g)
    error_1, error_k = (dW_1.double() - exact).abs().max().item(), (dW_k.double() - exact).abs().max().item()
    # Monte Carlo: each entry averages 32,000 terms in [-1, 1]: standard error <= 1/sqrt(32000) = 0.0056; 4 s.e.
    assert error_k < 0.022
    assert error_1 > 2 * error_k  # CD-1 is visibly biased on this strongly coupled RBM


def test_long_gibbs_chains_reproduce_the_model_distribution():
    rbm = random_rbm(4, 3, scale=1.0, seed=4)
    v_all, p = exact_p_v(rbm)
    g = torch.Generator().manual_seed(0)
    v = torch.bernoulli(torch.full((2000, 4), 0.5), generator=g)
    counts = torch.zeros(16, dtype=torch.float64)
    codes = torch.tensor([8, 4, 2, 1.0])  # all_states lists v in binary order, first unit most significant
    with torch.no_grad():
        for step in range(150):
            v, _ = rbm.gibbs_step(v, g)
            if step >= 50:  # burn-in
                counts += torch.bincount((v @ codes).long(), minlength=16).double()
    q = counts / counts.sum()
    kl = (q[q > 0] * (q[q > 0] / p[q > 0]).log()).sum().item()
    # 200,000 correlated draws: the plug-in KL of a perfect sampler is about (16 - 1) / (2 · n_eff) ~ 1e-4,
    # so 0.01 nat lies far above the sampling noise, and far below the KL of the wrong distribution
    assert kl < 0.01
    uniform = torch.full((16,), 1 / 16, dtype=torch.float64)
    assert (uniform * (uniform / p).log()).sum().item() > 0.1


def test_persistent_chains_are_kept_in_checkpoints(tmp_path):
    x = torch.bernoulli(torch.full((200, 10), 0.3), generator=torch.Generator().manual_seed(0))
    rbm = R.RBM(10, 5, n_chains=20)
    path = tmp_path / "rbm.pt"
    R.fit(rbm, x, epochs=2, batch_size=20, persistent=True, checkpoint=path, resume=False, progress="none")
    restored = R.RBM(10, 5, n_chains=20)
    R.fit(restored, x, epochs=2, batch_size=20, persistent=True, checkpoint=path, progress="none")  # resumes: no-op
    torch.testing.assert_close(restored.chains, rbm.chains)
    torch.testing.assert_close(restored.W, rbm.W)
    assert restored.n_updates == 20


def test_visible_biases_start_at_pixel_log_odds():
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    rbm = R.RBM(2, 3)
    rbm.init_visible_bias(x)
    torch.testing.assert_close(rbm.b.detach(), torch.tensor([math.log(3), -math.log(3)]))
    trained = R.RBM(2, 3)
    R.fit(trained, x, epochs=0, progress="none")  # fit takes the pixel means from its input check
    torch.testing.assert_close(trained.b.detach(), rbm.b.detach())
    torch.testing.assert_close(trained.base_bias, rbm.base_bias)


@pytest.mark.parametrize(("persistent", "momentum"), [(False, (0.5, 0.9)), (True, (0.5, 0.9)), (False, (0.0, 0.0))])
def test_cd_step_is_sgd_with_momentum_and_decoupled_weight_decay(persistent, momentum, monkeypatch):
    """The reference update (increments kept in the model) takes the same steps as torch.optim.SGD given the CD
    statistics as gradients, momentum switching after 3 updates, with W shrunk by 1 - lr·decay before each step."""
    monkeypatch.setenv(rbm_fast.ENV_VAR, "reference")
    x = torch.bernoulli(torch.full((40, 6), 0.5), generator=torch.Generator().manual_seed(0))
    ours, reference = random_rbm(6, 3, seed=3), random_rbm(6, 3, seed=3)
    lr, decay = 0.1, 0.05
    step = R.cd_step_fn(ours, lr=lr, weight_decay=decay, momentum=momentum, momentum_switch=3, persistent=persistent)
    sgd = torch.optim.SGD(reference.parameters(), lr=lr)
    for i in range(6):
        v = x[i * 5:(i + 1) * 5 + 2]  # 7 examples, unequal to the 100 persistent chains
        torch.manual_seed(i)  # the same negative samples for both
        step(v)
        torch.manual_seed(i)
        dW, db, dc, _ = reference.contrastive_divergence(v, persistent=persistent)
        reference.W.grad, reference.b.grad, reference.c.grad = -dW, -db, -dc
        for group in sgd.param_groups:
            group["momentum"] = momentum[0] if i < 3 else momentum[1]
        with torch.no_grad():
            reference.W.mul_(1 - lr * decay)
        sgd.step()
        for name in ("W", "b", "c"):
            torch.testing.assert_close(getattr(ours, name), getattr(reference, name))
    assert ours.n_updates == 6


def test_a_linear_schedule_is_sgd_with_the_rate_falling_to_zero(monkeypatch):
    """decay_updates = T: update t takes the rate lr·(1 - t/T), in the increment Δθ ← μΔθ + lr_t·g and in the weight
    decay alike (written out by hand here); fit's lr_schedule='linear' decays over all its epochs' updates."""
    monkeypatch.setenv(rbm_fast.ENV_VAR, "reference")
    x = torch.bernoulli(torch.full((30, 6), 0.5), generator=torch.Generator().manual_seed(0))
    ours, reference = random_rbm(6, 3, seed=3), random_rbm(6, 3, seed=3)
    lr, decay, T, mu = 0.1, 0.05, 6, 0.5
    step = R.cd_step_fn(ours, lr=lr, weight_decay=decay, momentum=(mu, mu), decay_updates=T)
    increments = [torch.zeros_like(p) for p in (reference.W, reference.b, reference.c)]
    for i in range(T):
        v = x[i * 5:(i + 1) * 5]
        torch.manual_seed(i)
        step(v)
        torch.manual_seed(i)
        *gradient, _ = reference.contrastive_divergence(v)
        rate = lr * (1 - i / T)
        with torch.no_grad():
            increments = [mu * inc + rate * g for inc, g in zip(increments, gradient, strict=True)]
            reference.W.mul_(1 - rate * decay)
            for theta, inc in zip((reference.W, reference.b, reference.c), increments, strict=True):
                theta.add_(inc)
        for name in ("W", "b", "c"):
            torch.testing.assert_close(getattr(ours, name), getattr(reference, name))
    done = random_rbm(6, 3, seed=4)
    R.fit(done, x, epochs=2, batch_size=10, lr=0.1, momentum=(0.0, 0.0), lr_schedule="linear", progress="none")
    assert done.n_updates == 6  # 3 batches in each of 2 epochs: T = 6
    before = done.W.detach().clone()
    R.cd_step_fn(done, lr=0.1, momentum=(0.0, 0.0), decay_updates=6)(x[:10])  # a 7th update: the rate is 0
    torch.testing.assert_close(done.W.detach(), before, atol=0, rtol=0)
    with pytest.raises(ValueError, match="lr_schedule must be 'constant' or 'linear'"):
        R.fit(R.RBM(6, 3), x, epochs=1, lr_schedule="cosine", progress="none")


def test_cd_reports_the_reconstruction_error_of_one_batch_in_monitor_every():
    rbm = random_rbm(6, 3, scale=0.1)
    v = torch.bernoulli(torch.full((5, 6), 0.5), generator=torch.Generator().manual_seed(0))
    step = R.cd_step_fn(rbm, monitor_every=4)
    assert [bool(step(v)) for _ in range(9)] == [True, False, False, False] * 2 + [True]
    history = R.fit(random_rbm(6, 3), v.repeat(6, 1), epochs=3, batch_size=10, progress="none")  # 3 batches an epoch
    assert not any(math.isnan(e) for e in history["recon_error"])  # fit reports in every epoch, however short


def test_monitor_every_must_be_positive():
    with pytest.raises(ValueError, match="monitor_every"):
        R.cd_step_fn(R.RBM(4, 2), monitor_every=0)


def test_momentum_outside_the_unit_interval_is_refused():
    with pytest.raises(ValueError, match="momentum"):
        R.cd_step_fn(R.RBM(4, 2), momentum=(0.5, 1.0))


def test_cd_update_equals_gradient_of_free_energy_difference():
    """The lecture's surrogate loss mean F(v) - mean F(v⁻) (v⁻ held fixed) has minus the CD statistics as its
    gradient: its value is not a likelihood, but its gradient is the CD estimate."""
    rbm = random_rbm(7, 5, seed=5)
    v = torch.bernoulli(torch.full((30, 7), 0.4), generator=torch.Generator().manual_seed(1))
    dW, db, dc, v_neg = rbm.contrastive_divergence(v, k=1, generator=torch.Generator().manual_seed(2))
    (rbm.free_energy(v).mean() - rbm._free_energy(v_neg).mean()).backward()
    torch.testing.assert_close(-rbm.W.grad, dW)
    torch.testing.assert_close(-rbm.b.grad, db)
    torch.testing.assert_close(-rbm.c.grad, dc)


def test_pseudo_likelihood_estimate_is_unbiased():
    rbm = random_rbm(5, 3, seed=6)
    v = torch.bernoulli(torch.full((4, 5), 0.5), generator=torch.Generator().manual_seed(0))
    exact = 0.0  # Σ_i log p(v_i | v_-i) by flipping every pixel
    for i in range(5):
        flipped = v.clone()
        flipped[:, i] = 1 - flipped[:, i]
        exact += torch.nn.functional.logsigmoid(rbm.free_energy(flipped) - rbm.free_energy(v)).mean().item()
    estimate = R.pseudo_log_likelihood(rbm, v.repeat(5000, 1), generator=torch.Generator().manual_seed(0))
    assert estimate == pytest.approx(exact, abs=0.1)  # 20,000 draws of a bounded term: s.e. ~0.02


def test_reconstruction_error_is_zero_for_a_saturated_autoencoder():
    rbm = random_rbm(3, 3, scale=0.0)
    with torch.no_grad():
        rbm.W.copy_(20 * torch.eye(3))
        rbm.b.fill_(-10)
        rbm.c.fill_(-10)
    v = all_states(3)
    assert R.reconstruction_error(rbm, v) < 1e-6


@pytest.mark.parametrize("sampler", ["reference", "16 bits"])
def test_bernoulli_draws_ones_with_probability_p(sampler):
    """Frequencies of ones within 5 standard errors of p; with 16 bits, of p rounded to a multiple of 2⁻¹⁶, which
    makes p < 2⁻¹⁷ exactly 0 (a case that checks the rounding, not just the mean)."""
    p = torch.tensor([0.0, 1e-6, 0.1, 0.3, 0.5, 0.9, 1.0])
    n = 1 << 20
    draw = R.bernoulli if sampler == "reference" else rbm_fast.bernoulli16
    draws = draw(p.repeat(n, 1), torch.Generator().manual_seed(0))
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    expected = p.double() if sampler == "reference" else torch.round(p.double() * 2**16) / 2**16
    se = (expected * (1 - expected) / n).sqrt()
    assert ((draws.double().mean(0) - expected).abs() <= 5 * se + 1e-12).all()
    if sampler == "16 bits":
        assert draws[:, 1].sum() == 0


def test_bernoulli_16_bits_uses_all_four_quarters_of_each_random_word():
    """Each 64-bit random integer gives four 16-bit uniforms; all four must be uniform (torch's random_() without
    a range leaves the sign bit at 0, which would make every fourth draw with p = ½ come out 0)."""
    draws = rbm_fast.bernoulli16(torch.full((1 << 20,), 0.5), torch.Generator().manual_seed(1))
    quarters = draws.view(-1, 4).mean(0)
    assert ((quarters - 0.5).abs() < 5 * math.sqrt(0.25 / (1 << 18))).all(), quarters


def test_conditionals_fused_and_plain_agree():
    """rbm_fast.linear_sigmoid: the fused oneDNN kernel (x86 CPU, float32, no autograd) equals sigmoid(x Wᵀ + b);
    with gradients it is the plain, differentiable form."""
    g = torch.Generator().manual_seed(0)
    x, W, b = torch.rand(37, 50, generator=g), torch.randn(20, 50, generator=g), torch.randn(20, generator=g)
    plain = torch.sigmoid(x @ W.t() + b)
    with torch.no_grad():
        torch.testing.assert_close(rbm_fast.linear_sigmoid(x, W, b), plain, rtol=0, atol=1e-6)
        torch.testing.assert_close(rbm_fast.linear_sigmoid(x, W.t().contiguous().t(), b), plain, rtol=0, atol=1e-6)
    on_x86 = torch.backends.mkldnn.is_available() and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    assert rbm_fast.fused_available() or not on_x86  # the pinned torch has the op on x86 CPUs
    W.requires_grad_()
    rbm_fast.linear_sigmoid(x, W, b).sum().backward()
    torch.testing.assert_close(W.grad, ((plain * (1 - plain)).t() @ x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("persistent", [False, True])
def test_fast_and_reference_updates_agree_from_the_same_negatives(persistent):
    """From the same state and the same negative samples, rbm_fast.sgd_step takes the reference step
    rbm.sgd_step(rbm.cd_gradient(v, v⁻)) to float32 precision, momentum and weight decay included."""
    g = torch.Generator().manual_seed(0)
    reference, fast = random_rbm(20, 7, scale=0.5, seed=8), random_rbm(20, 7, scale=0.5, seed=8)
    for rbm in (reference, fast):  # a non-zero momentum to carry
        rbm.dW.copy_(0.01 * torch.randn(20, 7, generator=torch.Generator().manual_seed(1)))
    for _ in range(3):
        v = torch.bernoulli(torch.full((13, 20), 0.4), generator=g)
        v_neg = torch.rand(13, 20, generator=g)  # CD: the last visible step keeps probabilities
        if persistent:  # PCD: binary chains, as many as there are, not as the batch
            v_neg = torch.bernoulli(torch.full((9, 20), 0.6), generator=g)
        reference.sgd_step(reference.cd_gradient(v, v_neg), lr=0.1, momentum=0.9, weight_decay=0.01)
        rbm_fast.sgd_step(fast, v, v_neg, lr=0.1, momentum=0.9, weight_decay=0.01)
        for name in ("W", "b", "c", "dW", "db", "dc"):
            torch.testing.assert_close(getattr(fast, name), getattr(reference, name), rtol=1e-5, atol=1e-6)
    assert fast.n_updates == reference.n_updates == 3


@pytest.mark.parametrize("product", ["fused", "plain"])
@pytest.mark.parametrize(("k", "persistent"), [(1, False), (3, False), (2, True)])
def test_the_fast_step_with_the_reference_samples_takes_the_reference_step(product, k, persistent):
    """rbm_fast.cd_step with the reference's sampler draws the reference's uniforms in the reference's order, so from
    the same generator it takes rbm.contrastive_divergence + rbm.sgd_step's steps, with either product, to float32
    precision (the fused product rounds differently; with these seeds no sample lands between the two)."""
    reference, fast = random_rbm(20, 7, scale=0.5, seed=8), random_rbm(20, 7, scale=0.5, seed=8)
    kernels = rbm_fast.Kernels("fast", product, "reference")
    g_reference, g_fast, g_data = (torch.Generator().manual_seed(s) for s in (5, 5, 6))
    for _ in range(3):
        v = torch.bernoulli(torch.full((13, 20), 0.4), generator=g_data)
        *gradient, v_neg = reference.contrastive_divergence(v, k, persistent, generator=g_reference)
        reference.sgd_step(gradient, lr=0.1, momentum=0.9, weight_decay=0.01)
        fast_v_neg = rbm_fast.cd_step(fast, v, k=k, persistent=persistent, lr=0.1, momentum=0.9, weight_decay=0.01,
                                      generator=g_fast, kernels=kernels)
        torch.testing.assert_close(fast_v_neg, v_neg, rtol=1e-5, atol=1e-6)
        for name in ("W", "b", "c", "chains"):
            torch.testing.assert_close(getattr(fast, name), getattr(reference, name), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def quick_digits():
    """2,000 binarised MNIST test images (the quick profile's data)."""
    x, _ = data.load_split("mnist", "test", mnist_test_dir(), download_missing=False)
    return torch.from_numpy(data.binarize_once(x[:2000].reshape(2000, -1)))


def test_fast_and_reference_training_agree_in_distribution(quick_digits, monkeypatch):
    """200 PCD updates of a 784×16 RBM with different random numbers on each path (the fast path's incumbents: 16-bit
    samples, the fused product where it works): the mean of W and the reconstruction error after training agree
    within 4 standard errors (the spread over 5 seeds of each path)."""
    def train(seed):
        torch.manual_seed(seed)
        rbm = R.RBM(784, 16, n_chains=50, generator=torch.Generator().manual_seed(seed))
        R.fit(rbm, quick_digits, epochs=5, batch_size=50, lr=0.05, persistent=True, momentum_epochs=1,
              progress="none", seed=seed)
        assert rbm.n_updates == 200
        return rbm.W.mean().item(), R.reconstruction_error(rbm, quick_digits[:500])

    monkeypatch.setenv(rbm_fast.ENV_VAR, "fast")
    fast = torch.tensor([train(seed) for seed in range(5)])
    monkeypatch.setenv(rbm_fast.ENV_VAR, "reference")
    reference = torch.tensor([train(seed) for seed in range(5, 10)])
    se = (fast.var(0) / 5 + reference.var(0) / 5).sqrt()
    assert ((fast.mean(0) - reference.mean(0)).abs() < 4 * se).all(), (fast.mean(0), reference.mean(0), se)
    assert (reference.mean(0)[1] < R.reconstruction_error(R.RBM(784, 16), quick_digits[:500]))  # it trained


def test_fit_trains_without_a_word_when_the_private_op_is_missing(quick_digits, monkeypatch, capsys):
    """The fused oneDNN op missing (or failing) in this build of torch: the product and sigmoid replace it, quietly."""
    def missing(*args):
        raise RuntimeError("no such op in this build")

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", missing)
    rbm_fast.fused_available.cache_clear()
    try:
        assert not rbm_fast.fused_available()
        rbm = R.RBM(784, 16, generator=torch.Generator().manual_seed(0))
        before = R.reconstruction_error(rbm, quick_digits[:500])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            history = R.fit(rbm, quick_digits, epochs=2, batch_size=50, lr=0.05, progress="none")
        assert R.reconstruction_error(rbm, quick_digits[:500]) < before and history.epochs == 2
        assert capsys.readouterr() == ("", "")
    finally:
        monkeypatch.undo()
        rbm_fast.fused_available.cache_clear()


def test_sample_returns_probabilities_or_binary_states():
    rbm = random_rbm(6, 4)
    p = rbm.sample(5, steps=3, generator=torch.Generator().manual_seed(0))
    assert p.shape == (5, 6) and not set(p.unique().tolist()) <= {0.0, 1.0}  # probabilities, not states
    v = rbm.sample(v0=torch.ones(2, 6), steps=2, probabilities=False)
    assert set(v.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize(("x", "message"), [
    (torch.full((3, 6), 0.5), r"RBM input must be binary \(0/1\); got grey levels between 0 and 1, such as 0.5\."),
    (torch.full((3, 6), 2.0), r"must be binary \(0/1\); got values from 2 to 2, such as 2\. Binarise it with"),
    (torch.tensor([[0.0, 1, 1, 0, float("inf"), 1]]), "1 infinite"),
    (torch.ones(3, 5), r"shape \(N, 6\)"),
    (torch.tensor([[0.0, 1, 1, 0, float("nan"), 1]]), "NaN"),
])
def test_bad_input_gets_a_clear_error(x, message):
    rbm = R.RBM(6, 4)
    with pytest.raises(ValueError, match=message):
        rbm.free_energy(x)
    with pytest.raises(ValueError, match=message):
        R.fit(rbm, x, epochs=1, progress="none")


def test_images_are_flattened():
    rbm = random_rbm(16, 2, seed=9)
    images = torch.bernoulli(torch.full((3, 4, 4), 0.5), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(rbm.free_energy(images), rbm.free_energy(images.reshape(3, 16)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_one_generator_serves_every_random_draw_and_a_cpu_one_is_a_clear_error():
    g = torch.Generator(device="cuda").manual_seed(0)
    rbm = R.RBM(6, 4, n_chains=8, init_std=1.0, generator=g, device="cuda")
    x = (torch.rand(64, 6, generator=g, device="cuda") < 0.5).float()
    R.fit(rbm, x, epochs=2, batch_size=16, persistent=True, progress="none")
    assert rbm.sample(5, steps=3, generator=g).device.type == "cuda"
    assert math.isfinite(R.pseudo_log_likelihood(rbm, x, generator=g))
    ais = R.log_partition_ais(rbm, n_betas=200, n_runs=20, generator=g)
    assert abs(ais.log_z - R.log_partition_exact(rbm)) < 0.5
    bracket = R.log_likelihood_bracket(rbm, x, n_betas=200, n_runs=20, generator=g)
    exact = R.log_likelihood(rbm, x)
    assert abs(bracket.pessimistic - exact) < 0.5 and abs(bracket.optimistic - exact) < 0.5
    with pytest.raises(ValueError, match="generator is on cpu"):
        rbm.sample(5, steps=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="generator is on cpu"):
        binarize_stochastic(torch.rand(2, 6, device="cuda"), generator=torch.Generator())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lr": -0.1}, "lr must be a positive, finite number, got -0.1"),
    ({"lr": 100.0}, "lr=100.0 is far above what CD training tolerates"),
    ({"epochs": -3}, "epochs must be a whole number >= 0, got -3"),
    ({"batch_size": 0}, "batch_size must be a whole number >= 1, got 0"),
    ({"k": 0}, r"k \(Gibbs steps per update\) must be a whole number >= 1, got 0"),
])
def test_bad_training_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        R.fit(R.RBM(6, 4), torch.ones(10, 6), **{"epochs": 1, "progress": "none", **kwargs})


def test_persistent_training_needs_chains():
    with pytest.raises(ValueError, match=r"persistent chains \(n_chains\) must be a whole number >= 1, got 0"):
        R.fit(R.RBM(6, 4, n_chains=0), torch.ones(10, 6), epochs=1, persistent=True, progress="none")


def test_empty_data_is_a_clear_error():
    with pytest.raises(ValueError, match="RBM input is empty"):
        R.fit(R.RBM(6, 4), torch.ones(0, 6), epochs=1, progress="none")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_runs": 1}, r"n_runs \(a standard error needs two runs at least\) must be a whole number >= 2, got 1"),
    ({"n_runs": 0}, "n_runs .* got 0"),
    ({"n_betas": 0}, r"n_betas \(the number of temperatures\) must be a whole number >= 3, got 0"),
    ({"n_betas": -5}, "n_betas .* got -5"),
])
def test_ais_settings_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        R.log_partition_ais(R.RBM(6, 4), **kwargs)


def test_ais_takes_as_many_temperatures_as_asked():
    assert len(R.ais_betas(3)) == 4 and len(R.ais_betas(100)) == 101


def test_fit_again_with_other_settings_and_the_same_checkpoint_is_refused(tmp_path):
    """The old model does not come back silently: the error names each changed setting and how to start afresh."""
    x = torch.bernoulli(torch.full((40, 6), 0.5), generator=torch.Generator().manual_seed(0))
    path = tmp_path / "rbm.pt"
    R.fit(R.RBM(6, 4), x, epochs=1, lr=0.1, checkpoint=path, progress="none")
    with pytest.raises(ValueError, match=r"(?s)k: 1 in the checkpoint, 3 now; lr: 0.1 in the checkpoint, 0.05 now.*"
                                         r"resume=False, or delete the file"):
        R.fit(R.RBM(6, 4), x, epochs=2, lr=0.05, k=3, checkpoint=path, progress="none")
    assert R.fit(R.RBM(6, 4), x, epochs=2, lr=0.05, k=3, checkpoint=path, resume=False, progress="none").epochs == 2


def test_log_probabilities_are_the_marginals_of_the_joint_energy_by_brute_force():
    """log p(v) over all 2^6 states equals log Σ_h e^(-E(v, h)) - log Σ_(v,h) e^(-E(v, h)), every (v, h) of the
    6×4 model enumerated from the energy (not the free energy the package uses); float32 energies: 1e-5."""
    rbm = random_rbm(6, 4, seed=9)
    log_p = R.log_probabilities(rbm)
    assert log_p.dtype == torch.float64 and log_p.shape == (64,)
    v, h = R.binary_states(6), R.binary_states(4)
    log_w = -rbm.energy(v.repeat_interleave(16, 0), h.repeat(64, 1)).double().view(64, 16)
    torch.testing.assert_close(log_p, log_w.logsumexp(1) - log_w.flatten().logsumexp(0), rtol=0, atol=1e-5)


def two_mode_rbm(weight=6.0, tilt=3.0):
    """An RBM of 8 pixels with two modes: hidden unit 0 turns on pixels 0-3 and off 4-7, unit 1 the reverse; `tilt`
    gives mode 0 about 95 % of the mass. The base rate is neutral (every pixel ½), so a chain started there falls
    into either basin about equally often and, with weights this strong, stays in it."""
    model = R.RBM(8, 2)
    first = torch.tensor([1.0] * 4 + [-1.0] * 4)
    with torch.no_grad():
        model.W.copy_(weight * torch.stack([first, -first], 1))
        model.b.zero_()
        model.c.copy_(torch.tensor([-2 * weight + tilt, -2 * weight]))
        model.base_bias.zero_()
    return model


def total_variation_from_exact(model, v):
    """½ Σ_v |q(v) - p(v)|, q the histogram of the binary samples v, p the model's enumerated distribution."""
    codes = 2.0 ** torch.arange(model.n_visible - 1, -1, -1)  # the order of binary_states
    q = torch.bincount((v @ codes).long(), minlength=2**model.n_visible).double() / len(v)
    return 0.5 * (q - R.log_probabilities(model).exp()).abs().sum().item()


def test_tempered_sweep_is_the_base_rate_at_beta_0_and_gibbs_at_beta_1():
    model = random_rbm(5, 3, seed=2)
    v = torch.bernoulli(torch.full((4, 5), 0.5), generator=torch.Generator().manual_seed(0))
    _, pv = model.tempered_gibbs_step(v, 0.0)
    torch.testing.assert_close(pv, torch.sigmoid(model.base_bias).expand(4, 5))
    _, pv_tempered = model.tempered_gibbs_step(v, 1.0, torch.Generator().manual_seed(1))
    _, pv_gibbs = model.gibbs_step(v, torch.Generator().manual_seed(1))
    torch.testing.assert_close(pv_tempered, pv_gibbs)


def test_parallel_tempering_samples_a_two_mode_rbm_where_gibbs_stays_where_it_starts():
    model = two_mode_rbm()
    g = torch.Generator().manual_seed(0)
    tempered = model.sample_tempered(4000, n_betas=10, steps=100, generator=g, probabilities=False)
    gibbs = model.sample(4000, steps=1000, generator=g, probabilities=False)  # the same number of sweeps
    # 4,000 draws over (mostly) two states: a perfect sampler's total variation is about 0.01 (binomial error of the
    # mode's mass, √(0.05 · 0.95 / 4000) ≈ 0.003, plus the few other states). Gibbs keeps roughly the even split of
    # its starts between the basins (measured: 65 % in the heavy mode, not 95 %; tempering 95 %), off by about 0.3
    assert total_variation_from_exact(model, tempered) < 0.05
    assert total_variation_from_exact(model, gibbs) > 0.2


def test_the_chains_diagnostic_keeps_the_states_that_sample_returns():
    model = random_rbm(6, 4, seed=3)
    kept = model.sample_along_chains(50, at=(5, 1, 20), generator=torch.Generator().manual_seed(0))
    assert list(kept) == [1, 5, 20]
    torch.testing.assert_close(kept[20], model.sample(50, steps=20, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(kept[1], kept[20])


def test_gibbs_step_is_gibbs_sweep_on_the_uniforms_it_draws():
    """gibbs_step draws u_h, then u_v; gibbs_sweep (the exercise's reference) makes the same sweep from them."""
    model = R.RBM(12, 5, n_chains=1, init_std=0.5)
    v = (torch.rand(7, 12) < 0.5).float()
    stepped = model.gibbs_step(v, torch.Generator().manual_seed(2))
    uniforms = torch.Generator().manual_seed(2)
    swept = model.gibbs_sweep(v, torch.rand(7, 5, generator=uniforms), torch.rand(7, 12, generator=uniforms))
    assert all(torch.equal(a, b) for a, b in zip(stepped, swept, strict=True))
