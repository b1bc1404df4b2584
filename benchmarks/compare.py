"""Time ``pytest --nb`` against ``pytest --nbmake``, ``pytest --nbval-lax`` and a bare
nbclient loop.

Every tool runs the same notebooks, alternating A B A B so machine noise hits all of them
alike, each with the others' plugins disabled; the figures are medians of whole-process
wall times. Two corpora: tiny stdlib notebooks, and everyday analysis notebooks (numpy,
pandas, a groupby, a matplotlib figure).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil
from nbformat.v4 import new_code_cell, new_notebook, new_output

from nbharness.verify.freshness import RECORD_KEY, freshness_record

RAW_NBCLIENT = """
import sys, nbformat
from pathlib import Path
from nbclient import NotebookClient
for path in sorted(Path(sys.argv[1]).glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(path.parent)}}
    NotebookClient(nb, kernel_name="python3", resources=resources).execute()
"""


CELLS = ["x = 1", "y = x + 1", "print(y)", "def f(a):\n    return a * 2", "assert f(y) == 4"]
#: An everyday analysis notebook: a DataFrame, a groupby, a figure.
ANALYSIS = [
    "import numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt",
    "rng = np.random.default_rng(0)\n"
    "df = pd.DataFrame({'group': rng.integers(0, 5, 1000), 'value': rng.normal(size=1000)})",
    "summary = df.groupby('group')['value'].agg(['mean', 'std', 'count'])\nsummary",
    "assert summary['count'].sum() == 1000",
    "fig, ax = plt.subplots()\nsummary['mean'].plot.bar(ax=ax)\nplt.show()",
]
CORPORA = {"tiny": CELLS, "numpy/pandas/matplotlib": ANALYSIS}


def write_notebooks(folder: Path, count: int, cells: list[str] = CELLS) -> None:
    for n in range(count):
        nb = new_notebook(cells=[new_code_cell(c) for c in cells])
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, folder / f"nb{n:02d}.ipynb")


def write_lint_corpus(folder: Path, count: int) -> None:
    """Notebooks with stored outputs from a clean run and their freshness record: what
    the order, dataflow and freshness lints read."""
    cells = []
    for n in range(1, 21):
        cell = new_code_cell(f"x{n} = {n}\nx{n}", execution_count=n)
        cell.outputs = [new_output("execute_result", {"text/plain": str(n)}, execution_count=n)]
        cells.append(cell)
    nb = new_notebook(cells=cells)
    nb.metadata["nbharness"] = {RECORD_KEY: freshness_record(nb, {})}
    for n in range(count):
        nbformat.write(nb, folder / f"lint{n:04d}.ipynb")


def write_scripts(folder: Path, count: int, cells: list[str]) -> None:
    """The same code as plain Python scripts: the floor, with no kernel at all."""
    code = "\n".join(cells).replace("plt.show()", "plt.close('all')")
    for n in range(count):
        (folder / f"script{n:02d}.py").write_text(code)


def commands(folder: Path, scripts: Path) -> dict[str, list[str]]:
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    pytest += ["--rootdir", str(folder)]
    nb = [*pytest, "-p", "no:nbmake", "-p", "no:nbval", "--nb", str(folder)]
    nbmake = [*pytest, "-p", "no:nbharness", "-p", "no:nbval", "--nbmake", str(folder)]
    nbval = [*pytest, "-p", "no:nbharness", "-p", "no:nbmake", "--nbval-lax", str(folder)]
    pattern = str(scripts / "*.py")
    floor = f"import runpy, glob\nfor s in sorted(glob.glob({pattern!r})): runpy.run_path(s)"
    return {
        "nbharness (fork)": [*nb, "--nb-launcher", "fork"],
        "nbharness (process)": [*nb, "--nb-launcher", "process"],
        "nbmake": nbmake,
        "nbval-lax": nbval,
        "nbclient loop": [sys.executable, "-c", RAW_NBCLIENT, str(folder)],
        "plain python (floor)": [sys.executable, "-c", floor],
        "nbharness -n 2": [*nb, "-n", "2"],
        "nbmake -n 2": [*nbmake, "-n", "2"],
        # nbval's items are cells: its workers must take whole notebooks.
        "nbval-lax -n 2": [*nbval, "-n", "2", "--dist", "loadfile"],
    }


def timed(command: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall and CPU seconds of a command and everything it started (reaped descendants),
    and the peak memory of its whole process tree (sum of PSS, which shares out the
    pages that forked kernels share), sampled every 20 ms."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    log = tempfile.TemporaryFile()  # noqa: SIM115 (read back only when the command fails)
    process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, tree_pss(process.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        log.seek(0)
        tail = log.read().decode(errors="replace").splitlines()[-30:]
        raise SystemExit("\n".join([f"{command} failed ({process.returncode}):", *tail]))
    log.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, peak


def tree_pss(pid: int) -> float:
    """MiB of proportional set size of a process and all its descendants."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        try:
            total += process.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notebooks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lint-notebooks", type=int, default=1000)
    parser.add_argument("--cached-notebooks", type=int, default=100)
    args = parser.parse_args()
    for corpus, cells in CORPORA.items():
        compare(corpus, cells, args.notebooks, args.rounds)
    cached_rerun(args.cached_notebooks, args.rounds)
    startup(args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_lint_corpus(folder, args.lint_notebooks)
        lint = [sys.executable, "-m", "nbharness.cli", "check", "--order", str(folder)]
        lint_times = [timed(lint, folder)[0] for _ in range(args.rounds)]
        dataflow = [*lint[:-2], "--dataflow", "--fresh", str(folder)]
        dataflow_times = [timed(dataflow, folder)[0] for _ in range(args.rounds)]
        collect = [sys.executable, "-m", "pytest", "-q", "--nb", "--collect-only", str(folder)]
        collect_times = [timed(collect, folder)[0] for _ in range(args.rounds)]
    print(
        f"execution-order lint, {args.lint_notebooks} notebooks of 20 cells: "
        f"{statistics.median(lint_times):.2f} s wall (median of {args.rounds})"
    )
    print(
        f"dataflow and freshness lints, the same {args.lint_notebooks} notebooks: "
        f"{statistics.median(dataflow_times):.2f} s wall"
    )
    print(
        f"pytest --nb --collect-only, the same {args.lint_notebooks} notebooks: "
        f"{statistics.median(collect_times):.2f} s wall"
    )


def compare(corpus: str, cells: list[str], count: int, rounds: int) -> None:
    """Every command on the same ``count`` notebooks of ``cells``: one table."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as scripts:
        folder = Path(tmp)
        write_notebooks(folder, count, cells)
        write_scripts(Path(scripts), count, cells)
        runs = commands(folder, Path(scripts))
        samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
        for _ in range(rounds):  # interleaved, so drift hits every command alike
            for name, command in runs.items():
                samples[name].append(timed(command, folder))
    wall, cpu, memory = (
        {name: statistics.median(s[i] for s in values) for name, values in samples.items()}
        for i in range(3)
    )
    print(f"{count} {corpus} notebooks, medians of {rounds} interleaved rounds")
    header = f"{'wall s':>7} {'cpu s':>7} {'cpu/nb ms':>9} {'peak MiB':>8} {'wall vs nbmake':>15}"
    print(f"  {'':<22} {header}")
    for name in runs:
        ratio = wall[name] / (wall["nbmake -n 2"] if "-n 2" in name else wall["nbmake"])
        per_nb = 1000 * cpu[name] / count
        print(
            f"  {name:<22} {wall[name]:7.2f} {cpu[name]:7.2f} {per_nb:9.0f} "
            f"{memory[name]:8.0f} {ratio:14.2f}x"
        )


def cached_rerun(count: int, rounds: int) -> None:
    """A second ``pytest --nb --nb-cache`` over an unchanged corpus: all skipped."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_notebooks(folder, count)
        command = [sys.executable, "-m", "pytest", "-q", "--nb", "--nb-cache", str(folder)]
        command += ["--rootdir", str(folder), "-p", "no:nbmake", "-p", "no:nbval"]
        timed(command, folder)  # the first run records the passes
        reruns = [timed(command, folder)[0] for _ in range(rounds)]
    print(
        f"cached re-run of {count} unchanged notebooks: "
        f"{statistics.median(reruns):.2f} s wall (median of {rounds})"
    )


def startup(rounds: int) -> None:
    """A session that collects one notebook and runs nothing: what every run, every xdist
    worker and every pre-commit hook pays before its first notebook."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_notebooks(folder, 1)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nb"]
        command += ["-p", "no:nbmake", "-p", "no:nbval", "--collect-only", str(folder)]
        timed(command, folder)  # the first run writes the bytecode caches
        times = [timed(command, folder)[:2] for _ in range(rounds)]
    wall, cpu = (statistics.median(t[i] for t in times) for i in range(2))
    print(
        f"start-up, pytest --nb --collect-only of one notebook: {wall:.2f} s wall, {cpu:.2f} s CPU"
    )


if __name__ == "__main__":
    main()
