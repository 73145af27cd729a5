"""``EmbeddingSpec``: the one description of how a text-based model gets its item vectors.

LLMSeqSim (§6.1), SKNNEmb (§6.5) and the coming LLM2Sequential all need the same
steps — embed the catalogue's texts (§5.1), optionally reduce the vectors (§5.2, fitted on some
items), L2-normalise — so their configs hold one ``embedding: EmbeddingSpec`` field instead of
repeating its fields, and call one method::

    spec = EmbeddingSpec(reduction="pca", reduced_dim=128)
    vecs = spec.item_vectors(dataset.items)                          # LLMSeqSim: fit on the catalogue
    vecs = spec.item_vectors(dataset.items, fit_on=train_item_ids)   # SKNNEmb: fit on the train items
    vecs = spec.item_vectors(embeddings=emb, fit_on=ids, seed=3)     # vectors given: no embedding call

Stored runs and notebooks pass the fields *flat* (``provider``, ``embedding_model``,
``embedding_path``, ``text_clean``, ``reduction``, ``reduced_dim``, ``whiten``, ``normalize``,
``lda_labels``); :func:`fold_flat_keys` maps them into the spec (:data:`FLAT_KEYS`), so old
configs keep working and give the same results.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd

from ..data import TEXT_CLEANING, Dataset, item_texts
from .embed import PROVIDERS, embed_items
from .reduction import Reducer, reduce_embeddings
from .vectors import ItemEmbeddings

#: Flat config key (as stored in runs and used by notebooks / presets) → EmbeddingSpec field.
FLAT_KEYS = {
    "provider": "provider",
    "embedding_model": "model",
    "embedding_path": "path",
    "text_clean": "text_clean",
    "reduction": "reduction",
    "reduced_dim": "reduced_dim",
    "whiten": "whiten",
    "normalize": "normalize",
    "lda_labels": "lda_labels",
}


#: What an EmbeddingSpec field left at None means for a model that has no default of its own
#: (LLMSeqSim, SKNNEmb, LLMSeqPrompt); LLM2 sets ``reduction="pca"`` (to emb_dim) and
#: ``normalize=False`` instead (:func:`rec_utils.models.llm2.llm2_embedding`).
#: ``reduced_dim`` is filled only when the resolved spec reduces and gives no size.
MODEL_DEFAULTS = {"reduction": None, "normalize": True, "reduced_dim": None}


@dataclass
class EmbeddingSpec:
    """How item vectors are made from item text (paper §5.1 embeddings, §5.2 reduction).

    Deviations: the default model is the local all-MiniLM-L6-v2 (384-d) instead of OpenAI
    ada-002 (1,536-d), which is not reachable offline; ``whiten`` and ``lda_labels="kmeans"``
    go beyond the paper (see :mod:`rec_utils.text.reduction`).
    """

    # where vectors come from: "sentence-transformers" (local, offline), "openai" (the paper's
    # ada-002 family, needs a key) or "file" (precomputed, e.g. the authors' vectors)
    provider: str = "sentence-transformers"
    # the provider's model (or a local folder): part of what the embedding cache is keyed by
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    # the vector file of provider "file" (authors' product_embeddings_*.csv.gz, or an .npz)
    path: str | None = None
    # title cleaning before embedding (data.clean_title): "reference" (the authors'), "unescape"
    # (decode HTML entities; helps MiniLM), "none" — the text is what gets embedded and cached
    text_clean: str = "reference"
    # pca | lda | random | autoencoder | variance (§5.2): fewer, less anisotropic dims; "none" =
    # no reduction; None = the model's default (MODEL_DEFAULTS: none, LLM2: pca to emb_dim)
    reduction: str | None = None
    # target size of the reduction (clipped to the input dim / #classes − 1 with a warning)
    reduced_dim: int | None = None
    # whiten the vectors before the reduction (BERT-whitening; beyond the paper, wins with MiniLM):
    # pca = PCA(whiten=True), random / autoencoder = full whitening then the reduction; others: error
    whiten: bool = False
    # L2-normalise the *reduced* rows (reference DimReducer default); unreduced vectors stay raw;
    # None = the model's default (MODEL_DEFAULTS: True, LLM2: False, the reference's LLM2 path)
    normalize: bool | None = None
    # LDA classes: an items column (e.g. "class") or "kmeans" pseudo-classes (Beauty has no
    # classes in our data: a documented deviation); only read when reduction == "lda"
    lda_labels: str | None = None

    def __post_init__(self):
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {tuple(PROVIDERS)}, got {self.provider!r}")
        if self.text_clean not in TEXT_CLEANING:
            raise ValueError(f"text_clean must be one of {TEXT_CLEANING}, got {self.text_clean!r}")
        # validates the method and its dim (a reduction's size may be left to the model: LLM2's emb_dim)
        Reducer(self.reduction, self.reduced_dim if self.reduced_dim is not None or not self.reduces else 1,
                whiten=self.whiten and self.reduction is not None)  # None: the model's reduction, checked when resolved

    @classmethod
    def coerce(cls, value, **model_defaults) -> "EmbeddingSpec":
        """The one way a model reads its embedding config: an EmbeddingSpec from None (defaults),
        a mapping of its fields, or itself, then :meth:`resolved` with the model's defaults —
        so a dict and an EmbeddingSpec with the same fields give the same spec (and vectors).
        Raises ``TypeError`` naming unknown fields or another type."""
        if value is None:
            value = cls()
        elif isinstance(value, Mapping):
            unknown = set(value) - {f.name for f in fields(cls)}
            if unknown:
                raise TypeError(f"unknown EmbeddingSpec field(s) {sorted(unknown)}; "
                                f"known: {[f.name for f in fields(cls)]}")
            value = cls(**value)
        elif not isinstance(value, cls):
            raise TypeError(f"embedding must be an EmbeddingSpec or a dict of its fields, got {type(value).__name__}")
        return value.resolved(**model_defaults)

    def resolved(self, **model_defaults) -> "EmbeddingSpec":
        """This spec with the fields it leaves to the model (None: ``reduction``, ``normalize``,
        and ``reduced_dim`` where it reduces) set from ``model_defaults``, else
        :data:`MODEL_DEFAULTS` (no reduction, L2-normalised reduced rows). Fields the spec sets
        are kept."""
        unknown = set(model_defaults) - set(MODEL_DEFAULTS)
        if unknown:
            raise TypeError(f"model defaults only for {sorted(MODEL_DEFAULTS)}, got {sorted(unknown)}")
        fill = {name: model_defaults.get(name, generic) for name, generic in MODEL_DEFAULTS.items()
                if getattr(self, name) is None}
        if fill.get("reduction", self.reduction) in (None, "none"):
            fill.pop("reduced_dim", None)  # a size only for a reduction
        fill = {k: v for k, v in fill.items() if v is not None}
        out = replace(self, **fill) if fill else self
        Reducer(out.reduction, out.reduced_dim, whiten=out.whiten)  # a reduction needs its size now
        return out

    @property
    def reduces(self) -> bool:
        return self.reduction not in (None, "none")

    def embed(self, items, *, device: str = "auto") -> ItemEmbeddings:
        """Raw (unreduced) vectors of every item of ``items`` (a Dataset or its items table),
        texts built by ``data.item_texts(items, clean=text_clean)``; cached on disk."""
        if items is None:
            raise ValueError("no item texts to embed: fit(train, items=dataset.items), or give the model "
                             "embeddings=embed_items(...)")
        return embed_items(item_texts(items, clean=self.text_clean), self.provider, self.model,
                           path=self.path, device=device, show_progress=False)

    def item_vectors(self, items=None, *, fit_on=None, embeddings: ItemEmbeddings | None = None,
                     device: str = "auto", seed: int = 0) -> ItemEmbeddings:
        """The vectors a model scores with.

        Args:
            items: the catalogue (a Dataset or its items DataFrame with ``item_id``): its texts
                are embedded unless ``embeddings`` is given; its ``lda_labels`` column gives the
                LDA classes.
            fit_on: item ids the reducer is fitted on and whose vectors are returned (None =
                every item of the embeddings: LLMSeqSim's whole catalogue, as the paper;
                SKNNEmb passes its train items, as the reference).
            embeddings: raw vectors to use instead of embedding ``items`` (any row order).
            device: embedding model / autoencoder device ("auto" = CUDA when present).
            seed: random projection / autoencoder / k-means seed.

        Returns:
            :class:`ItemEmbeddings` of the ``fit_on`` items (sorted ids), (n, reduced_dim)
            float32 when reduced (L2-normalised rows when ``normalize``), else the raw vectors.

        Raises:
            EmbeddingError: ``fit_on`` ids without a vector, embedding failures.
            ValueError: no items and no embeddings; an ``lda_labels`` column that ``items``
                lacks; LDA without labels.
        """
        self = self.resolved()  # a spec used directly, not through a model: the generic defaults
        emb = embeddings if embeddings is not None else self.embed(items, device=device)
        if fit_on is not None:
            emb = emb.subset(fit_on)
        if not self.reduces:
            return emb
        labels = self._lda_labels(items, emb.item_ids) if self.reduction == "lda" else None
        Z = reduce_embeddings(emb.vectors, self.reduction, self.reduced_dim, normalize=self.normalize, seed=seed,
                              labels=labels, device=device, **({"whiten": True} if self.whiten else {}))
        return emb.replace_vectors(Z, reduction=self.reduction, reduced_dim=int(Z.shape[1]))

    def _lda_labels(self, items, item_ids: np.ndarray):
        labels = self.lda_labels
        if labels in (None, "kmeans"):
            return labels
        table = items.items if isinstance(items, Dataset) else items
        if not isinstance(table, pd.DataFrame) or labels not in table.columns:
            raise ValueError(f"lda_labels={labels!r}: no such column in items")
        return table.set_index("item_id")[labels].reindex(item_ids).to_numpy()


def merge_flat_keys(config: Mapping, owner: str) -> dict:
    """``config`` with its flat embedding keys (:data:`FLAT_KEYS`) merged, as spec fields, into
    its ``embedding`` (an EmbeddingSpec or a dict of its fields, turned into a dict when merged);
    ``config`` without flat keys comes back with ``embedding`` as given.

    Raises:
        TypeError: ``embedding`` is neither an EmbeddingSpec nor a mapping.
        ValueError: a spec field given both flat and inside ``embedding`` (an EmbeddingSpec
            sets every field).
    """
    rest = {k: v for k, v in config.items() if k not in FLAT_KEYS}
    flat = {FLAT_KEYS[k]: v for k, v in config.items() if k in FLAT_KEYS}
    given = rest.get("embedding")
    if given is not None and not isinstance(given, (EmbeddingSpec, Mapping)):
        raise TypeError(f"{owner}: embedding must be an EmbeddingSpec or a dict of its fields, "
                        f"got {type(given).__name__}")
    if not flat:
        return rest
    nested = {} if given is None else asdict(given) if isinstance(given, EmbeddingSpec) else dict(given)
    both = sorted(k for k, f in FLAT_KEYS.items() if k in config and f in nested)
    if both:
        raise ValueError(f"{owner}: {both} given both flat and inside embedding=...; "
                         "pass each embedding field one way")
    rest["embedding"] = {**nested, **flat}
    return rest


def fold_flat_keys(config: Mapping, config_class, owner: str) -> dict:
    """``config`` with its flat embedding keys (:data:`FLAT_KEYS`) and/or ``embedding``
    (an EmbeddingSpec or a dict of its fields) merged into one ``embedding`` EmbeddingSpec —
    the keyword arguments of ``config_class`` (:func:`merge_flat_keys`, then the spec).

    Raises:
        TypeError: keys that are neither fields of ``config_class`` nor flat embedding keys
            (all of them named); an ``embedding`` of another type.
        ValueError: a spec field given both flat and inside ``embedding``.
    """
    names = {f.name for f in fields(config_class)}
    unknown = set(config) - names - set(FLAT_KEYS)
    if unknown:
        raise TypeError(f"{owner}: unknown config key(s) {sorted(unknown)}; known: {sorted(names | set(FLAT_KEYS))}")
    rest = merge_flat_keys(config, owner)
    rest["embedding"] = EmbeddingSpec.coerce(rest.get("embedding"))
    return rest