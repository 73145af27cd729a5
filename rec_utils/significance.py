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
* ``diff`` = mean_a − mean_b (positive: A better) of the **per-session paired differences**
  d_i (each session's value averaged over the paired seeds on each side, then A − B).
* **p-value** (:func:`sign_flip_test`): two-sided paired randomisation (sign-flip) test of that
  mean difference: with d̄ the observed mean over n sessions and B = ``n_boot`` random sign vectors
  s (seeded numpy ``default_rng(seed)``, drawn in blocks), p = (1 + #{b: |mean(s_b·d)| ≥ |d̄|}) / (1 + B)
  (ties within 1e-10·max|d| count as ≥). It tests exactly the mean difference the CI is about
  (the old Wilcoxon test on seed-averaged values tested a location shift of another distribution
  and could contradict the CI).
* **95 % CI** (``ci_low``, ``ci_high``): the **inversion of the same test** with the same sign
  vectors: every shift δ the sign-flip test of d − δ does not reject at level 1 − ``level``
  (p(δ) ≥ α). For each sign vector the set of δ where |mean(s_b·(d − δ))| ≥ |d̄ − δ| is an interval
  around d̄ (a quadratic inequality with leading coefficient mean(s_b)² − 1 < 0), so the CI is an
  interval with exact endpoints (order statistics of the roots). Guarantee, tested:
  **p < α if and only if the CI excludes 0** — always, not approximately (an endpoint within
  floating-point rounding of 0 at an exact tie is set to 0 so the two read the same).
* ``boot_ci_low``/``boot_ci_high``: the paired percentile bootstrap CI over sessions
  (:func:`bootstrap_ci`, ``n_boot`` resamples), shown beside it; close to the inverted CI in
  large samples, but only the inverted CI is guaranteed to agree with the p-value.
* **Holm** (:func:`holm`): ``p_holm`` is the Holm–Bonferroni adjusted p within the row's
  ``family`` (all rows of significance.csv with the same family, both metrics included),
  recomputed whenever the file is written.
* **Seed-level view**: ``seed_sd_a``/``seed_sd_b`` = sd over the paired seeds of each side's
  metric, ``seed_diff_mean``/``seed_diff_sd`` = mean and sd of the per-seed differences
  (``seed_diff_mean`` = ``diff``).
* **Pairing** (:func:`rec_utils.pairing.pairing_problems`): ``device_a``/``device_b``,
  ``git_commit_a``/``git_commit_b`` (every commit of a side, ``;``-joined), ``threads_a``/``threads_b``
  and ``code_fingerprint`` (the training code both sides share) are recorded; a pair of runs on
  different devices, thread counts or training code (or with a failed run) gets its reasons in
  ``pairing`` (``pairing="mark"``, the default) or raises (``"refuse"``). :func:`record_significance`
  never writes such a row into significance.csv: it goes to ``significance_refused.csv`` with its
  reasons (no p-value, no CI). Runs of different commits pair when they share the training code
  (:mod:`rec_utils.provenance`).

``significance.csv`` columns: :data:`SIGNIFICANCE_COLUMNS` — model_a, model_b, protocol, metric,
n_sessions, n_seed_pairs, mean_a, mean_b, diff, ci_low, ci_high, p_value, test, label_a, label_b,
split_fingerprint, setting_id_a, setting_id_b, then p_holm, family, boot_ci_low, boot_ci_high, the
seed-level columns and the pairing columns. A row is identified by :data:`KEY_COLUMNS` (model_a,
label_a, model_b, label_b, protocol, metric, split_fingerprint): writing replaces the rows of the
same key (atomic, locked).
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
                        "label_a", "label_b", "split_fingerprint", "setting_id_a", "setting_id_b",
                        "p_holm", "family", "boot_ci_low", "boot_ci_high", "seed_sd_a", "seed_sd_b",
                        "seed_diff_mean", "seed_diff_sd", "device_a", "device_b", "git_commit_a", "git_commit_b",
                        "threads_a", "threads_b", "code_fingerprint", "pairing")
#: Columns of significance_refused.csv: the identity of a refused pair and why (no statistics).
REFUSED_COLUMNS = ("model_a", "model_b", "protocol", "metric", "n_seed_pairs", "mean_a", "mean_b", "label_a",
                   "label_b", "split_fingerprint", "setting_id_a", "setting_id_b", "device_a", "device_b",
                   "git_commit_a", "git_commit_b", "threads_a", "threads_b", "family", "pairing")
DEFAULT_FAMILY = "significance.csv"
KEY_COLUMNS = ("model_a", "label_a", "model_b", "label_b", "protocol", "metric", "split_fingerprint")
_TEXT = ("model_a", "model_b", "protocol", "metric", "test", "label_a", "label_b", "split_fingerprint",
         "setting_id_a", "setting_id_b", "family", "device_a", "device_b", "git_commit_a", "git_commit_b",
         "threads_a", "threads_b", "code_fingerprint", "pairing")
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


def _sign_blocks(n: int, n_perm: int, seed: int, max_cells: int = 4_000_000):
    """Blocks of random ±1 sign vectors (int8, shape (block, n)), ``n_perm`` rows in all,
    from ``default_rng(seed)``; the block size depends on ``n`` only (reproducible)."""
    rng = np.random.default_rng(seed)
    block = max(1, max_cells // max(n, 1))
    for a in range(0, n_perm, block):
        b = min(n_perm, a + block)
        yield (rng.integers(0, 2, size=(b - a, n), dtype=np.int8) * 2 - 1)


def sign_flip_test(d: np.ndarray, n_perm: int = 10_000, seed: int = 0, level: float = 0.95) -> dict:
    """Paired randomisation (sign-flip) test of the mean of ``d`` and its inverted CI.

    Args:
        d: (n,) per-session paired differences.
        n_perm: B random sign vectors; seed: their numpy seed; level: of the CI (α = 1 − level).

    Returns ``{"p_value", "ci_low", "ci_high"}``: p = (1 + #{b: |mean(s_b·d)| ≥ |d̄|}) / (1 + B),
    two-sided; the CI = {δ: p(δ) ≥ α}, p(δ) the same test of d − δ with the same sign vectors
    (module docstring). p < α iff the CI excludes 0. An empty ``d`` gives NaNs; all-zero ``d``
    gives p = 1 and CI [0, 0]. The CI is (−inf, inf) when B is too small for the level
    ((1 + B)·α < 1).
    """
    d = np.asarray(d, dtype=np.float64)
    n = len(d)
    if n == 0:
        return {"p_value": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    dbar = float(d.mean())
    scale = float(np.abs(d).max())
    if scale == 0.0:
        return {"p_value": 1.0, "ci_low": 0.0, "ci_high": 0.0}
    tol = 1e-10 * scale
    A = np.empty(n_perm)  # mean(s_b · d)
    E = np.empty(n_perm)  # mean(s_b · (d − d̄))
    C = np.empty(n_perm)  # mean(s_b)
    centred = d - dbar
    i = 0
    for S in _sign_blocks(n, n_perm, seed):
        k = len(S)
        A[i:i + k] = (S @ d) / n
        E[i:i + k] = (S @ centred) / n
        C[i:i + k] = S.sum(axis=1, dtype=np.int64) / n
        i += k
    p = (1.0 + np.count_nonzero(np.abs(A) >= abs(dbar) - tol)) / (1.0 + n_perm)
    # acceptance set of sign vector b, with u = δ − d̄: |E_b − u·C_b| >= |u|, i.e.
    # (C_b² − 1)u² − 2E_b·C_b·u + E_b² >= 0, roots u = E_b/(C_b − 1) and E_b/(C_b + 1)
    lo, hi = np.full(n_perm, -np.inf), np.full(n_perm, np.inf)
    q = np.abs(C) < 1.0  # |C| = 1 (all signs equal): the inequality holds for every δ
    r1, r2 = E[q] / (C[q] - 1.0), E[q] / (C[q] + 1.0)
    lo[q], hi[q] = dbar + np.minimum(r1, r2), dbar + np.maximum(r1, r2)
    alpha = 1.0 - level
    m = int(np.ceil(alpha * (1.0 + n_perm) - 1.0 - 1e-9))  # δ accepted iff #{b: δ in [lo_b, hi_b]} >= m
    if m <= 0:
        return {"p_value": float(p), "ci_low": float("-inf"), "ci_high": float("inf")}
    ci_low = float(np.partition(lo, m - 1)[m - 1])            # m-th smallest lower root
    ci_high = float(np.partition(hi, n_perm - m)[n_perm - m])  # m-th largest upper root
    accepted = p >= alpha - 1e-15
    # an exact tie (|A_b| = |d̄|) puts a root at 0: rounding may leave it a hair off; read as 0
    snap = 1e-8 * scale
    if accepted and not ci_low <= 0.0 <= ci_high:
        if -snap <= ci_high < 0.0:
            ci_high = 0.0
        elif 0.0 < ci_low <= snap:
            ci_low = 0.0
        else:
            raise RuntimeError(f"sign-flip CI [{ci_low}, {ci_high}] disagrees with p = {p} beyond rounding")
    if accepted:  # rounding residue of an endpoint at 0 (e.g. -2e-19) reads as 0
        ci_low = 0.0 if -snap <= ci_low < 0.0 and ci_high >= 0.0 else ci_low
        ci_high = 0.0 if 0.0 < ci_high <= snap and ci_low <= 0.0 else ci_high
    elif ci_low <= 0.0 <= ci_high:
        if 0.0 <= ci_high <= snap:
            ci_high = -np.nextafter(0.0, 1.0)
        elif -snap <= ci_low <= 0.0:
            ci_low = np.nextafter(0.0, 1.0)
        else:
            raise RuntimeError(f"sign-flip CI [{ci_low}, {ci_high}] disagrees with p = {p} beyond rounding")
    return {"p_value": float(p), "ci_low": ci_low, "ci_high": ci_high}


def holm(p_values) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down; NaN stays NaN and does not count): sorted
    ascending p_(1) ≤ … ≤ p_(m), adjusted p_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j))."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adj
    return out


def paired_stats(a: np.ndarray, b: np.ndarray, *, n_boot: int = 10_000, seed: int = 0, level: float = 0.95) -> dict:
    """mean_a, mean_b, diff (= mean_a − mean_b), the sign-flip p_value and its inverted CI
    (ci_low, ci_high), the bootstrap CI (boot_ci_low, boot_ci_high) and n_sessions of paired
    per-session values ``a`` and ``b`` (1-d, one length; ValueError otherwise)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired values must be two 1-d arrays of one length, got {a.shape} and {b.shape}")
    d = a - b
    blo, bhi = bootstrap_ci(d, n_boot, seed, level)
    return {"n_sessions": len(d), "mean_a": float(a.mean()) if len(a) else float("nan"),
            "mean_b": float(b.mean()) if len(b) else float("nan"), "diff": float(d.mean()) if len(d) else float("nan"),
            **sign_flip_test(d, n_boot, seed, level), "boot_ci_low": blo, "boot_ci_high": bhi}


def describe_test(n_boot: int = 10_000, seed: int = 0, level: float = 0.95) -> str:
    """The ``test`` column: which test and CI a row holds."""
    return (f"paired sign-flip randomisation two-sided ({n_boot} sign vectors, seed {seed}); {level:.0%} CI = "
            f"inverted sign-flip test; boot_ci = paired percentile bootstrap ({n_boot} resamples)")


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


def _provenance(runs: dict[int, dict], seeds) -> dict:
    from .provenance import run_code_fingerprint

    rs = [runs[s] for s in seeds]
    join = lambda key: ";".join(sorted({str(r.get(key)) for r in rs}))  # noqa: E731
    return {"device": join("device"), "git_commit": join("git_commit"), "threads": join("cpu_threads"),
            "code": ";".join(sorted({str(run_code_fingerprint(r)) for r in rs}))}


def compare_runs(runs_a: list[dict], runs_b: list[dict], split=None, *, out_dir: str | Path,
                 targets: pd.Series | None = None, metrics=DEFAULT_METRICS, n_boot: int = 10_000,
                 seed: int = 0, level: float = 0.95, check_metrics: bool = True, pairing: str = "mark",
                 same_settings: bool = False, tuned_fields=(), family: str = DEFAULT_FAMILY) -> list[dict]:
    """Rows of significance.csv (one per metric) for the runs of setting A against those of B
    (records as :func:`rec_utils.results.find_runs` returns them, lists stored under ``out_dir``).
    See the module docstring for alignment, seed pairing, the test, the CIs and the pairing.

    Args:
        pairing: ``"mark"`` (reasons why the runs do not pair go into the ``pairing`` column;
            :func:`record_significance` keeps such rows out of significance.csv), ``"refuse"``
            (raise :class:`rec_utils.pairing.PairingRefused`) or ``"off"``.
        same_settings: also require the training settings to be equal but for the fields under
            test (init arms of one model, :func:`rec_utils.pairing.pairing_problems`);
            ``tuned_fields`` may differ when both sides were selected by searches of one budget.
        family: the Holm family of the rows (:func:`record_significance` adjusts within it).

    Raises ValueError: runs of several settings or splits on one side, A and B on different
    splits or protocols, no seed in common, different test sessions, targets that do not
    reproduce a run's stored metric (``check_metrics``); PairingRefused (``pairing="refuse"``).
    """
    from .pairing import PairingRefused, pairing_problems

    if pairing not in ("mark", "refuse", "off"):
        raise ValueError(f"pairing must be 'mark', 'refuse' or 'off', got {pairing!r}")
    a, b = _side(runs_a, "A"), _side(runs_b, "B")
    ra, rb = next(iter(a.values())), next(iter(b.values()))
    fp = ra["split_fingerprint"]
    if rb["split_fingerprint"] != fp or ra["protocol"] != rb["protocol"]:
        raise ValueError(f"A ({ra['protocol']}, split {fp}) and B ({rb['protocol']}, split {rb['split_fingerprint']}) "
                         "are not on the same split")
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError(f"no seed in common: A has {sorted(a)}, B has {sorted(b)}")
    problems = []
    if pairing != "off":
        problems = pairing_problems([a[s] for s in seeds], [b[s] for s in seeds], tuned_fields=tuned_fields,
                                    check_settings=same_settings)
        if problems and pairing == "refuse":
            raise PairingRefused(f"{ra['model']} ({ra.get('variant') or 'standard'}) vs {rb['model']} "
                                 f"({rb.get('variant') or 'standard'}) do not pair: " + "; ".join(problems))
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
    pa, pb = _provenance(a, seeds), _provenance(b, seeds)
    code = pa["code"] if pa["code"] == pb["code"] and "None" not in pa["code"] else ""
    rows = []
    for m in metrics:
        va, vb = (np.mean(values[m][i], axis=0) for i in (0, 1))
        sa = np.array([v.mean() for v in values[m][0]])
        sb = np.array([v.mean() for v in values[m][1]])
        sd = lambda x: float(np.std(x, ddof=1)) if len(x) > 1 else 0.0  # noqa: E731
        rows.append({"model_a": ra["model"], "model_b": rb["model"], "protocol": ra["protocol"], "metric": m,
                     **paired_stats(va, vb, n_boot=n_boot, seed=seed, level=level), "n_seed_pairs": len(seeds),
                     "test": describe_test(n_boot, seed, level), "label_a": ra.get("variant", "") or "",
                     "label_b": rb.get("variant", "") or "", "split_fingerprint": fp,
                     "setting_id_a": ra["setting_id"], "setting_id_b": rb["setting_id"], "p_holm": float("nan"),
                     "family": family, "seed_sd_a": sd(sa), "seed_sd_b": sd(sb),
                     "seed_diff_mean": float((sa - sb).mean()), "seed_diff_sd": sd(sa - sb),
                     "device_a": pa["device"], "device_b": pb["device"], "git_commit_a": pa["git_commit"],
                     "git_commit_b": pb["git_commit"], "threads_a": pa["threads"], "threads_b": pb["threads"],
                     "code_fingerprint": code, "pairing": "; ".join(problems)})
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


def read_significance(out_dir: str | Path, name: str = "significance.csv") -> pd.DataFrame:
    """significance.csv (or ``name``, e.g. ``significance_refused.csv``) under ``out_dir``; rows
    written before a column existed read it as empty."""
    cols = list(SIGNIFICANCE_COLUMNS if name == "significance.csv" else REFUSED_COLUMNS)
    path = Path(out_dir) / name
    if not path.is_file():
        return pd.DataFrame(columns=cols)
    table = pd.read_csv(path, dtype={c: str for c in _TEXT})
    for c in ("label_a", "label_b", "pairing", "family"):
        if c in table:
            table[c] = table[c].fillna("")
    return table


def _write(path: Path, new: pd.DataFrame, columns, keys, adjust: bool) -> pd.DataFrame:
    name = path.name
    with file_lock(path):
        old = read_significance(path.parent, name).reindex(columns=list(columns))
        if len(old):
            replaced = set(new[keys].astype(str).apply(tuple, axis=1))
            old = old.loc[~old[keys].astype(str).apply(tuple, axis=1).isin(replaced)]
        table = pd.concat([f for f in (old, new) if len(f)], ignore_index=True) if len(old) else new
        for c in ("label_a", "label_b", "pairing"):
            table[c] = table[c].fillna("").astype(str)
        if adjust:
            table["family"] = table["family"].fillna("").replace("", DEFAULT_FAMILY)
            table["p_holm"] = np.nan
            for _, idx in table.groupby("family").groups.items():
                table.loc[idx, "p_holm"] = holm(table.loc[idx, "p_value"].to_numpy(dtype=float))
        table = table.sort_values(["protocol", "model_a", "label_a", "model_b", "label_b", "metric"],
                                  kind="stable").reset_index(drop=True)
        atomic_write_text(path, table.to_csv(index=False, float_format="%.6g"))
    return table


def record_significance(rows: list[dict], out_dir: str | Path) -> pd.DataFrame:
    """Write ``rows`` into ``out_dir/significance.csv``, replacing rows of the same
    :data:`KEY_COLUMNS` (atomic, locked), and recompute ``p_holm`` within each family; rows whose
    ``pairing`` names a problem go to ``significance_refused.csv`` instead (identity and reasons,
    no statistics) and leave significance.csv. Returns the whole significance table."""
    keys = list(KEY_COLUMNS)
    new = pd.DataFrame(rows).reindex(columns=list(SIGNIFICANCE_COLUMNS))
    for c in ("label_a", "label_b", "pairing"):
        new[c] = new[c].fillna("").astype(str)
    bad = new["pairing"] != ""
    out_dir = Path(out_dir)
    good_path, refused_path = out_dir / "significance.csv", out_dir / "significance_refused.csv"
    if bad.any():
        _write(refused_path, new.loc[bad, list(REFUSED_COLUMNS)].reset_index(drop=True), REFUSED_COLUMNS, keys, False)
    if (~bad).any() and refused_path.is_file():  # a pair that now pairs leaves the refused list
        with file_lock(refused_path):
            old = read_significance(out_dir, refused_path.name)
            gone = set(new.loc[~bad, keys].astype(str).apply(tuple, axis=1))
            keep = old.loc[~old[keys].astype(str).apply(tuple, axis=1).isin(gone)] if len(old) else old
            if len(keep) != len(old):
                atomic_write_text(refused_path, keep.to_csv(index=False, float_format="%.6g"))
    # rows refused now leave significance.csv (their key), the others replace theirs
    table = _write(good_path, new.loc[~bad].reset_index(drop=True), SIGNIFICANCE_COLUMNS, keys, True)
    if bad.any():
        drop = set(new.loc[bad, keys].astype(str).apply(tuple, axis=1))
        hit = table[keys].astype(str).apply(tuple, axis=1).isin(drop) if len(table) else pd.Series(dtype=bool)
        if len(table) and hit.any():
            with file_lock(good_path):
                table = table.loc[~hit].reset_index(drop=True)
                for _, idx in table.groupby("family").groups.items():
                    table.loc[idx, "p_holm"] = holm(table.loc[idx, "p_value"].to_numpy(dtype=float))
                atomic_write_text(good_path, table.to_csv(index=False, float_format="%.6g"))
    return table


def p_disagrees_with_ci(table: pd.DataFrame, level: float = 0.95) -> pd.Series:
    """Rows whose p-value and CI read differently (p < 1 − level but the CI covers 0, or the
    reverse); empty for every row this module writes."""
    alpha = 1.0 - level
    excludes = (table["ci_low"] > 0) | (table["ci_high"] < 0)
    return (table["p_value"] < alpha) != excludes


__all__ = ["DEFAULT_FAMILY", "DEFAULT_METRICS", "KEY_COLUMNS", "REFUSED_COLUMNS", "SIGNIFICANCE_COLUMNS", "bootstrap_ci",
           "compare_runs", "compare_settings", "describe_test", "holm", "load_lists", "p_disagrees_with_ci",
           "paired_stats", "per_session", "read_significance", "record_significance", "sign_flip_test", "wilcoxon_p"]
