"""The pytest item of one run of a notebook: plan, execute, verify, report."""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..config.project import Project
from ..config.settings import SETTINGS_KEY, Settings, settings_of
from ..errors import CellError, CellProblem, NbHarnessError, NotebookWarning
from ..execute import Executor, ExecutorSettings, RunResult, make_executor
from ..notebook.io import NotWritten, write_notebook
from ..plan import plan
from ..plan.parameters import ParameterSet
from ..report import CrashLine, FailureRepr, locate, render
from ..text import strip_ansi
from ..vcs.pairing import Pairing, pairing_of
from ..verify import Verdict, verify
from ..verify.coverage import Measurement
from ..verify.outputs import NotStored, store_outputs
from .cache import PROPERTY, SKIP_REASON, PassedRuns, run_key
from .coverage import coverage_options

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from ..notebook.io import StoredNotebook
    from .cell_tests import NotebookTests

EXECUTOR_KEY = pytest.StashKey[Executor]()
#: Metadata key marking an executed copy (``--nb-output-dir``), which is never collected.
EXECUTED_FROM = "executed_from"
#: Report property of a run whose outputs ``--nb-update-outputs`` wrote back.
UPDATED = "nbharness_updated_outputs"
#: A parameter id longer than this (in bytes) is cut and hashed in an executed copy's name.
MAX_ID_IN_FILE_NAME = 100


class NotebookItemBase(pytest.Item):
    """What every nbharness item shares: our report for our errors, the notebook as headline."""

    # pytest accepts any object with ``toterminal``; its ``TerminalRepr`` base is private.
    def repr_failure(  # type: ignore[override]
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: str | None = None,
    ) -> object:
        error = excinfo.value
        if not isinstance(error, NbHarnessError):
            return super().repr_failure(excinfo, style)  # type: ignore[arg-type]
        tbstyle = style or self.config.getoption("tbstyle", "auto")
        text = render(error, tbstyle, fulltrace=bool(self.config.getoption("fulltrace")))
        return FailureRepr(text, CrashLine(self.nodeid.split("::")[0], error.summary))

    def reportinfo(self) -> tuple[Path, int, str]:
        # The "domain" is the failure's headline. pytest prints its dots as "::" in
        # ``-v`` lines when the test id ends with it, so it must never be a test id's tail.
        return self.path, 0, self.headline()

    def headline(self) -> str:
        """The notebook's path (and parameter set): tells two notebook2.ipynb apart."""
        path, name = self.nodeid.split("::", 1)
        return path + name[len(self.path.stem) :]


class NotebookItem(NotebookItemBase):
    """One run of one notebook (with one parameter set, if it has any) on a fresh kernel."""

    def __init__(
        self,
        *,
        stored: StoredNotebook,
        parameters: ParameterSet | None = None,
        tests: NotebookTests | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.stored = stored
        self.parameters = parameters
        #: The run's executed notebook until its report is made, for the CI reports (``ci.py``).
        self.executed: NotebookNode | None = None
        #: The notebook's tests, run in its kernel after the last cell (``cell_tests``).
        self.tests = tests
        #: How the run ended (``None``: passed), once it ran: the notebook's test items
        #: read it too, and the notebook never runs twice.
        self.ended: BaseException | None = None
        self.ran = False
        self.reported = False
        self._unchanged: bool | None = None

    @property
    def notebook(self) -> NotebookNode:
        """The notebook as stored, as nbformat's node (built when first asked for)."""
        return self.stored.node

    def runtest(self) -> None:
        if self.reported:
            self.ran = False  # called again: a rerun (--reruns) gets a fresh run
        self.run_once()
        self.reported = True
        if self.ended is not None:
            raise self.ended

    def run_once(self) -> None:
        """Run the notebook (and its selected tests) unless it ran; keep how it ended."""
        if self.ran:
            return
        self.ran, self.ended = True, None
        try:
            self._run()
        except (Exception, pytest.skip.Exception, pytest.fail.Exception) as exc:
            self.ended = exc

    def _run(self) -> None:
        settings = self.config.stash[SETTINGS_KEY]
        if self.unchanged_since_pass():  # when another plugin's protocol ran the item
            raise pytest.skip.Exception(SKIP_REASON, _use_item_location=True)
        # A remote kernel's coverage data would stay remote.
        coverage = coverage_options(self.config) if settings.remote is None else None
        planned = plan(self.path, self.notebook, settings, self.parameters, coverage=coverage)
        self._warn(self.stored.warning, *planned.warnings)
        executor = executor_for(self.config)
        if self.tests is None:
            result = executor.execute(planned.run)
        else:
            result = self.tests.run_with(executor, planned.run)
        self.executed = result.notebook
        self._keep(result, planned.measurement, settings)
        verdict = verify(result, self.notebook, settings, parameterized=self.parameters is not None)
        self._act_on(verdict, settings)
        if verdict.problem is not None:
            self._fail(verdict.problem, result)

    def teardown(self) -> None:
        self.executed = None  # reported: the session need not hold every run's outputs

    def _keep(self, result: RunResult, measurement: Measurement | None, settings: Settings) -> None:
        """What outlives the run: its coverage, and the executed copy (``--nb-output-dir``)."""
        if measurement is not None:
            measurement.map_cells(result.notebook, self.notebook, *self._paired_script())
        if settings.output_dir is not None:
            self._save_executed(result.notebook, settings.output_dir)

    def _act_on(self, verdict: Verdict, settings: Settings) -> None:
        """Emit the verdict's warnings, and store the outputs it says to store."""
        self._warn(*verdict.warnings)
        if verdict.to_store is not None:
            self._store_outputs(verdict.to_store, settings)

    def _fail(self, error: NbHarnessError, result: RunResult) -> None:
        """End the test: skipped or xfailed as a cell asked, else failed with ``error``
        located in the user's notebook, and what the failing cell printed."""
        if isinstance(error, CellError):
            _outcome_from_kernel(error)
        if isinstance(error, CellProblem) and error.index < len(result.notebook.cells):
            self._attach_cell_streams(result.notebook, error.index)
        raise locate(error, result.notebook, self.notebook, *self._paired_script())

    def _save_executed(self, executed: NotebookNode, output_dir: Path) -> None:
        """The executed copy, for CI artefacts. A disk that refuses it warns: the run's
        verdict is about the notebook, and the warning summary still shows the loss."""
        executed.metadata.setdefault("nbharness", {})[EXECUTED_FROM] = self.nodeid
        try:
            write_notebook(executed, output_path(self, output_dir))
        except NotWritten as exc:
            self._warn(f"executed copy not saved: {exc}")

    def _paired_script(self) -> tuple[Path | None, str]:
        """The notebook's paired script, if it has one on disk, and its jupytext format."""
        pairing = pairing_for(self.config, self.path, self.notebook)
        if pairing is None or not pairing.twin(self.path).exists():
            return None, ""
        return pairing.twin(self.path), pairing.fmt

    def unchanged_since_pass(self) -> bool:
        """With ``--nb-cache``: whether this run passed with the same key; if it did not,
        the key is filed for the run's report. Decided once per item."""
        if self._unchanged is None:
            self._unchanged = self._passed_with_same_key()
        return self._unchanged

    def _passed_with_same_key(self) -> bool:
        settings = self.config.stash[SETTINGS_KEY]
        passed_runs: PassedRuns | None = self.config.pluginmanager.get_plugin("nbharness-cache")
        if passed_runs is None or settings.update_outputs:
            return False
        key = run_key(
            self.stored.content,
            None if self.parameters is None else self.parameters.values,
            settings.kernel,
            settings.verdict(),
            passed_runs.inputs(self.config.rootpath, settings.cache_inputs),
        )
        if passed_runs.passed(self.nodeid, key):
            return True
        self.user_properties.append((PROPERTY, key))
        return False

    def _store_outputs(self, executed: NotebookNode, settings: Settings) -> None:
        """``--nb-update-outputs``: write the fresh outputs back; a refusal warns."""
        try:
            inputs = settings.tracing.read_by(self.path) if settings.tracing else ()
            if store_outputs(self.path, self.notebook, executed, settings.compare, inputs):
                self.user_properties.append((UPDATED, True))
        except (NotStored, NotWritten) as exc:
            self._warn(f"outputs not updated: {exc}")

    def _warn(self, *messages: str | None) -> None:
        """Warnings located at the notebook, not at nbharness's code."""
        for message in filter(None, messages):
            warning = NotebookWarning(f"{self.path.name}: {message}")
            warnings.warn_explicit(warning, NotebookWarning, filename=str(self.path), lineno=0)

    def _attach_cell_streams(self, nb: NotebookNode, index: int) -> None:
        """The failing cell's stdout/stderr, shown as pytest's "Captured ..." sections."""
        for name in ("stdout", "stderr"):
            text = "".join(
                strip_ansi(out.get("text", ""))
                for out in nb.cells[index].get("outputs", [])
                if out.get("output_type") == "stream" and out.get("name") == name
            )
            if text:
                self.add_report_section("call", name, text)


def _outcome_from_kernel(error: CellError) -> None:
    """``pytest.skip()`` or ``pytest.xfail()`` called in a cell ends the test that way.

    The kernel is a separate process: its ``pytest.skip`` raises there, and comes back
    as an error named after pytest's exception class.
    """
    reason = error.evalue or f"{error.ename} in {error.where}"
    if error.ename == "Skipped":
        # Reported at the notebook, not at this line (pytest's own flag for skip marks).
        raise pytest.skip.Exception(reason, _use_item_location=True)
    if error.ename == "XFailed":
        pytest.xfail(reason)


#: Each folder's project, found once a session: collection asks for every notebook.
PROJECTS_KEY = pytest.StashKey[dict[Path, Project]]()


def project_for(config: pytest.Config, path: Path) -> Project:
    """The notebook's project, by the rule the CLI uses; pytest's rootdir as the fallback."""
    projects = config.stash.setdefault(PROJECTS_KEY, {})
    if path.parent not in projects:
        projects[path.parent] = Project.for_path(path, config.rootpath)
    return projects[path.parent]


def pairing_for(config: pytest.Config, path: Path, nb: NotebookNode) -> Pairing | None:
    """The notebook's pairing, from its project's ``[tool.nbharness]`` table."""
    project = project_for(config, path)
    return pairing_of(project.root, dict(project.table), nb)


def executor_for(config: pytest.Config) -> Executor:
    """The session's executor, entered on first use and closed at session end."""
    if EXECUTOR_KEY not in config.stash:
        remote = settings_of(config).remote
        if remote is None:
            executor = make_executor("local", ExecutorSettings())
        else:
            from .remote_session import REMOTE_PLUGIN, RemoteSession

            session = config.pluginmanager.get_plugin(REMOTE_PLUGIN)
            assert isinstance(session, RemoteSession)
            on = ExecutorSettings(
                session.server(), remote.remote_cwd, remote.max_kernels, remote.max_kernels_source
            )
            executor = make_executor("remote", on)
        config.stash[EXECUTOR_KEY] = executor.__enter__()
    return config.stash[EXECUTOR_KEY]


def close_executor(config: pytest.Config) -> None:
    executor = config.stash.get(EXECUTOR_KEY, None)
    if executor is not None:
        del config.stash[EXECUTOR_KEY]
        executor.__exit__(None, None, None)


def output_path(item: pytest.Item, output_dir: Path) -> Path:
    """Where the executed notebook goes: the test root's tree, mirrored under ``output_dir``."""
    try:
        relative = item.path.relative_to(item.config.rootpath)
    except ValueError:
        relative = Path(item.path.name)
    if isinstance(item, NotebookItem) and item.parameters is not None:
        safe_id = re.sub(r'[/\\:*?"<>|\x00-\x1f]', "_", item.parameters.id)
        if len(safe_id.encode()) > MAX_ID_IN_FILE_NAME:  # file names stop at 255 bytes
            digest = hashlib.sha256(safe_id.encode()).hexdigest()[:12]
            safe_id = f"{safe_id.encode()[:60].decode(errors='ignore')}-{digest}"
        relative = relative.with_name(f"{relative.stem}[{safe_id}]{relative.suffix}")
    return output_dir / relative


def sources_overwritten(items: list[pytest.Item], output_dir: Path) -> list[Path]:
    """Collected notebooks that an executed copy would replace (``--nb-output-dir .``)."""
    sources = {item.path.resolve() for item in items if isinstance(item, NotebookItem)}
    copies = {
        output_path(item, output_dir).resolve() for item in items if isinstance(item, NotebookItem)
    }
    return sorted(sources & copies)
