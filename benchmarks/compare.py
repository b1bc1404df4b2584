"""Time ``pytest --nb`` against ``pytest --nbmake`` and a bare nbclient loop.

Every tool runs the same tiny notebooks, alternating A B A B so machine noise hits
all of them alike; the figures are medians of whole-process wall times.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

RAW_NBCLIENT = """
import sys, nbformat
from pathlib import Path
from nbclient import NotebookClient
for path in sorted(Path(sys.argv[1]).glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(path.parent)}}
    NotebookClient(nb, kernel_name="python3", resources=resources).execute()
"""


def write_notebooks(folder: Path, count: int) -> None:
    cells = ["x = 1", "y = x + 1", "print(y)", "def f(a):\n    return a * 2", "assert f(y) == 4"]
    for n in range(count):
        nb = new_notebook(cells=[new_code_cell(c) for c in cells])
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, folder / f"nb{n:02d}.ipynb")


def write_lint_corpus(folder: Path, count: int) -> None:
    """Notebooks with stored outputs from a clean run: what the order lint reads."""
    cells = []
    for n in range(1, 21):
        cell = new_code_cell(f"x{n} = {n}\nx{n}", execution_count=n)
        cell.outputs = [new_output("execute_result", {"text/plain": str(n)}, execution_count=n)]
        cells.append(cell)
    nb = new_notebook(cells=cells)
    for n in range(count):
        nbformat.write(nb, folder / f"lint{n:04d}.ipynb")


def commands(folder: Path) -> dict[str, list[str]]:
    pytest = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(folder),
    ]
    return {
        "nbharness": [*pytest, "-p", "no:nbmake", "--nb", str(folder)],
        "nbmake": [*pytest, "-p", "no:nbharness", "--nbmake", str(folder)],
        "nbclient": [sys.executable, "-c", RAW_NBCLIENT, str(folder)],
        "nbharness -n 2": [*pytest, "-p", "no:nbmake", "-n", "2", "--nb", str(folder)],
        "nbmake -n 2": [*pytest, "-p", "no:nbharness", "-n", "2", "--nbmake", str(folder)],
    }


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notebooks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lint-notebooks", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_notebooks(folder, args.notebooks)
        runs = commands(folder)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, command in runs.items():
                times[name].append(timed(command, folder))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"{args.notebooks} tiny notebooks, median of {args.rounds} rounds (whole-process wall time)"
    )
    for name, value in medians.items():
        print(f"  {name:<16} {value:6.2f} s")
    print(f"  nbmake / nbharness:           {medians['nbmake'] / medians['nbharness']:.2f}x")
    print(f"  nbclient / nbharness:         {medians['nbclient'] / medians['nbharness']:.2f}x")
    print(
        f"  nbmake -n 2 / nbharness -n 2: {medians['nbmake -n 2'] / medians['nbharness -n 2']:.2f}x"
    )


if __name__ == "__main__":
    main()
