"""Facts about the code and machine that go into the reproducibility envelope."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from services.kernel.ids import sha256_file
from services.kernel.settings import REPO_ROOT
from services.trainer.domain.envelope import Hardware


def code_version(override: str = "") -> str:
    """The git commit of the checkout (with "-dirty" when tracked files changed), else the package version."""
    if override:
        return override
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        from importlib.metadata import version

        return f"tuneline-{version('tuneline')}"
    return commit + ("-dirty" if dirty else "")


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10)
    return out.stdout.strip()


def dependency_lock_digest(root: Path = REPO_ROOT) -> str:
    """sha256 of requirements.lock at the repository root ("" when there is none)."""
    lock = root / "requirements.lock"
    return sha256_file(lock) if lock.is_file() else ""


def hardware(use_gpu: bool, threads: int) -> Hardware:
    """The device, CPU model and library versions of this machine."""
    import peft
    import ray
    import torch
    import transformers

    device = f"cuda:{torch.cuda.get_device_name(0)}" if use_gpu and torch.cuda.is_available() else "cpu"
    return Hardware(device=device, cpu=_cpu_model(), threads_per_worker=threads, torch=torch.__version__,
                    ray=ray.__version__, transformers=transformers.__version__, peft=peft.__version__,
                    python=platform.python_version())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
