"""A real kernel for the tests, of a language nbharness knows nothing of, that reports a
failing cell the ways some kernels do: only in its ``execute_reply`` (``status: error``,
no iopub ``error``), only on iopub (an ``error`` message, and ``status: ok``), or not at
all (a line on stderr, and ``status: ok``).

Run as ``python reporting_kernel.py -f CONNECTION_FILE``; ``install(folder)`` writes its
kernelspec (``reporting``) under ``folder/kernels`` for ``JUPYTER_PATH``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, ClassVar

from ipykernel.kernelapp import IPKernelApp
from ipykernel.kernelbase import Kernel

NAME = "reporting"


class ReportingKernel(Kernel):
    """``fail-in-reply`` fails in the reply only, ``fail-on-iopub`` on iopub only,
    ``fail-silently`` unreported; any other code is echoed to stdout."""

    implementation = "nbharness-tests"
    implementation_version = "1"
    language_info: ClassVar[dict[str, str]] = {
        "name": "plaintext",
        "mimetype": "text/plain",
        "file_extension": ".txt",
    }
    banner = "reporting kernel"

    def do_execute(  # type: ignore[override]
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        count = self.execution_count
        if code.strip() == "fail-in-reply":
            return {
                "status": "error",
                "execution_count": count,
                "ename": "Failure",
                "evalue": "reported only in the execute_reply",
                "traceback": [],
            }
        if code.strip() == "fail-on-iopub":
            error = {"ename": "Failure", "evalue": "reported only on iopub", "traceback": []}
            self.send_response(self.iopub_socket, "error", error)
            return {"status": "ok", "execution_count": count, "payload": [], "user_expressions": {}}
        stream = (
            ("stderr", "it went wrong\n") if code.strip() == "fail-silently" else ("stdout", code)
        )
        if not silent:
            self.send_response(self.iopub_socket, "stream", {"name": stream[0], "text": stream[1]})
        return {"status": "ok", "execution_count": count, "payload": [], "user_expressions": {}}


def install(folder: Path) -> None:
    """Write this kernel's kernelspec under ``folder/kernels/reporting``."""
    spec = folder / "kernels" / NAME
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(Path(__file__).resolve()), "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Reporting", "language": "plaintext"})
    )


if __name__ == "__main__":
    IPKernelApp.launch_instance(kernel_class=ReportingKernel)
