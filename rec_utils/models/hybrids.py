"""The extended paper's hybrids (spec §6.6, reference ``main/hybrids/*.py``): they combine the
**stored top-k lists** of component models instead of retraining them.

* **EmbeddingEnsemble** (two LLMSeqSim variants): *rank* — the first ``r`` items of model 1,
  then model 2's list; *confidence* — model 1's items from the top while their similarity is
  ≥ ``c`` (stopping at the first lower one), then model 2's list.
* **LLMSeqSim&Sequential**: item popularity = the share of sessions that contain the item;
  threshold = its ``q``-quantile over the items; a prompt whose **last** item has popularity
  ≥ threshold gets the sequential model's list, any other prompt LLMSeqSim's list.
* **LLMSeqSim&Popularity** on LLMSeqSim's top-100 (5 × 20): ``popularity`` — walk the list and
  delete items with popularity below the ``q``-quantile while more than 20 remain;
  ``diversity`` — greedy: the first item is kept, a later one only if its cosine similarity (raw
  embeddings) to every kept item is below the ``q``-quantile of the item-pair similarities;
  ``popularity+diversity`` — the popularity filter, then the diversity re-ranker.

Every result is de-duplicated (first occurrence kept) and cut to ``k`` = 20, as the reference's
``remove_duplicates`` / ``truncate_to_top_k``. The combination functions are pure and
vectorised over sessions ((n, L) item-id arrays, −1 padding). Each hybrid is a :class:`Hybrid`
subclass with its own config, methods, grid and components, a
:class:`~rec_utils.models.base.Recommender` over :class:`ComponentLists` (the component
predictions, looked up by session id), so the normal runner (``run_seeds``, the validation grid)
evaluates and stores hybrid runs like any other model.

Deviations (sound defaults; the faithful variant is an option):

* ``popularity_source="train"`` (default): popularity from the sessions of the split's **train**
  part (a fold's train on a fold). The reference counts **all sessions of the dataset**, test
  sessions included, so the test targets raise their own items' popularity (a leak):
  ``popularity_source="dataset"`` with ``dataset_interactions`` is that faithful variant.
* The diversity threshold is the quantile over a seeded sample of ``similarity_pairs`` distinct
  item pairs (default 2,000,000) instead of all n(n−1) off-diagonal entries of the catalogue's
  similarity matrix (146 M for Beauty); with fewer pairs than that in the catalogue all are used.
* Popularity quantiles use pandas' default (linear interpolation) over the items that occur in
  the counted sessions, as the reference.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .. import metrics
from ..utils import short_hash
from .base import Recommender, as_prompts

# ---------------------------------------------------------------------------- list operations

def dedup_truncate(recs: np.ndarray, k: int = 20) -> np.ndarray:
    """Each row with repeated items and −1 padding removed (first occurrence kept, order kept),
    cut to ``k`` and padded with −1: (n, L) int ids → (n, k) int64."""
    recs = np.asarray(recs, dtype=np.int64)
    if recs.ndim != 2:
        raise ValueError(f"recs must be a 2-d (sessions x positions) array, got shape {recs.shape}")
    recs, keep, _ = metrics.dedup_truncate(recs, recs.shape[1])  # the metrics' own rule of what counts
    return _compact(recs, keep, k)


def _compact(recs: np.ndarray, keep: np.ndarray, k: int) -> np.ndarray:
    """The kept entries of each row moved to the front in order, cut/padded to ``k``."""
    n, L = recs.shape
    order = np.argsort(~keep, axis=1, kind="stable")
    out = np.where(np.take_along_axis(keep, order, axis=1), np.take_along_axis(recs, order, axis=1), -1)
    if L >= k:
        return out[:, :k]
    return np.pad(out, ((0, 0), (0, k - L)), constant_values=-1)


def rank_ensemble(recs_1: np.ndarray, recs_2: np.ndarray, rank: int, k: int = 20) -> np.ndarray:
    """EmbeddingEnsemble by rank (§6.6): the first ``rank`` items of model 1, then model 2's
    list, de-duplicated and cut to ``k``. (n, L1), (n, L2) → (n, k); ``rank`` ≥ 0."""
    if int(rank) < 0:
        raise ValueError(f"rank must be >= 0, got {rank}")
    recs_1, recs_2 = _pair(recs_1, recs_2)
    return dedup_truncate(np.concatenate([recs_1[:, :int(rank)], recs_2], axis=1), k)


def confidence_ensemble(recs_1: np.ndarray, scores_1: np.ndarray, recs_2: np.ndarray, confidence: float,
                        k: int = 20) -> np.ndarray:
    """EmbeddingEnsemble by confidence (§6.6): model 1's items from the top while their score is
    ≥ ``confidence`` (the first lower score, or padding, ends the prefix), then model 2's list;
    de-duplicated and cut to ``k``. ``scores_1`` (n, L1) are model 1's similarities."""
    recs_1, recs_2 = _pair(recs_1, recs_2)
    scores_1 = np.asarray(scores_1, dtype=np.float64)
    if scores_1.shape != recs_1.shape:
        raise ValueError(f"scores_1 has shape {scores_1.shape}, recs_1 {recs_1.shape}: they must match")
    ok = np.nan_to_num(scores_1, nan=-np.inf) >= float(confidence)
    prefix = np.cumprod(ok, axis=1).astype(bool)  # True up to the first score below c
    head = np.where(prefix, recs_1, -1)
    return dedup_truncate(np.concatenate([head, recs_2], axis=1), k)


def _pair(a, b):
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b):
        raise ValueError(f"two (n, L) lists of the same sessions needed, got shapes {a.shape} and {b.shape}")
    return a, b


def session_popularity(interactions: pd.DataFrame) -> pd.Series:
    """Item popularity of §6.6: the share of sessions containing the item (item id → value in
    (0, 1]); ``interactions`` needs ``session_id`` and ``item_id``."""
    missing = {"session_id", "item_id"} - set(interactions.columns)
    if missing:
        raise ValueError(f"interactions lack column(s) {sorted(missing)}")
    pairs = interactions[["session_id", "item_id"]].drop_duplicates()
    n = interactions["session_id"].nunique()
    if n == 0:
        raise ValueError("no sessions to count item popularity on")
    return (pairs["item_id"].value_counts() / n).sort_index().rename("popularity")


def popularity_threshold(popularity: pd.Series, quantile: float) -> float:
    """The ``quantile`` (0..1) of the item popularities (pandas' linear interpolation, as the reference)."""
    if not 0.0 <= float(quantile) <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    return float(popularity.quantile(float(quantile)))


def popularity_of(popularity: pd.Series, items: np.ndarray) -> np.ndarray:
    """Popularity of item ids, any shape (0 for items not counted, NaN for −1 padding)."""
    items = np.asarray(items, dtype=np.int64)
    ids = popularity.index.to_numpy(dtype=np.int64)
    vals = popularity.to_numpy(dtype=np.float64)
    order = np.argsort(ids)
    ids, vals = ids[order], vals[order]
    pos = np.clip(np.searchsorted(ids, items), 0, max(len(ids) - 1, 0))
    found = (len(ids) > 0) & (ids[pos] == items) if len(ids) else np.zeros(items.shape, bool)
    out = np.where(found, vals[pos] if len(ids) else 0.0, 0.0)
    return np.where(items < 0, np.nan, out)


def popularity_switch(recs_llm: np.ndarray, recs_seq: np.ndarray, last_items: np.ndarray,
                      popularity: pd.Series, quantile: float, k: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """LLMSeqSim&Sequential (§6.6): the sequential list where the prompt's last item has
    popularity ≥ the ``quantile`` threshold, else the LLMSeqSim list; de-duplicated, cut to ``k``.

    Returns ``(recs (n, k), use_seq (n,) bool)``.
    """
    recs_llm, recs_seq = _pair(recs_llm, recs_seq)
    last_items = np.asarray(last_items, dtype=np.int64)
    if last_items.shape != (len(recs_llm),):
        raise ValueError(f"last_items must have shape ({len(recs_llm)},), got {last_items.shape}")
    use_seq = np.nan_to_num(popularity_of(popularity, last_items), nan=0.0) >= popularity_threshold(popularity, quantile)
    width = max(recs_llm.shape[1], recs_seq.shape[1])
    a = np.pad(recs_llm, ((0, 0), (0, width - recs_llm.shape[1])), constant_values=-1)
    b = np.pad(recs_seq, ((0, 0), (0, width - recs_seq.shape[1])), constant_values=-1)
    return dedup_truncate(np.where(use_seq[:, None], b, a), k), use_seq


def popularity_filter(recs: np.ndarray, popularity: pd.Series, quantile: float, k: int = 20) -> np.ndarray:
    """The popularity property (§6.6): walking each de-duplicated list in order, items with
    popularity below the ``quantile`` threshold are deleted as long as more than ``k`` remain;
    then cut to ``k``. Equivalent to the reference's loop: the first ``len − k`` unpopular items go.
    (n, L) → (n, k)."""
    return dedup_truncate(popularity_filter_keep(recs, popularity, quantile, k), k)


def popularity_filter_keep(recs: np.ndarray, popularity: pd.Series, quantile: float, k: int = 20) -> np.ndarray:
    """:func:`popularity_filter` without the final cut: the whole de-duplicated list minus the
    deleted unpopular items (the reference re-ranks these survivors for diversity); (n, L) → (n, L)."""
    recs = dedup_truncate(recs, np.asarray(recs).shape[1])
    low = np.nan_to_num(popularity_of(popularity, recs), nan=np.inf) < popularity_threshold(popularity, quantile)
    low &= recs >= 0
    allowed = np.maximum((recs >= 0).sum(axis=1) - k, 0)
    drop = low & (np.cumsum(low, axis=1) <= allowed[:, None])
    return _compact(recs, ~drop & (recs >= 0), recs.shape[1])


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero, so their cosine is 0, as sklearn's)."""
    v = np.asarray(vectors, dtype=np.float32)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return np.where(norm > 0, v / np.maximum(norm, 1e-12), 0.0).astype(np.float32)


def similarity_threshold(vectors: np.ndarray, quantile: float, pairs: int = 2_000_000, seed: int = 0) -> float:
    """The ``quantile`` of the cosine similarities between distinct items (raw vectors, (m, d)):
    exact over all pairs when there are at most ``pairs`` of them, else over a seeded sample of
    ``pairs`` random pairs (i ≠ j)."""
    if not 0.0 <= float(quantile) <= 1.0:
        raise ValueError(f"diversity quantile must be in [0, 1], got {quantile}")
    u = unit_rows(vectors)
    m = len(u)
    if m < 2:
        raise ValueError(f"a similarity quantile needs at least 2 items, got {m}")
    if m * (m - 1) <= pairs:
        s = u @ u.T
        vals = s[~np.eye(m, dtype=bool)]
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, m, size=pairs)
        j = (i + rng.integers(1, m, size=pairs)) % m  # never i
        vals = np.concatenate([np.einsum("nd,nd->n", u[i[a:a + 100_000]], u[j[a:a + 100_000]])
                               for a in range(0, pairs, 100_000)])  # blocks: bounded memory
    return float(np.quantile(vals, float(quantile)))


def diversity_rerank(recs: np.ndarray, item_ids: np.ndarray, vectors: np.ndarray, threshold: float,
                     k: int = 20) -> np.ndarray:
    """The diversity re-ranker (§6.6, reference ``PairwiseSimilarityFilterReranker``): per list,
    the first item is kept; each later item is kept only if its cosine similarity to every kept
    item is below ``threshold``, until ``k`` are kept. No back-fill (as the reference): a list
    may end shorter than ``k``. Items without a vector have similarity 0 to every item.

    Args:
        recs: (n, L) item ids (−1 padding), de-duplicated here first.
        item_ids, vectors: (m,) ids and (m, d) raw vectors of the catalogue.
    Returns:
        (n, k) int64 ids, −1 padded.
    """
    recs = dedup_truncate(recs, np.asarray(recs).shape[1])
    n, L = recs.shape
    ids = np.asarray(item_ids, dtype=np.int64)
    order = np.argsort(ids)
    ids = ids[order]
    u = unit_rows(np.asarray(vectors)[order])
    pos = np.clip(np.searchsorted(ids, recs), 0, len(ids) - 1)
    known = (recs >= 0) & (ids[pos] == recs)
    u = np.vstack([u, np.zeros((1, u.shape[1]), np.float32)])  # row m: no vector (similarity 0)
    pos = np.where(known, pos, len(ids))
    kept_v = np.zeros((n, k, u.shape[1]), np.float32)
    out = np.full((n, k), -1, np.int64)
    count = np.zeros(n, np.int64)
    rows = np.arange(n)
    for j in range(L):
        valid = (recs[:, j] >= 0) & (count < k)
        if not valid.any():
            continue
        v = u[pos[:, j]]  # (n, d): one column at a time, never the (n, L, d) block
        sims = np.einsum("nkd,nd->nk", kept_v, v)
        sims = np.where(np.arange(k)[None, :] < count[:, None], sims, -np.inf)
        take = valid & ((count == 0) | (sims.max(axis=1) < threshold))
        r = rows[take]
        out[r, count[r]] = recs[r, j]
        kept_v[r, count[r]] = v[r]
        count[take] += 1
    return out


# ---------------------------------------------------------------------------- components

@dataclass
class ComponentLists:
    """A component's stored predictions on one set of evaluation cases: ``session_ids`` (n,),
    ``recs`` (n, L) item ids (−1 padding) and optionally ``scores`` (n, L); ``source`` names
    where they came from (run files), ``fingerprint`` is the hash of their content."""

    session_ids: np.ndarray
    recs: np.ndarray
    scores: np.ndarray | None = None
    source: str = ""
    fingerprint: str = field(default="", init=False)

    def __post_init__(self):
        self.session_ids = np.asarray(self.session_ids, dtype=np.int64)
        self.recs = np.asarray(self.recs, dtype=np.int64)
        if self.recs.ndim != 2 or len(self.recs) != len(self.session_ids):
            raise ValueError(f"{self.source or 'component'}: recs of shape {self.recs.shape} do not match "
                             f"{len(self.session_ids)} session ids")
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float32)
            if self.scores.shape != self.recs.shape:
                raise ValueError(f"{self.source or 'component'}: scores {self.scores.shape} vs recs {self.recs.shape}")
        if len(np.unique(self.session_ids)) != len(self.session_ids):
            raise ValueError(f"{self.source or 'component'}: repeated session ids")
        self.fingerprint = short_hash(self.session_ids.tobytes(), self.recs.tobytes(),
                                      b"" if self.scores is None else self.scores.tobytes())

    def rows(self, session_ids: np.ndarray, name: str = "") -> np.ndarray:
        """Row positions of ``session_ids``; KeyError naming the first missing session."""
        session_ids = np.asarray(session_ids, dtype=np.int64)
        order = np.argsort(self.session_ids)
        pos = np.clip(np.searchsorted(self.session_ids[order], session_ids), 0, len(order) - 1)
        found = self.session_ids[order][pos] == session_ids if len(order) else np.zeros(len(session_ids), bool)
        if not found.all():
            raise KeyError(f"component {name or self.source!r} has no list for session "
                           f"{int(session_ids[~found][0])} ({int((~found).sum())} missing)")
        return order[pos]

    @classmethod
    def concat(cls, parts: list["ComponentLists"], source: str = "") -> "ComponentLists":
        """One store over several disjoint sets of cases (e.g. the 3 validation folds)."""
        width = max(p.recs.shape[1] for p in parts)
        pad = lambda a, v: np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=v)
        scores = None
        if all(p.scores is not None for p in parts):
            scores = np.concatenate([pad(p.scores, np.nan) for p in parts])
        return cls(np.concatenate([p.session_ids for p in parts]), np.concatenate([pad(p.recs, -1) for p in parts]),
                   scores, source=source or "+".join(p.source for p in parts))


# ---------------------------------------------------------------------------- the recommenders

@dataclass
class HybridConfig:
    """What every hybrid run is: its method, its first component and the settings of all its
    components (``components``: name → the component's model and config hash, so a changed
    component makes another setting). Each hybrid adds its own fields in a subclass."""

    method: str = ""  # "" = the hybrid's first method (its METHODS)
    model_1: str = ""  # EmbeddingEnsemble: model 1; &Sequential / &Popularity: the LLMSeqSim component
    model_2: str = ""  # EmbeddingEnsemble: model 2; &Sequential: the sequential component; "" = none
    components: dict = field(default_factory=dict)  # name -> {"model": ..., "config_id": ...}
    seed: int = 0  # the pair sample's seed (&Popularity's diversity threshold)


_THRESHOLDS: dict = {}  # (vectors' fingerprint, q, pairs, seed) -> similarity threshold


class Hybrid(Recommender):
    """A hybrid of §6.6 over stored component predictions (see the module docstring). A hybrid
    is a subclass with its ``name``, ``config_class`` (a :class:`HybridConfig` with its own
    fields), ``METHODS`` (method → the config fields it needs), ``GRID`` (method → the paper's
    search space, field → values), :meth:`component_pairs` (which components it combines) and
    :meth:`combine` (the lists); it is registered in ``rec_utils.models.REGISTRY`` (family
    ``"hybrid"``), from where notebook 07 (:mod:`rec_utils.hybrid_runs`) searches and runs it.

    Args:
        lists: component name → :class:`ComponentLists` of the cases to predict (the names of
            ``config.model_1`` / ``model_2``); runtime input, not config (its content enters
            :meth:`input_fingerprint`).
        dataset_interactions: all interactions, for ``popularity_source="dataset"``.
        item_vectors: the raw item vectors (:class:`rec_utils.text.ItemEmbeddings`) for the
            diversity re-ranker.
        **config: fields of ``config_class`` (``seed`` as every model takes it).

    ``predict`` returns scores 1/rank (a hybrid has no common score scale).
    """

    name = "Hybrid"
    config_class = HybridConfig
    METHODS: dict[str, tuple[str, ...]] = {}
    GRID: dict[str, dict[str, list]] = {}

    def __init__(self, lists: dict[str, ComponentLists] | None = None, *, dataset_interactions=None,
                 item_vectors=None, **config):
        unknown = set(config) - set(self.config_class.__dataclass_fields__)
        if unknown:
            raise TypeError(f"{self.name}: unknown config field(s) {sorted(unknown)}; "
                            f"known: {sorted(self.config_class.__dataclass_fields__)}")
        self.config = self.config_class(**config)
        c = self.config
        c.method = c.method or next(iter(self.METHODS))
        if c.method not in self.METHODS:
            raise ValueError(f"{self.name}: method must be one of {tuple(self.METHODS)}, got {c.method!r}")
        if getattr(c, "popularity_source", "train") not in ("train", "dataset"):
            raise ValueError(f"popularity_source must be 'train' or 'dataset', got {c.popularity_source!r}")
        self.lists = lists or {}
        self.dataset_interactions = dataset_interactions
        self.item_vectors = item_vectors

    @classmethod
    def component_pairs(cls, llmseqsim: Sequence[str], sequential: Sequence[str] = ()) -> list[tuple[str, str]]:
        """The ``(model_1, model_2)`` choices the grid searches ("" where there is no model 2)."""
        return [(m, "") for m in llmseqsim]

    def _names(self):
        return [n for n in (self.config.model_1, self.config.model_2) if n]

    def input_fingerprint(self, items=None) -> dict:
        return {f"lists:{n}": self.lists[n].fingerprint for n in self._names() if n in self.lists}

    def fit(self, train: pd.DataFrame, items=None) -> "Hybrid":
        c = self.config
        missing = [f for f in self.METHODS[c.method] if getattr(c, f) is None]
        if missing:
            raise ValueError(f"{self.name} method {c.method!r} needs {missing}")
        for n in self._names():
            if n not in self.lists:
                raise KeyError(f"{self.name}: no stored lists for component {n!r}; have {sorted(self.lists)}")
        return self

    def _popularity(self, train: pd.DataFrame) -> pd.Series:
        """Item popularity (§6.6) from ``train``, or from all sessions with ``popularity_source="dataset"``."""
        if self.config.popularity_source == "dataset":
            if self.dataset_interactions is None:
                raise ValueError("popularity_source='dataset' needs dataset_interactions")
            return session_popularity(self.dataset_interactions)
        return session_popularity(train)

    def _gather(self, name, session_ids):
        store = self.lists[name]
        rows = store.rows(session_ids, name)
        return store.recs[rows], (None if store.scores is None else store.scores[rows])

    def combine(self, prompts, k: int = 20) -> np.ndarray:
        """The hybrid's (n, k) lists for ``prompts`` (ids of the component lists' cases)."""
        raise NotImplementedError

    def predict(self, prompts, k: int = 20, return_scores: bool = False):
        recs = self.combine(as_prompts(prompts), k)
        if not return_scores:
            return recs
        ranks = np.arange(1, recs.shape[1] + 1, dtype=np.float32)
        return recs, np.where(recs >= 0, 1.0 / ranks[None, :], np.nan).astype(np.float32)

    def get_config(self) -> dict:
        return asdict(self.config)


@dataclass
class EmbeddingEnsembleConfig(HybridConfig):
    """EmbeddingEnsemble: two LLMSeqSim components (``model_1``, ``model_2``), by rank ``r`` or
    confidence ``c``."""

    rank: int | None = None  # r of the rank ensemble
    confidence: float | None = None  # c of the confidence ensemble


class EmbeddingEnsemble(Hybrid):
    """EmbeddingEnsemble (§6.6): two LLMSeqSim variants by rank or confidence."""

    name = "EmbeddingEnsemble"
    config_class = EmbeddingEnsembleConfig
    METHODS = {"rank": ("rank",), "confidence": ("confidence",)}
    GRID = {"rank": {"rank": [0, 1, 2, 3, 4, 5, 10, 20]},
            "confidence": {"confidence": [round(float(c), 6) for c in np.linspace(0.8, 0.99, 10)]}}

    @classmethod
    def component_pairs(cls, llmseqsim, sequential=()):
        return list(itertools.permutations(llmseqsim, 2))  # every ordered pair of distinct variants

    def combine(self, prompts, k: int = 20) -> np.ndarray:
        c = self.config
        r1, s1 = self._gather(c.model_1, prompts.session_ids)
        r2, _ = self._gather(c.model_2, prompts.session_ids)
        if c.method == "rank":
            return rank_ensemble(r1, r2, c.rank, k)
        if s1 is None:
            raise ValueError(f"component {c.model_1!r} has no stored scores: the confidence ensemble needs them")
        return confidence_ensemble(r1, s1, r2, c.confidence, k)


@dataclass
class LLMSeqSimSequentialConfig(HybridConfig):
    """LLMSeqSim&Sequential: LLMSeqSim (``model_1``) or a sequential model (``model_2``) by the
    popularity of the prompt's last item."""

    quantile: float | None = None  # popularity quantile q of the switch
    popularity_source: str = "train"  # "train" (sound default) or "dataset" (reference: all sessions, test included)


class LLMSeqSimSequential(Hybrid):
    """LLMSeqSim&Sequential (§6.6): switch on the popularity of the prompt's last item."""

    name = "LLMSeqSim&Sequential"
    config_class = LLMSeqSimSequentialConfig
    METHODS = {"popularity": ("quantile",)}
    GRID = {"popularity": {"quantile": [0.25, 0.5, 0.75]}}

    @classmethod
    def component_pairs(cls, llmseqsim, sequential=()):
        if not sequential:
            raise ValueError("LLMSeqSim&Sequential needs at least one sequential component")
        return list(itertools.product(llmseqsim, sequential))

    def fit(self, train: pd.DataFrame, items=None) -> "LLMSeqSimSequential":
        super().fit(train, items)
        self.popularity_ = self._popularity(train)
        return self

    def combine(self, prompts, k: int = 20) -> np.ndarray:
        c, p = self.config, prompts
        r1, _ = self._gather(c.model_1, p.session_ids)
        r2, _ = self._gather(c.model_2, p.session_ids)
        last = p.items[p.indptr[1:] - 1] if len(p) else np.zeros(0, np.int64)
        recs, self.use_seq_ = popularity_switch(r1, r2, last, self.popularity_, c.quantile, k)
        return recs


@dataclass
class LLMSeqSimPopularityConfig(HybridConfig):
    """LLMSeqSim&Popularity: a popularity filter and / or a diversity re-ranker on one LLMSeqSim
    component's top-100."""

    quantile: float | None = None  # popularity quantile q of the filter
    diversity_quantile: float | None = None  # q of the pairwise-similarity threshold
    popularity_source: str = "train"  # "train" (sound default) or "dataset" (reference: all sessions, test included)
    similarity_pairs: int = 2_000_000  # item pairs sampled for the similarity quantile


class LLMSeqSimPopularity(Hybrid):
    """LLMSeqSim&Popularity (§6.6): popularity filter / diversity re-ranker on LLMSeqSim's top-100."""

    name = "LLMSeqSim&Popularity"
    config_class = LLMSeqSimPopularityConfig
    METHODS = {"popularity": ("quantile",), "diversity": ("diversity_quantile",),
               "popularity+diversity": ("quantile", "diversity_quantile")}
    GRID = {"popularity": {"quantile": [0.25, 0.5, 0.75]},
            "diversity": {"diversity_quantile": [0.25, 0.5, 0.75]},
            "popularity+diversity": {"quantile": [0.25, 0.5, 0.75], "diversity_quantile": [0.25, 0.5, 0.75]}}

    def fit(self, train: pd.DataFrame, items=None) -> "LLMSeqSimPopularity":
        super().fit(train, items)
        c = self.config
        if "quantile" in self.METHODS[c.method]:
            self.popularity_ = self._popularity(train)
        if "diversity_quantile" in self.METHODS[c.method]:
            if self.item_vectors is None:
                raise ValueError(f"{self.name} method {c.method!r} needs item_vectors (raw item embeddings)")
            key = (getattr(self.item_vectors, "fingerprint", None) or short_hash(self.item_vectors.vectors.tobytes()),
                   c.diversity_quantile, c.similarity_pairs, c.seed)
            if key not in _THRESHOLDS:  # a grid fits many cells on the same vectors
                _THRESHOLDS[key] = similarity_threshold(self.item_vectors.vectors, c.diversity_quantile,
                                                        c.similarity_pairs, c.seed)
            self.similarity_threshold_ = _THRESHOLDS[key]
        return self

    def combine(self, prompts, k: int = 20) -> np.ndarray:
        c = self.config
        recs, _ = self._gather(c.model_1, prompts.session_ids)
        if "quantile" in self.METHODS[c.method]:
            # the survivors of the filter, uncut: the reference re-ranks all of them for diversity
            recs = popularity_filter_keep(recs, self.popularity_, c.quantile, k)
        if "diversity_quantile" in self.METHODS[c.method]:
            recs = diversity_rerank(recs, self.item_vectors.item_ids, self.item_vectors.vectors,
                                    self.similarity_threshold_, k)
        return dedup_truncate(recs, k)


# registered in rec_utils.models.REGISTRY (family "hybrid"), which builds rec_utils.models.HYBRIDS
__all__ = ["ComponentLists", "EmbeddingEnsemble", "EmbeddingEnsembleConfig", "Hybrid", "HybridConfig",
           "LLMSeqSimPopularity", "LLMSeqSimPopularityConfig", "LLMSeqSimSequential", "LLMSeqSimSequentialConfig",
           "confidence_ensemble", "dedup_truncate", "diversity_rerank", "popularity_filter", "popularity_filter_keep",
           "popularity_of", "popularity_switch", "popularity_threshold", "rank_ensemble", "session_popularity",
           "similarity_threshold", "unit_rows"]
