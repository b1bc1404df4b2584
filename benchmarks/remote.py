"""Time ``pytest --nb`` on a local JupyterHub's kernels against local kernels.

Starts a throwaway hub on 127.0.0.1 (the test suite's), runs the same tiny notebooks
locally and remotely, interleaved, and prints the remote path's cost per notebook and
the wall time of ``-n 2`` on one server and on two. Servers are started before timing:
their spawn is a one-off per session, reported on its own.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.compare import interleaved, parse_args, write_notebooks
from tests.hubfixture import USER_SCOPES, Hub, HubUnavailable

USER = "bench"


def main() -> None:
    args = parse_args(__doc__ or "")
    with tempfile.TemporaryDirectory() as state, tempfile.TemporaryDirectory() as tmp:
        try:
            hub = Hub.start(Path(state))
        except HubUnavailable as exc:
            print(f"remote benchmark skipped: no hub here ({exc})")
            return
        try:
            run(hub, Path(tmp), args.notebooks, args.rounds)
        finally:
            hub.stop()


def run(hub: Hub, folder: Path, count: int, rounds: int) -> None:
    hub.add_user(USER)
    token = hub.token_for(USER, [scope.format(name=USER) for scope in USER_SCOPES])
    spawned = time.perf_counter()
    for name in ("", "nbharness-1", "nbharness-2"):
        hub.start_server(USER, name)
    spawn = (time.perf_counter() - spawned) / 3
    write_notebooks(folder, count)
    os.environ["JUPYTERHUB_API_TOKEN"] = token
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:nbmake"]
    remote = ["--nb-hub-url", hub.url, "--nb-hub-user", USER]
    commands = {
        "local": [*pytest, "--nb", str(folder)],
        "remote": [*pytest, "--nb", *remote, str(folder)],
        "local -n 2": [*pytest, "-n", "2", "--nb", str(folder)],
        "remote -n 2, 1 server": [*pytest, "-n", "2", "--nb", *remote, str(folder)],
        "remote -n 2, 2 servers": [
            *pytest,
            *["-n", "2", "--nb", *remote, "--nb-hub-servers", "2", str(folder)],
        ],
    }
    wall = {name: sample.wall for name, sample in interleaved(commands, folder, rounds).items()}
    print(f"{count} tiny notebooks on a local JupyterHub, medians of {rounds} interleaved rounds")
    for name in commands:
        print(f"  {name:<24} {wall[name]:7.2f} s wall")
    overhead = (wall["remote"] - wall["local"]) / count
    print(f"remote path's cost per notebook over a local kernel: {1000 * overhead:.0f} ms")
    print(f"server spawn (once per session, not in the figures above): {spawn:.1f} s each")


if __name__ == "__main__":
    main()
