"""python -m genmodels as a user runs it: errors in one short message naming flags, distinct exit statuses, a complete
--help. Each test runs the command as a subprocess (about 3 s each: torch's import and the quick data)."""

import os
import subprocess
import sys

from conftest import REPO, mnist_test_dir

from genmodels.cli import EXIT_CODES


def genmodels_command(*arguments, tmp_path):
    env = {**os.environ, "GENMODELS_DATA": str(mnist_test_dir().parent), "GENMODELS_BUILD": str(tmp_path),
           "GENMODELS_PROFILE": "quick", "GENMODELS_PROGRESS": "plain"}
    return subprocess.run([sys.executable, "-m", "genmodels", *arguments], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def assert_short_message_in_flags(done, kind):
    err = done.stderr.strip()
    assert err.startswith(f"python -m genmodels: {kind}: ") and "Traceback" not in err, err
    assert len(err.splitlines()) <= 5, err
    for python_word in ("resume=", "device=None", "the same call", "weights_only", "lower it"):
        assert python_word not in err, err


def test_bad_usage_exits_2_naming_the_flag(tmp_path):
    done = genmodels_command("train", "rbm", "--epochs", "-1", tmp_path=tmp_path)
    assert done.returncode == EXIT_CODES["usage"] == 2
    assert "--epochs must be 0 or more" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("usage: python -m genmodels train {vae,rbm,ebm}"), done.stderr  # train's usage
    assert len(done.stderr.strip().splitlines()) <= 5, done.stderr


def test_a_damaged_checkpoint_exits_3_with_one_message_advising_no_resume(tmp_path):
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"\x80\x02}q\x00(X" + bytes(range(256)) * 4)  # a pickle header, then garbage: fixed bytes
    done = genmodels_command("train", "rbm", "--checkpoint", str(damaged), "--epochs", "1", tmp_path=tmp_path)
    assert done.returncode == EXIT_CODES["checkpoint refused"] == 3, done.stderr
    assert_short_message_in_flags(done, "checkpoint refused")
    assert "--no-resume" in done.stderr and str(damaged) in done.stderr.replace("\n  ", "")


def test_a_divergence_exits_4_advising_a_lower_lr_that_then_trains(tmp_path):
    done = genmodels_command("train", "vae", "--epochs", "1", "--lr", "1e5", "--device", "cpu", tmp_path=tmp_path)
    assert done.returncode == EXIT_CODES["diverged"] == 4, done.stderr
    assert_short_message_in_flags(done, "diverged")
    assert "pass a lower --lr" in done.stderr
    again = genmodels_command("train", "vae", "--epochs", "1", "--lr", "1e-3", "--device", "cpu", tmp_path=tmp_path)
    assert again.returncode == 0 and "vae: 1 epoch; last:" in again.stdout, again.stderr


def test_traceback_shows_pythons_traceback(tmp_path):
    done = genmodels_command("train", "rbm", "--device", "abacus", "--traceback", tmp_path=tmp_path)
    assert done.returncode == 1 and "Traceback" in done.stderr and "abacus" in done.stderr


def test_help_is_complete(tmp_path):
    done = genmodels_command("train", "--help", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    for flag in ("--epochs", "--profile", "--device", "--lr", "--seed", "--checkpoint", "--no-resume", "--traceback"):
        assert flag in text
    assert text.endswith("130 interrupted.") and "(see genmodels.distributed):" not in text
    assert "--seed SEED the seed" in text
