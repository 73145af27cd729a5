"""Print the environment that names this checkout's commit on a copy of the tree without ``.git``
(a GPU machine that receives the files, not the repository)::

    env $(python scripts/commit_env.py) python -m rec_utils.study plans/paper.yaml --only ...

Refuses when ``rec_utils``, ``notebooks`` or ``plans`` have uncommitted changes: the commit would
not name the code. On the copy, :func:`rec_utils.utils.git_commit` returns the commit only when
the copy's :func:`rec_utils.utils.tree_fingerprint` equals the printed one.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rec_utils.utils import COMMIT_ENV, PROJECT_ROOT, TREE_FINGERPRINT_ENV, git_commit, tree_fingerprint  # noqa: E402


def main() -> int:
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "rec_utils", "notebooks", "plans"], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, check=True).stdout.strip()
    commit = git_commit()
    if dirty or commit == "unknown" or commit.endswith("-dirty"):
        print(f"commit_env.py: commit {commit} with uncommitted changes under rec_utils/notebooks/plans:\n{dirty}",
              file=sys.stderr)
        return 2
    print(f"{COMMIT_ENV}={commit} {TREE_FINGERPRINT_ENV}={tree_fingerprint()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
