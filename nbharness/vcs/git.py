"""``--nb-changed-since REF``: only the notebooks a change touches, by git."""

from __future__ import annotations

from pathlib import Path

import git

from ..errors import NbHarnessError


def changed_paths(root: Path, ref: str) -> set[Path]:
    """Files that differ from ``ref``: committed since, staged, unstaged or untracked."""
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise NbHarnessError(f"--nb-changed-since: {root} is not in a git repository") from None
    with repo:  # closing it ends gitpython's long-running `git cat-file` helpers
        try:
            commit = repo.commit(ref)
        except (git.BadName, ValueError, git.GitCommandError):
            where = repo.working_dir
            raise NbHarnessError(
                f"--nb-changed-since: {ref!r} is not a commit in {where}"
            ) from None
        top = Path(repo.working_dir)
        diffs = commit.diff(None)
        paths = {diff.a_path for diff in diffs} | {diff.b_path for diff in diffs}
        paths |= set(repo.untracked_files)
    return {(top / path).resolve() for path in paths if path}
