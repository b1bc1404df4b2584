"""The ``nbharness`` command: thin, over the same library code the pytest plugin uses."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import NbHarnessError
from ..report import render
from . import check, config_git, export, merge_driver, sync, textconv

#: Exit code for a bug in nbharness itself, told apart from "your notebook has a problem".
INTERNAL_ERROR = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nbharness", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in (check, export, sync, textconv, config_git, merge_driver):
        command.add_parser(subparsers)
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
    except NbHarnessError as exc:
        # The whole report, details included (a problem list, a hub's event log).
        print(f"nbharness: {render(exc, 'short')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # say it is our bug, in one line, with the way out
        print(
            f"nbharness: internal error ({type(exc).__name__}: {exc}); "
            "please report it with the command you ran",
            file=sys.stderr,
        )
        return INTERNAL_ERROR
    return result
