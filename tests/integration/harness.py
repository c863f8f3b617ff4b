"""Helpers shared by octet's integration tests: loopback ports, processes that print a ready line, gRPC stubs.

Every wait is bounded, everything listens on 127.0.0.1, and every process started here is killed when its test
ends (Process.stop in a fixture or a `with` block) and, as a last resort, when the interpreter exits.

    router = start_process([binary("router/octet-router"), "--workers", addr, "--port", "0"],
                           r"listening on 127\\.0\\.0\\.1:(\\d+)", timeout=20)
    port = int(router.ready_match.group(1))
    ...
    router.stop()
"""

from __future__ import annotations

import atexit
import importlib
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
from typing import Mapping, Optional, Sequence

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTO_DIR = REPO_ROOT / "proto"


def build_dir() -> pathlib.Path:
    """The CMake build folder: $OCTET_BUILD_DIR (set by ctest) or build/cpu."""
    return pathlib.Path(os.environ.get("OCTET_BUILD_DIR", REPO_ROOT / "build" / "cpu"))


def binary(relative_path: str) -> str:
    """Path of a built executable, e.g. binary("router/octet-router"); fails with the command that builds it."""
    path = build_dir() / relative_path
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is not built; run: ninja -C {build_dir()} {pathlib.PurePath(relative_path).name}")
    return str(path)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Polls predicate() until it returns a truthy value (which is returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.1f}s")
        time.sleep(interval)


_live_processes: "set[Process]" = set()
_live_lock = threading.Lock()


class Process:
    """A child process whose stdout and stderr (merged) are collected line by line on a reader thread."""

    def __init__(self, args: Sequence[str], env: Optional[Mapping[str, str]] = None,
                 cwd: Optional[os.PathLike] = None):
        self.args = [str(a) for a in args]
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self.ready_match: Optional[re.Match] = None
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.popen = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=full_env, cwd=cwd, text=True, errors="replace", bufsize=1, start_new_session=True)
        with _live_lock:
            _live_processes.add(self)
        self._reader = threading.Thread(target=self._read, name=f"reader-{self.popen.pid}", daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.popen.stdout:
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def lines(self) -> list[str]:
        with self._cond:
            return list(self._lines)

    def output(self) -> str:
        return "\n".join(self.lines())

    def wait_for_line(self, regex: str, timeout: float, start: int = 0) -> re.Match:
        """Waits for an output line (from line index `start` on) matching `regex`; returns the match.

        Raises TimeoutError, or RuntimeError if the process exits first; both carry the output so far."""
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        index = start
        with self._cond:
            while True:
                while index < len(self._lines):
                    match = pattern.search(self._lines[index])
                    index += 1
                    if match:
                        return match
                if self._eof:
                    self.popen.wait(timeout=5)
                    raise RuntimeError(f"{self._describe()} exited with {self.popen.returncode} before printing "
                                       f"/{regex}/; output:\n{self._tail()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._describe()} did not print /{regex}/ within {timeout:.1f}s; "
                                       f"output:\n{self._tail()}")
                self._cond.wait(remaining)

    def line_count(self) -> int:
        """The number of lines so far (pass it as wait_for_line's `start` to wait for a later line)."""
        with self._cond:
            return len(self._lines)

    def poll(self) -> Optional[int]:
        return self.popen.poll()

    def send_signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Waits for the process to exit; raises subprocess.TimeoutExpired after `timeout` seconds."""
        code = self.popen.wait(timeout=timeout)
        self._forget()
        return code

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> int:
        """Sends `sig`, waits up to `timeout` seconds, then kills the process group. Returns the exit code."""
        try:
            if self.popen.poll() is None:
                self.popen.send_signal(sig)
                try:
                    self.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.kill()
            return self.popen.wait(timeout=timeout)
        finally:
            self._forget()

    def kill(self) -> None:
        """SIGKILL to the process and anything it started (it leads its own session)."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.popen.wait(timeout=10)
        finally:
            self._forget()

    def _forget(self):
        with _live_lock:
            _live_processes.discard(self)
        self._reader.join(timeout=5)

    def _describe(self) -> str:
        return f"{pathlib.PurePath(self.args[0]).name} (pid {self.popen.pid})"

    def _tail(self, n: int = 60) -> str:
        return "\n".join(self._lines[-n:])

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_process(args: Sequence[str], ready_line_regex: str, timeout: float = 30.0,
                  env: Optional[Mapping[str, str]] = None, cwd: Optional[os.PathLike] = None) -> Process:
    """Starts `args` and waits until an output line matches `ready_line_regex` (the match is in .ready_match).

    On a timeout or an early exit the process is killed and the error carries its output."""
    process = Process(args, env=env, cwd=cwd)
    try:
        process.ready_match = process.wait_for_line(ready_line_regex, timeout)
    except BaseException:
        process.kill()
        raise
    return process


@atexit.register
def _kill_leftovers():
    with _live_lock:
        leftovers = list(_live_processes)
    for process in leftovers:
        process.kill()


_stubs: Optional[types.SimpleNamespace] = None
_stubs_lock = threading.Lock()


def load_stubs() -> types.SimpleNamespace:
    """Python modules for octet's public API, generated from proto/ into a temporary folder (once per run).

    Returns a namespace with <name>_pb2 and <name>_pb2_grpc for every proto/octet/**/<name>.proto (generation_pb2,
    generation_pb2_grpc, ...) and health_pb2, health_pb2_grpc, health (grpc.health.v1 from grpcio-health-checking;
    its HealthServicer serves a fake worker's health)."""
    global _stubs
    with _stubs_lock:
        if _stubs is not None:
            return _stubs
        import grpc_tools
        from grpc_tools import protoc

        out_dir = tempfile.mkdtemp(prefix="octet-stubs-")
        atexit.register(shutil.rmtree, out_dir, True)
        well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
        protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "octet").rglob("*.proto"))
        code = protoc.main(["grpc_tools.protoc", f"-I{PROTO_DIR}", f"-I{well_known}", f"--python_out={out_dir}",
                            f"--grpc_python_out={out_dir}", *protos])
        if code != 0:
            raise RuntimeError(f"grpc_tools.protoc failed ({code}) on {protos}")
        sys.path.insert(0, out_dir)
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc

        modules = {"health_pb2": health_pb2, "health_pb2_grpc": health_pb2_grpc, "health": health}
        for proto in protos:  # octet/v1/generation.proto -> generation_pb2, generation_pb2_grpc
            package = proto[:-len(".proto")].replace("/", ".")
            stem = pathlib.PurePath(proto).stem
            modules[f"{stem}_pb2"] = importlib.import_module(f"{package}_pb2")
            modules[f"{stem}_pb2_grpc"] = importlib.import_module(f"{package}_pb2_grpc")
        _stubs = types.SimpleNamespace(**modules)
        return _stubs
