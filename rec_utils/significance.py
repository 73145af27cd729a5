"""Paired comparison of two stored settings on the same test sessions: is A better than B?

From the stored top-20 lists of the runs (``.npz`` next to each run JSON, :mod:`rec_utils.results`)
every test session gets NDCG@20 and HR@20 for run A and run B; on the per-session differences::

    rows = compare_runs(find_runs(OUT, setting=llm2), find_runs(OUT, setting=base), split, out_dir=OUT)
    record_significance(rows, OUT)        # results/<dataset>/significance.csv

* **Targets** come from the split (``split.test``: session id → withheld item; the run files
  hold only the lists). Every run must carry the split's fingerprint, and the per-session mean
  recomputed from the lists must equal the run's stored metric (so lists, sessions and targets
  cannot be mismatched silently). A ``targets`` Series (session id → item) can replace the split.
* **Sessions** are aligned by ``session_ids``: all runs of both sides must hold the same set of
  test sessions (order may differ); otherwise ValueError.
* **Seeds** are paired by seed number (seeds on one side only are left out; none in common is an
  error). The per-session metric is averaged over the paired seeds on each side, then compared
  session by session: the unit of the test is the test session (the population the metric
  generalises over); training-seed noise enters only through that average (its spread over
  seeds is the ``_sd`` of summary.csv). ``n_seed_pairs`` says how many seeds were averaged.
* ``diff`` = mean_a − mean_b (positive: A better). **95 % CI**: paired percentile bootstrap over
  sessions (``n_boot`` = 10,000 resamples of the per-session differences with replacement,
  seeded, vectorised in blocks). **p-value**: two-sided Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``) on the per-session differences with ``zero_method="wilcox"``: sessions
  with a zero difference (most of them: both runs miss the target, or both hit it at the same
  rank) are dropped before ranking, the classical test; all differences zero gives p = 1. For
  HR@20 (differences in {−1, 0, 1}) this is a sign test on the discordant sessions.

``significance.csv`` columns: :data:`SIGNIFICANCE_COLUMNS` — model_a, model_b, protocol, metric,
n_sessions, n_seed_pairs, mean_a, mean_b, diff, ci_low, ci_high, p_value, test, then label_a,
label_b (the settings' labels, as in summary.csv's ``variant``), split_fingerprint, setting_id_a,
setting_id_b. A row is identified by :data:`KEY_COLUMNS` (model_a, label_a, model_b, label_b,
protocol, metric, split_fingerprint): writing replaces the rows of the same key (atomic, locked).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import hit_rate_at_k, mrr_at_k, ndcg_at_k
from .results import run_path
from .setting import Setting
from .utils import atomic_write_text, file_lock

SIGNIFICANCE_COLUMNS = ("model_a", "model_b", "protocol", "metric", "n_sessions", "n_seed_pairs", "mean_a",
                        "mean_b", "diff", "ci_low", "ci_high", "p_value", "test",
                        "label_a", "label_b", "split_fingerprint", "setting_id_a", "setting_id_b")
KEY_COLUMNS = ("model_a", "label_a", "model_b", "label_b", "protocol", "metric", "split_fingerprint")
_TEXT = ("model_a", "model_b", "protocol", "metric", "test", "label_a", "label_b", "split_fingerprint",
         "setting_id_a", "setting_id_b")
PER_SESSION = {"ndcg": ndcg_at_k, "hit_rate": hit_rate_at_k, "mrr": mrr_at_k}
DEFAULT_METRICS = ("ndcg@20", "hit_rate@20")


def per_session(recs: np.ndarray, targets: np.ndarray, metric: str) -> np.ndarray:
    """Per-session values of ``metric`` (``ndcg@k``, ``hit_rate@k`` or ``mrr@k``) of (n, L) lists."""
    name, _, k = metric.partition("@")
    if name not in PER_SESSION or not k.isdigit():
        raise ValueError(f"metric must be one of {sorted(PER_SESSION)} with @k, e.g. 'ndcg@20'; got {metric!r}")
    return PER_SESSION[name](recs, targets, int(k))


def bootstrap_ci(d: np.ndarray, n_boot: int = 10_000, seed: int = 0, level: float = 0.95,
                 max_cells: int = 4_000_000) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``d``: ``n_boot`` resamples of len(d) values with
    replacement (numpy ``default_rng(seed)``), drawn in blocks of at most ``max_cells`` indices
    (the block size depends on len(d) only, so results are reproducible)."""
    d = np.asarray(d, dtype=np.float64)
    n = len(d)
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    block = max(1, max_cells // n)
    for a in range(0, n_boot, block):
        b = min(n_boot, a + block)
        means[a:b] = d[rng.integers(0, n, size=(b - a, n))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the differences ``d``, zero differences
    dropped (``zero_method="wilcox"``); 1.0 when every difference is zero."""
    from scipy.stats import wilcoxon

    d = np.asarray(d, dtype=np.float64)
    if not np.any(d != 0):
        return 1.0
    return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def paired_stats(a: np.ndarray, b: np.ndarray, *, n_boot: int = 10_000, seed: int = 0, level: float = 0.95) -> dict:
    """mean_a, mean_b, diff (= mean_a − mean_b), bootstrap ci_low / ci_high of the mean difference,
    Wilcoxon p_value and n_sessions of paired per-session values ``a`` and ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired values must be two 1-d arrays of one length, got {a.shape} and {b.shape}")
    d = a - b
    lo, hi = bootstrap_ci(d, n_boot, seed, level)
    return {"n_sessions": len(d), "mean_a": float(a.mean()) if len(a) else float("nan"),
            "mean_b": float(b.mean()) if len(b) else float("nan"), "diff": float(d.mean()) if len(d) else float("nan"),
            "ci_low": lo, "ci_high": hi, "p_value": wilcoxon_p(d)}


def describe_test(n_boot: int = 10_000, seed: int = 0, level: float = 0.95) -> str:
    """The ``test`` column: which test and CI a row holds."""
    return (f"wilcoxon signed-rank two-sided (zero_method=wilcox) + paired bootstrap {level:.0%} percentile CI "
            f"({n_boot} resamples; seed {seed})")


def load_lists(record: dict, out_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(session_ids, recs) of a stored run: the ``.npz`` next to its JSON under ``out_dir``."""
    path = run_path(Path(out_dir), Setting.from_dict(record["setting"]), record["split_fingerprint"],
                    record["seed"]).with_suffix(".npz")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the run of {record['model']} seed {record['seed']} has no stored lists")
    with np.load(path) as z:
        if "session_ids" not in z:
            raise ValueError(f"{path}: no session_ids stored with the lists; rerun the setting")
        return z["session_ids"].astype(np.int64), z["recs"].astype(np.int64)


def _side(runs: list[dict], name: str) -> dict[int, dict]:
    if not runs:
        raise ValueError(f"no runs for side {name}")
    ids = {r["setting_id"] for r in runs}
    fps = {r["split_fingerprint"] for r in runs}
    if len(ids) > 1 or len(fps) > 1:
        raise ValueError(f"side {name} mixes settings {sorted(ids)} or splits {sorted(fps)}; give the runs of one "
                         "setting on one split")
    by_seed = {int(r["seed"]): r for r in runs}
    if len(by_seed) != len(runs):
        raise ValueError(f"side {name} repeats a seed")
    return by_seed


def _targets(split, targets, fingerprint: str) -> pd.Series:
    if split is not None:
        if split.fingerprint != fingerprint:
            raise ValueError(f"the runs were made on split {fingerprint}, not on the given split {split.fingerprint}")
        t = pd.Series(np.asarray(split.test.targets, np.int64), index=np.asarray(split.test.session_ids, np.int64))
    elif targets is not None:
        t = pd.Series(targets).astype(np.int64)
    else:
        raise ValueError("give split= (targets from split.test) or targets= (session id → target item)")
    if not t.index.is_unique:
        raise ValueError("the test sessions' ids are not unique: cannot align runs by session id")
    return t


def compare_runs(runs_a: list[dict], runs_b: list[dict], split=None, *, out_dir: str | Path,
                 targets: pd.Series | None = None, metrics=DEFAULT_METRICS, n_boot: int = 10_000,
                 seed: int = 0, level: float = 0.95, check_metrics: bool = True) -> list[dict]:
    """Rows of significance.csv (one per metric) for the runs of setting A against those of B
    (records as :func:`rec_utils.results.find_runs` returns them, lists stored under ``out_dir``).
    See the module docstring for alignment, seed pairing, the CI and the test.

    Raises ValueError: runs of several settings or splits on one side, A and B on different
    splits or protocols, no seed in common, different test sessions, targets that do not
    reproduce a run's stored metric (``check_metrics``).
    """
    a, b = _side(runs_a, "A"), _side(runs_b, "B")
    ra, rb = next(iter(a.values())), next(iter(b.values()))
    fp = ra["split_fingerprint"]
    if rb["split_fingerprint"] != fp or ra["protocol"] != rb["protocol"]:
        raise ValueError(f"A ({ra['protocol']}, split {fp}) and B ({rb['protocol']}, split {rb['split_fingerprint']}) "
                         "are not on the same split")
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError(f"no seed in common: A has {sorted(a)}, B has {sorted(b)}")
    t = _targets(split, targets, fp)
    ref = None
    values = {m: ([], []) for m in metrics}
    for side, runs in ((0, a), (1, b)):
        for s in seeds:
            sid, recs = load_lists(runs[s], out_dir)
            order = np.argsort(sid, kind="stable")
            sid, recs = sid[order], recs[order]
            if ref is None:
                ref = sid
                missing = ~np.isin(ref, t.index.to_numpy())
                if missing.any():
                    raise ValueError(f"{int(missing.sum())} session(s) of the runs have no target, e.g. "
                                     f"{ref[missing][:5].tolist()}")
                tgt = t.reindex(ref).to_numpy()
            elif not np.array_equal(sid, ref):
                raise ValueError(f"{runs[s]['model']} seed {s} was evaluated on other test sessions "
                                 f"({len(sid)} sessions vs {len(ref)}); runs must share the test sessions")
            for m in metrics:
                v = per_session(recs, tgt, m)
                stored = (runs[s].get("metrics") or {}).get(m)
                if check_metrics and stored is not None and abs(float(v.mean()) - float(stored)) > 1e-6:
                    raise ValueError(f"{runs[s]['model']} seed {s}: {m} from the lists and targets is {v.mean():.6f}, "
                                     f"the run stored {stored:.6f}: the targets do not belong to these lists")
                values[m][side].append(v)
    rows = []
    for m in metrics:
        va, vb = (np.mean(values[m][i], axis=0) for i in (0, 1))
        rows.append({"model_a": ra["model"], "model_b": rb["model"], "protocol": ra["protocol"], "metric": m,
                     **paired_stats(va, vb, n_boot=n_boot, seed=seed, level=level), "n_seed_pairs": len(seeds),
                     "test": describe_test(n_boot, seed, level), "label_a": ra.get("variant", "") or "",
                     "label_b": rb.get("variant", "") or "", "split_fingerprint": fp,
                     "setting_id_a": ra["setting_id"], "setting_id_b": rb["setting_id"]})
    return [{c: r[c] for c in SIGNIFICANCE_COLUMNS} for r in rows]


def compare_settings(setting_a: Setting, setting_b: Setting, split, *, out_dir: str | Path, seeds=None,
                     **options) -> list[dict]:
    """:func:`compare_runs` of the runs of two settings stored under ``out_dir`` on ``split``
    (only ``seeds`` when given); ``options`` as there. ValueError when a side has no run."""
    from .results import find_runs

    sides = []
    for s in (setting_a, setting_b):
        runs = [r for r in find_runs(out_dir, setting=s, split_fingerprint=split.fingerprint)
                if seeds is None or int(r["seed"]) in set(seeds)]
        if not runs:
            raise ValueError(f"no stored run of {s.model} ({s.label or 'standard setting'}, id {s.id}) on split "
                             f"{split.fingerprint} under {out_dir}")
        # labelled as the setting given (label fields are presentation, not identity)
        sides.append([{**r, "variant": s.label} for r in runs])
    return compare_runs(*sides, split, out_dir=out_dir, **options)


def read_significance(out_dir: str | Path) -> pd.DataFrame:
    path = Path(out_dir) / "significance.csv"
    if not path.is_file():
        return pd.DataFrame(columns=list(SIGNIFICANCE_COLUMNS))
    table = pd.read_csv(path, dtype={c: str for c in _TEXT})
    table[["label_a", "label_b"]] = table[["label_a", "label_b"]].fillna("")
    return table


def record_significance(rows: list[dict], out_dir: str | Path) -> pd.DataFrame:
    """Write ``rows`` into ``out_dir/significance.csv``, replacing rows of the same
    :data:`KEY_COLUMNS` (atomic, locked); returns the whole table."""
    path = Path(out_dir) / "significance.csv"
    new = pd.DataFrame(rows).reindex(columns=list(SIGNIFICANCE_COLUMNS))
    for c in ("label_a", "label_b"):
        new[c] = new[c].fillna("").astype(str)
    keys = list(KEY_COLUMNS)
    with file_lock(path):
        old = read_significance(out_dir).reindex(columns=list(SIGNIFICANCE_COLUMNS))
        if len(old):
            replaced = set(new[keys].astype(str).apply(tuple, axis=1))
            old = old.loc[~old[keys].astype(str).apply(tuple, axis=1).isin(replaced)]
        table = pd.concat([f for f in (old, new) if len(f)], ignore_index=True) if len(old) else new
        table = table.sort_values(["protocol", "model_a", "label_a", "model_b", "label_b", "metric"],
                                  kind="stable").reset_index(drop=True)
        atomic_write_text(path, table.to_csv(index=False, float_format="%.6g"))
    return table


__all__ = ["DEFAULT_METRICS", "KEY_COLUMNS", "SIGNIFICANCE_COLUMNS", "bootstrap_ci", "compare_runs", "compare_settings",
           "describe_test", "load_lists", "paired_stats", "per_session", "read_significance", "record_significance", "wilcoxon_p"]
