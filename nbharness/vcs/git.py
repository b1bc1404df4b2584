"""Every git call nbharness makes: changed paths (``--nb-changed-since``), a script's
last synced text from history, three-way text merges, and the diff and merge drivers
(``config-git``)."""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from pathlib import Path

from ..errors import NbHarnessError


def changed_paths(root: Path, ref: str) -> set[Path]:
    """Files that differ from ``ref``: committed since, staged, unstaged or untracked."""
    import git  # gitpython takes 50 ms to import: only where a repository is read

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


def synced_text_from_git(script: Path, wanted: str, depth: int = 50) -> str | None:
    """The script's text as last synced, from git history (the record is only a hash)."""
    import git

    from .scripts import digest

    try:
        with git.Repo(script.parent, search_parent_directories=True) as repo:
            relative = script.resolve().relative_to(Path(repo.working_dir).resolve()).as_posix()
            for commit in repo.iter_commits(paths=relative, max_count=depth):
                text: str = (commit.tree / relative).data_stream.read().decode("utf-8", "replace")
                if digest(text) == wanted:
                    return text
    except Exception:  # no repository, no history: the diff falls back to side by side
        return None
    return None


#: The name of our diff and merge drivers, and the attribute line that selects them.
DRIVER = "nbharness"
ATTRIBUTE = f"*.ipynb diff={DRIVER} merge={DRIVER}"


def configure_drivers(start: Path, command: str) -> None:
    """Make the repository around ``start`` diff and merge notebooks with ``command``
    (quoted here: git runs drivers through the shell), and select them in .gitattributes."""
    import git

    try:
        repo = git.Repo(start, search_parent_directories=True)
    except git.InvalidGitRepositoryError:
        raise NbHarnessError(f"{start} is not in a git repository") from None
    quoted = shlex.quote(command)
    with repo:
        with repo.config_writer() as config:
            config.set_value(f'diff "{DRIVER}"', "textconv", f"{quoted} textconv")
            config.set_value(f'diff "{DRIVER}"', "cachetextconv", "true")
            config.set_value(f'merge "{DRIVER}"', "name", "nbharness notebook merge")
            config.set_value(f'merge "{DRIVER}"', "driver", f"{quoted} merge-driver %O %A %B %P")
        attributes = Path(repo.working_dir) / ".gitattributes"
        existing = attributes.read_text(encoding="utf-8") if attributes.exists() else ""
        if ATTRIBUTE not in existing.splitlines():
            separator = "" if not existing or existing.endswith("\n") else "\n"
            attributes.write_text(existing + separator + ATTRIBUTE + "\n", encoding="utf-8")


def merge_file(base: str, ours: str, theirs: str) -> tuple[str, bool]:
    """``git merge-file`` of the three scripts: the merged text, and whether it conflicts."""
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, text in zip(("base", "ours", "theirs"), (base, ours, theirs), strict=True):
            file = Path(tmp) / f"{name}.txt"
            file.write_text(text, encoding="utf-8")
            files.append(str(file))
        labels = ["-L", "ours", "-L", "base", "-L", "theirs"]
        done = subprocess.run(
            ["git", "merge-file", "-p", *labels, files[1], files[0], files[2]],
            capture_output=True,
            text=True,
        )
    if done.returncode < 0 or done.returncode > 127:
        raise RuntimeError(f"git merge-file failed: {done.stderr.strip()}")
    return done.stdout, done.returncode != 0
