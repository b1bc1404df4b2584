"""Sessions: ``tests`` (what CI runs), ``lint``, ``demo`` (the main job) and ``bench``."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, on real kernels."""
    session.install("-e", ".[test]")
    session.run("pytest", "-n", "2", *session.posargs)


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


@nox.session
def bench(session: nox.Session) -> None:
    """nbharness against nbmake and raw nbclient on the same notebooks, in one run."""
    session.install("-e", ".", "nbmake", "pytest-xdist", "psutil")
    session.run("python", "benchmarks/compare.py", *session.posargs)
