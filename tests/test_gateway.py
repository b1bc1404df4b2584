"""``pytest --nb --nb-gateway-url`` on real Enterprise and Kernel Gateways (each test on
both): the same reports as locally, ``KERNEL_*`` variables and the working directory
honoured, and no kernel left behind after a pass, a failure, a slow start, a dead kernel
or SIGTERM."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import psutil
import pytest

from .gatewayfixture import REFUSED_USER, Gateway
from .helpers import build_notebook, expect
from .hubfixture import free_ports

pytestmark = [pytest.mark.gateway, pytest.mark.slow]

PAPERMILL = str(Path(sysconfig.get_path("scripts")) / "papermill")


def write(folder: Path, name: str, cells: list[str], **metadata: object) -> Path:
    path = folder / f"{name}.ipynb"
    nbformat.write(build_notebook(cells, **metadata), path)
    return path


def on(gateway: Gateway, *args: str) -> list[str]:
    return ["--nb", "--nb-gateway-url", gateway.url, "-p", "no:cacheprovider", *args]


@pytest.fixture
def gateway_env(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    """The gateway, its token in the environment, and a check that the test leaves no
    kernel there: none listed, and none of the processes it ran still alive."""
    monkeypatch.setenv("JUPYTER_GATEWAY_AUTH_TOKEN", gateway.token)
    before = gateway.kernel_pids()
    assert gateway.kernels() == []
    yield gateway
    deadline = time.monotonic() + 15
    while gateway.kernels() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gateway.kernels() == [], "kernels left on the gateway"
    _, alive = psutil.wait_procs(
        [psutil.Process(pid) for pid in gateway.kernel_pids() - before if psutil.pid_exists(pid)],
        timeout=10,
    )
    assert not alive, f"kernel processes left running: {[p.pid for p in alive]}"


def test_notebooks_pass_and_fail_with_the_reports_of_a_local_run(pytester, gateway_env) -> None:
    write(pytester.path, "good", ["x = 21", "print(x * 2)"])
    write(pytester.path, "bad", ["a = 1", "raise ValueError(f'a is {a}')"])
    local = pytester.runpytest_subprocess("--nb", "-p", "no:cacheprovider")
    remote = pytester.runpytest_subprocess(*on(gateway_env))
    remote.assert_outcomes(passed=1, failed=1)
    assert f"nbharness remote: gateway {gateway_env.url}" in remote.stdout.str()

    def report(result: pytest.RunResult) -> list[str]:
        lines = result.stdout.lines
        start = next(i for i, line in enumerate(lines) if "FAILURES" in line)
        end = next(i for i, line in enumerate(lines) if "short test summary" in line)
        return lines[start:end]

    assert report(remote) == report(local)
    expect(remote.stdout, ["*ValueError: a is 1*"])
    assert gateway_env.token not in remote.stdout.str() + remote.stderr.str()


def test_kernels_get_the_working_folder_and_kernel_variables(pytester, gateway_env) -> None:
    pytester.makepyprojecttoml(
        "[tool.nbharness.gateway]\n"
        'env = { KERNEL_IMAGE = "example.org/science:1", KERNEL_NAMESPACE = "ci" }\n'
    )
    work = pytester.mkdir("work")
    (work / "data.csv").write_text("1,2\n")
    check = (
        "import os\n"
        f"assert os.getcwd() == {str(work)!r}, os.getcwd()\n"
        f"assert os.environ['KERNEL_WORKING_DIR'] == {str(work)!r}\n"
        "assert open('data.csv').read() == '1,2\\n'\n"
        "assert os.environ['KERNEL_NAMESPACE'] == 'ci'\n"
        "assert os.environ['KERNEL_USERNAME']\n"
    )
    write(
        pytester.path,
        "own_image",
        [check + "assert os.environ['KERNEL_IMAGE'] == 'example.org/own:2'"],
        nbharness={"kernel_image": "example.org/own:2"},
    )
    write(
        pytester.path,
        "project_image",
        [check + "assert os.environ['KERNEL_IMAGE'] == 'example.org/science:1'"],
    )
    result = pytester.runpytest_subprocess(*on(gateway_env, "--nb-remote-cwd", str(work)))
    result.assert_outcomes(passed=2)


def test_an_ipykernel_7_kernel_goes_idle_under_the_local_process_proxy(
    pytester, gateway_env
) -> None:
    """Enterprise Gateway's images pin ipykernel<7 for its container proxies; its local
    one runs an ipykernel 7 kernel (of another interpreter) to the end."""
    write(
        pytester.path,
        "seven",
        ["import ipykernel; assert ipykernel.version_info[0] == 7", "print('done')"],
        kernelspec={"name": "ipykernel7", "display_name": "7"},
    )
    result = pytester.runpytest_subprocess(*on(gateway_env, "--nb-startup-timeout", "30"))
    result.assert_outcomes(passed=1)


def test_a_bad_kernel_image_in_the_metadata_fails_in_one_line(pytester, gateway_env) -> None:
    write(pytester.path, "odd", ["1"], nbharness={"kernel_image": 7})
    result = pytester.runpytest_subprocess(*on(gateway_env))
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        [
            f"*{pytester.path / 'odd.ipynb'}: metadata nbharness.kernel_image "
            "must be an image name, got 7*"
        ],
    )
    assert "Traceback" not in result.stdout.str()


def test_a_kernel_that_dies_fails_the_notebook_and_is_deleted(pytester, gateway_env) -> None:
    write(pytester.path, "dies", ["import os, signal", "os.kill(os.getpid(), signal.SIGKILL)"])
    result = pytester.runpytest_subprocess(*on(gateway_env))
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["*kernel died * while running cell 2*"])


def test_a_kernel_the_gateway_cannot_start_fails_in_one_line(pytester, gateway_env) -> None:
    write(pytester.path, "broken", ["1"], kernelspec={"name": "broken", "display_name": "b"})
    result = pytester.runpytest_subprocess(*on(gateway_env))
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        [f"*POST {gateway_env.url}/api/kernels: HTTP 500: *nbharness-no-such-kernel*"],
    )
    assert "Traceback" not in result.stdout.str()


def test_a_slow_kernel_start_counts_against_the_startup_timeout(pytester, gateway_env) -> None:
    write(pytester.path, "sleepy", ["1"], kernelspec={"name": "sleepy", "display_name": "s"})
    result = pytester.runpytest_subprocess(*on(gateway_env, "--nb-startup-timeout", "3"))
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["*kernel 'sleepy' did not start within 3 s (--nb-startup-timeout)*"])
    session_seconds = float(re.search(r" in ([\d.]+)s", result.stdout.lines[-1])[1])
    assert session_seconds < 25  # it did not wait out the 30 s the kernel takes


def test_sigterm_mid_cell_deletes_the_kernel(pytester, gateway_env) -> None:
    write(pytester.path, "long", ["import time; time.sleep(120)"])
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", *on(gateway_env)],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(k["execution_state"] == "busy" for k in gateway_env.kernels()):
            assert time.monotonic() < deadline, "the kernel never got busy"
            assert process.poll() is None, "pytest ended before the kernel got busy"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert gateway_env.kernels() == []


def test_xdist_workers_share_the_kernel_cap(pytester, gateway_env) -> None:
    """``-n 2 --nb-max-kernels 1``: never two kernels at once, so the runs never overlap."""
    for name in ("one", "two", "three"):
        write(
            pytester.path,
            name,
            [
                "import time, pathlib\n"
                "start = time.time(); time.sleep(1)\n"
                f"pathlib.Path({name!r} + '.span').write_text(f'{{start}} {{time.time()}}')"
            ],
        )
    result = pytester.runpytest_subprocess(
        *on(gateway_env, "-n", "2", "--nb-max-kernels", "1", "--nb-remote-cwd", str(pytester.path))
    )
    result.assert_outcomes(passed=3)
    spans = sorted(
        tuple(map(float, path.read_text().split())) for path in pytester.path.glob("*.span")
    )
    assert len(spans) == 3
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans)), spans


def test_papermill_runs_a_notebook_on_the_gateway(tmp_path, gateway_env) -> None:
    source, output = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    parameters = {"source": "alpha = 1", "tags": ["parameters"]}
    nbformat.write(build_notebook([parameters, "import os\nos.getcwd()", "alpha * 2"]), source)
    env = {
        **os.environ,
        "NBHARNESS_EXECUTOR": "gateway",
        "NBHARNESS_GATEWAY_URL": gateway_env.url,
        "NBHARNESS_REMOTE_CWD": str(tmp_path),
    }
    command = [PAPERMILL, "--engine", "nbharness", str(source), str(output), "-p", "alpha", "21"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    executed = nbformat.read(output, as_version=4)
    assert executed.cells[-2].outputs[0]["data"]["text/plain"] == repr(str(tmp_path))
    assert executed.cells[-1].outputs[0]["data"]["text/plain"] == "42"


def test_a_gateway_that_is_down_stops_the_run_in_one_line(pytester, monkeypatch) -> None:
    monkeypatch.delenv("JUPYTER_GATEWAY_AUTH_TOKEN", raising=False)
    write(pytester.path, "a", ["1"])
    url = f"http://127.0.0.1:{free_ports(1)[0]}"
    result = pytester.runpytest_subprocess("--nb", "--nb-gateway-url", url)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expect(result.stderr, [f"ERROR: nbharness: cannot reach {url}/api/kernelspecs: *refused*"])
    assert "Traceback" not in result.stderr.str()


def test_a_gateway_that_refuses_the_token_says_so(pytester, gateway, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTER_GATEWAY_AUTH_TOKEN", "not-the-token")
    write(pytester.path, "a", ["1"])
    result = pytester.runpytest_subprocess(*on(gateway))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expect(result.stderr, ["ERROR: nbharness: GET */api/kernelspecs: the token was refused*"])
    assert "not-the-token" not in result.stdout.str() + result.stderr.str()


def test_a_kernel_the_gateway_refuses_fails_with_its_reason(pytester, gateway_env) -> None:
    if gateway_env.kind != "eg":
        pytest.skip("Kernel Gateway has no per-user policy to refuse with")
    pytester.makepyprojecttoml(
        f'[tool.nbharness.gateway]\nenv = {{ KERNEL_USERNAME = "{REFUSED_USER}" }}\n'
    )
    write(pytester.path, "a", ["1"])
    result = pytester.runpytest_subprocess(*on(gateway_env))
    result.assert_outcomes(failed=1)
    expect(result.stdout, [f"*POST */api/kernels: refused (HTTP 403): *{REFUSED_USER}*"])


def test_a_gateway_with_a_hub_or_server_is_refused(pytester) -> None:
    write(pytester.path, "a", ["1"])
    result = pytester.runpytest(
        "--nb", "--nb-gateway-url", "http://127.0.0.1:1", "--nb-server-url", "http://127.0.0.1:2"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expect(result.stderr, ["*--nb-server-url and --nb-gateway-url: give only one of them"])


def test_gateway_env_holds_only_kernel_variables(pytester) -> None:
    pytester.makepyprojecttoml('[tool.nbharness.gateway]\nenv = { IMAGE = "x" }\n')
    write(pytester.path, "a", ["1"])
    result = pytester.runpytest("--nb", "--nb-gateway-url", "http://127.0.0.1:1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expect(
        result.stderr,
        [
            f"ERROR: {pytester.path / 'pyproject.toml'}: [tool.nbharness.gateway] env must be "
            "a table of KERNEL_* variables (strings), got {'IMAGE': 'x'}"
        ],
    )
