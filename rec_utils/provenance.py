"""Which code produced a run: a **code fingerprint** of the training path.

A run record holds ``git_commit`` (short hash, ``-dirty`` when ``rec_utils``/``notebooks`` had
uncommitted changes, ``unknown`` off a checkout). Two runs made at different commits of one
session may still come from the same training code (the commits in between changed the README,
a notebook or the report); two runs at the same ``-dirty`` commit may not. What matters for a
paired comparison is the code that trains, predicts and evaluates, so that is what is hashed::

    code_fingerprint()                 # the working tree's (recorded with every new run)
    code_fingerprint(commit="74bcc91") # the same hash for a clean commit, from git's tree
    run_code_fingerprint(record)       # a stored run's: its recorded value, else its clean commit's

The fingerprint is the short hash of the sorted (path, git blob id) pairs of the files of
:data:`TRAINING_PATH` (every ``*.py`` under them). Git's blob id of a working-tree file is
computed the way git does (SHA-1 of ``"blob <size>\\0" + content``), so the working tree of a clean
checkout at commit C and ``git ls-tree C`` give the same fingerprint: runs recorded before this
field existed get theirs from their (clean) commit. A ``-dirty`` or ``unknown`` commit without a
recorded fingerprint has **no** fingerprint (None): the code is not known, and such a run pairs
with nothing (:mod:`rec_utils.llm2_comparison`).
"""
from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

from .utils import PROJECT_ROOT, short_hash

#: The files whose content decides what a trained model recommends: models (neural code, LLM2,
#: presets), text embedding and reduction, data loading and split, metrics, the shared utilities
#: (seeding) and the run loop. Anything else (report, notebooks, README, plans) is not hashed.
TRAINING_PATH = ("rec_utils/models", "rec_utils/text", "rec_utils/data.py", "rec_utils/split.py",
                 "rec_utils/metrics.py", "rec_utils/utils.py", "rec_utils/evaluation.py")
#: The LLM code of LLMSeqPrompt (prompts, fine-tuning, decoding, output mapping): hashed apart from
#: the training path (:func:`run_llm_code_fingerprint`, from a run's clean commit) and compared only
#: when both sides of a pair are LLMSeqPrompt runs (two LLMSeqPrompt configurations); against
#: MostPopular it is one side's model. Not part of TRAINING_PATH, so adding it changed no stored
#: run's training fingerprint.
LLM_PATH = ("rec_utils/llm",)


#: What :func:`tree_fingerprint` hashes: the package, the notebooks and the plans.
TREE_PARTS = (("rec_utils", ".py"), ("notebooks", ".ipynb"), ("plans", ".yaml"))


def tree_fingerprint(root: str | Path = PROJECT_ROOT) -> str:
    """Short hash of every ``rec_utils/**/*.py``, ``notebooks/*.ipynb`` and ``plans/*.yaml`` file
    (relative path and content) under ``root``: whether a copy of the tree without ``.git`` (a GPU
    machine's) holds a given commit's code (``scripts/commit_env.py`` prints it for a clean
    checkout; ``scripts/offline_gpu/run.sh`` refuses to run on a mismatch). Shape: 12 hex digits."""
    root = Path(root)
    files = [f for part, suffix in TREE_PARTS for f in (root / part).rglob(f"*{suffix}")
             if "__pycache__" not in f.parts and ".ipynb_checkpoints" not in f.parts]
    return _hash((f.relative_to(root).as_posix(), _blob_id(f.read_bytes())) for f in files)


def _blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _hash(pairs) -> str:
    return short_hash("\n".join(f"{p} {b}" for p, b in sorted(pairs)))


def code_fingerprint(commit: str | None = None, root: str | Path = PROJECT_ROOT,
                     parts: tuple[str, ...] = TRAINING_PATH) -> str | None:
    """Fingerprint of ``parts`` (default :data:`TRAINING_PATH`) in the working tree under ``root``
    (``commit`` None) or at a git ``commit`` (None when git does not know it). Shape: 12 hex digits."""
    root = Path(root)
    if commit is None:
        files = []
        for part in parts:
            p = root / part
            files += sorted(p.rglob("*.py")) if p.is_dir() else ([p] if p.is_file() else [])
        return _hash((f.relative_to(root).as_posix(), _blob_id(f.read_bytes())) for f in files)
    return _commit_fingerprint(str(commit), str(root), tuple(parts))


def llm_code_fingerprint(commit: str | None = None, root: str | Path = PROJECT_ROOT) -> str | None:
    """:func:`code_fingerprint` of :data:`LLM_PATH`."""
    return code_fingerprint(commit, root, LLM_PATH)


@functools.lru_cache(maxsize=256)
def _commit_fingerprint(commit: str, root: str, parts: tuple[str, ...] = TRAINING_PATH) -> str | None:
    try:
        out = subprocess.run(["git", "ls-tree", "-r", commit, "--", *parts], cwd=root,
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    pairs = []
    for line in out.stdout.splitlines():  # "<mode> blob <sha>\t<path>"
        meta, path = line.split("\t", 1)
        if path.endswith(".py"):
            pairs.append((path, meta.split()[2]))
    return _hash(pairs)


def _run_fingerprint(record: dict, field: str, parts: tuple[str, ...], root) -> str | None:
    if record.get(field):
        return str(record[field])
    commit = str(record.get("git_commit") or "unknown")
    if commit == "unknown" or commit.endswith("-dirty"):
        return None
    return code_fingerprint(commit, root, parts)


def run_code_fingerprint(record: dict, root: str | Path = PROJECT_ROOT) -> str | None:
    """The code fingerprint of a stored run: the recorded ``code_fingerprint``; else that of its
    ``git_commit`` when the commit is clean and known to git; else None (code unknown)."""
    return _run_fingerprint(record, "code_fingerprint", TRAINING_PATH, root)


def run_code_fingerprints(record: dict, root: str | Path = PROJECT_ROOT) -> frozenset[str]:
    """Every training-code fingerprint a stored run is known to hold for: its own
    (:func:`run_code_fingerprint`) and those under which recomputing it gave the same lists
    (``verified_code_fingerprints``, written by ``scripts/verify_stored_runs.py``). Empty: code
    unknown."""
    own = run_code_fingerprint(record, root)
    return frozenset(({own} if own else set()) | set(record.get("verified_code_fingerprints") or ()))


def run_llm_code_fingerprint(record: dict, root: str | Path = PROJECT_ROOT) -> str | None:
    """A stored run's :func:`llm_code_fingerprint`: the recorded ``llm_code_fingerprint``; else
    that of its clean ``git_commit``; else None (recorded before the field on a dirty or unknown
    commit)."""
    return _run_fingerprint(record, "llm_code_fingerprint", LLM_PATH, root)


__all__ = ["LLM_PATH", "TRAINING_PATH", "code_fingerprint", "llm_code_fingerprint", "run_code_fingerprint",
           "run_code_fingerprints", "run_llm_code_fingerprint", "tree_fingerprint"]
