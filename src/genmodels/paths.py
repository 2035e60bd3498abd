"""Where the course keeps its files: the data cache and the build folder (checkpoints, benchmarks, HTML)."""

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "DATA_CACHE", "BUILD_DIR", "checkpoint_path"]

REPO_ROOT = Path(__file__).resolve().parents[2]
_IN_REPO = (REPO_ROOT / "pyproject.toml").exists()  # an editable install, as `make` does it
DATA_CACHE = REPO_ROOT / "data" if _IN_REPO else Path.home() / ".cache" / "genmodels" / "data"
BUILD_DIR = Path(os.environ.get("GENMODELS_BUILD", REPO_ROOT / "_build" if _IN_REPO else Path.cwd() / "_build"))


def checkpoint_path(name: str) -> Path:
    """A checkpoint file under _build/checkpoints/ (created on first write)."""
    return BUILD_DIR / "checkpoints" / name
