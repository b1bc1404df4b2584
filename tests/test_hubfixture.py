"""The JupyterHub fixture itself: up, scoped, and gone without a trace when stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import assert_all_dead
from .hubfixture import Hub, HubUser, http, port_is_free, running_hub

pytestmark = pytest.mark.hub


@pytest.fixture
def fresh_hub(tmp_path: Path) -> Iterator[Hub]:
    """A hub of this test's own, started and stopped by the same code as the session's."""
    with running_hub(tmp_path / "hub") as hub:
        yield hub


def test_user_server_answers_the_user_token(jupyterhub: Hub, hub_user: HubUser) -> None:
    status, version = jupyterhub.request("GET", "/")
    assert status == 200
    assert "version" in version
    assert hub_user.server_url == f"{jupyterhub.url}/user/alice/"
    status, reply = http("GET", f"{hub_user.server_url}api/status", token=hub_user.token)
    assert status == 200
    assert "started" in reply
    assert jupyterhub.kernels("alice") == []
    leaked = hub_user.token in repr(hub_user) or hub_user.token in repr(jupyterhub)
    assert not leaked


def test_user_token_does_not_reach_another_users_server(jupyterhub: Hub, hub_user: HubUser) -> None:
    jupyterhub.add_user("bob")
    bob_url = jupyterhub.start_server("bob")
    try:
        status, _ = http("GET", f"{bob_url}api/status", token=hub_user.token)
        assert status in (403, 404)
        status, _ = jupyterhub.request("DELETE", "/users/bob/server", token=hub_user.token)
        assert status in (403, 404)
        assert "" in jupyterhub.servers("bob")
    finally:
        jupyterhub.stop_server("bob")
    assert jupyterhub.servers("bob") == {}


def test_stopped_hub_leaves_no_process_and_no_port(fresh_hub: Hub) -> None:
    hub = fresh_hub
    hub.add_user("carol")
    url = hub.start_server("carol")
    token = hub.token_for("carol", ["access:servers!user=carol"])
    status, _ = http("POST", f"{url}api/kernels", {"name": "python3"}, token=token)
    assert status == 201
    assert len(hub.kernels("carol")) == 1
    pids = hub.pids()
    assert len(pids) >= 4  # the hub, its proxy, carol's server and her kernel

    hub.stop()

    assert_all_dead(sorted(pids), grace=0.1)  # stop() has waited already
    assert hub.pids() == set()
    assert [port for port in hub.ports if not port_is_free(port)] == []
