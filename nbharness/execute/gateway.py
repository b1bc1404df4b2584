"""Runs notebooks on kernels of a Jupyter Enterprise Gateway or Kernel Gateway.

The remote executor's REST and websocket client, with what differs on a gateway: each
start request carries ``KERNEL_*`` variables (``jupyter_api.gateway``); a launch (a
pod scheduled, an image pulled) may take the whole start-up timeout, and one that runs
out says so; and there is no spare kernel, so ``-n 8`` holds eight kernels, each where
the gateway puts it. The kernel id is chosen here and counted as ours before the
request goes out, so a kernel whose launch we stopped waiting for is deleted as well.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from ..config.remote import GATEWAY_TOKEN_ENV, read_token
from ..errors import KernelStartFailed, NbHarnessError
from ..jupyter_api.gateway import Gateway, start_request
from ..jupyter_api.rest import RemoteError
from ..notebook.io import nbharness_metadata
from . import ExecutorSettings, Run
from .remote import RemoteExecutor


class GatewayExecutor(RemoteExecutor):
    """Runs each notebook on a new kernel of ``gateway``, deleted after the run."""

    def __init__(
        self,
        gateway: Gateway,
        remote_cwd: str | None = None,
        max_kernels: int | None = None,
        max_kernels_source: str = "--nb-max-kernels",
    ) -> None:
        super().__init__(
            gateway, remote_cwd, max_kernels, spare=False, max_kernels_source=max_kernels_source
        )
        self.gateway = gateway

    @classmethod
    def from_settings(cls, settings: ExecutorSettings) -> GatewayExecutor:
        """The executor on ``settings.server``, or else on ``NBHARNESS_GATEWAY_URL``
        (papermill's way; ``NBHARNESS_REMOTE_CWD`` then sets the working directory)."""
        if isinstance(settings.server, Gateway):
            source = settings.max_kernels_source
            return cls(settings.server, settings.remote_cwd, settings.max_kernels, source)
        url = os.environ.get("NBHARNESS_GATEWAY_URL")
        if not url:
            raise NbHarnessError("the gateway executor needs NBHARNESS_GATEWAY_URL")
        token = read_token(GATEWAY_TOKEN_ENV) if os.environ.get(GATEWAY_TOKEN_ENV) else ""
        cwd = settings.remote_cwd or os.environ.get("NBHARNESS_REMOTE_CWD") or None
        return cls(Gateway(url, token), cwd, settings.max_kernels, settings.max_kernels_source)

    def launch(self, name: str, run: Run | None) -> Any:
        assert run is not None, "a gateway keeps no spare kernel"
        kernel_id = str(uuid.uuid4())
        body = start_request(
            str(run.path),
            name,
            kernel_id,
            self.gateway.kernel_env,
            nbharness_metadata(run.notebook),
            self.remote_cwd,
            run.startup_timeout,
        )
        with self._lock:
            self.owned.add(kernel_id)  # deleted at the end even if we stop waiting
        try:
            model = self.rest.post("api/kernels", body, timeout=run.startup_timeout)
        except RemoteError as exc:
            if exc.fault is None:  # refused: no kernel was started
                with self._lock:
                    self.owned.discard(kernel_id)
            if exc.timed_out:
                raise KernelStartFailed(
                    f"kernel {name!r} did not start within {run.startup_timeout:g} s "
                    f"({run.startup_timeout_source}): {self.gateway.label} was still "
                    "launching it"
                ) from None
            raise
        if str(model["id"]) != kernel_id:  # a gateway that chooses its own ids
            with self._lock:
                self.owned.discard(kernel_id)
        return model
