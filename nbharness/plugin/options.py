"""Every ``--nb-*`` option once, as data: its flag, ini key, value and help.

``pytest_addoption`` registers these rows and nothing else, and ``docs/options.md`` is
checked against them (``tests/test_docs.py``), so a flag cannot exist without its docs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ..config.settings import DEFAULT_CELL_TIMEOUT, DEFAULT_STARTUP_TIMEOUT

GROUP = "nbharness"


@dataclass(frozen=True)
class Option:
    """One ``--nb-*`` flag, and the ini key of the same name when ``ini`` is set."""

    name: str
    help: str
    #: What the flag's value is called in ``--help``; ``None`` for an on/off switch.
    metavar: str | None = None
    ini: bool = True
    #: The flag may be given several times; its values are collected in a list.
    repeat: bool = False
    #: The flag stores this constant (``--nb-compare=strict``) instead of taking a value.
    const: str | None = None
    #: The flag's spelling when it is not ``--`` + the name with dashes.
    spelling: str | None = None

    @property
    def flag(self) -> str:
        return self.spelling or "--" + self.name.replace("_", "-")

    def register(self, parser: pytest.Parser) -> None:
        group = parser.getgroup(GROUP)
        if self.const is not None:
            group.addoption(
                self.flag, action="store_const", const=self.const, dest=self.name, help=self.help
            )
        elif self.metavar is None:
            group.addoption(self.flag, action="store_true", dest=self.name, help=self.help)
        else:
            action = "append" if self.repeat else "store"
            group.addoption(
                self.flag,
                action=action,
                dest=self.name,
                metavar=self.metavar,
                default=None,
                help=self.help,
            )
        if self.ini:
            if self.metavar is None and self.const is None:
                parser.addini(self.name, type="bool", default=False, help=self.help)
            else:
                parser.addini(self.name, default="", help=self.help)


OPTIONS: tuple[Option, ...] = (
    Option("nb", "collect *.ipynb files and run each as a test", ini=False),
    # Limits and kernels.
    Option(
        "nb_timeout",
        f"per-cell time limit in seconds (default {DEFAULT_CELL_TIMEOUT:g})",
        metavar="SECONDS",
    ),
    Option(
        "nb_notebook_timeout",
        "time limit for a whole notebook, kernel start-up excluded (default: none)",
        metavar="SECONDS",
    ),
    Option(
        "nb_startup_timeout",
        f"time limit for a kernel to start and answer (default {DEFAULT_STARTUP_TIMEOUT:g})",
        metavar="SECONDS",
    ),
    Option(
        "nb_kernel",
        "run every notebook on this kernel, whatever its kernelspec says",
        metavar="NAME",
    ),
    Option(
        "nb_env",
        "set an environment variable for every kernel (repeatable; over [tool.nbharness] env)",
        metavar="KEY=VALUE",
        ini=False,
        repeat=True,
    ),
    Option(
        "nb_cwd",
        "run every kernel in this folder (default: each notebook's own folder)",
        metavar="DIR",
    ),
    Option(
        "nb_launcher",
        "how local kernels start: forked from a warm fork server (Linux; the default "
        "there) or as a new process each",
        metavar="fork|process",
    ),
    # What a run produces and how it is judged.
    Option(
        "nb_output_dir",
        "write each executed notebook here, mirroring the test root's tree",
        metavar="DIR",
    ),
    Option(
        "nb_html",
        "write one self-contained HTML report here: a summary table and each failing "
        "notebook as Jupyter shows it",
        metavar="PATH",
    ),
    Option("nb_html_all", "with --nb-html, render the notebooks that passed too"),
    Option(
        "nb_strict_raises",
        "fail, instead of warning, when a cell tagged raises-exception raises nothing",
        ini=False,
    ),
    Option(
        "nb_strict_params",
        "fail, instead of warning, when a parameter set names a parameter the "
        "notebook's parameters cell does not define",
        ini=False,
    ),
    Option(
        "nb_no_rewrite_asserts",
        "leave the asserts of notebook cells as Python runs them, without pytest's "
        "assertion rewriting (notebook metadata nbharness.rewrite_asserts wins)",
    ),
    Option(
        "nb_find_import_errors",
        "run every cell past errors and fail a notebook only for ImportError or "
        "ModuleNotFoundError: checks an environment without running analyses to the end",
        ini=False,
    ),
    # Hidden state: stored outputs and execution order.
    Option(
        "nb_check_order",
        "add a test per notebook: its stored execution counts must come from one "
        "clean top-to-bottom run",
    ),
    Option(
        "nb_check_dataflow",
        "add a test per notebook: every name a cell reads must be defined by a cell above it",
    ),
    Option(
        "nb_check_fresh",
        "add a test per notebook: its stored outputs must come from a recorded clean run "
        "of exactly this code",
    ),
    # Two flags rather than an optional value, which would swallow a path after it.
    Option(
        "nb_compare",
        "compare each cell's fresh outputs with the stored ones (ini: on, strict or off)",
        const="on",
    ),
    Option(
        "nb_compare",
        "as --nb-compare, and cells stored without outputs must stay without",
        const="strict",
        spelling="--nb-compare=strict",
        ini=False,
    ),
    Option(
        "nb_update_outputs",
        "write fresh outputs back into notebooks that passed (a snapshot update)",
        ini=False,
    ),
    # Paired scripts and exported modules.
    Option(
        "nb_check_export",
        "add a test per notebook that exports cells: its modules must be what "
        "nbharness export would write",
    ),
    Option(
        "nb_check_pairing",
        "add a test per notebook: its script twin exists and is in sync",
    ),
    Option(
        "nb_scripts",
        "also run script-only notebooks: jupytext text files whose .ipynb twin is not "
        "in the repository (a pair runs once, as its .ipynb)",
        ini=False,
    ),
    # Speed: what need not run again.
    Option(
        "nb_cache",
        "skip a notebook run whose code, parameters, kernel, settings and declared "
        "inputs are unchanged since it last passed",
    ),
    Option(
        "nb_changed_since",
        "run only notebooks that differ from git REF (committed, staged, unstaged or "
        "untracked), or all of them when a declared cache input changed",
        metavar="REF",
        ini=False,
    ),
    # Remote kernels.
    Option(
        "nb_hub_url",
        "run the notebooks on kernels of a JupyterHub user's server (token: "
        "$JUPYTERHUB_API_TOKEN or --nb-hub-token-file)",
        metavar="URL",
    ),
    Option("nb_hub_user", "the hub user whose server runs the kernels", metavar="NAME"),
    Option(
        "nb_hub_token_file",
        "read the hub's (or server's) API token from FILE",
        metavar="FILE",
    ),
    Option(
        "nb_hub_server",
        "use the user's named server NAME (with --nb-hub-servers: the names' prefix)",
        metavar="NAME",
    ),
    Option(
        "nb_hub_servers",
        "spread xdist workers over K named servers of the user, started if needed "
        "and stopped at the end if nbharness started them",
        metavar="K",
    ),
    Option(
        "nb_hub_start_timeout",
        "how long a server may take to start (default 300)",
        metavar="SECONDS",
    ),
    Option(
        "nb_hub_max_kernels",
        "at most N kernels at once on each server, across xdist workers",
        metavar="N",
    ),
    Option(
        "nb_max_kernels",
        "at most N remote kernels at once on each server or gateway, across xdist "
        "workers (--nb-hub-max-kernels is its older name)",
        metavar="N",
    ),
    Option(
        "nb_server_url",
        "run the notebooks on kernels of this Jupyter server or kernel gateway "
        "(token: $JUPYTER_TOKEN or --nb-hub-token-file)",
        metavar="URL",
    ),
    Option(
        "nb_gateway_url",
        "run each notebook on a new kernel of this Jupyter Enterprise or Kernel Gateway "
        "(token, if it needs one: $JUPYTER_GATEWAY_AUTH_TOKEN or --nb-hub-token-file)",
        metavar="URL",
    ),
    Option(
        "nb_remote_cwd",
        "remote kernels' working directory, relative to the server's root (default: the root)",
        metavar="PATH",
    ),
)


def add_options(parser: pytest.Parser) -> None:
    parser.getgroup(GROUP, "notebooks as tests (nbharness)")
    for option in OPTIONS:
        option.register(parser)
