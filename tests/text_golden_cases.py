"""Small LLMSeqSim / SKNNEmb cases whose predictions were recorded with the code before the
``rec_utils.text`` refactor (tests/data/text_golden.npz); tests/test_llmseqsim.py checks that
the same flat configs still give identical results."""
from __future__ import annotations

import numpy as np
import pandas as pd

from rec_utils.text import ItemEmbeddings
from rec_utils.models.llmseqsim import LLMSeqSim
from rec_utils.models.sknn_emb import SKNNEmb

LLMSEQSIM_CASES = {
    "default": {},
    "mean_harmonic_pca": {"aggregation": "mean", "decay": "harmonic", "reduction": "pca", "reduced_dim": 8},
    "mean_log_pca_whiten": {"aggregation": "mean", "decay": "log", "reduction": "pca", "reduced_dim": 8,
                            "whiten": True},
    "lda_kmeans_dot": {"reduction": "lda", "reduced_dim": 5, "lda_labels": "kmeans", "similarity": "dot"},
    "lda_class_column": {"reduction": "lda", "reduced_dim": 5, "lda_labels": "class"},
    "random_euclidean": {"reduction": "random", "reduced_dim": 6, "similarity": "euclidean"},
    "variance_mean": {"aggregation": "mean", "reduction": "variance", "reduced_dim": 6},
    "autoencoder": {"reduction": "autoencoder", "reduced_dim": 4, "aggregation": "mean"},
    "pca_raw_dot": {"reduction": "pca", "reduced_dim": 8, "normalize": False, "similarity": "dot"},
}
SKNNEMB_CASES = {
    "default": {"k": 10, "sample_size": 50},
    "pca_dot_mean": {"k": 10, "sample_size": 50, "reduction": "pca", "reduced_dim": 6, "similarity": "dot",
                     "prompt_aggregation": "mean", "training_aggregation": "mean", "decay": "harmonic"},
    "lda_kmeans_recent": {"k": 8, "sample_size": 30, "sampling": "recent", "reduction": "lda", "reduced_dim": 4,
                          "lda_labels": "kmeans"},
}


def case_data():
    rng = np.random.default_rng(7)
    n, dim = 80, 16
    V = rng.standard_normal((n, dim)).astype(np.float32)
    missing = np.zeros(n, bool)
    V[[3, 50]] = 0
    missing[[3, 50]] = True
    ids = np.arange(100, 100 + n)
    emb = ItemEmbeddings(ids, V, missing, "test", "random")
    items = pd.DataFrame({"item_id": ids, "title": "x", "class": np.arange(n) % 6})
    rows = []
    for s in range(120):
        L = rng.integers(2, 7)
        for t, it in enumerate(rng.choice(60, L, replace=False)):
            rows.append((s, 100 + int(it), s * 100 + t))
    train = pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])
    prompts = [list(100 + rng.choice(n, rng.integers(1, 6))) for _ in range(40)] + [[999], [], [101, 999]]
    return emb, items, train, prompts


def predictions() -> dict:
    """{case name: recs / scores arrays} of every case above (device cpu)."""
    emb, items, train, prompts = case_data()
    out = {}
    for name, cfg in LLMSEQSIM_CASES.items():
        m = LLMSeqSim(embeddings=emb, device="cpu", **cfg).fit(items=items)
        out[f"llmseqsim_{name}_recs"], out[f"llmseqsim_{name}_scores"] = m.predict(prompts, k=10, return_scores=True)
    for name, cfg in SKNNEMB_CASES.items():
        m = SKNNEmb(embeddings=emb, device="cpu", **cfg).fit(train, items)
        out[f"sknnemb_{name}_recs"], out[f"sknnemb_{name}_scores"] = m.predict(prompts, k=10, return_scores=True)
    return out


if __name__ == "__main__":
    import sys

    np.savez_compressed(sys.argv[1], **predictions())
