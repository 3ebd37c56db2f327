"""Child processes of a local venue: start, wait until they answer, stop for sure."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


# Run by the child once setpriv has set its death signal, with the parent's pid as $0,
# the signal as $1 and the command after: a parent that died before the signal was set
# never sends it (the child has a new parent by then), so the child sends it itself.
_PARENT_CHECK = '[ "$PPID" = "$0" ] || { kill -s "$1" $$; exit 1; }; shift; exec "$@"'


def with_parent_death_signal(argv: Sequence[str], sig: str = "TERM",
                             user: str | None = None, parent: int | None = None) -> list[str]:
    """`argv` run through util-linux's setpriv, which sets PR_SET_PDEATHSIG (and drops to
    `user`) before it execs: the child gets `sig` when the process that started it dies,
    even by SIGKILL, so a killed `venue up`, benchmark or test leaves no part running.
    `parent`: the process that starts it (this one). A parent that dies before setpriv has
    set the signal (a loaded host can leave a child unscheduled that long) is caught by a
    check of the child's parent after it.

    Doing this in the child ourselves (Popen's preexec_fn, or user=) makes Python fork
    instead of vfork, with its at-fork handlers; with gRPC's threads alive in the same
    process that fork can deadlock. With a plain argv Popen vforks and runs no Python
    code in the child. Without setpriv (not Linux) the child just runs as is."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if user is not None:
            raise RuntimeError(f"starting a process as {user!r} needs setpriv (util-linux)")
        return list(argv)
    wrapper = [setpriv, f"--pdeathsig={sig}"]
    if user is not None:
        account = pwd.getpwnam(user)
        wrapper += [f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
                    "--clear-groups"]
    return [*wrapper, "--", "/bin/sh", "-c", _PARENT_CHECK,
            str(os.getpid() if parent is None else parent), sig, *argv]


_HANDED_OUT: set[int] = set()
_KEPT: dict[tuple[Path, str], int] = {}  # kept_port's, in this process


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it) and that this process has
    not handed out before: a part given a port may not have bound it yet, and the OS
    offers a released port again. (It did: a local venue's writer served its metrics on
    the port chosen for the gateway, the gateway could not bind it, and the metrics
    server answered the gateway's health check.)"""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def kept_port(ports_file: Path, name: str) -> int:
    """The port `name` had at the last start of the venue whose data dir holds
    `ports_file` (JSON, name -> port), when it is free still; else a new one, kept there:
    a URL printed once (Postgres's, for `venue accounts`) holds across restarts."""
    try:
        ports = json.loads(ports_file.read_text())
    except (OSError, ValueError):
        ports = {}
    if not isinstance(ports, dict):
        ports = {}
    port, key = ports.get(name), (ports_file.resolve(), name)
    usable = type(port) is int and 1024 <= port <= 65535  # noqa: E721 (not a bool)
    if not usable or (port in _HANDED_OUT and _KEPT.get(key) != port) or not _bindable(port):
        port = ports[name] = free_port()
        ports_file.write_text(json.dumps(ports, indent=2, sort_keys=True) + "\n")
    _HANDED_OUT.add(port)
    _KEPT[key] = port
    return port


def _bindable(port: int) -> bool:
    """Nobody has the port bound (connections of a server gone, in TIME_WAIT, do not
    count: the servers set SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(ready: Callable[[], bool], what: str, timeout: float = 30.0,
               process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Poll `ready` until it is true; fail early if `process` died, naming its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready"
                               + log_tail(log))
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s" + log_tail(log))


def log_tail(log: Path | None, lines: int = 20) -> str:
    """"; last lines of LOG:" and them, to end a message about a part with."""
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log}:\n" + "\n".join(text)


class Restarts:
    """When a part that died starts again: at once the first time; while it keeps dying
    within STABLE_S of its start, after a delay that doubles up to MAX_DELAY_S, so a part
    that cannot start is not restarted twice a second forever."""

    STABLE_S = 60.0
    MAX_DELAY_S = 60.0

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.failures = 0  # deaths in a row, each within STABLE_S of its start
        self.due: float | None = None  # when the next start is due, once it died

    def died(self, now: float) -> float:
        """Note a death; the delay before the next start."""
        self.failures = self.failures + 1 if now - self.started < self.STABLE_S else 1
        delay = 0.0 if self.failures == 1 else min(self.MAX_DELAY_S, 2.0 ** (self.failures - 2))
        self.due = now + delay
        return delay

    def starting(self, now: float) -> None:
        self.started = now
        self.due = None


class Child:
    """One child process with its own log file (appended to: rotate_log) and process
    group."""

    def __init__(self, name: str, argv: Sequence[str], log: Path,
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 user: str | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.env = env
        self.cwd = cwd
        self.user = user
        self.process: subprocess.Popen | None = None

    def start(self) -> Child:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        argv = with_parent_death_signal(self.argv, user=self.user)
        with open(self.log, "ab") as out:
            # A new session: Ctrl-C in the terminal reaches `venue up` only, which then
            # stops each child in order, instead of every child at once.
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, cwd=self.cwd, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM,
             whole_group: bool = True) -> int | None:
        """Signal the child (its process group by default), wait, SIGKILL what is left."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            if whole_group:
                self._signal_group(sig)
            else:
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would: no cleanup in the child."""
        if self.process is not None and self.process.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.process.wait()

    def _signal_group(self, sig: int) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


def rotate_log(log: Path, most_bytes: int, keep: int) -> bool:
    """Once `log` is over `most_bytes`: its older copies shift (log.1 to log.2, ..., the
    one past `keep` deleted), it is copied to log.1 and emptied. The process writing it
    keeps its file open, in append mode (Child opens each log so), and goes on at the
    new end; what it writes between the copy and the emptying is lost, and a line being
    written across two pages of the file as the copy is taken may be cut in two, or
    leave a run of zeros where its second half goes (logrotate's copytruncate has the
    same races). Returns whether it rotated."""
    try:
        if log.stat().st_size <= most_bytes:
            return False
    except FileNotFoundError:
        return False
    older = [log.with_name(f"{log.name}.{n}") for n in range(1, keep + 1)]
    older[-1].unlink(missing_ok=True)
    for newer, next_older in zip(reversed(older[:-1]), reversed(older[1:])):
        if newer.exists():
            newer.rename(next_older)
    shutil.copyfile(log, older[0])
    os.truncate(log, 0)
    return True


class Service:
    """A server we run as one child process: stopped on request, killed to test crashes."""

    child: Child | None = None

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.child is not None:
            self.child.kill()
