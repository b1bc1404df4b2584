"""The freshness record: proof, kept in the notebook, that its stored outputs come from a
clean run of exactly this code.

``--nb-update-outputs`` writes it after a passing run: a hash of each code cell's source
and of the outputs stored for it, the kernel asked for, and the Python that ran. ``check
--fresh`` reads it without a kernel: a cell edited since then is named, and so is every
cell below whose outputs depend on it through the dataflow graph; independent cells are
left alone. The record is notebook metadata, so it travels through git like the outputs.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..plan.tracing import content_hashes
from ..text import cell_text
from .dataflow import dependents, label
from .findings import Finding

#: Where in ``metadata.nbharness`` the record lives.
RECORD_KEY = "fresh"


def freshness_record(
    raw: Mapping[str, Any], ran: Mapping[str, Any], inputs: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The record for notebook ``raw`` (as JSON, outputs just stored) run as ``ran``
    (the executed notebook's metadata: its kernel and Python), which read ``inputs``
    (``{path relative to the notebook's folder: content hash}``, ``plan.tracing``)."""
    code = [cell for cell in raw.get("cells", []) if cell.get("cell_type") == "code"]
    record: dict[str, Any] = {
        "cells": [[_source_hash(cell), _outputs_hash(cell)] for cell in code],
        "kernel": _kernel(raw.get("metadata", {})),
        "python": (ran.get("language_info") or {}).get("version"),
    }
    parameters = (ran.get("papermill") or {}).get("parameters")
    if parameters:
        record["parameters"] = parameters
    if inputs:
        record["inputs"] = dict(sorted(inputs.items()))
    return record


def recorded_inputs(stored: Mapping[str, Any], folder: Path) -> list[Path]:
    """The project files the run that stored the outputs read, as its record lists them:
    what a fresh clone knows of a notebook's inputs (``--nb-changed-since`` in CI)."""
    record = _record(stored)
    return [] if record is None else [folder / name for name in _inputs(record)]


def _record(stored: Mapping[str, Any]) -> dict[str, Any] | None:
    ours = (stored.get("metadata") or {}).get("nbharness")
    record = ours.get(RECORD_KEY) if isinstance(ours, dict) else None
    if not isinstance(record, dict) or not isinstance(record.get("cells"), list):
        return None
    return record


def _inputs(record: Mapping[str, Any]) -> dict[str, str]:
    """``{path relative to the notebook's folder: content hash}``, as recorded."""
    inputs = record.get("inputs")
    if not isinstance(inputs, dict):
        return {}
    return {name: digest for name, digest in inputs.items() if isinstance(name, str)}


def freshness_findings(stored: Mapping[str, Any], folder: Path | None = None) -> list[Finding]:
    """Why the stored outputs of ``stored`` (a notebook as JSON, in ``folder``) are not
    proven to come from a clean run of its code: no record (one finding), cells edited
    since, the cells whose outputs depend on them, outputs changed by hand, project files
    the run read that changed since."""
    metadata = stored.get("metadata", {})
    record = _record(stored)
    if record is None:
        text = "has no freshness record (pytest --nb --nb-update-outputs writes one)"
        return [Finding(0, "NBH301", "", text)]
    cells: Sequence[Mapping[str, Any]] = stored.get("cells", [])
    findings: list[Finding] = []
    if record.get("kernel") != _kernel(metadata):
        text = (
            f"the record is for kernel {record.get('kernel')!r}, "
            f"the notebook asks for {_kernel(metadata)!r}"
        )
        findings.append(Finding(0, "NBH305", "", text))
    if folder is not None:
        named = _inputs(record)
        now_hashes = content_hashes(folder, [folder / name for name in named])
        for name, digest in sorted(named.items()):
            if now_hashes.get(name) != digest:
                text = f"the run read {name}, which changed since the outputs were stored"
                findings.append(Finding(0, "NBH306", "", text))
    numbers = [n for n, cell in enumerate(cells, start=1) if cell.get("cell_type") == "code"]
    recorded = [pair for pair in record["cells"] if isinstance(pair, list) and len(pair) == 2]
    now = [[_source_hash(cells[n - 1]), _outputs_hash(cells[n - 1])] for n in numbers]
    matcher = difflib.SequenceMatcher(
        None, [r[0] for r in recorded], [c[0] for c in now], autojunk=False
    )
    edited: dict[int, str] = {}  # cell number -> what happened to it
    same: list[tuple[int, str, str]] = []  # (cell number, recorded outputs, outputs now)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            recorded_outputs = [pair[1] for pair in recorded[i1:i2]]
            outputs_now = [pair[1] for pair in now[j1:j2]]
            same += zip(numbers[j1:j2], recorded_outputs, outputs_now, strict=True)
        elif tag == "delete" and j1 < len(numbers):  # deleting the last cells changes nothing
            gone = f"{i2 - i1} cell{'s' if i2 - i1 > 1 else ''}"
            edited[numbers[j1]] = f"follows {gone} deleted after the outputs were stored"
        for number in numbers[j1:j2] if tag != "equal" else []:
            edited[number] = (
                f"was {'added' if tag == 'insert' else 'edited'} after the outputs were stored"
            )
    findings += [_at(n, cells, "NBH302", text) for n, text in edited.items()]
    stale: dict[int, int] = {}  # cell number -> the edited cell above it depends on
    for origin in edited:
        for number in sorted(dependents(cells, {origin}) - set(edited)):
            stale.setdefault(number, origin)
    for number, origin in stale.items():
        if cells[number - 1].get("outputs"):
            text = f"shows results computed from an earlier version of cell {origin}"
            findings.append(_at(number, cells, "NBH303", text))
    for number, then, outputs in same:
        if then != outputs and number not in stale:
            text = "has outputs that are not those of the recorded run (re-run or edited by hand)"
            findings.append(_at(number, cells, "NBH304", text))
    return sorted(findings, key=lambda finding: finding.cell)


def _at(number: int, cells: Sequence[Mapping[str, Any]], code: str, text: str) -> Finding:
    return Finding(number, code, label(number, cells[number - 1]), text)


def _kernel(metadata: Mapping[str, Any]) -> str | None:
    spec = metadata.get("kernelspec") or {}
    return spec.get("name") if isinstance(spec, dict) else None


def _source_hash(cell: Mapping[str, Any]) -> str:
    return _hash(cell_text(cell.get("source", "")))


def _outputs_hash(cell: Mapping[str, Any]) -> str:
    """Outputs as Jupyter may save them again: multiline strings joined, keys sorted."""
    outputs = []
    for output in cell.get("outputs") or []:
        canonical = {key: value for key, value in output.items() if key != "metadata"}
        if "text" in canonical:
            canonical["text"] = cell_text(canonical["text"])
        if isinstance(canonical.get("data"), dict):
            canonical["data"] = {
                k: cell_text(v) if isinstance(v, list) else v for k, v in canonical["data"].items()
            }
        outputs.append(canonical)
    return _hash(json.dumps([cell.get("execution_count"), outputs], sort_keys=True))


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
