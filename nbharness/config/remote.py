"""The remote settings: where notebooks run when not on this machine, and the token.

Built from flags and ini keys (``remote_settings``, for the pytest plugin) or from the
``NBHARNESS_*`` environment (``execute.remote.server_from_environment``, for papermill);
both read the token by the one rule of ``read_token``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NbHarnessError
from .values import positive_seconds, whole_number

if TYPE_CHECKING:
    from ..jupyter_api.hub import Hub

#: Where the token comes from without --nb-hub-token-file: never the command line.
HUB_TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
SERVER_TOKEN_ENV = "JUPYTER_TOKEN"
#: A gateway's token, by the name jupyter_server's own gateway client reads; often none.
GATEWAY_TOKEN_ENV = "JUPYTER_GATEWAY_AUTH_TOKEN"
#: A server on Kubernetes may wait for a node and pull an image: minutes, not seconds.
DEFAULT_START_TIMEOUT = 300.0
#: Named servers ``--nb-hub-servers K`` creates when ``--nb-hub-server`` names none.
DEFAULT_POOL_PREFIX = "nbharness"


@dataclass(frozen=True)
class RemoteSettings:
    """Where notebooks run when not on this machine."""

    #: A hub's URL (``hub_user`` then names the user), or else a Jupyter server's URL.
    hub_url: str | None
    server_url: str | None
    token: str = field(repr=False)
    hub_user: str = ""
    #: The named server to use ("" is the user's default one), or the pool's prefix.
    server_name: str = ""
    servers: int = 1
    user_options: Mapping[str, Any] = field(default_factory=dict)
    start_timeout: float = DEFAULT_START_TIMEOUT
    start_timeout_source: str = "the default"
    max_kernels: int | None = None
    #: The flag or ini option that set ``max_kernels``, named when a wait for a slot ends.
    max_kernels_source: str = "--nb-max-kernels"
    remote_cwd: str | None = None
    #: A Jupyter Enterprise or Kernel Gateway's URL (instead of a hub or a server), and
    #: the ``KERNEL_*`` variables each of its kernels starts with.
    gateway_url: str | None = None
    kernel_env: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        """The hub servers this run uses."""
        if self.servers == 1:
            return [self.server_name]
        prefix = self.server_name or DEFAULT_POOL_PREFIX
        return [f"{prefix}-{index}" for index in range(1, self.servers + 1)]

    def hub(self) -> Hub:
        from ..jupyter_api.hub import Hub  # its HTTP client: only for a hub session

        assert self.hub_url is not None
        return Hub(self.hub_url, self.hub_user, self.token)

    def describe(self) -> str:
        if self.gateway_url is not None:
            return f"gateway {self.gateway_url}"
        if self.hub_url is None:
            return f"remote server {self.server_url}"
        if self.servers > 1:
            where = f"{self.servers} named servers"
        else:
            where = f"server {self.server_name!r}" if self.server_name else "default server"
        return f"hub {self.hub_url}, user {self.hub_user}, {where}"


def remote_settings(
    lookup: Callable[[str], tuple[str | None, str]], project: Mapping[str, Any], project_file: Path
) -> RemoteSettings | None:
    """The remote settings from flags and ini keys (``lookup``) and ``[tool.nbharness.hub]``."""
    hub_url, _ = lookup("nb_hub_url")
    server_url, _ = lookup("nb_server_url")
    gateway_url, _ = lookup("nb_gateway_url")
    urls = {"--nb-hub-url": hub_url, "--nb-server-url": server_url, "--nb-gateway-url": gateway_url}
    given = [flag for flag, url in urls.items() if url]
    if len(given) > 1:
        raise NbHarnessError(f"{' and '.join(given)}: give only one of them")
    if gateway_url:
        return _gateway_settings(gateway_url, lookup, project)
    if not hub_url and not server_url:
        return None
    user, _ = lookup("nb_hub_user")
    if hub_url and not user:
        raise NbHarnessError("--nb-hub-url needs --nb-hub-user NAME (or ini nb_hub_user)")
    token_file, token_where = lookup("nb_hub_token_file")
    env = HUB_TOKEN_ENV if hub_url else SERVER_TOKEN_ENV
    token = read_token(env, token_file, token_where, hint="pass --nb-hub-token-file FILE")
    table = project.get("hub", {})
    if not isinstance(table, dict) or not isinstance(table.get("user_options", {}), dict):
        raise NbHarnessError(f"{project_file}: [tool.nbharness.hub] user_options must be a table")
    timeout, timeout_where = lookup("nb_hub_start_timeout")
    servers, servers_where = lookup("nb_hub_servers")
    name, name_where = lookup("nb_hub_server")
    if name and "/" in name:
        raise NbHarnessError(f"{name_where} {name}: a server name cannot contain '/'")
    cwd, _ = lookup("nb_remote_cwd")
    return RemoteSettings(
        hub_url=hub_url,
        server_url=server_url,
        token=token,
        hub_user=user or "",
        server_name=name or "",
        servers=whole_number(servers, servers_where) if servers else 1,
        user_options=dict(table.get("user_options", {})),
        start_timeout=positive_seconds(timeout, timeout_where)
        if timeout
        else DEFAULT_START_TIMEOUT,
        start_timeout_source=timeout_where,
        **_max_kernels(lookup),
        remote_cwd=cwd or None,
    )


def _gateway_settings(
    url: str,
    lookup: Callable[[str], tuple[str | None, str]],
    project: Mapping[str, Any],
) -> RemoteSettings:
    """A gateway's settings: its optional token, and ``[tool.nbharness.gateway]``'s
    ``env`` (checked by the project's schema: ``KERNEL_*`` strings only)."""
    token_file, token_where = lookup("nb_hub_token_file")
    token = ""
    if token_file or os.environ.get(GATEWAY_TOKEN_ENV, "").strip():
        token = read_token(GATEWAY_TOKEN_ENV, token_file, token_where)
    table = project.get("gateway", {})
    cwd, _ = lookup("nb_remote_cwd")
    return RemoteSettings(
        hub_url=None,
        server_url=None,
        gateway_url=url,
        token=token,
        kernel_env=dict(table.get("env", {})),
        **_max_kernels(lookup),
        remote_cwd=cwd or None,
    )


def _max_kernels(lookup: Callable[[str], tuple[str | None, str]]) -> dict[str, Any]:
    """``--nb-max-kernels`` (or the hub's older spelling of it) and where it was set."""
    value, where = lookup("nb_max_kernels")
    if not value:
        value, where = lookup("nb_hub_max_kernels")
    if not value:
        return {}
    return {"max_kernels": whole_number(value, where), "max_kernels_source": where}


def read_token(env: str, token_file: str | None = None, where: str = "", hint: str = "") -> str:
    """The token, from ``token_file`` (named by ``where``) or else the variable ``env``:
    never from the command line itself. ``hint`` names another way to give it."""
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise NbHarnessError(f"{where}: cannot read {token_file}: {exc.strerror}") from None
        if not token:
            raise NbHarnessError(f"{where}: {token_file} is empty")
        return _checked(token, f"{where} {token_file}")
    token = os.environ.get(env, "").strip()
    if not token:
        raise NbHarnessError(f"no token: set {env}" + (f" or {hint}" if hint else ""))
    return _checked(token, f"${env}")


def _checked(token: str, source: str) -> str:
    """``token`` if it can travel in an HTTP header; else why not, naming ``source`` and
    never echoing the token (a second line may be another secret)."""
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise NbHarnessError(
            f"{source}: the token has whitespace or control characters inside it "
            "(a line break?): a token is one line of printable characters"
        )
    return token
