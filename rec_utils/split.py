"""Evaluation protocols: the paper's temporal session split, its validation folds, the inner
validation sample of the neural models, and leave-one-out.

Temporal split (paper §3, reference ``main/data/temporal_split.py``):

* session time = timestamp of the session's **last** interaction; sessions are sorted by it
  (stable sort, so sessions ending on the same day keep session-id order);
* the most recent ``ceil(test_frac * n_sessions)`` sessions are the test set, whole sessions;
* from every test session remove items never seen in the train split, then drop test
  sessions left with fewer than 2 interactions;
* prompt = all remaining items but the last, target = the last one.

Deviation (documented, not chased): the authors sorted session times with numpy 1.23.5's
non-stable quicksort; 58 Beauty sessions end on the cutoff day and a slightly different set
of them lands in test there (their test-prompt lengths 4:1029, 5:653 vs 4:1025, 5:655 here).

Validation folds (forward chaining): the train sessions sorted by session time are cut into
``n_folds + 1`` bins with ``numpy.array_split``; fold i trains on bins 1..i and validates on
bin i+1, built like the test set.

Leave-one-out: per session with at least 3 items, the last item is the test target (prompt:
every earlier item) and the second last the validation target (prompt: every item before it);
the model trains on every session without its last two items (shorter sessions train whole).
All targets are kept (an item never seen in train is a sure miss), so results count every
session as the LOO literature (SASRec, S3-Rec) does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .data import Dataset, order_interactions
from .utils import short_hash


class EmptyEvaluationError(ValueError):
    """A split (or a sample of it) has no evaluation case; the message says which step dropped
    how many sessions."""

PROTOCOLS = ("temporal", "loo")


@dataclass
class Prompts:
    """Evaluation cases: for each case a session id, its prompt (item ids in time order) and
    one target item. Stored flat (CSR style) so batched models can use it without copies."""

    session_ids: np.ndarray  # (n,)
    indptr: np.ndarray  # (n + 1,) prompt i is items[indptr[i]:indptr[i + 1]]
    items: np.ndarray  # flat item ids
    targets: np.ndarray  # (n,)

    def __len__(self) -> int:
        return len(self.session_ids)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.items[self.indptr[i] : self.indptr[i + 1]]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)



    def subset(self, idx: np.ndarray) -> "Prompts":
        """The cases at positions ``idx`` (in that order)."""
        idx = np.asarray(idx, dtype=np.int64)
        lens = self.lengths[idx]
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        if len(idx):
            starts = np.repeat(self.indptr[idx], lens)
            offs = np.arange(indptr[-1]) - np.repeat(indptr[:-1], lens)
            items = self.items[starts + offs]
        else:
            items = self.items[:0]
        return Prompts(self.session_ids[idx], indptr, items, self.targets[idx])

    def sample(self, n: int | None, seed: int = 0) -> "Prompts":
        """A seeded random sample of ``n`` cases in their original order (all when n is None)."""
        if n is None or n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return self.subset(idx)

    def truncate(self, max_len: int) -> "Prompts":
        """Keep only the last ``max_len`` items of every prompt."""
        lens = np.minimum(self.lengths, max_len)
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        starts = np.repeat(self.indptr[1:] - lens, lens)
        offs = np.arange(indptr[-1]) - np.repeat(indptr[:-1], lens)
        return Prompts(self.session_ids, indptr, self.items[starts + offs], self.targets)


@dataclass
class Split:
    """A train set plus evaluation cases, and what the metrics need about the whole dataset."""

    train: pd.DataFrame  # session_id, item_id, timestamp; ordered by session then time
    test: Prompts
    protocol: str  # "temporal", "temporal-fold1..3", "loo", ...
    n_items: int  # catalogue size = distinct items of the whole dataset (paper's NUM_ITEMS)
    item_counts: pd.Series  # interaction count per item over the whole dataset
    info: dict = field(default_factory=dict)  # dataset, tie_order, tie_seed, test_frac, counts, samples
    validation: Prompts | None = None  # leave-one-out validation cases (same train)
    catalog: np.ndarray | None = None  # sorted item ids of the whole dataset's interactions (the catalogue)
    _fingerprint: str | None = field(default=None, repr=False, compare=False)  # memo of ``fingerprint``

    @property
    def fingerprint(self) -> str:
        """Short hash of everything a result on this split depends on: protocol, dataset, tie
        order and seed, the **train interactions' content** (session ids, item ids and
        timestamps in their order), the evaluation cases (session ids, prompts, targets), the
        leave-one-out validation cases, and what the metrics use about the whole dataset
        (catalogue size, item popularity). Any change in any of them changes the fingerprint;
        computing it twice on the same data gives the same value on any machine."""
        if self._fingerprint is None:
            parts = [f"{self.protocol}|{self.info.get('dataset')}|{self.info.get('tie_order')}|"
                     f"{self.info.get('tie_seed')}|n_items={self.n_items}"]
            parts += [np.ascontiguousarray(self.train[c].to_numpy(), dtype=np.int64)
                      for c in ("session_id", "item_id", "timestamp")]
            cases = [self.test] + ([self.validation] if self.validation is not None else [])
            for p in cases:
                parts += [np.ascontiguousarray(a, dtype=np.int64)
                          for a in (p.session_ids, p.indptr, p.items, p.targets)]
            parts += [np.ascontiguousarray(self.item_counts.index.to_numpy(), dtype=np.int64),
                      np.ascontiguousarray(self.item_counts.to_numpy(), dtype=np.int64)]
            self._fingerprint = short_hash(*parts)
        return self._fingerprint

    def sample_test(self, n: int | None, seed: int = 0) -> "Split":
        """This split with a seeded random sample of ``n`` evaluation cases (quick runs).
        ``None`` or 0 keeps every case. The sample size and seed are recorded in ``info``
        (``test_sample``, ``test_sample_seed``), so they enter the run's setting and label,
        and the fingerprint changes with the cases."""
        if not n or n >= len(self.test):
            return self
        info = {**self.info, "test_sample": int(n), "test_sample_seed": int(seed)}
        return replace(self, test=self.test.sample(n, seed=seed), info=info, _fingerprint=None)

    def sample_train(self, n: int | None, seed: int = 0) -> "Split":
        """This split trained on a seeded random sample of ``n`` whole train sessions (CI and
        quick runs; the evaluation cases stay). Recorded as ``info["train_sample"]`` and
        ``info["train_sample_seed"]``."""
        ids = np.unique(self.train["session_id"].to_numpy())
        if not n or n >= len(ids):
            return self
        keep = np.random.default_rng(seed).choice(ids, size=int(n), replace=False)
        train = self.train.loc[self.train["session_id"].isin(keep)].reset_index(drop=True)
        info = {**self.info, "train_sample": int(n), "train_sample_seed": int(seed)}
        return replace(self, train=train, info=info, _fingerprint=None)

    def require_cases(self) -> None:
        """Raise :class:`EmptyEvaluationError` when there is no evaluation case, saying how many
        sessions each step of the protocol dropped (an empty evaluation is never a result)."""
        if len(self.test):
            return
        i = {**self.info.get("counts", {}), **self.info}
        steps = [f"{i.get('sessions', '?')} sessions in the data"]
        if self.protocol.startswith("temporal"):
            steps.append(f"{i.get('test_sessions_before_filter', '?')} in the test period")
            steps.append(f"{i.get('test_sessions_dropped_short', '?')} of them dropped for having fewer than 2 "
                         "interactions")
            steps.append(f"{i.get('test_sessions_dropped_unseen', '?')} more dropped for having fewer than 2 items "
                         "after removing items never seen in train")
        elif self.protocol == "loo":
            steps.append(f"{i.get('loo_sessions_too_short', '?')} dropped for having fewer than "
                         f"{i.get('loo_min_session_length', 3)} interactions")
            steps.append(f"{i.get('loo_cases_dropped_unseen', '?')} more dropped because no prompt item was seen "
                         "in train")
        if i.get("test_sample"):
            steps.append(f"then a sample of {i['test_sample']} cases was drawn")
        raise EmptyEvaluationError(
            f"{self.protocol} split of dataset {i.get('dataset')!r} has no evaluation case: " + "; ".join(steps)
            + ". Sessions need at least 2 interactions (the prompt and the target).")

    @property
    def train_items(self) -> np.ndarray:
        return np.unique(self.train["item_id"].to_numpy())

    def describe(self) -> dict:
        return {
            "protocol": self.protocol,
            "train_sessions": int(self.train["session_id"].nunique()),
            "train_interactions": len(self.train),
            "train_items": len(self.train_items),
            "test_sessions": len(self.test),
            "validation_sessions": None if self.validation is None else len(self.validation),
            "fingerprint": self.fingerprint,
            **{k: v for k, v in self.info.items() if k not in ("protocol",)},
        }


# ----------------------------------------------------------------------------- building blocks


def _segments(session_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end positions of runs of equal session ids (input grouped by session)."""
    if len(session_ids) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(session_ids[1:] != session_ids[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(session_ids)]])
    return starts, ends


def sessions_to_prompts(
    df: pd.DataFrame, known_items: np.ndarray | None = None, min_length: int = 2
) -> Prompts:
    """Turn ordered sessions into (prompt = all but last, target = last) cases.

    Items not in ``known_items`` are removed first (the paper's filter of items unseen in
    training); sessions then shorter than ``min_length`` are dropped.
    """
    if known_items is not None:
        df = df.loc[df["item_id"].isin(known_items)]
    sid = df["session_id"].to_numpy()
    items = df["item_id"].to_numpy()
    starts, ends = _segments(sid)
    lens = ends - starts
    keep = lens >= min_length
    starts, ends, lens = starts[keep], ends[keep], lens[keep]
    plens = lens - 1
    indptr = np.concatenate([[0], np.cumsum(plens)]).astype(np.int64)
    pos = np.repeat(starts, plens) + (np.arange(indptr[-1]) - np.repeat(indptr[:-1], plens))
    return Prompts(
        session_ids=sid[starts].astype(np.int64),
        indptr=indptr,
        items=items[pos].astype(np.int64),
        targets=items[ends - 1].astype(np.int64),
    )


def timestamp_ties(interactions: pd.DataFrame) -> dict:
    """How much the order of same-timestamp interactions can matter for a split.

    Only ties **within a session** change anything (the order of a session's items, hence its
    prompt and target; sessions are ordered by time with a stable sort on session id whatever
    the tie order), so without them every ``tie_order``/``tie_seed`` gives the same sequences
    and the tie-order spread (notebooks 00, 01, 04) would repeat one computation.

    Args:
        interactions: columns ``session_id`` and ``timestamp`` (any row order).

    Returns:
        ``{"tied_interactions": rows sharing (session, timestamp) with another row,
        "sessions_with_ties": sessions holding such rows}``, both 0 when there are no ties.
    """
    missing = [c for c in ("session_id", "timestamp") if c not in interactions.columns]
    if missing:
        raise ValueError(f"timestamp_ties needs columns {missing} (has {list(interactions.columns)})")
    dup = interactions.duplicated(["session_id", "timestamp"], keep=False).to_numpy()
    return {"tied_interactions": int(dup.sum()),
            "sessions_with_ties": int(interactions.loc[dup, "session_id"].nunique())}


def has_timestamp_ties(interactions: pd.DataFrame) -> bool:
    """True when two interactions of one session share a timestamp (:func:`timestamp_ties`)."""
    return timestamp_ties(interactions)["tied_interactions"] > 0


def tie_spread_seeds(interactions: pd.DataFrame, seeds) -> list[int]:
    """The tie seeds of a tie-order spread: ``seeds`` when two interactions of a session share
    a timestamp, else ``[]`` with a printed reason (every tie order gives the same sequences, so
    the spread would rerun one computation per seed)."""
    seeds = [int(s) for s in seeds]
    if seeds and not has_timestamp_ties(interactions):
        print(f"no two interactions of a session share a timestamp: the tie-order spread over {len(seeds)} "
              "seed(s) and the file order would repeat one split, so it is skipped")
        return []
    return seeds


def session_times(interactions: pd.DataFrame) -> pd.Series:
    """Time of every session = timestamp of its last interaction, sorted by time (stable)."""
    t = interactions.groupby("session_id", sort=True)["timestamp"].max()
    return t.iloc[np.argsort(t.to_numpy(), kind="stable")]


def temporal_train_test(
    interactions: pd.DataFrame, test_frac: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Session ids of the train and test sets (the most recent ``ceil(test_frac·n)`` sessions)."""
    if not 0 < test_frac < 1:
        raise ValueError(f"test_frac must be in (0, 1), got {test_frac}")
    ordered = session_times(interactions).index.to_numpy()
    n_test = math.ceil(test_frac * len(ordered))
    return ordered[: len(ordered) - n_test], ordered[len(ordered) - n_test :]


def _select(interactions: pd.DataFrame, session_ids: np.ndarray) -> pd.DataFrame:
    return interactions.loc[interactions["session_id"].isin(session_ids)].reset_index(drop=True)


# ----------------------------------------------------------------------------- protocols


def make_split(
    dataset: Dataset,
    protocol: str = "temporal",
    tie_order: str = "shuffle",
    tie_seed: int = 0,
    test_frac: float = 0.2,
) -> Split:
    """The evaluation split of a dataset under ``protocol`` ("temporal" or "loo").

    The catalogue size and item popularity used by the metrics come from the whole dataset,
    as in the paper.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    inter = order_interactions(dataset.interactions, tie_order=tie_order, tie_seed=tie_seed)
    info = {
        "dataset": dataset.name,
        "tie_order": tie_order,
        "tie_seed": tie_seed if tie_order == "shuffle" else None,
    }
    common = dict(n_items=dataset.n_items, item_counts=dataset.item_counts(),
                  catalog=dataset.catalog)
    n_sessions = int(inter["session_id"].nunique())
    if protocol == "temporal":
        train_ids, test_ids = temporal_train_test(inter, test_frac)
        train = _select(inter, train_ids)
        test_df = _select(inter, test_ids)
        test = sessions_to_prompts(test_df, known_items=np.unique(train["item_id"].to_numpy()))
        n_short = int((test_df.groupby("session_id").size() < 2).sum())
        info.update(test_frac=test_frac, test_sessions_before_filter=len(test_ids))
        counts = dict(sessions=n_sessions, test_sessions_dropped_short=n_short,
                      test_sessions_dropped_unseen=len(test_ids) - n_short - len(test))
        return Split(train=train, test=test, protocol="temporal", info={**info, "counts": counts}, **common)
    return _leave_one_out(inter, info, common)


def _leave_one_out(inter: pd.DataFrame, info: dict, common: dict) -> Split:
    sid = inter["session_id"].to_numpy()
    starts, ends = _segments(sid)
    lens = ends - starts
    seg_len = np.repeat(lens, lens)
    pos = np.arange(len(inter)) - np.repeat(starts, lens)
    long_enough = seg_len >= 3
    # train: everything except the last two items of sessions with >= 3 items
    train = inter.loc[~long_enough | (pos < seg_len - 2)].reset_index(drop=True)
    known = np.unique(train["item_id"].to_numpy())
    test = sessions_to_prompts(inter.loc[long_enough], known_items=None)
    val = sessions_to_prompts(inter.loc[long_enough & (pos < seg_len - 1)], known_items=None)
    # Targets are kept even when unseen in train (a sure miss, as in the LOO literature, whose
    # numbers count every user); prompt items unseen in train are removed so that every model
    # sees only known items, as under the temporal protocol.
    n_long = len(test)
    test = _filter_cases(test, known, filter_targets=False)
    val = _filter_cases(val, known, filter_targets=False)
    info.update(loo_min_session_length=3)
    counts = dict(sessions=len(starts), loo_sessions_too_short=int((lens < 3).sum()),
                  loo_cases_dropped_unseen=n_long - len(test))
    return Split(train=train, test=test, validation=val, protocol="loo", info={**info, "counts": counts}, **common)


def _filter_cases(p: Prompts, known: np.ndarray, filter_targets: bool = True) -> Prompts:
    """Remove unknown items from prompts and drop cases left with an empty prompt (and, with
    ``filter_targets``, cases whose target is unknown)."""
    keep_item = np.isin(p.items, known)
    case_of_item = np.repeat(np.arange(len(p)), p.lengths)
    new_lens = np.bincount(case_of_item[keep_item], minlength=len(p))
    keep_case = new_lens > 0
    if filter_targets:
        keep_case &= np.isin(p.targets, known)
    items = p.items[keep_item & keep_case[case_of_item]]
    lens = new_lens[keep_case]
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return Prompts(p.session_ids[keep_case], indptr, items, p.targets[keep_case])


#: Info keys that describe a split's evaluation cases (not inherited by its validation folds).
_CASE_INFO = ("counts", "test_sample", "test_sample_seed", "test_sessions_before_filter")


def temporal_folds(split: Split, n_folds: int = 3) -> list[Split]:
    """The paper's forward-chaining validation folds over the train set of a temporal split."""
    ordered = session_times(split.train).index.to_numpy()
    bins = np.array_split(ordered, n_folds + 1)
    if any(len(b) == 0 for b in bins):
        raise ValueError(f"{n_folds} folds need at least {n_folds + 1} train sessions")
    folds = []
    for i in range(n_folds):
        train = _select(split.train, np.concatenate(bins[: i + 1]))
        val_df = _select(split.train, bins[i + 1])
        cases = sessions_to_prompts(val_df, known_items=np.unique(train["item_id"].to_numpy()))
        info = {k: v for k, v in split.info.items() if k not in _CASE_INFO}  # the fold's own cases
        info.update(fold=i + 1, n_folds=n_folds)
        folds.append(
            Split(
                train=train,
                test=cases,
                protocol=f"temporal-fold{i + 1}",
                n_items=split.n_items,
                item_counts=split.item_counts,
                info=info,
                catalog=split.catalog,
            )
        )
    return folds


def inner_validation_split(
    train: pd.DataFrame, frac: float = 0.1, max_sessions: int = 500, seed: int = 0
) -> tuple[pd.DataFrame, Prompts]:
    """Hold out ``min(max_sessions, round(frac · n))`` random train sessions for early stopping.

    Returns the remaining train interactions and the held-out cases (prompt = all but last,
    target = last; items unseen in the remaining train removed). Seeded, unlike the reference.
    """
    ids = np.unique(train["session_id"].to_numpy())
    n_val = min(max_sessions, max(1, int(round(frac * len(ids)))))
    val_ids = np.random.default_rng(seed).choice(ids, size=n_val, replace=False)
    is_val = train["session_id"].isin(val_ids)
    rest = train.loc[~is_val].reset_index(drop=True)
    cases = sessions_to_prompts(
        train.loc[is_val], known_items=np.unique(rest["item_id"].to_numpy())
    )
    return rest, cases


__all__ = [
    "EmptyEvaluationError",
    "PROTOCOLS",
    "Prompts",
    "Split",
    "inner_validation_split",
    "make_split",
    "session_times",
    "sessions_to_prompts",
    "temporal_folds",
    "temporal_train_test",
]
