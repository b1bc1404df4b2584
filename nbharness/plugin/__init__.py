"""pytest hooks, and nothing else: options, settings, collection, header."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..config.settings import SETTINGS_KEY, Settings
from ..errors import NbHarnessError
from .options import add_options

if TYPE_CHECKING:
    from .collect import NotebookFile

# Every pytest run in an environment with nbharness imports this module, notebooks or
# not: what reads or runs notebooks (nbformat and its jsonschema, nbclient) is imported
# only once a hook needs it.

#: Folders Jupyter writes its own copies into; never notebooks of the project.
IGNORED_PARTS = {".ipynb_checkpoints"}


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


#: Other plugins' switches that collect notebooks (nbval, nbmake, pytest-notebook).
OTHER_NOTEBOOK_SWITCHES = ("nbval", "nbval_lax", "nbmake", "nb_test_files")


def pytest_configure(config: pytest.Config) -> None:
    _hint_at_the_flag(config)
    if not config.getoption("nb"):
        return  # plain pytest: nbharness's settings are none of its business
    settings = config.stash[SETTINGS_KEY] = Settings.from_pytest(config)
    if getattr(config.option, "numprocesses", None):  # xdist: what runs notebooks, only then
        from .cell_tests import group_notebooks_on_workers

        group_notebooks_on_workers(config)
    if settings.cache and config.cache is not None:
        from .cache import PassedRuns

        config.pluginmanager.register(PassedRuns(config), "nbharness-cache")
    if settings.remote is not None:  # a hub, server or gateway: only then its client
        from .remote_session import REMOTE_PLUGIN, RemoteSession

        config.pluginmanager.register(RemoteSession(config, settings.remote), REMOTE_PLUGIN)
    _register_ci_reports(config)


def _register_ci_reports(config: pytest.Config) -> None:
    """GitHub annotations and step summary, and ``--nb-html``: only when asked for."""
    from .ci import PLUGIN, CiReports, wanted  # with --nb, what runs notebooks loads anyway

    if wanted(config):
        config.pluginmanager.register(CiReports(config), PLUGIN)


def _hint_at_the_flag(config: pytest.Config) -> None:
    """A notebook named on the command line without ``--nb`` would be "not found"."""
    if config.getoption("nb") or any(
        getattr(config.option, switch, False) for switch in OTHER_NOTEBOOK_SWITCHES
    ):
        return
    named = [arg for arg in config.args if arg.split("::")[0].endswith(".ipynb")]
    if named:
        raise pytest.UsageError(f"{named[0]} is a notebook: run pytest --nb to test notebooks")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return
    if settings.output_dir is not None:
        _refuse_overwriting_sources(items, settings.output_dir)
    if settings.changed_since is not None:
        _select_changed(config, items, settings)


def _refuse_overwriting_sources(items: list[pytest.Item], output_dir: Path) -> None:
    from .items import sources_overwritten

    overwritten = sources_overwritten(items, output_dir)
    if overwritten:
        more = f" (and {len(overwritten) - 1} more)" if len(overwritten) > 1 else ""
        raise pytest.UsageError(
            f"--nb-output-dir {output_dir}: the executed copy would overwrite the notebook "
            f"{overwritten[0]}{more}; write the copies to a folder of their own"
        )


def _select_changed(config: pytest.Config, items: list[pytest.Item], settings: Settings) -> None:
    """``--nb-changed-since``: keep the notebooks that changed, or all when an input did."""
    assert settings.changed_since is not None
    from ..vcs.git import changed_paths  # gitpython: only when asked for
    from .cache import input_files

    try:
        changed = changed_paths(config.rootpath, settings.changed_since)
    except NbHarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    inputs = set(input_files(config.rootpath, settings.cache_inputs))
    if inputs & changed:
        return  # a file every notebook depends on changed: run them all
    keep = [i for i in items if i.path.suffix != ".ipynb" or _touched(i, changed)]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_sessionstart(session: pytest.Session) -> None:
    if session.config.getoption("nb"):
        # Read in what runs notebooks now, not inside the first collection hook: imported
        # there, every later kernel start cost about 60 ms more system time (measured on
        # 20 notebooks, both launchers; why, we have not found out).
        from . import items  # noqa: F401


def pytest_sessionfinish(session: pytest.Session) -> None:
    if "nbharness.plugin.items" in sys.modules:  # else no executor can have been opened
        from .items import close_executor

        close_executor(session.config)


@pytest.fixture
def notebook(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Open notebooks in a test: ``nb = notebook("analysis.ipynb", parameters={...})``.

    Relative paths start at the test root. Every kernel opened is killed when the test
    ends, passed or failed.
    """
    from .fixture import open_notebooks

    yield from open_notebooks(request)


def _touched(item: pytest.Item, changed: set[Path]) -> bool:
    """The notebook, its paired script, a module it exports or a project file it read
    when it last ran here (``plan.tracing``) or when its outputs were stored (its
    freshness record, which a fresh clone has too) is among the changed files."""
    from ..vcs.export import modules_of
    from ..verify.freshness import recorded_inputs
    from .items import pairing_for, project_for

    if item.path.resolve() in changed:
        return True
    tracing = item.config.stash[SETTINGS_KEY].tracing
    read = tracing.read_by(item.path) if tracing is not None else []
    stored = getattr(item, "stored", None)
    if stored is not None:
        read += recorded_inputs(stored.content, item.path.parent)
    if any(path.resolve() in changed for path in read):
        return True
    if stored is None:
        return False
    try:
        project = project_for(item.config, item.path)
        modules = modules_of(stored.node, project.relative(item.path), project.export_root)
        related = [module.path for module in modules]
        pairing = pairing_for(item.config, item.path, stored.node)
    except NbHarnessError:
        return False
    if pairing is not None:
        related.append(pairing.twin(item.path))
    return any(path.resolve() in changed for path in related)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the notebooks whose stored outputs ``--nb-update-outputs`` rewrote."""
    if "nbharness.plugin.items" not in sys.modules:
        return
    from .items import UPDATED

    updated = [
        report.nodeid
        for report in terminalreporter.stats.get("passed", [])
        if dict(report.user_properties).get(UPDATED)
    ]
    if updated:
        terminalreporter.section("nbharness: outputs updated")
        for nodeid in updated:
            terminalreporter.line(nodeid.split("::")[0])


def pytest_report_header(config: pytest.Config) -> str | None:
    if not config.getoption("nb"):
        return None
    return config.stash[SETTINGS_KEY].header()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> NotebookFile | None:
    config = parent.config
    if not config.getoption("nb") or IGNORED_PARTS.intersection(file_path.parts):
        return None
    from ..vcs.pairing import is_script_only_notebook
    from .collect import NotebookFile

    if file_path.suffix == ".ipynb":
        return NotebookFile.from_parent(parent, path=file_path)
    if config.getoption("nb_scripts") and is_script_only_notebook(file_path, config.rootpath):
        return NotebookFile.from_parent(parent, path=file_path)
    return None
