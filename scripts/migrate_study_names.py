"""Migrate Optuna studies stored under a name longer than
:data:`rec_utils.tuning.optuna_search.STUDY_NAME_MAX` to their short name
(:func:`rec_utils.tuning.optuna_search.short_study_name`), so that a resumed search finds them and
every path under results/ stays under :data:`rec_utils.inventory.MAX_PATH`.

For each ``results/<dataset>/tuning/<long name>.db``: the study is copied with every trial and
attribute into ``<short name>.db`` (``optuna.copy_study``), the copy's trials are checked against
the original's (number, state, value, parameters), and only then the old file is removed; its side
files (``<long name>__trials.csv``, ``__comparison.csv``, figures) are renamed, and the
``study_name`` of the tuned configurations under ``results/<dataset>/configs/`` that name it is
updated (nothing else in them changes). Idempotent: a second run finds nothing to do.

    .venv/bin/python scripts/migrate_study_names.py [--results results] [--dry-run]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rec_utils.tuning.optuna_search import STUDY_NAME_MAX, short_study_name  # noqa: E402
from rec_utils.utils import atomic_write_text  # noqa: E402


def _trials(study) -> list[tuple]:
    return [(t.number, t.state.name, t.value, json.dumps(t.params, sort_keys=True)) for t in study.trials]


def migrate_db(db: Path, dry_run: bool = False) -> str | None:
    """Migrate one SQLite study file; returns the new name, or None when its name is short."""
    import optuna

    old = db.stem
    if len(old) <= STUDY_NAME_MAX:
        return None
    new = short_study_name(old)
    target = db.with_name(f"{new}.db")
    if dry_run:
        return new
    src = f"sqlite:///{db.resolve()}"
    dst = f"sqlite:///{target.resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not target.exists():
        optuna.copy_study(from_study_name=old, from_storage=src, to_storage=dst, to_study_name=new)
    a = optuna.load_study(study_name=old, storage=src)
    b = optuna.load_study(study_name=new, storage=dst)
    if _trials(a) != _trials(b) or a.user_attrs != b.user_attrs:
        raise SystemExit(f"{db}: the copy in {target} differs from the original; nothing removed")
    db.unlink()
    for side in sorted(db.parent.glob(f"{old}__*")):
        side.rename(side.with_name(new + side.name[len(old):]))
    for cfg in sorted((db.parent.parent / "configs").glob("*.json")):
        doc = json.loads(cfg.read_text())
        if doc.get("study_name") == old:
            doc["study_name"] = new
            atomic_write_text(cfg, json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    return new


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--dry-run", action="store_true", help="list what would be migrated")
    a = ap.parse_args(argv)
    n = 0
    for db in sorted(a.results.glob("*/tuning/*.db")):
        new = migrate_db(db, a.dry_run)
        if new:
            n += 1
            print(f"{db.relative_to(a.results)} -> {new}.db")
    print(f"{n} stud{'y' if n == 1 else 'ies'} {'to migrate' if a.dry_run else 'migrated'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
