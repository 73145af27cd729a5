"""Seeding, devices, provenance and atomic file writes."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import random
import subprocess
import tempfile
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def offline_mode() -> None:
    """Never reach a model hub: set the Hugging Face offline switches (idempotent)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (when installed) for reproducible runs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch  # heavy: loaded only where tensors are used
    except ImportError:  # torch is optional for the non-neural models
        return
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def resolve_device(device: str | None = "auto") -> str:
    """``"auto"`` → ``"cuda"`` when a GPU is visible, else ``"cpu"``; other values pass through."""
    if device in (None, "auto"):
        try:
            import torch  # heavy: loaded only where tensors are used

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            return "cpu"
    return device


def device_description(device: str = "cpu") -> str:
    """A short human-readable name of the hardware a result was produced on."""
    if device.startswith("cuda"):
        try:
            import torch  # heavy: loaded only where tensors are used

            return f"cuda:{torch.cuda.get_device_name(0)}"
        except Exception:  # pragma: no cover - no torch / no GPU
            return device
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu:{cpu} x{os.cpu_count()}"


def git_commit() -> str:
    """Short commit hash of the project, with ``-dirty`` when tracked files have changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
            text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "rec_utils", "notebooks"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


#: Length (hex digits) of every short hash the project writes: run keys, setting ids, split
#: fingerprints, cache keys. 12 hex digits = 48 bits: collisions are negligible at our scale.
SHORT_HASH_LEN = 12


def short_hash(*parts) -> str:
    """The project's one short hash: SHA-256 of the parts (bytes, str, numpy arrays or JSON-able
    objects, hashed in order), cut to :data:`SHORT_HASH_LEN` hex digits."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, bytes):
            h.update(part)
        elif isinstance(part, str):
            h.update(part.encode("utf-8"))
        elif isinstance(part, np.ndarray):
            h.update(str(part.dtype).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(canonical_json(part).encode("utf-8"))
        h.update(b"\x00")  # separator: ("ab", "c") and ("a", "bc") differ
    return h.hexdigest()[:SHORT_HASH_LEN]


def canonical_json(obj) -> str:
    """JSON with sorted keys and no whitespace variation: the form every hash is taken of."""
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))


def config_id(config: dict) -> str:
    """Short stable hash of a JSON-able configuration (legacy 10-digit form, kept only to read
    files written before run keys were structured; new keys use :func:`short_hash`)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def safe_filename(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``_`` (the one
    file-name sanitiser of the project)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))


def _umask() -> int:
    """The process's umask, read without changing it (Linux: /proc; else set and restore)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file next to ``path`` then rename: readers never see half a file.
    The file gets the mode a plain ``open`` would give it (0666 less the umask), not the
    temporary file's private 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def file_lock(path: str | Path):
    """An exclusive advisory lock (``fcntl``) around read-modify-write of a shared file."""
    import fcntl  # POSIX only

    lock_path = Path(str(path) + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
