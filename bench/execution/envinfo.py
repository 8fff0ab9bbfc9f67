"""What a result was measured on: versions, hardware, thread settings, git commit."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

from bench.execution.calibration import calibration_seconds

CORE_PACKAGES = ("numpy", "scipy", "numba", "threadpoolctl")
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)
#: Variables that choose a CPU's code paths in numba, OpenBLAS, PyTorch and the JVM, e.g.
#: an AVX2 machine's paths on an AVX-512 one (docs/reproducibility.md: "Re-runs on another CPU").
CODE_PATH_ENV_VARS = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "OPENBLAS_CORETYPE",
                      "ATEN_CPU_CAPABILITY", "JAVA_TOOL_OPTIONS")


def package_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


@cache
def git_commit() -> str | None:
    repo = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip()[:12] + ("-dirty" if dirty.stdout.strip() else "")


def thread_settings() -> dict:
    """Threads actually in force: BLAS / OpenMP pools (threadpoolctl) and numba."""
    from threadpoolctl import threadpool_info

    pools = sorted({f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()})
    info: dict = {"pools": pools}
    try:
        import numba

        info["numba"] = numba.get_num_threads()
    except ImportError:
        pass
    info["env"] = {v: os.environ[v] for v in (*THREAD_ENV_VARS, *CODE_PATH_ENV_VARS)
                   if v in os.environ}
    return info


def environment(library: str | None = None) -> dict:
    versions = {p: package_version(p) for p in CORE_PACKAGES}
    if library:
        versions[library] = package_version(library)
    return {
        "recbench": package_version("recbench"),
        "python": platform.python_version(),
        "versions": versions,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "threads": thread_settings(),
        "calibration_seconds": round(calibration_seconds(), 6),
    }
