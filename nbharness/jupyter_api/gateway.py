"""A Jupyter Enterprise Gateway or Kernel Gateway: a Jupyter server that serves only
kernels, each started where the ``KERNEL_*`` variables of its start request say.

Enterprise Gateway hands ``KERNEL_*`` to its process proxy (``KERNEL_IMAGE`` picks a
pod's image, ``KERNEL_WORKING_DIR`` its folder, ``KERNEL_ID`` the kernel's id,
``KERNEL_LAUNCH_TIMEOUT`` how long the launch may take); Kernel Gateway passes them to
the kernel's environment. Both speak the kernels API of any Jupyter server, so the rest
is ``rest.Server``'s.
"""

from __future__ import annotations

import getpass
import math
from collections.abc import Mapping
from typing import Any

from ..errors import NbHarnessError
from .rest import Server

#: Notebook metadata ``{"nbharness": {"kernel_image": ...}}``: the image for its kernel.
IMAGE_KEY = "kernel_image"


class Gateway(Server):
    """A gateway to start kernels on, and the ``KERNEL_*`` variables each kernel gets."""

    def __init__(self, url: str, token: str, kernel_env: Mapping[str, str] | None = None) -> None:
        super().__init__(url, token, label=f"gateway {url.rstrip('/')}")
        self.kernel_env = dict(kernel_env or {})

    def __repr__(self) -> str:
        return f"Gateway({self.url!r})"


def start_request(
    notebook: str,
    name: str,
    kernel_id: str,
    kernel_env: Mapping[str, str],
    metadata: Mapping[str, Any],
    cwd: str | None,
    launch_timeout: float,
) -> dict[str, Any]:
    """The ``POST /api/kernels`` body for the kernel of ``notebook`` (its path).

    ``kernel_env`` is ``[tool.nbharness.gateway] env``; the notebook's own
    ``nbharness.kernel_image`` (in ``metadata``) wins over its ``KERNEL_IMAGE``. The
    kernel id is ours, so that a kernel whose start we stopped waiting for can still be
    deleted; the launch may take what is left of the start-up timeout. ``cwd`` goes as
    ``KERNEL_WORKING_DIR`` (a pod's folder) and as ``path`` (a local kernel's folder,
    relative to the gateway's own).
    """
    env = {"KERNEL_USERNAME": getpass.getuser(), **kernel_env}
    image = metadata.get(IMAGE_KEY)
    if image is not None:
        if not isinstance(image, str) or not image:
            raise NbHarnessError(
                f"{notebook}: metadata nbharness.{IMAGE_KEY} must be an image name, got {image!r}"
            )
        env["KERNEL_IMAGE"] = image
    if cwd:
        env["KERNEL_WORKING_DIR"] = cwd
    env["KERNEL_ID"] = kernel_id
    env["KERNEL_LAUNCH_TIMEOUT"] = str(max(math.ceil(launch_timeout), 1))
    body: dict[str, Any] = {"name": name, "env": env}
    if cwd:
        body["path"] = cwd
    return body
