"""Sessions: ``tests`` (what CI runs), ``quick``, ``lint``, ``demo`` (the main job), ``bench``
(which queues ``bench_remote``)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, on real kernels (and a real JupyterHub for the hub tests)."""
    session.install("-e", ".[test]")
    _kernelspecs(session)
    env = {**_hub_proxy(session), **_gateways(session)}
    session.run("pytest", "-n", "2", *session.posargs, env=env)


@nox.session
def quick(session: nox.Session) -> None:
    """The inner loop: every test that is neither slow nor needs a JupyterHub."""
    session.install("-e", ".[test]")
    _kernelspecs(session)
    session.run("pytest", "-n", "2", "-m", "not slow and not hub", *session.posargs)


def _kernelspecs(session: nox.Session) -> None:
    """bash_kernel's kernelspec, into the session's venv (xeus-python's wheel ships its own)."""
    session.run("python", "-m", "bash_kernel.install", "--sys-prefix", silent=True)


def _hub_proxy(session: nox.Session) -> dict[str, str]:
    """JupyterHub's proxy, a node program: from npm into .nox/chp, named in NBH_CHP."""
    chp = Path(".nox/chp/node_modules/.bin/configurable-http-proxy").resolve()
    if not chp.exists() and shutil.which("npm"):
        session.run(
            "npm", "install", "--prefix", ".nox/chp", "configurable-http-proxy", external=True
        )
    if chp.exists() and "NBH_CHP" not in os.environ:
        return {"NBH_CHP": str(chp)}
    return {}


#: The gateways the gateway tests start, each in a venv of its own: Enterprise Gateway
#: pins an older jupyter_client than ours (and its kernel images ipykernel<7).
GATEWAYS = {
    "NBH_GATEWAY_EG": (
        ".nox/gateway-eg",
        "jupyter-enterprisegateway",
        ["jupyter_enterprise_gateway==3.3.*", "ipykernel<7"],
    ),
    "NBH_GATEWAY_KG": (
        ".nox/gateway-kg",
        "jupyter-kernelgateway",
        ["jupyter_kernel_gateway==3.0.*", "ipykernel"],
    ),
}


def _gateways(session: nox.Session) -> dict[str, str]:
    """Build each gateway's venv once, and name it to the tests."""
    env = {}
    for variable, (folder, program, packages) in GATEWAYS.items():
        venv = Path(folder).resolve()
        if not (venv / "bin" / program).exists():
            session.run(sys.executable, "-m", "venv", str(venv), external=True)
            session.run(str(venv / "bin" / "pip"), "install", "-q", *packages, external=True)
        env[variable] = os.environ.get(variable, str(venv))
    return env


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.install("-e", ".", "mypy")
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: every example notebook as a test on a local kernel."""
    session.install("-e", ".")
    session.run("pytest", "--nb", "examples/", *session.posargs)


#: What a JupyterLab or JupyterHub user who tests notebooks has in their venv: nbharness,
#: Jupyter's server, the analysis stack and the other runners; nothing from ``[test]``
#: (pytest-cov, pytest-rerunfailures, ipytest... would load into every pytest timed).
#: psutil is the harness's own: compare.py samples each run's peak memory with it.
BENCH_VENV = [
    *["-e", ".", "jupyter_server", "numpy", "pandas", "matplotlib"],
    *["nbmake", "nbval", "pytest-xdist", "psutil"],
]


@nox.session
def bench(session: nox.Session) -> None:
    """nbharness against nbmake, nbval-lax and raw nbclient on the same notebooks (tiny ones,
    and numpy/pandas/matplotlib ones), in one run, in a user's venv; then ``bench_remote``.
    ``nox -s bench -- --quick`` runs every row once, on 5 notebooks."""
    session.install(*BENCH_VENV)
    session.run("python", "benchmarks/compare.py", *session.posargs)
    session.notify("bench_remote", session.posargs)


@nox.session
def bench_remote(session: nox.Session) -> None:
    """Local kernels against a local JupyterHub's, in a venv of its own: the hub's packages
    stay out of the venv that ``bench`` measures."""
    session.install("-e", ".", "jupyterhub", "jupyter_server", "pytest-xdist", "psutil")
    session.run("python", "benchmarks/remote.py", *session.posargs, env=_hub_proxy(session))
