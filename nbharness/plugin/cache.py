"""``--nb-cache``: skip a run when nothing that decides its result changed since it passed.

A run's key is a hash of what determines its outcome: the notebook's cells (source,
type, tags) and the metadata nbharness reads, the parameter set, the kernel, this
Python, the settings that change a verdict, the content of the files the project
declares as inputs (``[tool.nbharness] cache_inputs``), and the content of the project
files the notebook read in its last run (``plan.tracing``). Keys of passed runs live in
pytest's cache directory; a failed run is never recorded.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from .. import __version__
from ..config.settings import SETTINGS_KEY
from ..plan.tracing import content_hashes

CACHE_KEY = "nbharness/passed"
#: How an item's key reaches the controller process under xdist: a report property.
PROPERTY = "nbharness_cache_key"
SKIP_REASON = "unchanged since last pass (--nb-cache)"


def run_key(
    nb: Mapping[str, Any],
    parameters: Mapping[str, Any] | None,
    kernel: str | None,
    verdict_settings: Mapping[str, Any],
    inputs: Mapping[str, str],
) -> str:
    """The hash of what decides the run's verdict; ``inputs`` are the declared input
    files' content hashes (``content_hashes``)."""
    digest = hashlib.sha256()
    cells = [
        [cell["cell_type"], cell["source"], sorted(cell.get("metadata", {}).get("tags", []))]
        for cell in nb["cells"]
    ]
    meta = {key: nb["metadata"].get(key) for key in ("kernelspec", "nbharness", "execution")}
    identity = [cells, meta, parameters, kernel, verdict_settings, sys.version, __version__, inputs]
    digest.update(json.dumps(identity, sort_keys=True, default=repr).encode())
    return digest.hexdigest()


def input_files(root: Path, patterns: Iterable[str]) -> list[Path]:
    """The files the project's ``cache_inputs`` globs name, relative to the test root."""
    return sorted({path for pattern in patterns for path in root.glob(pattern) if path.is_file()})


def load_passed(stored: object) -> dict[str, str]:
    """The stored keys, or nothing if the cache entry is missing or damaged."""
    if not isinstance(stored, dict):
        return {}
    return {str(k): v for k, v in stored.items() if isinstance(v, str)}


class PassedRuns:
    """The ``--nb-cache`` plugin: which runs passed with which key.

    Registered only with ``--nb-cache``. Every process reads the stored keys; only the
    controlling process (not an xdist worker) records outcomes, from the reports, and
    writes them back at the end.
    """

    def __init__(self, config: pytest.Config) -> None:
        assert config.cache is not None
        self.config = config
        self.stored = load_passed(config.cache.get(CACHE_KEY, {}))
        self.updates: dict[str, str | None] = {}
        self._inputs: dict[str, str] | None = None

    def inputs(self, root: Path, patterns: Iterable[str]) -> dict[str, str]:
        """The declared input files' content hashes, read once a session."""
        if self._inputs is None:
            self._inputs = content_hashes(root, input_files(root, patterns))
        return self._inputs

    def passed(self, nodeid: str, key: str) -> bool:
        return self.stored.get(nodeid) == self._with_traced(nodeid, key)

    def _with_traced(self, nodeid: str, key: str) -> str:
        """``key`` joined with the content of the files the notebook read when it last
        ran: a changed CSV or local module runs it again, with nothing declared."""
        tracing = self.config.stash[SETTINGS_KEY].tracing
        if tracing is None:
            return key
        read = tracing.read_by(self.config.rootpath / nodeid.split("::")[0])
        if not read:
            return key
        hashes = content_hashes(tracing.root, read)
        return hashlib.sha256(json.dumps([key, hashes], sort_keys=True).encode()).hexdigest()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> bool | None:
        """Report an unchanged notebook's items skipped without pytest's setup, call and
        teardown phases (fixtures, capture, logging: about a millisecond an item, most of
        a cached re-run). The reports are made and logged by pytest's own hooks."""
        from .items import NotebookItem  # items imports this module

        run_item = getattr(item, "run_item", item)  # an in-notebook test's notebook
        if not isinstance(run_item, NotebookItem) or not run_item.unchanged_since_pass():
            return None
        reason = SKIP_REASON if run_item is item else f"not run: {SKIP_REASON}"
        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        for when, phase in (("setup", _skip(reason)), ("teardown", _nothing)):
            call = pytest.CallInfo.from_call(phase, when=when)  # type: ignore[arg-type]
            report = ihook.pytest_runtest_makereport(item=item, call=call)
            ihook.pytest_runtest_logreport(report=report)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        key = dict(report.user_properties).get(PROPERTY)
        if isinstance(key, str):
            self.updates[report.nodeid] = (
                self._with_traced(report.nodeid, key) if report.passed else None
            )

    def pytest_sessionfinish(self) -> None:
        if hasattr(self.config, "workerinput") or not self.updates:
            return
        merged = {**self.stored, **self.updates}
        assert self.config.cache is not None
        self.config.cache.set(CACHE_KEY, {k: v for k, v in merged.items() if v is not None})


def _skip(reason: str) -> Callable[[], None]:
    def skip() -> None:
        raise pytest.skip.Exception(reason, _use_item_location=True)

    return skip


def _nothing() -> None:
    """A phase with nothing to do."""
