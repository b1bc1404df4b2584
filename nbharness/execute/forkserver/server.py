"""The fork server: one process that has imported a fresh kernel's modules, and forks kernels.

Run as a script (``python server.py FD``), never imported: it must hold exactly what a
fresh kernel holds, and nothing of nbharness. It talks to its parent over the
SOCK_SEQPACKET socket FD:

- parent → fork server: ``{"argv": [...], "env": {...}, "cwd": "..."}`` with the kernel's
  stdin, stdout and stderr as three file descriptors;
- fork server → parent: ``{"ready": N}`` once, then ``{"pid": P}`` per kernel and
  ``{"exit": P, "code": C}`` when a kernel ends.

Rules learned the hard way (see the fast-kernels research): no zmq context, thread or
event loop in the fork server; ``gc.freeze()`` so forks stay copy-on-write; each kernel in
its own session; the environment that imports set is applied again in each kernel; the
kernel's parent-poll uses the requester's pid. When the parent goes away (EOF), every
kernel's process group is killed and the fork server exits.

Nothing a kernel starts outlives it (Linux): the fork server is a child subreaper, so
what a kernel's children leave behind is adopted here rather than by init; each kernel
dies with the fork server (PR_SET_PDEATHSIG); when a kernel ends, every process carrying
its tag (``NBHARNESS_KERNEL`` in the environment, which the parent set) is killed and its
socket folder removed; when the fork server ends, so is everything left under it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import importlib
import importlib.util
import json
import os
import pathlib
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

#: Run in a new interpreter: initialize a kernel app and list sys.modules. It imports
#: nothing of its own beyond ``sys`` and ``os``, which every interpreter has loaded.
#: (Not the fork server forking a probe: the probe would inherit the fork server's own imports.)
PROBE = """
import sys, os
from ipykernel.kernelapp import IPKernelApp
path = sys.argv[1]  # in a private folder: no name another user could plant a link at
# On Unix sockets, as nbharness starts kernels (TCP would import psutil to list local IPs).
sockets = ["--transport=ipc", f"--ip={os.path.dirname(path)}/k"]
IPKernelApp.instance().initialize(["-f", path, *sockets, "--IPKernelApp.log_level=50"])
modules = sorted(sys.modules)
os.unlink(path)
os.write(1, "\\n".join(modules).encode())  # sys.stdout is the kernel's by now
"""


#: prctl options (linux/prctl.h).
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
#: The environment variable that tags every process a kernel starts (``processes.py``).
KERNEL_TAG = "NBHARNESS_KERNEL"


def prctl(option: int, value: int) -> None:
    """Linux's prctl; elsewhere nothing (kernels then end only by their process group)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def fresh_kernel_modules() -> list[str]:
    """The modules of a just-initialized kernel, from a real fresh interpreter.

    The probe costs a kernel start, so its answer is cached per interpreter and per state
    of the site-packages holding ipykernel (installing or removing a package changes it).
    """
    key, cache = _cache_key_and_file()
    with contextlib.suppress(OSError, ValueError):
        stored_key, *modules = cache.read_text(encoding="utf-8").splitlines()
        if stored_key == key and _only_mine(cache):
            return modules
    with tempfile.TemporaryDirectory(prefix="nbharness-probe-") as folder:
        connection = os.path.join(folder, "kernel.json")
        probe = subprocess.run(
            [sys.executable, "-c", PROBE, connection],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    modules = probe.stdout.split()
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text("\n".join([key, *modules]), encoding="utf-8")
        os.replace(temporary, cache)
    return modules


def _only_mine(path: pathlib.Path) -> bool:
    """Only this user could have written ``path``: the fork server imports what it lists."""
    status = path.stat()
    return status.st_uid == os.getuid() and not status.st_mode & 0o022


def _cache_key_and_file() -> tuple[str, pathlib.Path]:
    spec = importlib.util.find_spec("ipykernel")
    location = (spec.submodule_search_locations or [""])[0] if spec else ""
    site = os.path.dirname(location)
    stamp = os.stat(site).st_mtime_ns if site else 0
    key = f"{sys.executable} {sys.version.split()[0]} {site} {stamp} ipc"
    name = hashlib.sha256(sys.executable.encode()).hexdigest()[:16]
    root = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return key, pathlib.Path(root, "nbharness", f"kernel-modules-{name}.txt")


def preload(warm: list[str]) -> tuple[list[str], dict[str, str]]:
    """Import a fresh kernel's modules, then the ``warm`` ones its notebooks import;
    return the fork server's own extras, and the environment the imports set."""
    before = dict(os.environ)
    fresh = {*fresh_kernel_modules(), "runpy"}  # kernels start as ``python -m ...``
    for name in sorted(fresh):
        if name == "__main__" or name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # a module that only imports in a full kernel: the kernel imports it
            continue
    extras = sorted(set(sys.modules) - fresh - {"__main__"})
    compile_tokenizer()
    import_warm(warm)
    delta = {key: value for key, value in os.environ.items() if before.get(key) != value}
    return extras, delta


def compile_tokenizer() -> None:
    """Compile tokenize's regular expression, as a kernel's first cell would: ~10% of a
    forked kernel's CPU, and a cache no notebook can tell apart from a fresh one."""
    tokenize = sys.modules.get("tokenize")
    if tokenize is not None:
        list(tokenize.generate_tokens(iter(["x = 1\n"]).__next__))


#: The backend ipykernel sets (``MPLBACKEND``) before a notebook can import matplotlib.
KERNEL_MPLBACKEND = "module://matplotlib_inline.backend_inline"
#: Which matplotlibrc the warm matplotlib read: a kernel that would read another is not
#: forked from here but started anew (``start_kernel``).
WARM_RC: list[str] = []


def import_warm(warm: list[str]) -> None:
    """Import what the notebooks import, as a fresh kernel would: matplotlib with the
    backend ipykernel sets for it. What is not installed is left to the kernel."""
    kernel_sets = "MPLBACKEND" not in os.environ
    if kernel_sets:
        os.environ["MPLBACKEND"] = KERNEL_MPLBACKEND
    try:
        for name in warm:
            with contextlib.suppress(Exception):
                importlib.import_module(name)
    finally:
        if kernel_sets:
            del os.environ["MPLBACKEND"]  # the kernel sets it again, as it always does
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is not None:
        WARM_RC.append(matplotlib.matplotlib_fname())


def warm_state_fits(env: dict[str, str], server_env: dict[str, str]) -> bool:
    """Whether a kernel with ``env`` (in its working folder) would import the warm modules
    as the fork server did: the same environment (an import may read any variable, say
    ``OMP_NUM_THREADS``), and the same matplotlibrc (it may sit in the working folder)."""
    if comparable(env) != comparable(server_env):
        return False
    matplotlib = sys.modules.get("matplotlib")
    return matplotlib is None or [matplotlib.matplotlib_fname()] == WARM_RC


#: What differs for every kernel: its tag, and the test pytest is running.
PER_KERNEL = {KERNEL_TAG, "PYTEST_CURRENT_TEST"}


def comparable(env: dict[str, str]) -> dict[str, str]:
    """An environment without what differs for every kernel (and jupyter's ``JPY_*``)."""
    return {k: v for k, v in env.items() if k not in PER_KERNEL and not k.startswith("JPY_")}


def reseed_warm_generators() -> None:
    """numpy's global generator was seeded when the fork server imported it: give each
    kernel its own seed from fresh entropy, as a new process gets. (``random`` reseeds
    itself after a fork.)"""
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()


def follow_pythonpath(inherited: str, wanted: str) -> None:
    """Make ``sys.path`` what a new process with PYTHONPATH ``wanted`` would have: the
    fork server's interpreter read its own PYTHONPATH (``inherited``) long ago."""
    if inherited == wanted:
        return
    for entry in filter(None, inherited.split(os.pathsep)):
        if os.path.abspath(entry) in sys.path[1:]:  # site made them absolute
            sys.path.remove(os.path.abspath(entry))
    sys.path[1:1] = [os.path.abspath(entry) for entry in wanted.split(os.pathsep) if entry]


def start_kernel(
    request: dict[str, Any],
    fds: list[int],
    env_delta: dict[str, str],
    extras: list[str],
    closing: list[int],
    server_env: dict[str, str],
) -> None:
    """In the forked child: become the kernel the request describes. Never returns."""
    try:
        os.setsid()
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the fork server gone: so is the kernel
        if os.getppid() == 1:
            os._exit(1)  # it went before the line above took effect
        for name in extras:  # what only the fork server imported: a fresh kernel lacks it too
            sys.modules.pop(name, None)
        for fd in closing:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        env = {**env_delta, **request["env"]}
        inherited = os.environ.get("PYTHONPATH", "")
        os.environ.clear()
        os.environ.update(env)
        argv = request["argv"]  # python -m ipykernel_launcher ARGS
        if WARM_RC or WARM_MODULES:
            if not warm_state_fits(request["env"], server_env):
                os.execvpe(argv[0], argv, request["env"])  # steps aside: a new process
            reseed_warm_generators()
        follow_pythonpath(inherited, env.get("PYTHONPATH", ""))
        launcher = importlib.util.find_spec("ipykernel_launcher")
        sys.argv = [(launcher and launcher.origin) or argv[0], *argv[3:]]
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.launch_instance(
            argv=argv[3:], parent_handle=int(env.get("JPY_PARENT_PID") or 0)
        )
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    os._exit(0)


#: The modules the notebooks import that this fork server imported for its kernels.
WARM_MODULES: list[str] = []


def serve(channel: socket.socket, warm: list[str]) -> None:
    server_env = dict(os.environ)
    WARM_MODULES.extend(warm)
    extras, env_delta = preload(warm)
    gc.collect()
    gc.freeze()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for pytest, which then closes us
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    kernels: dict[int, str] = {}  # pid -> tag
    sockets: dict[int, str] = {}  # pid -> its socket folder
    channel.send(json.dumps({"ready": len(sys.modules)}).encode())
    try:
        while True:
            readable, _, _ = select.select([channel.fileno(), wake_read], [], [])
            if wake_read in readable:
                os.read(wake_read, 4096)
                reap(channel, kernels, sockets)
            if channel.fileno() in readable:
                data, fds, _, _ = socket.recv_fds(channel, 1 << 20, 3)
                if not data:
                    return  # the parent is gone
                sys.stdout.flush()
                sys.stderr.flush()
                request = json.loads(data)
                pid = os.fork()
                if pid == 0:
                    closing = [channel.fileno(), wake_read, wake_write]
                    start_kernel(request, fds, env_delta, extras, closing, server_env)
                for fd in fds:
                    os.close(fd)
                kernels[pid] = request["env"].get(KERNEL_TAG, "")
                sockets[pid] = socket_folder(request["argv"])
                channel.send(json.dumps({"pid": pid}).encode())
    finally:
        for pid in kernels:
            kill_group(pid)
        kill_tagged(set(kernels.values()))
        kill_adopted()
        for folder in filter(None, sockets.values()):
            remove_sockets(folder)


def reap(channel: socket.socket, kernels: dict[int, str], sockets: dict[int, str]) -> None:
    """Collect ended children; tell the parent about kernels, and end what a kernel left."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid not in kernels:
            continue  # an orphan adopted here, now gone
        kill_group(pid)
        kill_tagged({kernels.pop(pid)})
        if folder := sockets.pop(pid, ""):
            remove_sockets(folder)
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(OSError):  # the parent may be gone already
            channel.send(json.dumps({"exit": pid, "code": code}).encode())


def socket_folder(argv: list[str]) -> str:
    """The private folder of a kernel's Unix sockets (``launch.KernelManager`` makes it),
    read from its connection file; ``""`` for a kernel on TCP."""
    with contextlib.suppress(ValueError, IndexError, OSError, AttributeError):
        with open(argv[argv.index("-f") + 1], encoding="utf-8") as file:
            info = json.load(file)
        folder = os.path.dirname(str(info.get("ip", "")))
        if info.get("transport") == "ipc" and os.path.basename(folder).startswith("nbh-"):
            return folder
    return ""


def remove_sockets(folder: str) -> None:
    """Remove an ended kernel's socket folder: pytest does, unless it was killed."""
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


def kill_group(group: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(group, signal.SIGKILL)


def kill_tagged(tags: set[str]) -> None:
    """SIGKILL every process whose environment carries one of ``tags``, until none does."""
    markers = {f"{KERNEL_TAG}={tag}".encode() for tag in tags if tag}
    me = os.getpid()  # the reaper carries its kernel's tag
    for _ in range(100):
        found = [pid for pid in _pids() if pid != me and markers & set(_environ(pid))]
        if not found:
            return
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)  # the killed become zombies, which have no environment


def kill_adopted() -> None:
    """SIGKILL what is left under the fork server (orphans it adopted as subreaper)."""
    me = os.getpid()
    for _ in range(100):
        found = [pid for pid in _pids() if _parent(pid) == me]
        if not found:
            return
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)
        with contextlib.suppress(ChildProcessError):  # reaped, their children come to us
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass


def _pids() -> list[int]:
    with contextlib.suppress(OSError):
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    return []


def _environ(pid: int) -> list[bytes]:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/environ", "rb") as file:
        return file.read().split(b"\0")
    return []


def _parent(pid: int) -> int:
    """The parent of a live process (0 for a zombie or a process gone)."""
    path = f"/proc/{pid}/stat"
    with contextlib.suppress(OSError, IndexError, ValueError), open(path, "rb") as file:
        state, parent = file.read().rsplit(b")", 1)[1].split()[:2]
        return 0 if state == b"Z" else int(parent)
    return 0


if __name__ == "__main__":
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # as ipykernel_launcher does: the script's folder is not the user's
    serve(socket.socket(fileno=int(sys.argv[1])), json.loads(sys.argv[2]) if sys.argv[2:] else [])
