"""Fixtures shared by the test modules: notebooks built in code, and guards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import git
import nbformat
import psutil
import pytest
import yaml

# pytester's in-process runs unload every module first imported during a run. Import the
# executor stack (nbclient, jupyter_client, asyncio) once here, or a later run would mix
# two copies of asyncio and nbclient would miss its own CancelledError.
import nbharness.execute.local  # noqa: F401
from nbharness.execute.forkserver.client import ForkServerPool
from nbharness.plugin.items import EXECUTOR_KEY

from .helpers import Cell, MakeNotebook, assert_all_dead, build_notebook

# The hub fixtures (``jupyterhub``, ``hub_user``). Allowed here because this conftest is always
# one of the initial ones (testpaths = tests); a later-loaded conftest may not do this. Import
# from it lazily: imported here first, pytest could not rewrite its asserts.
pytest_plugins = ["tests.hubfixture", "tests.gatewayfixture"]


@pytest.fixture
def make_notebook(pytester: pytest.Pytester) -> MakeNotebook:
    """Write a notebook under the pytester directory and return its path."""

    def make(name: str, cells: list[Cell], **metadata: Any) -> Path:
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(build_notebook(cells, **metadata), path)
        return path

    return make


@pytest.fixture
def write_raw(pytester: pytest.Pytester) -> Callable[[str, Any], Path]:
    """Write a file as given (a JSON value or raw text), for malformed notebooks."""

    def write(name: str, content: Any) -> Path:
        path = pytester.path / name
        text = content if isinstance(content, str) else json.dumps(content)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def no_orphan_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a process it started (a kernel, say) running.

    The exceptions are this session's own fork server, which the ``notebook`` fixture
    starts on first use, and the processes of this session's running JupyterHubs (proxy,
    user servers, their kernels) and gateways: the session stops them at its end.
    """
    from .gatewayfixture import running_gateway_pids
    from .hubfixture import running_hub_pids

    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    ours = request.config.stash.get(EXECUTOR_KEY, None)
    session_fork_servers = getattr(ours, "fork_servers", ForkServerPool()).pids()
    exempt = before | session_fork_servers | running_hub_pids() | running_gateway_pids()
    new = [p.pid for p in me.children(recursive=True) if p.pid not in exempt]
    assert_all_dead(new)


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def pre_commit(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Callable[[str], Any]]:
    """A git repo in ``project`` using this repository's hooks, run by the real pre-commit.

    The hooks are the ones ``.pre-commit-hooks.yaml`` declares, with ``language: system``
    so that they run from this environment instead of one pre-commit would build.
    """

    def setup(project: Path, hook_ids: list[str], committed: list[str]) -> Callable[[str], Any]:
        manifest = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
        hooks = [{**hook, "language": "system"} for hook in manifest if hook["id"] in hook_ids]
        config = {"repos": [{"repo": "local", "hooks": hooks}]}
        (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
        bin_dir = Path(sys.executable).parent
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("PRE_COMMIT_HOME", str(project.parent / "pre-commit-home"))
        with git.Repo.init(project) as repo:
            repo.index.add([".pre-commit-config.yaml", *committed])
            repo.index.commit("start")

        def run(path: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "pre_commit", "run", "--files", path]
            return subprocess.run(command, cwd=project, capture_output=True, text=True)

        return run

    return setup
