"""Print the commit and tree fingerprint of this clean checkout, for a copy of the tree without
``.git`` (a GPU machine that receives the files, not the repository)::

    .venv/bin/python scripts/commit_env.py
    # REC_UTILS_GIT_COMMIT=5f00d4b REC_UTILS_TREE_FINGERPRINT=45ffaa17a2de

``scripts/offline_gpu/run.sh`` refuses to run where the copy's
:func:`rec_utils.provenance.tree_fingerprint` differs (the copy does not hold that commit's code);
the runs it stores record ``git_commit`` ``unknown`` and their training-code fingerprint, and
``scripts/offline_gpu/merge_results.py --commit`` names the commit in them after checking that
fingerprint against the commit's. Refuses when ``rec_utils``, ``notebooks`` or ``plans`` have
uncommitted changes (the commit would not name the code).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rec_utils.provenance import tree_fingerprint  # noqa: E402
from rec_utils.utils import PROJECT_ROOT, git_commit  # noqa: E402


def main() -> int:
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "rec_utils", "notebooks", "plans"], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, check=True).stdout.strip()
    commit = git_commit()
    if dirty or commit == "unknown" or commit.endswith("-dirty"):
        print(f"commit_env.py: commit {commit} with uncommitted changes under rec_utils/notebooks/plans:\n{dirty}",
              file=sys.stderr)
        return 2
    print(f"REC_UTILS_GIT_COMMIT={commit} REC_UTILS_TREE_FINGERPRINT={tree_fingerprint()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
