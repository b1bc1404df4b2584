"""``pytest --nb`` on a real JupyterHub's kernels: the examples, reports, scale-out, papermill.

The notebooks are read here and run there: their files (data, modules) are copied into
alice's home, which is her server's root and so the remote kernels' working directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

from .helpers import build_notebook
from .hubfixture import TEST_IMAGE

pytestmark = pytest.mark.hub

ROOT = Path(__file__).resolve().parents[1]
PAPERMILL = str(Path(sysconfig.get_path("scripts")) / "papermill")


def home_folder(hub_user) -> tuple[Path, str]:
    """A fresh folder in alice's home: its local path, and its path on her server."""
    name = f"run-{uuid.uuid4().hex[:8]}"
    folder = hub_user.hub.root / "home" / hub_user.name / name
    folder.mkdir(parents=True)
    return folder, name


def on_hub(hub_user, *args: str) -> list[str]:
    return ["--nb", "--nb-hub-url", hub_user.hub.url, "--nb-hub-user", hub_user.name, *args]


@pytest.fixture
def alice_env(hub_user, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", hub_user.token)
    return hub_user


def test_the_examples_pass_remotely_and_leave_no_kernel(pytester, alice_env) -> None:
    remote, name = home_folder(alice_env)
    shutil.copytree(ROOT / "examples", remote / "examples")
    shutil.copytree(ROOT / "examples", pytester.path / "examples")
    shutil.copy(ROOT / "pyproject.toml", pytester.path)
    result = pytester.runpytest_subprocess(
        *on_hub(alice_env, "--nb-remote-cwd", f"{name}/examples"),
        "-p",
        "no:cacheprovider",
        "examples",
        timeout=300,
    )
    result.assert_outcomes(passed=36, skipped=1)
    output = result.stdout.str() + result.stderr.str()
    assert "nbharness remote: hub" in output
    assert f"image={TEST_IMAGE}" in output  # asked of a kernel: the hub did not say
    assert alice_env.token not in output
    assert alice_env.hub.kernels(alice_env.name) == []


def test_a_failure_reads_the_same_as_on_a_local_kernel(pytester, alice_env) -> None:
    cells = ["total = 0", "def mean(xs):\n    return sum(xs) / len(xs)", "mean([])"]
    nbformat.write(build_notebook(cells), pytester.path / "broken.ipynb")
    local = pytester.runpytest_subprocess("--nb", "-p", "no:cacheprovider", "broken.ipynb")
    remote = pytester.runpytest_subprocess(
        *on_hub(alice_env), "-p", "no:cacheprovider", "broken.ipynb"
    )
    local.assert_outcomes(failed=1)
    remote.assert_outcomes(failed=1)
    assert failure_section(remote.stdout.lines) == failure_section(local.stdout.lines)
    assert "ZeroDivisionError" in "\n".join(failure_section(remote.stdout.lines))
    assert alice_env.hub.kernels(alice_env.name) == []


def failure_section(lines: list[str]) -> list[str]:
    """The lines of the first failure's report, without the run's timings."""
    start = next(i for i, line in enumerate(lines) if re.match(r"_{3,} .* _{3,}$", line))
    end = next(i for i, line in enumerate(lines) if "short test summary" in line)
    return lines[start:end]


def test_two_workers_share_one_server(pytester, alice_env) -> None:
    for index in range(4):
        nbformat.write(build_notebook([f"x = {index}", "x * 2"]), pytester.path / f"n{index}.ipynb")
    result = pytester.runpytest_subprocess(*on_hub(alice_env), "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    assert alice_env.hub.kernels(alice_env.name) == []


def test_two_workers_on_two_named_servers_which_are_gone_afterwards(pytester, alice_env) -> None:
    for index in range(4):
        nbformat.write(
            build_notebook(["import os", "os.environ['JUPYTERHUB_SERVER_NAME']"]),
            pytester.path / f"n{index}.ipynb",
        )
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        *on_hub(alice_env, "--nb-hub-servers", "2", "--nb-output-dir", "out"),
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
    )
    result.assert_outcomes(passed=4)
    header = result.stdout.str()
    assert "alice/nbharness-1" in header
    assert "alice/nbharness-2" in header
    ran_on = {
        nbformat.read(path, as_version=4).cells[1].outputs[0]["data"]["text/plain"]
        for path in (pytester.path / "out").glob("*.ipynb")
    }
    assert ran_on == {"'nbharness-1'", "'nbharness-2'"}
    properties = {
        prop.get("name"): prop.get("value") for prop in ET.parse(junit).getroot().iter("property")
    }
    assert properties["nbharness_server_1"].endswith("/user/alice/nbharness-1/")
    assert properties["nbharness_workers_2"] == "gw1"
    assert properties["nbharness_image_2"] == TEST_IMAGE
    assert set(alice_env.hub.servers(alice_env.name)) == {""}  # started by us, so stopped


def test_a_plain_jupyter_server_works_without_a_hub(pytester, hub_user, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTER_TOKEN", hub_user.token)
    nbformat.write(build_notebook(["print('hello')"]), pytester.path / "hello.ipynb")
    result = pytester.runpytest_subprocess(
        "--nb", "--nb-server-url", hub_user.server_url, "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    assert f"nbharness remote: remote server {hub_user.server_url}" in result.stdout.str()


def test_kernel_settings_reach_the_remote_kernel(pytester, alice_env) -> None:
    """--nb-env is set before the first cell; --nb-remote-cwd is the kernel's folder."""
    remote, name = home_folder(alice_env)
    (remote / "data.txt").write_text("remote data")
    cells = ["import os", "assert os.environ['STATION'] == 'north'", "open('data.txt').read()"]
    nbformat.write(build_notebook(cells), pytester.path / "env.ipynb")
    result = pytester.runpytest_subprocess(
        *on_hub(alice_env, "--nb-remote-cwd", name, "--nb-env", "STATION=north"),
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)


def test_env_is_not_sent_as_python_to_a_remote_bash_kernel(pytester, alice_env) -> None:
    """--nb-env is set by Python code before the first cell: a bash kernel gets none of it,
    and the run says so instead of failing on code in the wrong language."""
    bash = {"name": "bash", "display_name": "Bash", "language": "bash"}
    nbformat.write(
        build_notebook(["echo ${STATION:-unset}"], kernelspec=bash), pytester.path / "env.ipynb"
    )
    result = pytester.runpytest_subprocess(
        *on_hub(alice_env, "--nb-env", "STATION=north"), "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*env.ipynb: --nb-env is not applied on a remote bash kernel*"])


def test_papermill_runs_a_notebook_on_the_hub(tmp_path, hub_user) -> None:
    source, output = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    parameters = {"source": "alpha = 1", "tags": ["parameters"]}
    nbformat.write(build_notebook([parameters, "import os", "alpha * 2"]), source)
    env = {
        **os.environ,
        "NBHARNESS_EXECUTOR": "remote",
        "NBHARNESS_HUB_URL": hub_user.hub.url,
        "NBHARNESS_HUB_USER": hub_user.name,
        "JUPYTERHUB_API_TOKEN": hub_user.token,
    }
    command = [PAPERMILL, "--engine", "nbharness", str(source), str(output), "-p", "alpha", "21"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    executed = nbformat.read(output, as_version=4)
    assert executed.cells[-1].outputs[0]["data"]["text/plain"] == "42"
    assert hub_user.hub.kernels(hub_user.name) == []


def test_output_the_server_dropped_is_a_warning(pytester, alice_env) -> None:
    """The server's iopub rate limit (1 MB/s by default) drops output a local run keeps."""
    flood = "for i in range(4000):\n    print('x' * 1000, flush=True)"
    nbformat.write(build_notebook([flood]), pytester.path / "flood.ipynb")
    result = pytester.runpytest_subprocess(*on_hub(alice_env), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*flood.ipynb: alice/ dropped output over its iopub rate limit*"])


def test_the_notebook_fixture_asks_a_remote_kernel(pytester, alice_env) -> None:
    lib = build_notebook(["def double(x):\n    return 2 * x"])
    nbformat.write(lib, pytester.path / "lib.ipynb")
    pytester.makepyfile(
        test_lib="""
        def test_double(notebook):
            lib = notebook("lib.ipynb")
            assert lib.call("double", 21) == 42
            assert lib.value("__import__('os').environ['JUPYTERHUB_USER']") == "alice"
        """
    )
    result = pytester.runpytest_subprocess(*on_hub(alice_env), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert alice_env.hub.kernels(alice_env.name) == []


def test_max_kernels_caps_kernels_per_server_across_workers(pytester, alice_env) -> None:
    """Two workers, a cap of one: the notebooks never overlap on the server."""
    remote, name = home_folder(alice_env)
    overlap_check = (
        "import os, time, uuid\n"
        "mine = f'busy-{uuid.uuid4().hex}'\n"
        "others = [f for f in os.listdir('.') if f.startswith('busy-')]\n"
        "open(mine, 'w').close()\n"
        "time.sleep(0.5)\n"
        "os.remove(mine)\n"
        "assert not others, others"
    )
    for index in range(4):
        nbformat.write(build_notebook([overlap_check]), pytester.path / f"n{index}.ipynb")
    result = pytester.runpytest_subprocess(
        *on_hub(alice_env, "--nb-remote-cwd", name, "--nb-hub-max-kernels", "1"),
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=4)
    assert not list(remote.iterdir())


@pytest.mark.parametrize(
    ("subprotocols", "framing"), [(("v1.kernel.websocket.jupyter.org",), "v1"), ((), "legacy")]
)
def test_both_websocket_framings_run_a_notebook(
    hub_user, tmp_path, monkeypatch, subprotocols, framing
):
    """Servers fronting a gateway speak only the legacy JSON framing: it must work too."""
    from nbharness.execute import Run
    from nbharness.execute.remote import RemoteExecutor
    from nbharness.execute.websocket import KernelSocket
    from nbharness.jupyter_api.rest import Server

    monkeypatch.setattr(KernelSocket, "subprotocols", subprotocols)
    cells = ["print('out')", "from IPython.display import HTML\nHTML('<b>x</b>')", "1/0"]
    nb = build_notebook(cells)
    run = Run(path=tmp_path / "x.ipynb", notebook=nb, cwd=tmp_path, cell_timeout=60)
    used: set[str] = set()

    class Framing:
        def cell_started(self, index, cell) -> None:
            used.update(km.socket.protocol for km in executor.kernels)

        def cell_finished(self, index, cell) -> None:
            pass

    with RemoteExecutor(Server(hub_user.server_url, hub_user.token)) as executor:
        result = executor.execute(run, Framing())
    assert used == {framing}
    first, second, _ = result.notebook.cells
    assert first.outputs[0]["text"] == "out\n"
    assert second.outputs[0]["data"]["text/html"] == "<b>x</b>"
    assert "ZeroDivisionError" in result.error.summary
    assert hub_user.hub.kernels(hub_user.name) == []


def test_a_remote_cwd_that_does_not_exist_is_a_usage_error(pytester, alice_env) -> None:
    """The server would quietly run kernels in the nearest parent folder instead."""
    nbformat.write(build_notebook(["x = 1"]), pytester.path / "a.ipynb")
    result = pytester.runpytest_subprocess(
        *on_hub(alice_env, "--nb-remote-cwd", "no/such/folder"), "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--nb-remote-cwd no/such/folder: no such folder on alice/*"])
