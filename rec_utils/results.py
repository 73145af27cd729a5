"""The results contract: one JSON record per run = (setting, split fingerprint, seed), and the
one table every notebook appends to, ``results/<dataset>/summary.csv``.

Layout under ``results/<dataset>/``::

    runs/<model>/<protocol>__<setting_id>__<split_fingerprint>__seed<seed>.json   one run
    runs/<model>/<protocol>__<setting_id>__<split_fingerprint>__seed<seed>.npz    its top-k lists
    summary.csv     one row per (model, protocol, label, split fingerprint, setting id, aggregate)

The study writes there (its runner passes ``RESULTS_DIR``); a notebook run without one (Jupyter
Lab, ``make run``) writes the same layout into ``results/scratch/<UTC time>/<dataset>/`` and only
reads the study's folder (:func:`output_dirs`).

A run's file name holds everything it depends on: the setting (:mod:`rec_utils.setting`: model,
config, preset, overrides, ties, samples, ...), the split fingerprint (the data's content) and
the seed, so no run ever replaces a different one. Runs are found by what they are
(:func:`find_runs` by model, protocol, fingerprint, setting), never by the notebook that made them.

A summary row aggregates **every stored seed** of its setting on its split (whichever plan entry
or notebook call stored them): ``aggregate="mean"`` holds the mean over seeds with ``<metric>_sd``
columns (sample sd, 0 for one seed); ``aggregate="best_of_n_on_test"`` is the paper's protocol
(the seed with the highest **test** NDCG@20) and is only a labelled extra row. Models that
early-stop on a validation score (the neural ones) also fill :data:`VALIDATION_COLUMNS`: their
validation NDCG@20 beside MostPopular's on the same validation cases, and ``below_most_popular``
(the flag the tables show: decided on validation, never on test). The row's
``variant`` is the setting's label; ``notebook`` says which notebook recorded it (provenance,
not identity). Writes are atomic and locked, so an interrupted batch resumes by skipping the
runs already on disk.
"""
from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import METRIC_COLUMNS
from .paths import RESULTS_ROOT, results_dir
from .setting import Setting
from .utils import atomic_write_bytes, atomic_write_text, canonical_json, file_lock, safe_filename, short_hash

SD_COLUMNS = tuple(f"{m}_sd" for m in METRIC_COLUMNS)
#: What makes a summary row unique (with ``aggregate``): two settings that happen to share a
#: label (e.g. the winners of two different searches) keep a row each; reports show the latest.
IDENTITY_COLUMNS = ("model", "protocol", "variant", "split_fingerprint", "setting_id")
KEY_COLUMNS = (*IDENTITY_COLUMNS, "aggregate")
SUMMARY_COLUMNS = (
    "dataset", "notebook", "model", "variant", "protocol", "aggregate", "n_seeds", "seeds",
    *METRIC_COLUMNS, *SD_COLUMNS,
    "n_test_sessions", "split_fingerprint", "setting_id", "config", "setting",
    "git_commit", "wall_s", "device", "created",
    "val_ndcg@20", "val_ndcg@20_most_popular", "below_most_popular",
)
#: The validation check of a summary row (:func:`validation_columns`): the setting's validation
#: NDCG@20 (mean over its seeds), MostPopular's on the same validation cases, and whether the
#: first is at or below the second (the configuration did not transfer: tune it). NaN for models
#: without a validation score (those that do not early-stop on one).
VALIDATION_COLUMNS = ("val_ndcg@20", "val_ndcg@20_most_popular", "below_most_popular")


#: Columns read back as text (a fingerprint like "409566827248" must not become a number).
TEXT_COLUMNS = {c: str for c in ("variant", "seeds", "split_fingerprint", "setting_id", "config_id", "git_commit",
                                 "config", "setting")}


#: Where ad-hoc runs go (ignored by git): one folder per run, ``<UTC time>/<dataset>/``.
SCRATCH_ROOT = RESULTS_ROOT / "scratch"
#: Environment variable naming the scratch folder of this run (``make run`` sets it, so the
#: executed notebook and its results land in one folder); unset, a new timestamped one is used.
SCRATCH_ENV = "REC_UTILS_SCRATCH"


def scratch_dir() -> Path:
    """This run's scratch folder: ``$REC_UTILS_SCRATCH``, else ``results/scratch/<UTC time>``."""
    given = os.environ.get(SCRATCH_ENV)
    return Path(given) if given else SCRATCH_ROOT / time.strftime("%Y%m%d-%H%M%SZ", time.gmtime())


def output_dirs(dataset: str, given: str | Path | None = None) -> tuple[Path, Path | None]:
    """A notebook's ``(out_dir, reuse_from)`` for its ``RESULTS_DIR`` parameter ``given``.

    * ``given`` (the study runner passes ``results/<dataset>``, CI ``build/ci/<dataset>``):
      results go there, and nothing is read from elsewhere (``reuse_from`` is None);
    * None (an ad-hoc run, Jupyter Lab, ``make run``): results go to
      ``results/scratch/<UTC time>/<dataset>/`` and ``reuse_from`` is the study's
      ``results/<dataset>``, whose stored runs :func:`rec_utils.evaluation.run_seeds` may copy
      (same setting, split fingerprint and seed) instead of recomputing them. Nothing is ever
      written there: the study's tables change only through the study.
    """
    if given is not None and str(given) != "":
        return Path(given), None
    return scratch_dir() / Path(str(dataset)).name, results_dir(dataset)


def notebook_output(dataset: str, given: str | Path | None = None) -> tuple[Path, Path | None]:
    """The setup every notebook does after its parameters: :func:`output_dirs` for its
    ``RESULTS_DIR`` (``given``), the output folder created, and a line saying where results go
    and where matching stored runs are copied from. Returns ``(out_dir, reuse_from)``."""
    out, reuse = output_dirs(dataset, given)
    out.mkdir(parents=True, exist_ok=True)
    print(f"results go to {out}" + (f" (matching runs stored in {reuse} are copied, not recomputed)" if reuse else ""))
    return out, reuse


class RecordingError(AssertionError):
    """A notebook's final check found a setting not (fully) recorded in summary.csv."""


def check_recorded(out_dir: str | Path, settings: dict, split, *, min_seeds=1, best_of_n: bool = False) -> pd.DataFrame:
    """The check every notebook ends with: each setting of ``settings`` (name → Setting) has
    exactly one ``mean`` row on ``split`` in ``out_dir/summary.csv`` with at least ``min_seeds``
    seeds (a number, or a function of the setting), all 12 metrics and the split's number of
    test sessions; with ``best_of_n`` also its ``best_of_<n>_on_test`` row (n ≥ 2).

    Returns the mean rows (one per setting, in order). Raises :class:`RecordingError` naming the
    setting, its id and label, and what is missing."""
    written = read_summary(out_dir)
    written = written[written["split_fingerprint"] == split.fingerprint]
    rows = []
    for name, setting in settings.items():
        mine = written[written["setting_id"] == setting.id]
        means = mine[mine["aggregate"] == "mean"]
        what = f"{name}: setting {setting.id} ({setting.label!r})"
        if len(means) != 1:
            raise RecordingError(f"{what}: expected one mean row, found {len(means)}")
        row = means.iloc[0]
        need = min_seeds(setting) if callable(min_seeds) else int(min_seeds)
        n = int(row["n_seeds"])
        if n < need:
            raise RecordingError(f"{what}: expected at least {need} seed(s) in the row, found {n}")
        if best_of_n and n >= 2 and (mine["aggregate"] == f"best_of_{n}_on_test").sum() != 1:
            raise RecordingError(f"{what}: expected a best_of_{n}_on_test row, found {mine['aggregate'].tolist()}")
        missing = [c for c in METRIC_COLUMNS if pd.isna(row[c])]
        if missing:
            raise RecordingError(f"{what}: metrics missing in the row: {missing}")
        if int(row["n_test_sessions"]) != len(split.test):
            raise RecordingError(f"{what}: the row has {row['n_test_sessions']} test sessions, the split {len(split.test)}")
        rows.append(row)
    return pd.DataFrame(rows)


def reuse_file(path: str | Path, out_dir: str | Path, reuse_from: str | Path | None) -> Path:
    """``path`` (a resumable file under ``out_dir``, e.g. a grid CSV of finished cells keyed by
    what they depend on); when it is missing there and ``reuse_from`` holds the same file at the
    same relative place, that file is copied first (read-only for ``reuse_from``)."""
    path = Path(path)
    if reuse_from is None or path.exists():
        return path
    source = Path(reuse_from) / path.relative_to(out_dir)
    if source.is_file() and source.resolve() != path.resolve():
        atomic_write_bytes(path, source.read_bytes())
    return path


def artifact_tag(protocol: str = "temporal", label: str = "") -> str:
    """What tells a per-setting artifact apart: ``""`` for the standard full temporal split,
    else the protocol (when not temporal) and the label, e.g. ``"loo,tie_order=file"``."""
    return ",".join(filter(None, ["" if protocol == "temporal" else protocol, label]))


def artifact_path(out_dir: Path, stem: str, protocol: str = "temporal", label: str = "", ext: str = ".csv") -> Path:
    """Path of a per-setting artifact (a table or figure a notebook writes next to summary.csv),
    the one naming rule of side files: ``<stem><ext>`` for the standard full temporal split, else
    ``<stem>__<id><ext>`` with ``id`` the short hash of :func:`artifact_tag` (10 hex digits), so
    a run on another protocol, sample or tie order never overwrites the study's file and no name
    grows with the label. ``results/index.csv`` (:mod:`rec_utils.inventory`) maps every file back
    to its protocol and label."""
    tag = artifact_tag(protocol, label)
    return Path(out_dir) / (f"{stem}__{short_hash(tag)[:10]}{ext}" if tag else f"{stem}{ext}")


#: Columns a per-run side table (learning curves, ...) carries so it says what it is by itself.
SIDE_TABLE_COLUMNS = ("protocol", "setting_id", "label")


def save_side_table(out_dir: Path, stem: str, table: pd.DataFrame) -> Path:
    """Write a side table of stored runs (learning curves and the like) as
    ``<stem>__<id>.csv``, the same naming rule as :func:`artifact_path`, with ``id`` the 10-digit
    short hash of the protocol(s) and the sorted setting ids of its rows: short, derived from the
    settings, and never overwritten by a table of other runs. The label stays inside the file
    (columns :data:`SIDE_TABLE_COLUMNS`, required in ``table``), so ``results/index.csv`` reads it
    from there. Returns the CSV's path (a figure of the same table: ``.with_suffix(".png")``).

    Raises:
        ValueError: ``table`` lacks one of :data:`SIDE_TABLE_COLUMNS` (the message names it).
    """
    missing = [c for c in SIDE_TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"save_side_table({stem!r}): the table needs the columns {missing} (what its rows are)")
    tag = "|".join(sorted(set(table["protocol"].astype(str)))) + ":" + ",".join(sorted(set(table["setting_id"].astype(str))))
    path = Path(out_dir) / f"{stem}__{short_hash(tag)[:10]}.csv"
    cols = list(SIDE_TABLE_COLUMNS) + [c for c in table.columns if c not in SIDE_TABLE_COLUMNS]
    atomic_write_text(path, table[cols].to_csv(index=False))
    return path


def run_stem(setting: Setting, split_fingerprint: str, seed: int) -> str:
    return f"{setting.protocol}__{setting.id}__{split_fingerprint}__seed{int(seed)}"


def run_path(out_dir: Path, setting: Setting, split_fingerprint: str, seed: int) -> Path:
    """Where the run (setting, split, seed) is stored under ``out_dir``."""
    return Path(out_dir) / "runs" / safe_filename(setting.model) / f"{run_stem(setting, split_fingerprint, seed)}.json"


def save_run(record: dict, out_dir: Path, recs: np.ndarray | None = None,
             scores: np.ndarray | None = None, session_ids: np.ndarray | None = None) -> Path:
    """Write one run record (and its recommendation lists) atomically; returns the JSON path."""
    path = run_path(out_dir, Setting.from_dict(record["setting"]), record["split_fingerprint"], record["seed"])
    if recs is not None:
        buf = io.BytesIO()
        arrays = {"recs": np.asarray(recs, dtype=np.int32 if np.max(recs, initial=0) < 2**31 else np.int64)}
        if scores is not None:
            arrays["scores"] = np.asarray(scores, dtype=np.float32)
        if session_ids is not None:
            arrays["session_ids"] = np.asarray(session_ids, dtype=np.int64)
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(path.with_suffix(".npz"), buf.getvalue())
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True, default=_json_default))
    return path


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def load_run(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def load_runs(out_dir: Path) -> list[dict]:
    """Every readable run record under ``out_dir/runs`` (unreadable files are skipped)."""
    base = Path(out_dir) / "runs"
    return [r for p in sorted(base.glob("*/*.json")) if (r := load_run(p)) is not None]


def find_runs(out_dir: Path, *, setting: Setting | str | None = None, model: str | None = None,
              protocol: str | None = None, split_fingerprint: str | None = None, **setting_fields) -> list[dict]:
    """Stored runs by what they are: a setting (or its id), model, protocol, split fingerprint,
    or any setting field (``tie_order="file"``, ``preset="beauty"``, ...); sorted by seed."""
    sid = setting.id if isinstance(setting, Setting) else setting
    out = []
    for r in load_runs(out_dir):
        st = r.get("setting") or {}
        if sid is not None and r.get("setting_id") != sid:
            continue
        if model is not None and r.get("model") != model:
            continue
        if protocol is not None and r.get("protocol") != protocol:
            continue
        if split_fingerprint is not None and r.get("split_fingerprint") != split_fingerprint:
            continue
        if any(st.get(k) != v for k, v in setting_fields.items()):
            continue
        out.append(r)
    return sorted(out, key=lambda r: int(r["seed"]))


def latest_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The latest row (by ``created``) per (model, protocol, label, aggregate) of a summary table,
    in file order, ``variant`` NaN → ""; a label with rows of several split fingerprints (older
    data) keeps the newest."""
    s = summary.copy()
    if s.empty:
        return s
    s["variant"] = s["variant"].fillna("").astype(str)
    s = s.sort_values("created", kind="stable").drop_duplicates(["model", "protocol", "variant", "aggregate"], keep="last")
    return s.sort_index()


def run_validation(run: dict) -> dict | None:
    """A run's validation check (``fit_info["validation"]``, written by the neural models'
    :func:`rec_utils.models.neural.base.validation_record`), or None where the model has none."""
    v = (run.get("fit_info") or {}).get("validation") if isinstance(run.get("fit_info"), dict) else None
    return v if isinstance(v, dict) and "ndcg@20" in v and "most_popular_ndcg@20" in v else None


def below_most_popular(score: float, reference: float):
    """True where ``score`` is at or below MostPopular's ``reference`` (both validation scores),
    False where above, NaN where either is missing."""
    if score is None or reference is None or score != score or reference != reference:
        return np.nan
    return bool(score <= reference)


def validation_columns(runs: list[dict]) -> dict:
    """The :data:`VALIDATION_COLUMNS` of a setting's runs: validation NDCG@20 and MostPopular's
    on the same cases, each the mean over the seeds that have a validation check (each seed has
    its own inner-validation sessions, so both means are over the same cases), and the flag."""
    checks = [v for v in map(run_validation, runs) if v is not None]
    if not checks:
        return {"val_ndcg@20": np.nan, "val_ndcg@20_most_popular": np.nan, "below_most_popular": np.nan}
    score = float(np.mean([v["ndcg@20"] for v in checks]))
    ref = float(np.mean([v["most_popular_ndcg@20"] for v in checks]))
    return {"val_ndcg@20": score, "val_ndcg@20_most_popular": ref, "below_most_popular": below_most_popular(score, ref)}


def summary_rows(runs: list[dict]) -> list[dict]:
    """Mean ± sd row (and a best-of-n-on-test row when n > 1) for runs of one configuration."""
    if not runs:
        return []
    first = runs[0]
    fps = {r["split_fingerprint"] for r in runs}
    if len(fps) > 1:
        raise ValueError(f"runs of {first['model']} mix split fingerprints {sorted(fps)}")
    ids = {r["setting_id"] for r in runs}
    if len(ids) > 1:
        raise ValueError(f"runs of {first['model']} mix settings {sorted(ids)}")
    seeds = [int(r["seed"]) for r in runs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"runs of {first['model']} repeat a seed: {sorted(seeds)}")
    m = pd.DataFrame([r["metrics"] for r in runs])[list(METRIC_COLUMNS)]
    seeds = sorted(seeds)
    base = {
        "dataset": first["dataset"], "notebook": first["notebook"], "model": first["model"],
        "variant": first.get("variant", ""), "protocol": first["protocol"],
        "n_seeds": len(runs), "seeds": " ".join(map(str, seeds)),
        "n_test_sessions": first["n_test_sessions"], "split_fingerprint": first["split_fingerprint"],
        "setting_id": first["setting_id"],
        "config": json.dumps(first["config"], sort_keys=True, default=str),
        "setting": canonical_json(first["setting"]),
        "git_commit": ",".join(sorted({r["git_commit"] for r in runs})),
        "wall_s": round(float(np.mean([r["wall_s"] for r in runs])), 2),
        "device": ",".join(sorted({r["device"] for r in runs})),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **validation_columns(runs),
    }
    mean_row = {**base, "aggregate": "mean", **m.mean().to_dict(),
                **{f"{c}_sd": (m[c].std(ddof=1) if len(m) > 1 else 0.0) for c in METRIC_COLUMNS}}
    rows = [mean_row]
    if len(runs) > 1:
        best = int(np.argmax(m["ndcg@20"].to_numpy()))
        rows.append({**base, "aggregate": f"best_of_{len(runs)}_on_test", "n_seeds": len(runs),
                     "seeds": str(runs[best]["seed"]), **m.iloc[best].to_dict(),
                     **{f"{c}_sd": np.nan for c in METRIC_COLUMNS}})
    return rows


def read_summary(out_dir: Path) -> pd.DataFrame:
    path = Path(out_dir) / "summary.csv"
    if not path.is_file():
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    return pd.read_csv(path, dtype=TEXT_COLUMNS)


def update_summary(rows: list[dict], out_dir: Path) -> pd.DataFrame:
    """Replace the rows with the same identity (model, protocol, label, split fingerprint) in
    ``summary.csv`` (atomic, locked). Every ``aggregate`` row of a replaced identity goes, so a
    rerun with fewer seeds cannot leave a stale best-of-n row behind; rows of other settings,
    samples or data stay."""
    path = Path(out_dir) / "summary.csv"
    new = pd.DataFrame(rows)
    for c in SUMMARY_COLUMNS:
        if c not in new.columns:
            new[c] = np.nan
    new["variant"] = new["variant"].fillna("").astype(str)
    keys = list(IDENTITY_COLUMNS)
    with file_lock(path):
        old = read_summary(out_dir)
        old["variant"] = old["variant"].fillna("").astype(str)
        if len(old):
            replaced = old[keys].apply(tuple, axis=1).isin(set(new[keys].apply(tuple, axis=1)))
            old = old.loc[~replaced]
        extra = [c for c in list(old.columns) + list(new.columns) if c not in SUMMARY_COLUMNS]
        cols = list(SUMMARY_COLUMNS) + sorted(set(extra))
        frames = [f for f in (old, new) if len(f)]
        table = pd.concat(frames, ignore_index=True).reindex(columns=cols)
        table = table.sort_values(["notebook", "protocol", "model", "variant", "aggregate"],
                                  kind="stable").reset_index(drop=True)
        atomic_write_text(path, table.to_csv(index=False, float_format="%.6g"))
    return table


def record(runs: list[dict], out_dir: Path) -> pd.DataFrame:
    """Write the summary rows of the settings of ``runs`` into ``summary.csv``: each row
    aggregates **every stored seed** of its setting on its split, not only the given runs (so
    plan entries that run seeds 0-2 and then 3-5 add up to one six-seed row)."""
    out_dir = Path(out_dir)
    rows = []
    groups = {(r["setting_id"], r["split_fingerprint"]) for r in runs}
    for sid, fp in sorted(groups):
        stored = find_runs(out_dir, setting=sid, split_fingerprint=fp)
        given = [r for r in runs if (r["setting_id"], r["split_fingerprint"]) == (sid, fp)]
        seeds = {int(r["seed"]) for r in stored}
        stored += [r for r in given if int(r["seed"]) not in seeds]  # runs not (yet) under out_dir/runs
        # the row is labelled as the given runs are (a label field is presentation, not identity)
        label = {"variant": given[0].get("variant", ""), "setting": given[0]["setting"]}
        rows += summary_rows([{**r, **label} for r in sorted(stored, key=lambda r: int(r["seed"]))])
    return update_summary(rows, out_dir)
