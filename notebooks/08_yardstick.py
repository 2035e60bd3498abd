# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · One yardstick: RBM, EBM and VAE samples measured by the same rules
#
# Each notebook so far judged its model in its own currency: the RBM by AIS nats (01), the energy-based model by a
# classifier's confidence and an out-of-distribution AUC (04), the VAEs by ELBO and IWAE nats (05). The question a
# student asks first, *which of these models is best here, and by what measure?*, needs one set of rules for all. This
# notebook measures the samples of every model of the week, and a ladder of reference sets from perfect to useless, in
# the feature space of one classifier, the **judge**, with the field's yardsticks.
#
# You will learn
# - the Fréchet distance (FID, with a digit classifier in place of Inception), and why it must be compared at equal
#   sample size (its bias falls like $1/N$);
# - improved precision and recall ($k$ = 3 nearest neighbours): realistic samples against covering the data;
# - the classifier score (the Inception score's analogue) and the number of classes covered;
# - a nearest-neighbour test for copying the training data;
# - why none of these is a likelihood, and where the two kinds of measure disagree.

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
device = None  # None picks CUDA, then Apple MPS, then the CPU
seed = 0
n = None  # images per row and in the reference; None: 1,000 (quick) or 5,000 (full)
seeds = (0, 1, 2)  # every row is drawn and measured once per seed

# %%
import matplotlib.pyplot as plt
import torch

import genmodels
from genmodels import data, ebm, judge, measures, plotting, rbm, runs, vae

profile, device = genmodels.setup(profile, device, seed)
n = n or profile.pick(quick=1000, full=5000)
n_nats, iwae_k = profile.pick(quick=200, full=1000), profile.pick(quick=50, full=100)  # test images, IWAE's K

# %% [markdown]
# ## The data and the judge
#
# The judge is a small convolutional classifier (two strided convolutions, a layer of 128 features, ten outputs:
# `genmodels.judge`), trained once on the profile's training images through the course's training loop and kept as a
# checkpoint with its settings. Its 128 features $\varphi(x)$ are the space in which images are compared: a
# classifier's features respond to strokes and shapes, not to pixel-level noise that the eye ignores, which is what
# made FID agree with human judgement better than distances in pixel space.

# %% tags=["nbval-check-output"]
dataset = data.load_data(profile)
print(dataset)
print(f"classes: {dataset.classes}")

# %%
referee = judge.train_judge(dataset, seed=seed, device=device, progress=profile.progress)
print(referee)
print(f"the judge's test accuracy on {dataset.name}: {judge.accuracy(referee, dataset.x_test, dataset.y_test):.2%}")

# %% [markdown]
# A judge that misreads the data would misjudge the samples, so its accuracy on the test split comes first, printed
# above: the quick profile's judge trains on 8,000 images for seconds, the full profile's on the whole training split
# for longer. A judge belongs to one data set: `judge.check_same_dataset` refuses, with a message, to measure
# Fashion-MNIST images with a digit judge.
#
# ## The measures, checked where the answer is known
#
# **Fréchet distance.** Fit a Gaussian to each set of features and take the squared Wasserstein-2 distance between
# them,
# $$\mathrm{FD} = \lVert\mu_X - \mu_Y\rVert^2 + \operatorname{tr}\big(\Sigma_X + \Sigma_Y
#   - 2\,(\Sigma_X^{1/2}\,\Sigma_Y\,\Sigma_X^{1/2})^{1/2}\big),$$
# both square roots from symmetric eigendecompositions (`measures.frechet_distance_from_moments`). For diagonal
# covariances it is $\lVert\mu_X-\mu_Y\rVert^2 + \sum_i(\sigma_{X,i} - \sigma_{Y,i})^2$, which we compute by hand.
# **Precision and recall** put a ball around each feature vector reaching its third-nearest neighbour: precision is
# the fraction of samples inside the data's balls, recall the fraction of data inside the samples' balls. The
# **classifier score** $\exp\big(\mathbb E_x\,\mathrm{KL}(p(y|x)\,\|\,p(y))\big)$ is 10 for ten equally frequent,
# confidently labelled classes, and 1 for one class.

# %% tags=["nbval-check-output"]
mu_x, mu_y = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
var_x, var_y = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
by_hand = ((mu_x - mu_y) ** 2).sum() + ((var_x.sqrt() - var_y.sqrt()) ** 2).sum()
fd = measures.frechet_distance_from_moments(mu_x, torch.diag(var_x), mu_y, torch.diag(var_y))
print(f"Fréchet distance of two diagonal Gaussians: {fd:.6f}; by hand {by_hand:.6f}")
points = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
print("precision, recall of a set against itself:", measures.precision_recall(points, points))
print("... against the same set moved far away:  ", measures.precision_recall(points, points + 100))
confident = torch.eye(10).repeat(50, 1)  # 500 samples, 50 per class, each labelled with certainty
print(f"classifier score: ten classes {measures.classifier_score(confident):.3f}, "
      f"one class {measures.classifier_score(torch.eye(10)[[3] * 500]):.3f}")

# %% [markdown]
# ## The models, from the notebooks that trained them
#
# Each model is a run of `genmodels.runs` (01: the RBM, 04: the energy-based model, 05: the two VAEs), read from the
# checkpoint its notebook (or `python -m genmodels train`) wrote in this profile, and trained here with the same
# settings when the checkpoint is absent: the README's checkpoint rule. The training loop refuses a checkpoint trained
# with other settings.

# %%
models, settings = {}, {}
for name in ("rbm", "ebm", "vae_mlp", "vae_conv"):  # the runs of notebooks 01, 04 and 05 (genmodels.runs)
    settings[name] = runs.settings(name, profile)
    print(settings[name])
    models[name], _ = runs.trained(dataset, settings[name], device, seed=seed)
rbm_model, ebm_model, mlp_vae, conv_vae = models.values()

# %% [markdown]
# ## The rows: every model's samples, and a ladder of reference sets
#
# Every row is a set of $N$ grey-level images, measured against the same reference, the first $N$ held-out test
# images; a Fréchet distance depends on $N$ (below), so rows are compared at one $N$. The models' rows: the RBM's
# $p(v|h)$ after long Gibbs chains from the base rate; the EBM's chains from uniform noise (`ebm.GENERATE`, notebook
# 04's generation sampler), and the states of its replay buffer (both mapped back from $[-1, 1]$); each VAE's decoder
# means $\sigma(g(h))$, $h \sim N(0, I)$. The reference rows bracket them: new training images (the floor: a perfect
# model's samples), the same with Gaussian noise ($\sigma$ = 0.1 and 0.3) or blurred, independent pixels with the
# data's marginals, uniform noise (the ceiling).
# The perturbed rows perturb training images, not the reference itself: a noisy copy of each reference image would
# sit next to its original and score better than new images of the same kind. One row copies the $N$ training images
# the nearest-neighbour ratio compares with: a model that memorised its data. Two more rows ask what the
# representation does: the MLP VAE's binary samples $x \sim p(x|h)$ instead of its means, and binarised training
# images.

# %% tags=["nbval-check-output"]
n = min(n, len(dataset.x_test), len(dataset.x_train) // 4, len(ebm_model.buffer))
yardstick = measures.Yardstick.build(referee, dataset, n)
print(f"N = {n:,} images per row, {len(seeds)} seeds; reference: the first {n:,} {dataset.name} test images")


# %%
def training_images(s):
    """N training images, a different block for each seed, none of them among the N the NN ratio compares with."""
    return dataset.x_train[n * (s + 1):n * (s + 2)]


def cpu_generator(s):
    return torch.Generator().manual_seed(s)


def device_generator(s):
    return torch.Generator(device).manual_seed(s)


rows = {
    "training images (floor)": training_images,
    "training images, copied": lambda s: dataset.x_train[:n],
    "train + noise 0.1": lambda s: measures.with_noise(training_images(s), 0.1, seed=s),
    "train + noise 0.3": lambda s: measures.with_noise(training_images(s), 0.3, seed=s),
    "train, blurred": lambda s: measures.blurred(training_images(s)),
    "train, binarised": lambda s: data.binarize_stochastic(training_images(s), seed=s),
    "independent pixels": lambda s: measures.independent_pixels(dataset.x_train, n, seed=s),
    "uniform noise (ceiling)": lambda s: measures.uniform_noise(n, seed=s),
    "RBM p(v|h)": lambda s: rbm_model.sample(n, steps=settings["rbm"].sample_sweeps,  # as notebook 01 draws them
                                             generator=device_generator(s)).cpu(),
    "EBM from noise": lambda s: ebm.generate(ebm_model, n, seed=s),  # ebm.GENERATE, as notebook 04 generates
    "EBM replay buffer": lambda s: ebm.to_images(ebm_model.buffer[torch.randperm(
        len(ebm_model.buffer), generator=cpu_generator(s))[:n].to(ebm_model.buffer.device)]),
    "MLP VAE means": lambda s: vae.generate(mlp_vae, n, device_generator(s)).cpu(),
    "MLP VAE binary": lambda s: rbm.bernoulli(vae.generate(mlp_vae, n, device_generator(s)),
                                              device_generator(1000 + s)).cpu(),
    "conv VAE means": lambda s: vae.generate(conv_vae, n, device_generator(s)).cpu(),
}
results, examples = measures.measure_rows(yardstick, rows, seeds)

# %% [markdown]
# ## Log-likelihood, where a model has one
#
# Nats measure something else: how probable the model finds held-out data. They exist for models with a normalised
# density of binary images: the RBM ($\log p(v) = -F(v) - \log Z$, given as notebook 01 gives it, a bracket between
# reverse annealing's pessimistic estimate and AIS's optimistic one) and the VAEs (the IWAE bound of notebook 05, a
# lower bound on $\log p(x)$). All on the same first binarised test images (`data.binarize_once`, the course's one
# binarisation). The energy-based model has none: its $Z$ is an integral over all images that nothing here estimates,
# and notebook 04's long chains showed that
# $e^{-E}$ is not a density of the data anyway.

# %%
x_nats = data.binarize_once(dataset.x_test)[:n_nats]
n_bracket = 100  # the RBM's bracket, as notebook 01 computes it: one reverse annealing run per image
bracket = rbm.log_likelihood_bracket(rbm_model, x_nats[:n_bracket], n_betas=profile.pick(quick=2000, full=14500),
                                     n_runs=profile.pick(quick=50, full=100), generator=device_generator(seed))
nats = {"RBM p(v|h)": f"{bracket.pessimistic:.1f} to {bracket.optimistic:.1f} (RAISE to AIS, {n_bracket} images)",
        "EBM from noise": "none", "EBM replay buffer": "none"}
for name, model in (("MLP VAE means", mlp_vae), ("conv VAE means", conv_vae)):
    torch.manual_seed(seed)
    nats[name] = f"{vae.iwae_log_likelihood(model, x_nats, iwae_k).mean().item():.1f} (IWAE, K = {iwae_k})"
print(f"log-likelihood per image of the first {n_nats:,} binarised {dataset.name} test images:")
for name, value in nats.items():
    print(f"  {name:18s} {value}")

# %% [markdown]
# ## The table

# %%
print(measures.format_table(results, nats))
print(f"N = {n:,} per row, mean over seeds {list(seeds)}; FD ± its sd over the seeds; reference: {dataset.name} test")
print("\nthe representation: grey-level means or binary images, against the grey-level reference")
for row, other in (("MLP VAE binary", "MLP VAE means"), ("train, binarised", "training images (floor)")):
    print(" ", measures.compare_rows(results, row, other))
print(measures.nearest_neighbour_summary(results, copied="training images, copied"))
profile.note(f"models trained for seconds, a judge trained on {len(dataset.x_train):,} images, N = {n:,}",
             "models trained for minutes: the VAEs' and the EBM's rows between the floor and the ceiling")

# %%
fig, axes = plt.subplots(len(examples), 1, figsize=(9, 0.72 * len(examples)))
for ax, (name, images) in zip(axes, examples.items(), strict=True):
    plotting.show_images(images, ncols=16, ax=ax)
    ax.set_title(name, fontsize=9, loc="left")
fig.suptitle(f"the first 16 images of each row (seed {seeds[0]}), {dataset.name}", y=1.0)
plt.tight_layout()
plt.show()

# %% [markdown]
# How to read it. The reference rows set the scale: training images are the floor (their distance is not 0, because
# two finite samples of one distribution differ), uniform noise the ceiling, and noise, blur and independent pixels
# climb between them. Precision asks whether samples look like data, recall whether the data are covered: blur keeps
# more of its precision than of its recall, and independent pixels, blobs near the data's average, keep some
# precision while covering almost none of the data. The copied row scores like the floor on every measure but one:
# its nearest-neighbour ratio is 0, far below every other row's (the last line under the table prints their range).
# FD, precision and recall cannot see copying; the ratio can.
#
# The RBM's row is what fresh Gibbs chains from the base rate give, the sampler of notebook 01's figure (where the
# judge's classes along the chains show whether they mixed). A sample measure and a likelihood answer different
# questions: the RBM's bracket in nats does not depend on these chains at all, so a model whose fresh chains all fall
# into one mode can have a likelihood close to a better one's; only the rows above would show it.
#
# The representation matters as much as the model. A VAE's decoder mean $\sigma(g(h))$ is a grey-level image, an
# average over the binary images $x \sim p(x|h)$ that the model actually defines. Which of the two the judge finds
# closer to the grey-level reference is printed under the table, beside the same contrast for real images ("train,
# binarised" against the floor: what binarising alone costs). The models here were trained on binarised data, so
# their likelihoods in nats are of binary images, while the yardstick compares grey levels: a model can be better in
# nats and worse in FD without contradiction, and the RBM's $p(v|h)$ is the same kind of average as the VAE's means.
#
# ## The Fréchet distance against $N$
#
# With $N$ samples the estimated covariance is noisy, and the noise adds to the distance: FD is biased upwards, by
# roughly $c/N$ (Chong & Forsyth 2020; TTUR's README warns below 10,000 samples). Measured at several $N$ against the
# same reference and fitted by $\mathrm{FD}(N) = \mathrm{FD}_\infty + c/N$, the intercept $\mathrm{FD}_\infty$ is
# the distance free of this bias (the reference's own $N$ still adds a bias common to every row), if the points lie
# on a line: the fit's $R^2$, printed for each curve, says whether they do. Each curve has its own panel, so that a
# row near the floor is not flattened by one near the ceiling.

# %%
spare = dataset.x_train[n:]  # training images the reference and the NN ratio do not use
sizes = [size for size in (500, 1000, 2000, 5000, 10000) if size <= len(spare)]
curves = {"training images": lambda size: spare[:size],
          "MLP VAE means": lambda size: vae.generate(mlp_vae, size, device_generator(seed)).cpu(),
          "conv VAE means": lambda size: vae.generate(conv_vae, size, device_generator(seed)).cpu()}
fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.4))
inv = [1 / size for size in sizes]
for ax, (name, draw) in zip(axes, curves.items(), strict=True):
    fds = [measures.frechet_distance_from_moments(*yardstick.reference_moments,
                                                  *measures.moments(judge.features(referee, draw(size))))
           for size in sizes]
    ax.plot(inv, fds, "o")
    if len(sizes) < 3:  # the digits fallback: two sizes always lie on a line
        fitted = "too few sizes for a 1/N fit"
    else:
        fit = measures.extrapolate_to_infinite_n(sizes, fds)
        fitted = f"R^2 of the 1/N line {fit.r_squared:.2f}; "
        if fit.r_squared >= 0.9:  # a line explaining less than 90 % of the points' spread would extrapolate noise
            ax.plot([0, *inv], [fit.fd_infinity + fit.slope * x for x in [0, *inv]], "--", color="grey")
            fitted += f"FD at N -> inf: {fit.fd_infinity:.1f}"
        else:
            fitted += "no extrapolation (R^2 < 0.9)"
    ax.set_xlabel("1 / N")
    ax.set_title(f"{name}\n{fitted}".replace("R^2", "R$^2$").replace("->", "→").replace("; ", "\n"), fontsize=8)
    print(f"{name:16s} FD at N = {sizes}: {[round(v, 1) for v in fds]}; {fitted}")
axes[0].set_ylabel("Fréchet distance")
plt.tight_layout()
fig.suptitle(f"FD against 1/N ({dataset.name}, reference N = {n:,})", y=1.12)
plt.show()

# %% [markdown]
# Where $R^2$ is high, the bias is real and can be of the size of the differences between some rows, which is why a
# table compares rows at one $N$ and why FD figures from papers with other sample sizes cannot be compared with ours.
# Where it is low, the distances change with $N$ less than they scatter: the bias is small beside the row's distance,
# and a single $N$ is as good as the extrapolation.
#
# With the scikit-learn digits fallback (297 test images) the profile cannot fill larger rows: $N$ drops to 297,
# just over twice the 128 features a covariance needs ($N > d$; `measures.moments` refuses fewer, saying how many),
# and the curve has no points above it. The distances are then dominated by their bias; compare rows, not numbers.
#
# ## What to take away
# - One judge, one feature space, one $N$: only then are numbers from different models comparable. Always print the
#   reference rows beside the models: a Fréchet distance means something only between its floor and its ceiling.
# - FD mixes quality and coverage; precision and recall separate them. The classifier score and the classes covered
#   only see what the judge can name.
# - Sample-based measures do not see copying (the nearest-neighbour ratio does) and do not measure likelihood: FD and
#   precision/recall judge samples, nats judge how probable the model finds new data. Report both where you can.
#
# ## Exercises
# 1. Measure the RBM's binary samples ($v$ instead of $p(v|h)$, `probabilities=False`) and the EBM's chains from noise
#    after 256 steps (`ebm.Sampler(n_steps=256)`) instead of `ebm.GENERATE`'s: how do their rows move?
# 2. Train the judge for one epoch only and rebuild the table: which conclusions survive a worse judge?
# 3. Repeat the FD-against-$N$ curve for the RBM and the EBM. Is $\mathrm{FD}_\infty$'s order the same as at
#    $N$ = 2,000?
# 4. Blur with $\sigma$ = 0.5, 1, 2 pixels and plot precision and recall against $\sigma$.
#
# Back to the lecture: its slide "One yardstick for the lecture's models" computes the same measures for the models
# the lecture itself trains.
