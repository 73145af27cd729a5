"""Tiny synthetic data and models shared by tests/test_llm2_variants.py and the stored fixture of the
default training path (tests/data/llm2_variants_default.npz, written by ``python tests/variants_tiny.py``
from the code *before* the issue-23 options existed; the test compares the options-off path with it)."""
from __future__ import annotations

import numpy as np
import pandas as pd

N_ITEMS, N_EXTRA, RAW_DIM = 40, 5, 24  # train items 100..139, catalogue-only items 140..144

TINY = {
    "GRU4Rec": dict(emb_dim=8, hidden_dim=12, batch_size=32, learning_rate=0.01),
    "SASRec": dict(emb_dim=8, num_layers=1, num_heads=2, drop_rate=0.1, batch_size=32, learning_rate=0.01),
    "BERT4Rec": dict(emb_dim=8, num_layers=1, num_heads=2, drop_rate=0.1, batch_size=64, learning_rate=0.01,
                     mask_prob=0.4, n_random_copies=2),
}
TINY.update({f"LLM2{k}": v for k, v in list(TINY.items())})


def sessions(n: int = 200, seed: int = 0, n_items: int = N_ITEMS, max_length: int = 8) -> pd.DataFrame:
    """Sessions of 3..``max_length`` items walking through items 100..100+``n_items``-1 in steps of
    1 (a learnable next-item rule)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        start, length = rng.integers(n_items), rng.integers(3, max_length + 1)
        rows += [(s, 100 + (start + t) % n_items, t) for t in range(length)]
    return pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])


def raw_embeddings(seed: int = 0, dim: int = RAW_DIM):
    """Raw text-like vectors of items 100..144: neighbours in the walk have similar vectors."""
    from rec_utils.text import ItemEmbeddings

    rng = np.random.default_rng(seed)
    ids = np.arange(100, 100 + N_ITEMS + N_EXTRA)
    angle = 2 * np.pi * (ids - 100) / N_ITEMS
    X = rng.standard_normal((len(ids), dim)) * 0.3
    X[:, 0] += 3 * np.cos(angle)
    X[:, 1] += 3 * np.sin(angle)
    return ItemEmbeddings(ids, X.astype(np.float32))


PROMPTS = [[100, 101, 102], [110, 111], [120, 121, 122, 123], [139]]


def build(name: str, **kw):
    from rec_utils.models import build_model

    kw = {**TINY[name], "epochs": 3, "seed": 0, **kw}
    if name.startswith("LLM2"):
        kw.setdefault("embeddings", raw_embeddings())
    return build_model(name, progress=False, device="cpu", num_threads=1, **kw)


def default_run(name: str) -> dict:
    """Loss history, top-10 lists and scores of a 3-epoch run of ``name`` with default options."""
    m = build(name).fit(sessions())
    recs, scores = m.predict(PROMPTS, k=10, return_scores=True)
    return {"loss": np.array([h["loss"] for h in m.history_]), "recs": recs, "scores": scores}


FIXTURE_MODELS = ("SASRec", "GRU4Rec", "BERT4Rec", "LLM2SASRec", "LLM2GRU4Rec", "LLM2BERT4Rec")

if __name__ == "__main__":
    from pathlib import Path

    import torch

    torch.set_num_threads(1)
    out = {}
    for name in FIXTURE_MODELS:
        for k, v in default_run(name).items():
            out[f"{name}/{k}"] = v
    path = Path(__file__).parent / "data" / "llm2_variants_default.npz"
    np.savez(path, **out)
    print(path, {k: v.shape for k, v in out.items()})
