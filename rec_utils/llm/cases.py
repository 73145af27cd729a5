"""LLMSeqPrompt training cases and prompt formats (paper §6.2.1 and §6.2.2).

A **case** is one train session split into prompt = all but its last item and target = its last
item (§6.2.2), built from the **train split only**. Sessions holding an item without a name are
dropped, prompts with fewer than ``min_prompt_items`` (2) items are skipped, the case order is
shuffled with ``seed`` (42, as the reference) and the first ``val_share`` (20 %) become the
validation cases. Over-long cases are skipped by :func:`drop_long` once they are formatted and
tokenised (the reference counted tiktoken tokens, limit 4,096, not applied for Classify).

Formats (:data:`VARIANTS`), each a list of chat messages ``[system, user, assistant]``:

* ``genitem`` (§6.2.2, 4.1): the user's item list, one name a line → the next item's **name**
  (the reference's prompt notebook wrote the item id: a bug, spec §12 item 7; names here).
* ``genlist`` (4.2): names between BEGIN/END → a fixed sentence, ``BEGIN``, ``1. name`` … ``N.
  name``, ``END``; the target list is an LLMSeqSim top-N with the true item forced to rank 1.
* ``classify`` (4.3): previous purchases + the ``n_clusters`` (200) class names → the
  representatives of the 20 classes whose k-means centroids are closest to the true item.
* ``rank`` (4.4): previous purchases + the LLMSeqSim top-20 candidates, **shuffled** → the
  candidates with the true item moved (or prepended) to rank 1.
* ``recsys23`` (§6.2.1): not chat but a prompt/completion pair: "1. name \\n2. name \\n…" +
  "\\n\\n###\\n\\n" → " name ###".
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

VARIANTS = ("genitem", "genlist", "classify", "rank", "recsys23")
#: §6.2.1: the RecSys'23 prompt separator and completion end marker
RECSYS23_SEPARATOR = "\n\n###\n\n"
RECSYS23_END = " ###"
LIST_BEGIN, LIST_END = "BEGIN", "END"

SYSTEM = {
    "genitem": ("You are a recommender system. Given the user's item list, recommend one unique item that "
                "complements it, chosen from the items seen in fine-tuning. Answer with the item name only."),
    "genlist": ("You are a recommender assistant. Given the user's items, give {n} unique complementary items "
                "ordered by confidence, only items from the fine-tuning data, names only."),
    "classify": ("You are a recommender assistant with access to the user's previous purchases and a list of "
                 "available products. Give {n} recommendations, only from the available products."),
    "rank": ("You are a recommender assistant with access to the user's previous purchases and a list of "
             "available products. Give {n} recommendations, only from the available products."),
}
LIST_PREAMBLE = "Here are the recommendations:"


@dataclass
class Cases:
    """Training cases: prompt item ids (ragged), target ids, and the validation mask.

    Attributes:
        session_ids: (n,) train session of each case.
        prompts: n arrays of item ids, oldest first.
        targets: (n,) the last item of each session.
        is_val: (n,) True for the first ``val_share`` of the shuffled order.
        info: counts of what was dropped and why.
    """

    session_ids: np.ndarray
    prompts: list
    targets: np.ndarray
    is_val: np.ndarray
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, idx) -> "Cases":
        idx = np.asarray(idx, dtype=np.int64)
        return Cases(self.session_ids[idx], [self.prompts[i] for i in idx], self.targets[idx], self.is_val[idx],
                     dict(self.info))

    def take(self, n_train: int | None, n_val: int | None) -> "Cases":
        """The first ``n_train`` training and ``n_val`` validation cases of the shuffled order
        (None or 0 = all): the documented subsample of a CPU run."""
        tr, va = np.flatnonzero(~self.is_val), np.flatnonzero(self.is_val)
        keep = np.sort(np.concatenate([tr[:n_train or None], va[:n_val or None]]))
        out = self.subset(keep)
        out.info.update(n_train_taken=int((~out.is_val).sum()), n_val_taken=int(out.is_val.sum()))
        return out

    def key(self) -> list:
        """JSON-able content (ids in order): enters the fine-tuning cache key."""
        return [self.session_ids.tolist(), [p.tolist() for p in self.prompts], self.targets.tolist(),
                self.is_val.tolist()]


def train_cases(train: pd.DataFrame, names: pd.Series, *, seed: int = 42, val_share: float = 0.2,
                min_prompt_items: int = 2) -> Cases:
    """Cases of every train session (§6.2.2), shuffled with ``seed``; see the module docstring.

    Args:
        train: the split's train interactions (session_id, item_id, timestamp), ordered.
        names: item_id → name ("" = unnamed).
    Raises:
        ValueError: no case survives (the message gives the counts), a bad ``val_share``.
    """
    if not 0 <= val_share < 1:
        raise ValueError(f"val_share must be in [0, 1), got {val_share}")
    sid = train["session_id"].to_numpy()
    item = train["item_id"].to_numpy(np.int64)
    named = names.reindex(item).fillna("").astype(str).str.strip().to_numpy() != ""
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    ends = np.r_[starts[1:], len(sid)]
    bad = np.add.reduceat(~named, starts) > 0 if len(sid) else np.zeros(0, bool)
    long_enough = (ends - starts - 1) >= min_prompt_items
    keep = ~bad & long_enough
    order = np.random.default_rng(seed).permutation(int(keep.sum()))
    s, e = starts[keep][order], ends[keep][order]
    n_val = int(round(val_share * len(s)))
    info = {"train_sessions": int(len(starts)), "dropped_unnamed": int(bad.sum()),
            "dropped_short": int((~bad & ~long_enough).sum()), "cases": int(len(s)), "val_cases": n_val,
            "seed": int(seed), "val_share": float(val_share)}
    if not len(s):
        raise ValueError(f"no training case: {info}")
    return Cases(sid[s], [item[a:b - 1] for a, b in zip(s, e)], item[e - 1],
                 np.arange(len(s)) < n_val, info)


# ---------------------------------------------------------------------- formats


def numbered(names) -> str:
    return "\n".join(f"{i}. {n}" for i, n in enumerate(names, 1))


def user_text(variant: str, prompt_names, available=None) -> str:
    """The user message of ``variant`` for a prompt's item names (and the available products of
    ``classify`` / ``rank``)."""
    if variant == "genitem":
        return "The user's item list:\n" + "\n".join(prompt_names)
    if variant == "genlist":
        return f"{LIST_BEGIN}\n" + "\n".join(prompt_names) + f"\n{LIST_END}"
    if variant in ("classify", "rank"):
        if available is None:
            raise ValueError(f"variant {variant!r} needs the available products")
        return ("The user's previous purchases:\n" + "\n".join(prompt_names) + "\nAvailable products:\n"
                + "\n".join(available) + "\nRecommend only products from the available products.")
    raise ValueError(f"unknown variant {variant!r}; known: {VARIANTS}")


def answer_text(variant: str, names) -> str:
    """The assistant's answer: a name (genitem, recsys23) or a numbered list."""
    if variant == "genitem":
        return str(names[0]) if not isinstance(names, str) else names
    if variant == "recsys23":
        return " " + (names if isinstance(names, str) else str(names[0])) + RECSYS23_END
    if variant == "genlist":
        return f"{LIST_PREAMBLE}\n{LIST_BEGIN}\n{numbered(names)}\n{LIST_END}"
    if variant in ("classify", "rank"):
        return numbered(names)
    raise ValueError(f"unknown variant {variant!r}; known: {VARIANTS}")


def recsys23_prompt(prompt_names, max_chars: int = 5000, tail: int = 20) -> str:
    """§6.2.1 prompt: numbered names, one a line, + separator; over ``max_chars`` only the last
    ``tail`` items are used."""
    text = "".join(f"{i}. {n} \n" for i, n in enumerate(prompt_names, 1))
    if len(text) > max_chars:
        return recsys23_prompt(list(prompt_names)[-tail:], max_chars=10**9)
    return text + RECSYS23_SEPARATOR


def messages(variant: str, prompt_names, answer=None, available=None, list_length: int = 20) -> list[dict]:
    """Chat messages of a case (``answer`` None: the inference prompt, system + user only)."""
    if variant == "recsys23":
        raise ValueError("recsys23 is a prompt/completion format: use recsys23_prompt / answer_text")
    out = [{"role": "system", "content": SYSTEM[variant].format(n=list_length)},
           {"role": "user", "content": user_text(variant, prompt_names, available)}]
    if answer is not None:
        out.append({"role": "assistant", "content": answer_text(variant, answer)})
    return out


def force_first(candidates: np.ndarray, target: int) -> np.ndarray:
    """§6.2.2 GenList/Rank target: ``target`` moved to rank 1, or prepended (last one dropped)."""
    c = [int(x) for x in candidates if x >= 0 and x != target]
    return np.array([int(target)] + c[:max(len(candidates) - 1, 0)], dtype=np.int64)


def cluster_classes(item_vectors: np.ndarray, item_ids: np.ndarray, popularity: pd.Series, names: pd.Series,
                    n_clusters: int = 200, seed: int = 0):
    """§6.2.2 Classify: K-means (``n_clusters``, ``random_state=seed``) of every item embedding;
    each class is named by its most popular train item with a name (ties: smaller id); classes
    without such an item are dropped.

    Returns:
        ``(centroids (c, d), representatives (c,) item ids)`` of the kept classes.
    """
    from sklearn.cluster import KMeans  # heavy: loaded only by this method

    if len(item_ids) < n_clusters:
        raise ValueError(f"n_clusters={n_clusters} exceeds the {len(item_ids)} items with a vector")
    km = KMeans(n_clusters=n_clusters, random_state=seed, n_init=1).fit(item_vectors)
    pop = popularity.reindex(item_ids).fillna(0).to_numpy()
    has_name = names.reindex(item_ids).fillna("").astype(str).str.strip().to_numpy() != ""
    reps, cents = [], []
    for c in range(n_clusters):
        members = np.flatnonzero((km.labels_ == c) & has_name & (pop > 0))
        if len(members):
            best = members[np.lexsort((item_ids[members], -pop[members]))[0]]
            reps.append(int(item_ids[best]))
            cents.append(km.cluster_centers_[c])
    return np.asarray(cents, dtype=np.float32), np.asarray(reps, dtype=np.int64)


def closest_classes(target_vectors: np.ndarray, centroids: np.ndarray, n: int = 20) -> np.ndarray:
    """(m, n) indices of the ``n`` centroids closest (Euclidean) to each target vector, nearest first."""
    d = ((target_vectors[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
    return np.argsort(d, axis=1, kind="stable")[:, :n]
