"""pytest hooks, and nothing else: options, settings, collection, header."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..config.settings import DEFAULT_CELL_TIMEOUT, SETTINGS_KEY, Settings
from ..errors import NbHarnessError
from .remote_session import REMOTE_PLUGIN, RemoteSession

if TYPE_CHECKING:
    from .items import NotebookFile

# Every pytest run in an environment with nbharness imports this module, notebooks or
# not: what reads or runs notebooks (nbformat and its jsonschema, nbclient) is imported
# only once a hook needs it.

#: Folders Jupyter writes its own copies into; never notebooks of the project.
IGNORED_PARTS = {".ipynb_checkpoints"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nbharness", "notebooks as tests (nbharness)")
    group.addoption(
        "--nb", action="store_true", help="collect *.ipynb files and run each as a test"
    )
    _add(
        parser,
        "nb_timeout",
        metavar="SECONDS",
        help=f"per-cell time limit in seconds (default {DEFAULT_CELL_TIMEOUT:g})",
    )
    _add(
        parser,
        "nb_notebook_timeout",
        metavar="SECONDS",
        help="time limit for a whole notebook, kernel start-up excluded (default: none)",
    )
    _add(
        parser,
        "nb_startup_timeout",
        metavar="SECONDS",
        help="time limit for a kernel to start and answer (default 60)",
    )
    _add(
        parser,
        "nb_kernel",
        metavar="NAME",
        help="run every notebook on this kernel, whatever its kernelspec says",
    )
    _add(
        parser,
        "nb_output_dir",
        metavar="DIR",
        help="write each executed notebook here, mirroring the test root's tree",
    )
    _add_flag(
        parser,
        "nb_check_order",
        help="add a test per notebook: its stored execution counts must come from one "
        "clean top-to-bottom run",
    )
    # Two flags rather than an optional value, which would swallow a path after it.
    group.addoption(
        "--nb-compare",
        action="store_const",
        const="on",
        default=None,
        dest="nb_compare",
        help="compare each cell's fresh outputs with the stored ones",
    )
    group.addoption(
        "--nb-compare=strict",
        action="store_const",
        const="strict",
        dest="nb_compare",
        help="as --nb-compare, and cells stored without outputs must stay without",
    )
    parser.addini("nb_compare", default="", help="as --nb-compare: on, strict or off")
    group.addoption(
        "--nb-update-outputs",
        action="store_true",
        dest="nb_update_outputs",
        help="write fresh outputs back into notebooks that passed (a snapshot update)",
    )
    group.addoption(
        "--nb-strict-params",
        action="store_true",
        dest="nb_strict_params",
        help="fail, instead of warning, when a parameter set names a parameter the "
        "notebook's parameters cell does not define",
    )
    group.addoption(
        "--nb-find-import-errors",
        action="store_true",
        dest="nb_find_import_errors",
        help="run every cell past errors and fail a notebook only for ImportError or "
        "ModuleNotFoundError: checks an environment without running analyses to the end",
    )
    group.addoption(
        "--nb-env",
        action="append",
        metavar="KEY=VALUE",
        dest="nb_env",
        help="set an environment variable for every kernel (repeatable; over [tool.nbharness] env)",
    )
    _add(
        parser,
        "nb_cwd",
        metavar="DIR",
        help="run every kernel in this folder (default: each notebook's own folder)",
    )
    _add(
        parser,
        "nb_launcher",
        metavar="fork|process",
        help="how local kernels start: forked from a warm fork server (Linux; the default "
        "there) or as a new process each",
    )
    _add_flag(
        parser,
        "nb_check_export",
        help="add a test per notebook that exports cells: its modules must be what "
        "nbharness export would write",
    )
    _add_flag(
        parser,
        "nb_check_pairing",
        help="add a test per notebook: its script twin exists and is in sync",
    )
    group.addoption(
        "--nb-scripts",
        action="store_true",
        dest="nb_scripts",
        help="also run script-only notebooks: jupytext text files whose .ipynb twin is not "
        "in the repository (a pair runs once, as its .ipynb)",
    )
    _add_flag(
        parser,
        "nb_cache",
        help="skip a notebook run whose code, parameters, kernel, settings and declared "
        "inputs are unchanged since it last passed",
    )
    group.addoption(
        "--nb-changed-since",
        metavar="REF",
        default=None,
        dest="nb_changed_since",
        help="run only notebooks that differ from git REF (committed, staged, unstaged or "
        "untracked), or all of them when a declared cache input changed",
    )
    _add(
        parser,
        "nb_hub_url",
        metavar="URL",
        help="run the notebooks on kernels of a JupyterHub user's server (token: "
        "$JUPYTERHUB_API_TOKEN or --nb-hub-token-file)",
    )
    _add(parser, "nb_hub_user", metavar="NAME", help="the hub user whose server runs the kernels")
    _add(
        parser,
        "nb_hub_token_file",
        metavar="FILE",
        help="read the hub's (or server's) API token from FILE",
    )
    _add(
        parser,
        "nb_hub_server",
        metavar="NAME",
        help="use the user's named server NAME (with --nb-hub-servers: the names' prefix)",
    )
    _add(
        parser,
        "nb_hub_servers",
        metavar="K",
        help="spread xdist workers over K named servers of the user, started if needed "
        "and stopped at the end if nbharness started them",
    )
    _add(
        parser,
        "nb_hub_start_timeout",
        metavar="SECONDS",
        help="how long a server may take to start (default 300)",
    )
    _add(
        parser,
        "nb_hub_max_kernels",
        metavar="N",
        help="at most N kernels at once on each server, across xdist workers",
    )
    _add(
        parser,
        "nb_server_url",
        metavar="URL",
        help="run the notebooks on kernels of this Jupyter server or kernel gateway "
        "(token: $JUPYTER_TOKEN or --nb-hub-token-file)",
    )
    _add(
        parser,
        "nb_remote_cwd",
        metavar="PATH",
        help="remote kernels' working directory, relative to the server's root (default: the root)",
    )
    group.addoption(
        "--nb-strict-raises",
        action="store_true",
        dest="nb_strict_raises",
        help="fail, instead of warning, when a cell tagged raises-exception raises nothing",
    )


def _add(parser: pytest.Parser, name: str, metavar: str, help: str) -> None:
    """A ``--nb-*`` flag and the ini key of the same name."""
    parser.getgroup("nbharness").addoption(
        "--" + name.replace("_", "-"), dest=name, metavar=metavar, default=None, help=help
    )
    parser.addini(name, help=help, default="")


def _add_flag(parser: pytest.Parser, name: str, help: str) -> None:
    """An on/off ``--nb-*`` flag and the boolean ini key of the same name."""
    parser.getgroup("nbharness").addoption(
        "--" + name.replace("_", "-"), action="store_true", dest=name, help=help
    )
    parser.addini(name, type="bool", default=False, help=help)


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
    if settings.cache and config.cache is not None:
        from .cache import PassedRuns

        config.pluginmanager.register(PassedRuns(config), "nbharness-cache")
    if settings.remote is not None:
        config.pluginmanager.register(RemoteSession(config, settings.remote), REMOTE_PLUGIN)


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
    """The notebook, its paired script or a module it exports is among the changed files."""
    from ..vcs.export import modules_of
    from .items import pairing_for, project_for

    if item.path.resolve() in changed:
        return True
    stored = getattr(item, "notebook", None)
    if stored is None:
        return False
    try:
        project = project_for(item.config, item.path)
        modules = modules_of(stored, project.relative(item.path), project.export_root)
        related = [module.path for module in modules]
        pairing = pairing_for(item.config, item.path, stored)
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
    from .items import NotebookFile

    if file_path.suffix == ".ipynb":
        return NotebookFile.from_parent(parent, path=file_path)
    if config.getoption("nb_scripts") and is_script_only_notebook(file_path, config.rootpath):
        return NotebookFile.from_parent(parent, path=file_path)
    return None
