"""Time ``pytest --nb`` against ``pytest --nbmake``, ``pytest --nbval-lax`` and a bare
nbclient loop, in the venv a user of JupyterLab has (see ``bench`` in noxfile.py).

Every tool runs the same notebooks, alternating A B A B so machine noise hits all of them
alike, each with the others' plugins disabled; the figures are medians of whole-process
wall and CPU times and of the process tree's peak memory. Two corpora: tiny stdlib
notebooks, and everyday analysis notebooks (numpy, pandas, a groupby, a matplotlib
figure). Start-up and the cached re-run are printed next to pytest's own time with
nbharness disabled, so what nbharness adds is in plain sight.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import NamedTuple

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
#: The packages of the environment the figures stand for, printed with their versions.
STACK = ("jupyter_server", "numpy", "pandas", "matplotlib")
#: ``--quick``: every row once, on small corpora: proof that it runs, not figures.
QUICK = {"rounds": 1, "notebooks": 5, "lint_notebooks": 50, "cached_notebooks": 20}
#: pytest's exit code when it collected nothing: what a floor run of plain pytest does.
NO_TESTS_COLLECTED = 5
#: Every other runner's plugin off, so each pytest run loads only its own.
OTHERS = {
    "nbharness": ["-p", "no:nbmake", "-p", "no:nbval"],
    "nbmake": ["-p", "no:nbharness", "-p", "no:nbval"],
    "nbval": ["-p", "no:nbharness", "-p", "no:nbmake"],
    "none": ["-p", "no:nbharness", "-p", "no:nbmake", "-p", "no:nbval"],
}


class Sample(NamedTuple):
    """One whole-process measurement (or the median of several)."""

    wall: float
    cpu: float
    peak: float  # MiB


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """One command line for compare.py and remote.py: ``nox -s bench -- ARGS`` passes ARGS
    to both (remote.py uses ``--quick``, ``--notebooks`` and ``--rounds``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="every row once, to see that it runs: 1 round, 5 notebooks, 50 for the lints, "
        "20 for the cached re-run (any of these given too wins)",
    )
    parser.add_argument("--notebooks", type=int, default=20, help="per corpus (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved (default 3)")
    parser.add_argument("--lint-notebooks", type=int, default=1000, help="(default 1000)")
    parser.add_argument("--cached-notebooks", type=int, default=100, help="(default 100)")
    args = parser.parse_args(argv)
    if args.quick:  # its values as defaults, so an explicit --rounds still counts
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    return args


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


def pytest(runner: str, folder: Path, *, cache: bool = False) -> list[str]:
    """``python -m pytest`` rooted in ``folder``, with every runner but ``runner`` off, and
    pytest's cache off unless ``cache`` (``--nb-cache`` keeps its record there)."""
    command = [sys.executable, "-m", "pytest", "-q", "--rootdir", str(folder)]
    return [*command, *([] if cache else ["-p", "no:cacheprovider"]), *OTHERS[runner]]


def commands(folder: Path, scripts: Path) -> dict[str, list[str]]:
    nb = [*pytest("nbharness", folder), "--nb", str(folder)]
    nbmake = [*pytest("nbmake", folder), "--nbmake", str(folder)]
    nbval = [*pytest("nbval", folder), "--nbval-lax", str(folder)]
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


def timed(command: list[str], cwd: Path, ok: Collection[int] = (0,)) -> Sample:
    """Wall and CPU seconds of a command and everything it started (reaped descendants),
    and the peak memory of its whole process tree (sum of PSS, which shares out the
    pages that forked kernels share), sampled every 20 ms. Exits with the command's
    output when it fails, since a failed run's time means nothing."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    log = tempfile.TemporaryFile()  # noqa: SIM115 (read back only when the command fails)
    process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, tree_pss(process.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    if process.returncode not in ok:
        log.seek(0)
        tail = log.read().decode(errors="replace").splitlines()[-30:]
        raise SystemExit("\n".join([f"{command} failed ({process.returncode}):", *tail]))
    log.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu, peak)


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


def interleaved(
    runs: Mapping[str, list[str]],
    cwd: Path,
    rounds: int,
    ok: Mapping[str, Collection[int]] | None = None,
) -> dict[str, Sample]:
    """The median of each command over ``rounds`` rounds of all of them in turn, so that
    drift in the machine's load hits every command alike. ``ok`` names the exit codes
    a command may end with besides 0."""
    samples: dict[str, list[Sample]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, command in runs.items():
            samples[name].append(timed(command, cwd, (ok or {}).get(name, (0,))))
    return {name: median(values) for name, values in samples.items()}


def median(samples: list[Sample]) -> Sample:
    return Sample(*(statistics.median(s[i] for s in samples) for i in range(3)))


def environment() -> str:
    """What the figures stand for: every pytest plugin installed (each one loads into
    every pytest run timed unless disabled) and the analysis stack's versions."""
    plugins = {
        f"{point.dist.name} {point.dist.version}"
        for point in entry_points(group="pytest11")
        if point.dist is not None
    }
    stack = []
    for name in STACK:
        try:
            stack.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            stack.append(f"{name} MISSING")
    return (
        f"Python {sys.version.split()[0]}; pytest plugins installed: {', '.join(sorted(plugins))}"
        f"\nwith {', '.join(stack)}"
    )


def main() -> None:
    args = parse_args(__doc__ or "")
    print(environment(), end="\n\n")
    for corpus, cells in CORPORA.items():
        compare(corpus, cells, args.notebooks, args.rounds)
    startup(args.rounds)
    cached_rerun(args.cached_notebooks, args.rounds)
    lints(args.lint_notebooks, args.rounds)


def compare(corpus: str, cells: list[str], count: int, rounds: int) -> None:
    """Every command on the same ``count`` notebooks of ``cells``: one table, with each
    row's wall and CPU as a ratio of nbmake's and nbval-lax's (at ``-n 2``, of theirs at
    ``-n 2``)."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as scripts:
        folder = Path(tmp)
        write_notebooks(folder, count, cells)
        write_scripts(Path(scripts), count, cells)
        result = interleaved(commands(folder, Path(scripts)), folder, rounds)
    print(f"{count} {corpus} notebooks, medians of {rounds} interleaved rounds")
    figures = f"{'wall s':>7} {'cpu s':>7} {'cpu/nb ms':>9} {'peak MiB':>8}"
    against = f"{'wall/nbmake':>11} {'cpu/nbmake':>10} {'wall/nbval-lax':>14} {'cpu/nbval-lax':>13}"
    print(f"  {'':<22} {figures} {against}")
    for name, sample in result.items():
        suffix = " -n 2" if name.endswith(" -n 2") else ""
        nbmake, nbval = result["nbmake" + suffix], result["nbval-lax" + suffix]
        ratios = ratio(sample, nbmake) + ratio(sample, nbval)
        print(
            f"  {name:<22} {sample.wall:7.2f} {sample.cpu:7.2f} {1000 * sample.cpu / count:9.0f} "
            f"{sample.peak:8.0f} {ratios[0]:10.2f}x {ratios[1]:9.2f}x "
            f"{ratios[2]:13.2f}x {ratios[3]:12.2f}x"
        )
    print()


def ratio(sample: Sample, baseline: Sample) -> tuple[float, float]:
    """Wall and CPU as fractions of the baseline's."""
    return sample.wall / baseline.wall, sample.cpu / baseline.cpu


def startup(rounds: int) -> None:
    """A session that collects one notebook and runs nothing: what every run, every xdist
    worker and every pre-commit hook pays before its first notebook; next to the same
    command with nbharness disabled, pytest's own start in this venv."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_notebooks(folder, 1)
        runs = {
            "nbharness": [*pytest("nbharness", folder), "--nb", "--collect-only", str(folder)],
            "pytest": [*pytest("none", folder), "--collect-only", str(folder)],
        }
        ok = {"pytest": (0, NO_TESTS_COLLECTED)}
        interleaved(runs, folder, 1, ok)  # the first run writes the bytecode caches
        result = interleaved(runs, folder, rounds, ok)
    ours, theirs = result["nbharness"], result["pytest"]
    print(
        f"start-up, pytest --nb --collect-only of one notebook: {ours.wall:.2f} s wall, "
        f"{ours.cpu:.2f} s CPU; pytest's own (-p no:nbharness, the same folder): "
        f"{theirs.wall:.2f} s wall, {theirs.cpu:.2f} s CPU (medians of {rounds})"
    )


def cached_rerun(count: int, rounds: int) -> None:
    """A second ``pytest --nb --nb-cache`` over an unchanged corpus, all skipped; next to
    pytest collecting nothing in the same folder, the floor any pytest run pays."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_notebooks(folder, count)
        cached = [*pytest("nbharness", folder, cache=True), "--nb", "--nb-cache", str(folder)]
        runs = {
            "nbharness": cached,
            "pytest": [*pytest("none", folder, cache=True), "--collect-only", str(folder)],
        }
        timed(cached, folder)  # the first run records the passes
        result = interleaved(runs, folder, rounds, {"pytest": (0, NO_TESTS_COLLECTED)})
    print(
        f"cached re-run of {count} unchanged notebooks: {result['nbharness'].wall:.2f} s wall; "
        f"pytest collecting nothing there (-p no:nbharness --collect-only): "
        f"{result['pytest'].wall:.2f} s wall (medians of {rounds})"
    )


def lints(count: int, rounds: int) -> None:
    """The lints and collection alone, on ``count`` notebooks with stored outputs: what a
    pre-commit hook costs."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_lint_corpus(folder, count)
        check = [sys.executable, "-m", "nbharness.cli", "check"]
        runs = {
            "order": [*check, "--order", str(folder)],
            "dataflow": [*check, "--dataflow", "--fresh", str(folder)],
            "collect": [*pytest("nbharness", folder), "--nb", "--collect-only", str(folder)],
        }
        result = interleaved(runs, folder, rounds)
    print(
        f"execution-order lint, {count} notebooks of 20 cells: "
        f"{result['order'].wall:.2f} s wall (median of {rounds})"
    )
    print(
        f"dataflow and freshness lints, the same {count} notebooks: "
        f"{result['dataflow'].wall:.2f} s wall"
    )
    print(
        f"pytest --nb --collect-only, the same {count} notebooks: "
        f"{result['collect'].wall:.2f} s wall"
    )


if __name__ == "__main__":
    main()
