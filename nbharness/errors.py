"""One error family: every notebook problem nbharness reports is an ``NbHarnessError``.

Errors are plain data: each passes its constructor's arguments to ``Exception`` and
words its ``summary`` (the one line a user sees first) from its fields, so it pickles
for pytest-xdist with no code of its own, as papermill's ``PapermillExecutionError``
does. Rendering the long form is ``report.py``'s job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

#: Where IPython says a cell's SyntaxError happened: its temporary file, "(3311942670.py,
#: line 1)", a name the user never sees; the report shows the cell and line itself.
_IPYTHON_FILE = re.compile(r" \(\d+\.py, line \d+\)$")
#: How xeus-python names an exception: "<class 'ValueError'>" where ipykernel says "ValueError".
_CLASS_REPR = re.compile(r"^<class '(?:builtins\.)?(.+)'>$")
#: How R words an error: "Error in f(3): bad value: 3", or "Error: ..." with no call.
_R_ERROR = re.compile(r"^Error(?: in (.+?))?: (.*)$", re.DOTALL)
#: IRkernel evaluates each cell through ``eval``: a ``stop()`` at top level names that call.
_R_TOP_LEVEL = "eval(expr, envir, enclos)"
#: Lines that close a bash compound command rather than run one.
_BASH_CLOSERS = frozenset({"done", "fi", "esac", "}", ")", "};", ");"})


def exception_name(raw: str) -> str:
    """An error's name as users know it, whichever kernel worded it."""
    match = _CLASS_REPR.match(raw)
    return match.group(1) if match else raw


def display_path(path: Path) -> str:
    """``path`` as users typed it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class NbHarnessError(Exception):
    """Base of every error nbharness reports about a notebook, a kernel or a setting."""

    @property
    def summary(self) -> str:
        """The one line a user sees first; a plain error's is its message, the first
        constructor argument (the rest, if any, are fields kept for pickling)."""
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return self.summary

    def details(self) -> list[str]:
        """Lines that follow the summary in the long report."""
        return []


class NotebookWarning(UserWarning):
    """A notebook ran, but something in it deserves a look (e.g. a cell that should raise)."""


class FileProblem(NbHarnessError):
    """A problem with one file: its path, then what is wrong with it."""

    #: What the summary says between the file's name and the reason.
    lead = ""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    @property
    def summary(self) -> str:
        return f"{display_path(self.path)}: {self.lead}{self.reason}"


class InvalidNotebook(FileProblem):
    """The file cannot be read as a notebook."""

    lead = "not a valid notebook: "


class KernelNotFound(NbHarnessError):
    """The kernel a notebook asks for is not installed where it would run."""

    def __init__(
        self,
        name: str,
        available: list[str],
        override: str = "--nb-kernel NAME",
        where: str = "",
        source: str = "the notebook's kernelspec",
    ) -> None:
        super().__init__(name, available, override, where, source)
        self.name = name
        self.available = available
        self.override = override
        self.where = where
        #: Where the name came from: "the notebook's kernelspec", "--nb-kernel", ...
        self.source = source

    @property
    def summary(self) -> str:
        known = ", ".join(sorted(self.available)) or "none"
        place = f" {self.where}" if self.where else ""
        return (
            f"kernel {self.name!r} from {self.source} is not installed{place} "
            f"(installed: {known}); run with {self.override} to override it"
        )


class KernelStartFailed(NbHarnessError):
    """The kernel process could not be started or never answered."""


@dataclass(eq=False)
class CellProblem(NbHarnessError):
    """Something went wrong in one cell; the fields say where, for the report.

    ``index`` is 0-based (as nbformat counts); users see ``number`` (1-based).
    """

    index: int
    source: str
    execution_count: int | None = None
    #: The paired script and the failing line in it, if there is one.
    script: Path | None = None
    script_line: int = 0
    #: What ran, when it was code added to the run rather than a cell of the notebook.
    injected: str = ""

    def __post_init__(self) -> None:
        super().__init__(*(getattr(self, f.name) for f in fields(self)))

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def script_location(self) -> str:
        """``path/to/script.py:LINE`` of the failing line in the paired script, or ""."""
        return f"{display_path(self.script)}:{self.script_line}" if self.script else ""

    @property
    def where(self) -> str:
        place = self.injected or f"cell {self.number}"
        if self.execution_count is None:
            return place
        return f"{place} (In [{self.execution_count}])"

    @property
    def summary(self) -> str:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError


@dataclass(eq=False)
class CellError(CellProblem):
    """A cell raised an exception in the kernel."""

    ename: str = ""
    evalue: str = ""
    traceback: list[str] = field(default_factory=list)
    #: The kernel's language (``language_info.name``, lower case): how to word its errors.
    language: str = ""

    @classmethod
    def from_output(
        cls, index: int, cell: Mapping[str, Any], out: Mapping[str, Any], language: str = ""
    ) -> CellError:
        """The error an ``error`` output (or an ``execute_reply``) of cell ``index`` records."""
        return cls(
            index,
            cell.get("source", ""),
            cell.get("execution_count"),
            ename=exception_name(out.get("ename", "Error")),
            evalue=out.get("evalue", ""),
            traceback=list(out.get("traceback", [])),
            language=language.lower(),
        )

    @property
    def summary(self) -> str:
        if self.language == "bash" and not self.ename and self.evalue.isdigit():
            return self._bash_summary()
        if self.language == "r" and self.ename == "ERROR":
            return self._r_summary()
        if self.ename == "SystemExit":
            return f"{self.where} called sys.exit({self.evalue})"
        if self.ename == "StdinNotImplementedError":
            return (
                f"{self.where} asked for input (input() or getpass), which a test run cannot answer"
            )
        evalue = _IPYTHON_FILE.sub("", self.evalue)
        message = f"{self.ename}: {evalue}" if evalue else self.ename
        return f"{self.where} raised {message}"

    def _bash_summary(self) -> str:
        """bash_kernel reports only ``$?`` after the cell: the status of its last command."""
        commands = [
            line.strip()
            for line in self.source.splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        # A compound command's closing word ("done", "fi") names nothing: leave it out.
        ends_compound = commands and commands[-1].split()[0] in _BASH_CLOSERS
        last = f" `{commands[-1]}`" if commands and not ends_compound else ""
        return f"{self.where} failed: its last command{last} exited with status {self.evalue}"

    def _r_summary(self) -> str:
        """IRkernel's "Error in CALL: MESSAGE" as the ``stop()`` message and the call."""
        match = _R_ERROR.match(self.evalue.strip())
        if match is None:
            return f"{self.where} raised an R error: {self.evalue.strip()}"
        call, message = match.groups()
        place = f" in {call}" if call and call != _R_TOP_LEVEL else ""
        return f"{self.where} raised an R error{place}: {message}"


@dataclass(eq=False)
class CellTimeout(CellProblem):
    """A cell ran past the per-cell time limit; the kernel was killed."""

    timeout: float = 0.0
    #: Which limit fired, as the user set it: "the cell timeout of 2 s (--nb-timeout)".
    limit: str = ""

    @property
    def summary(self) -> str:
        limit = self.limit or f"the cell timeout of {self.timeout:g} s"
        return f"{self.where} did not finish within {limit}; the kernel was stopped"


@dataclass(eq=False)
class KernelDied(CellProblem):
    """The kernel process exited while a cell was running."""

    stderr: str = ""
    #: "exit code 1", "killed by SIGKILL", or "" when unknown.
    how: str = ""

    @property
    def summary(self) -> str:
        how = f" ({self.how})" if self.how else ""
        return f"kernel died{how} while running {self.where}"


@dataclass(eq=False)
class MissingException(CellProblem):
    """A cell tagged to raise ran without raising."""

    tag: str = "raises-exception"

    @property
    def summary(self) -> str:
        return f"{self.where} is tagged {self.tag!r} but raised nothing"


class NotebookFailed(NbHarnessError):
    """The ``notebook`` fixture's notebook did not run to the end; the message is the report."""


class CodeError(NbHarnessError):
    """Code that a test sent to a live notebook's kernel raised an exception."""


IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError")


class ProblemList(NbHarnessError):
    """Several problems with one notebook: the first in the summary, all in the details."""

    #: What the summary says before the first problem.
    lead = ""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        self.problems = problems

    @property
    def summary(self) -> str:
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"{self.lead}{self.problems[0]}{more}"

    def details(self) -> list[str]:
        return [f"- {problem}" for problem in self.problems] if len(self.problems) > 1 else []


class MissingImports(ProblemList):
    """``--nb-find-import-errors``: the imports that failed, each with its cell."""


class KernelTestFailed(NbHarnessError):
    """A test failed (or could not run) in the kernel: pytest's text from there, headed
    by its one line (read alone from xdist workers and in JUnit)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    @property
    def summary(self) -> str:
        """The first ``E`` line of pytest's text (``assert 3 == 4``), else its first line."""
        lines = self.text.splitlines()
        explained = [line[1:].strip() for line in lines if line.startswith("E ")]
        return (explained or lines or [""])[0]

    def details(self) -> list[str]:
        lines = self.text.splitlines()
        return [] if lines[:1] == [self.summary] else lines
