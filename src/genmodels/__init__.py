"""genmodels: the helper package of week 13, deep generative models. Notebooks explain; genmodels computes.

Every notebook starts with `profile, device = genmodels.setup(profile, device, seed)` (00_data_and_setup shows its
three steps). The map, module by module, with the names a student uses and the notebook that teaches them:

Infrastructure (taught in 00_data_and_setup)
    profiles        the quick and full profiles: get_profile, Profile.pick
    paths           where checkpoints and benchmark results go: checkpoint_path
    device          device, seeds, mixed precision: get_device, seed_everything, describe
    data            MNIST and Fashion-MNIST: load_data (returns a Data), binarize_once, binary_vectors (the RBMs'),
                    binarize_stochastic
    checks          every input check, one function per rule: check_count, check_rate, check_momentum,
                    check_binary, check_grey_levels, the samplers' and the lattices' checks
    training        the one training loop: train, History, TrainingDiverged, save_checkpoint, load_checkpoint
    basics          the small pieces the modules share: as_tensor, batches, stop (a student's message, raised
                    from one short frame)
    runs            every training run of the course, defined once (settings per profile and device, checkpoint,
                    the checkpoint rule): settings, build, train, trained; the notebooks, the lecture and cli use it
    distributed     the same loop under torchrun, on several processes (README: "Training from the command line")
    cli             python -m genmodels train vae|rbm|ebm (__main__ runs it): a notebook's training as a command
    plotting        show_images, plot_history, plot_latent_codes, latent_grid
    explorers       a sampler's knobs under the student's hand, as a static figure of a few settings and as
                    ipywidgets sliders: LangevinExplorer (03), EnergyModelExplorer (04), IsingExplorer (07), show
    keras_training  the Keras side's progress output and batched prediction (06_vae_keras)
    source          a function's code without its docstring, as the lecture's slides show it: show_source
Models
    rbm             01_rbm_pytorch: RBM, fit, log_partition_exact, log_partition_ais, log_likelihood, binary_states,
                    log_likelihood_bracket (RAISE's pessimistic end beside AIS's optimistic one)
    rbm_fast        the RBM's training step made fast on the CPU, its kernels measured once per machine
                    (rbm.fit uses it; choice says which; benchmarks/rbm.py)
    rbm_keras       02_rbm_keras: the same RBM in Keras 3, on TensorFlow, PyTorch or JAX
    keras_backends  code run under another Keras backend, in a fresh process: run_on_backend (02_rbm_keras)
    langevin        03_langevin_sampling: ula, mala, step_schedule, sgld, ula_gaussian_stationary_covariance
    _langevin_guard what the samplers say when values turn NaN or infinite (record each step, check once)
    mcmc            03_langevin_sampling, 07_ising_rbm: autocorrelation, integrated_autocorrelation_time,
                    effective_sample_size, monte_carlo_error, plot_traces
    targets         03_langevin_sampling: densities with known answers (CorrelatedGaussian, MixturePosterior, ...)
    ebm             04_energy_based_model: EnergyModel, Sampler, fit, generate, energy, ood_auc
    vae             05_vae_pytorch: VAE, mlp_vae, conv_vae, fit, elbo, iwae_log_likelihood, latent_manifold
    vae_keras       06_vae_keras: keras.io's convolutional VAE in Keras 3
    ising           07_ising_rbm: the 2-D Ising model, its samplers, exact enumeration, Onsager's results
    ising_fast      the checkerboard Metropolis sweep made fast (ising.metropolis uses it; benchmarks/ising.py)
Measuring samples (taught in 08_yardstick)
    judge           the classifier every model's samples are measured by: train_judge, features, probabilities,
                    accuracy
    measures        frechet_distance, precision_recall, classifier_score, classes_covered, nearest_neighbour_ratio,
                    Yardstick, measure_rows, the reference rows (with_noise, blurred, independent_pixels)
Exercises (the notebooks in exercises/, one per part of the week)
    exercises       one check per implementation exercise, naming the student's mistake: check_free_energy,
                    check_ula_step, check_sgld_step, check_elbo, check_iwae_bound, check_ising_energy, ...; a
                    package: grading (the machinery), then one module of specs per exercise notebook

One vocabulary in every notebook and the lecture: `dataset` is what data.load_data returns (dataset.x_train, ...);
`x_train`, `x_test` the images a model trains and is evaluated on (binary once binarised, by data.binarize_once);
`model` the model being trained, `history` what its fit returns; modules keep their own names
(`from genmodels import data, plotting, rbm`). The Keras modules are imported explicitly, so `import genmodels` never
loads Keras or TensorFlow.
"""

import importlib.util
import os
import sys

# Before anything imports TensorFlow: keep its C++ logging and oneDNN notices out of notebook outputs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# Also before TensorFlow: Triton, which PyTorch's CUDA builds bring and load at the first optimizer. Each ships its own
# LLVM, and Triton loaded after TensorFlow crashes the process (a segfault); loaded first, both work.
if "tensorflow" not in sys.modules and importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401

from .profiles import Profile, get_profile  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Profile", "get_profile", "setup", "__version__"]


def setup(profile=None, device=None, seed: int = 0):
    """A notebook's first call: resolve the profile (get_profile), choose the device (device.get_device), seed every
    random generator (device.seed_everything), and print in one line where the notebook runs. The quick profile
    trains RBMs with the fast kernels unless GENMODELS_RBM_KERNELS says otherwise (rbm_fast.choice), so that its
    outputs are the committed ones on every machine; the full profile measures which kernels are fastest here.
    Returns (profile, device).  Taught in 00_data_and_setup."""
    from dataclasses import replace

    from . import rbm_fast
    from .device import describe, get_device, seed_everything
    from .distributed import from_environment

    profile = get_profile(profile)
    device = get_device(device, profile)
    profile = replace(profile, device_type=device.type)  # profile.pick(..., gpu=...) reads it
    rbm_fast.unpinned = "fast" if profile.quick else "measure"
    seed_everything(seed)
    world = from_environment()  # under torchrun: rank 0 speaks for all
    if world.leader:
        processes = f", {world.size} processes (torchrun)" if world.active else ""
        print(f"{profile.name} profile{profile.lengths}, {describe(device)}{processes}, seed {seed}")
    return profile, device
