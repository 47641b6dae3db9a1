"""Run ``torchrun`` as a subprocess that can always be stopped, ranks included.

The launcher (docs/processes.md):

* takes an argv list (never a shell) and an explicit environment;
* uses a free rendezvous port (``--standalone``, or ``--rdzv-endpoint 127.0.0.1:<port>``);
* writes per-rank logs with ``--log-dir``/``--tee 3`` and the combined stream to ``torchrun.log``;
* starts torchrun in its own session and streams its output line by line to a callback;
* on timeout, ``KeyboardInterrupt``, SIGTERM or any exception, SIGTERMs torchrun's process group
  and every rank's (torch elastic starts each worker in a session of its own, so a group signal to
  torchrun alone never reaches them), waits a grace period (< 30 s, below the Prefect runner's),
  then SIGKILLs whatever is left and checks that no rank survived;
* raises :class:`~scene2world.errors.InferenceError` with the return code, the argv and the log
  tail on a non-zero exit; and has a dry-run mode that returns the command without running it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from scene2world.errors import InferenceError
from scene2world.inference import heartbeat
from scene2world.stopping import check, exit_with_status, sigterm_raises
from scene2world.supervisor import supervised_argv

LogCallback = Callable[[str], None]

DEFAULT_GRACE_S = 20.0
"""Seconds between SIGTERM and SIGKILL; below the 30 s a Prefect runner waits before its own SIGKILL."""

TAIL_LINES = 200
_POLL_S = 0.1
_TREE_REFRESH_S = 0.5
_EOF_WAIT_S = 2.0
_REAP_WAIT_S = 5.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (bind to port 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def build_torchrun_argv(
    program: Sequence[str],
    *,
    nproc: int,
    python: str = sys.executable,
    rdzv_port: int | None = None,
    run_id: str | None = None,
    log_dir: Path | None = None,
    tee: bool = True,
) -> list[str]:
    """The torchrun argv for one node: ``python -m torch.distributed.run [options] program…``.

    Args:
        program: what each rank runs, torchrun style: ``["-m", "pkg.module", "-i", …]`` or
            ``["script.py", …]``.
        nproc: ranks (``--nproc-per-node``).
        python: the interpreter whose torch runs torchrun (and, for ``-m``, the ranks).
        rdzv_port: None → ``--standalone`` (torchrun binds a free port itself); else a c10d
            rendezvous on ``127.0.0.1:<rdzv_port>`` (e.g. from :func:`free_port`).
        run_id: rendezvous id (prefix of torchrun's log sub-folder); only with ``rdzv_port``.
        log_dir: per-rank ``stdout.log``/``stderr.log`` go under it (``--log-dir``).
        tee: with ``log_dir``, also send every rank's output to the console (``--tee 3``).
    """
    if nproc < 1:
        raise InferenceError(f"`nproc_per_node` must be ≥ 1, got {nproc}")
    if not program:
        raise InferenceError("torchrun needs a program to run (['-m', 'module', ...] or ['script.py', ...])")
    argv = [python, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc-per-node={nproc}"]
    if rdzv_port is None:
        argv.append("--standalone")
    else:
        argv += ["--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{rdzv_port}"]
        if run_id:
            argv.append(f"--rdzv-id={run_id}")
    argv.append("--max-restarts=0")
    if log_dir is not None:
        argv.append(f"--log-dir={log_dir}")
        if tee:
            argv.append("--tee=3")
    return argv + [str(a) for a in program]


@dataclass(frozen=True)
class TorchrunCommand:
    """A fully specified launch: argv, the explicit environment, the working folder, the log folder."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(repr=False)
    cwd: Path
    log_dir: Path | None = None

    def render(self) -> str:
        """A shell line a human can copy: ``cd DIR && VAR=… python -m torch.distributed.run …``.

        Only variables that differ from the current environment are shown.
        """
        changed = {k: v for k, v in sorted(self.env.items()) if os.environ.get(k) != v}
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in changed.items())
        return f"cd {shlex.quote(str(self.cwd))} && {env + ' ' if env else ''}{shlex.join(self.argv)}"


@dataclass(frozen=True)
class LaunchResult:
    """How a launch ended (``returncode`` None for a dry run)."""

    command: str
    argv: tuple[str, ...]
    returncode: int | None
    duration_s: float
    log_dir: Path | None
    log_tail: str
    dry_run: bool = False


# ---------------------------------------------------------------- process tree bookkeeping (Linux /proc)


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, starttime) of ``pid`` from ``/proc/<pid>/stat``; None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode(errors="replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    try:
        return fields[0], int(fields[1]), int(fields[2]), int(fields[19])
    except (IndexError, ValueError):
        return None


class ProcessTree:
    """Every process descended from ``root`` while it ran, remembered by (pid, start time).

    Ranks that lose their parent are re-parented to init; remembering them is how the launcher
    still finds and stops them. Zombies count as gone. Without ``/proc`` this tracks nothing.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.known: dict[int, int] = {}
        self.enabled = os.path.isdir("/proc/self")

    def refresh(self) -> None:
        """Scan ``/proc`` and remember every live descendant of the root or of a known process."""
        if not self.enabled:
            return
        children: dict[int, list[int]] = {}
        starts: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            st = _stat(int(entry))
            if st is None or st[0] == "Z":
                continue
            children.setdefault(st[1], []).append(int(entry))
            starts[int(entry)] = st[3]
        stack = [self.root, *self.alive()]
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in self.known and child != self.root:
                    self.known[child] = starts[child]
                    stack.append(child)

    def alive(self) -> list[int]:
        """Known descendants that still run (same pid and start time, not a zombie)."""
        out = []
        for pid, start in self.known.items():
            st = _stat(pid)
            if st is not None and st[3] == start and st[0] != "Z":
                out.append(pid)
        return sorted(out)

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to every live descendant and to its process group (never the caller's own)."""
        own = os.getpgrp()
        for pid in self.alive():
            st = _stat(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if st is not None and st[2] not in (own, 0) and st[2] == pid:
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


# ---------------------------------------------------------------- the launch


_EOF = object()


def _pump(stream: IO[bytes], lines: queue.Queue[object]) -> None:
    """Reader thread: one decoded line per queue item, then ``_EOF``."""
    try:
        for raw in iter(stream.readline, b""):
            lines.put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    except (OSError, ValueError):
        pass
    finally:
        lines.put(_EOF)


class _Run:
    """One running torchrun: its process, its output and its descendants."""

    def __init__(
        self, cmd: TorchrunCommand, log: LogCallback | None, grace_s: float, hang_timeout_s: float | None = None
    ) -> None:
        self.cmd = cmd
        self.hang_timeout_s = hang_timeout_s
        self.heartbeats: Path | None = None
        self.hung: dict[int, float] = {}
        self.log = log
        self.grace_s = grace_s
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.lines: queue.Queue[object] = queue.Queue()
        self.eof = False
        self.stopping = False
        self.logfile: IO[str] | None = None
        if cmd.log_dir is not None:
            Path(cmd.log_dir).mkdir(parents=True, exist_ok=True)
            self.logfile = open(Path(cmd.log_dir) / "torchrun.log", "a", encoding="utf-8")  # noqa: SIM115
        env = dict(cmd.env)
        if hang_timeout_s is not None:
            self.heartbeats = Path(tempfile.mkdtemp(prefix="s2w-heartbeats-"))
            env[heartbeat.ENV] = str(self.heartbeats)
        try:
            self.proc = subprocess.Popen(
                supervised_argv(cmd.argv, grace_s),  # no rank outlives torchrun, nor torchrun us (docs/processes.md)
                cwd=cmd.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            self.close()
            raise InferenceError(
                f"cannot start torchrun ({cmd.argv[0]}): {e}; check the interpreter path", argv=list(cmd.argv)
            ) from e
        self.tree = ProcessTree(self.proc.pid)
        assert self.proc.stdout is not None
        self.reader = threading.Thread(target=_pump, args=(self.proc.stdout, self.lines), daemon=True)
        self.reader.start()

    def emit(self, line: str) -> None:
        """Record ``line`` (tail, ``torchrun.log``) and pass it to the callback.

        While stopping, nothing the callback raises (not even KeyboardInterrupt) may interrupt the
        cleanup: it is swallowed and the callback is not called again.
        """
        self.tail.append(line)
        if self.logfile is not None:
            with contextlib.suppress(OSError, ValueError):
                self.logfile.write(line + "\n")
                self.logfile.flush()
        if self.log is None:
            return
        if not self.stopping:
            self.log(line)
            return
        try:
            self.log(line)
        except BaseException:
            self.log = None

    def pump_once(self, wait_s: float) -> None:
        """Forward the lines that arrive within ``wait_s`` seconds to the callback."""
        try:
            item = self.lines.get(timeout=wait_s)
        except queue.Empty:
            return
        while True:
            if item is _EOF:
                self.eof = True
                return
            self.emit(str(item))
            try:
                item = self.lines.get_nowait()
            except queue.Empty:
                return

    def wait(self, deadline: float | None) -> bool:
        """Stream output until torchrun exits (True) or ``deadline`` passes (False)."""
        next_scan = 0.0
        while True:
            now = time.monotonic()
            if now >= next_scan:
                self.tree.refresh()
                next_scan = now + _TREE_REFRESH_S
            self.pump_once(_POLL_S)
            check()  # a stop signal whose exception was swallowed still stops the launch
            if self.proc.poll() is not None:
                self.drain(_EOF_WAIT_S)
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if self.heartbeats is not None and self.hang_timeout_s is not None:
                self.hung = heartbeat.stale(self.heartbeats, self.hang_timeout_s)
                if self.hung:
                    return False

    def drain(self, wait_s: float) -> None:
        """Forward what is left of the output, waiting at most ``wait_s`` seconds for its end."""
        end = time.monotonic() + wait_s
        while not self.eof and time.monotonic() < end:
            self.pump_once(_POLL_S)

    def stop(self) -> list[int]:
        """SIGTERM torchrun's group and every rank, wait the grace period, SIGKILL the rest.

        Returns the pids that survived even SIGKILL (should be empty).
        """
        self.stopping = True
        self.tree.refresh()
        if self.proc.poll() is None or self.tree.alive():
            ranks = self.tree.alive()
            _signal_group(self.proc.pid, signal.SIGTERM)
            self.tree.signal_all(signal.SIGTERM)
            self._note(f"stopping torchrun (pid {self.proc.pid}) and ranks {ranks}: SIGTERM")
            end = time.monotonic() + self.grace_s
            while time.monotonic() < end and (self.proc.poll() is None or self.tree.alive()):
                self.tree.refresh()
                self.pump_once(_POLL_S)
        return self.kill_leftovers()

    def kill_leftovers(self) -> list[int]:
        """SIGKILL torchrun's group and any descendant still alive; the pids that would not die."""
        self.stopping = True
        self.tree.refresh()
        if self.proc.poll() is None or self.tree.alive():
            ranks = self.tree.alive()
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.tree.signal_all(signal.SIGKILL)
            self._note(f"SIGKILL to torchrun (pid {self.proc.pid}) and ranks {ranks}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=_REAP_WAIT_S)
        end = time.monotonic() + _REAP_WAIT_S
        while self.tree.alive() and time.monotonic() < end:
            time.sleep(_POLL_S)
        return self.tree.alive()

    def _note(self, text: str) -> None:
        self.emit(f"[scene2world launcher] {text}")

    def close(self) -> None:
        """Close the log file, and torchrun's stdout once the reader thread is done with it.

        Closing a pipe another thread is blocked reading would block on its lock forever; a pipe
        some stray process still holds open is left to the daemon reader thread instead.
        """
        self.stopping = True
        reader = getattr(self, "reader", None)
        if reader is not None:
            reader.join(timeout=_EOF_WAIT_S)
        proc = getattr(self, "proc", None)
        if proc is not None and proc.stdout is not None and (reader is None or not reader.is_alive()):
            with contextlib.suppress(OSError):
                proc.stdout.close()
        if self.logfile is not None:
            self.logfile.close()
            self.logfile = None
        if self.heartbeats is not None:
            shutil.rmtree(self.heartbeats, ignore_errors=True)


def launch(
    cmd: TorchrunCommand,
    *,
    log: LogCallback | None = None,
    timeout_s: float | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    dry_run: bool = False,
    hang_timeout_s: float | None = None,
) -> LaunchResult:
    """Run ``cmd`` to completion, streaming its combined output line by line to ``log``.

    Args:
        cmd: from :func:`~scene2world.inference.engines.engine_command` or built by hand.
        log: called with each output line (without newline), in the calling thread.
        timeout_s: stop the whole process group after this many seconds (None: no limit).
        grace_s: seconds between SIGTERM and SIGKILL, 0 < grace_s < 30.
        dry_run: return the command without running anything.
        hang_timeout_s: stop the launch when a rank that heartbeats (:mod:`.heartbeat`) has not
            done so for this many seconds (None: no watchdog).

    Raises:
        InferenceError: non-zero exit, timeout, or a rank that survived SIGKILL; it carries
            ``returncode``, ``argv`` and ``log_tail``.
        KeyboardInterrupt, SystemExit (SIGTERM) and any exception of ``log`` are re-raised after
            the process group has been stopped.
    """
    if not 0 < grace_s < 30:
        raise InferenceError(f"`grace_s` must be between 0 and 30 seconds (exclusive), got {grace_s}")
    command = cmd.render()
    if dry_run:
        return LaunchResult(command, cmd.argv, None, 0.0, cmd.log_dir, "", dry_run=True)
    start = time.monotonic()
    deadline = None if timeout_s is None else start + timeout_s
    # a plain script that gets SIGTERM stops torchrun first, then exits 143 (SystemExit)
    with sigterm_raises(exit_with_status):
        run = _Run(cmd, log, grace_s, hang_timeout_s)
        survivors: list[int] = []
        finished = False
        try:
            finished = run.wait(deadline)
            if not finished:
                run._note(_hung_text(run.hung) if run.hung else f"timed out after {timeout_s:g} s")
                survivors = run.stop()
            else:
                survivors = run.kill_leftovers()
        except BaseException:
            survivors = run.stop()
            if survivors:
                run._note(f"processes {survivors} survived SIGKILL")
            raise
        finally:
            run.stopping = True
            run.drain(0.5)
            run.close()
    returncode = run.proc.returncode
    tail = "\n".join(run.tail)
    argv = list(cmd.argv)
    where = f"; logs: {cmd.log_dir}" if cmd.log_dir is not None else ""
    if not finished and run.hung:
        raise InferenceError(
            f"torchrun stopped: {_hung_text(run.hung)}{where}; a rank is hung (deadlock, stopped process); "
            "raise `infer.hang_timeout_s` if a step legitimately takes longer",
            returncode=returncode,
            argv=argv,
            log_tail=tail,
        )
    if not finished:
        raise InferenceError(
            f"torchrun timed out after {timeout_s:g} s and was stopped (exit {returncode}){where}; "
            "raise `infer.timeout_s` if the run needs longer",
            returncode=returncode,
            argv=argv,
            log_tail=tail,
        )
    if survivors:
        raise InferenceError(
            f"processes {survivors} of torchrun survived SIGKILL{where}",
            returncode=returncode,
            argv=argv,
            log_tail=tail,
        )
    if returncode != 0:
        last = "\n".join(_summary_lines(list(run.tail)))
        cause = failure_cause(list(run.tail))
        raise InferenceError(
            f"torchrun exited with status {returncode}{': ' + cause if cause else ''}{where}\n"
            f"command: {command}\nlast lines of the ranks:\n{last}",
            returncode=returncode,
            argv=argv,
            log_tail=tail,
        )
    return LaunchResult(command, cmd.argv, returncode, time.monotonic() - start, cmd.log_dir, tail)


def _hung_text(hung: dict[int, float]) -> str:
    rank, age = min(hung.items())
    return f"rank {rank} sent no heartbeat for {age:.0f} s"


def _summary_lines(tail: list[str], count: int = 20) -> list[str]:
    """The last ``count`` lines the ranks printed (torchrun tees them as ``[<role><rank>]:``); the
    overall tail when no rank printed anything, since torchrun's own epilogue hides the cause."""
    ranks = [line for line in tail if line.startswith("[") and "]:" in line[:24]]
    return (ranks or tail)[-count:]


_RANK_LINE = re.compile(r"^\[[A-Za-z_]*?(\d+)\]:(.*)$")
_RANK_TAG = re.compile(r"^\[rank\d+\]:\s?")
_ECHO = re.compile(
    r"Connection closed by peer|remote worker|Broken pipe|[Cc]onnection reset|SIGTERM|Terminated|aborted"
)
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)\b.*)$")


def failure_cause(tail: list[str]) -> str | None:
    """The first rank that failed with a real error and that error's line, e.g. ``rank 1: ValueError: …``.

    A line saying "No space left on device" wins: whatever broke next is its echo. Ranks that fail
    *because* another one did show a lost connection or a signal; the first rank
    whose output holds an exception line (the last line of a Python traceback) that is not such
    an echo is the cause. Without one, torchrun's own root-cause summary (its ``rank``/``exitcode``
    lines) is used; None when neither exists.
    """
    for line in tail:  # a full disk is the cause whatever broke next (a pipe to ffmpeg, a rank)
        if "No space left on device" in line:
            match = _RANK_LINE.match(line)
            text = _RANK_TAG.sub("", match.group(2)).strip() if match else line.strip()
            return f"rank {match.group(1)}: {text}" if match else text
    errors: list[tuple[int, str]] = []  # (rank, error line) in order of appearance
    for line in tail:
        match = _RANK_LINE.match(line)
        if match is None:
            continue
        text = _RANK_TAG.sub("", match.group(2))
        error = _ERROR_LINE.match(text)
        if error is not None:
            errors.append((int(match.group(1)), error.group(1).strip()))
    if errors:
        primary = [e for e in errors if not _ECHO.search(e[1])] or errors
        rank = primary[0][0]
        last = [text for r, text in errors if r == rank and (not _ECHO.search(text) or primary is errors)][-1]
        return f"rank {rank}: {last}"
    root = [line.strip() for line in tail if re.match(r"^\s*(rank|exitcode)\s*:", line)]
    return "; ".join(root[:2]) or None


def rank_logs(log_dir: Path) -> dict[int, list[Path]]:
    """Per-rank log files torchrun wrote under ``log_dir`` (``<id>/attempt_<n>/<rank>/std*.log``)."""
    out: dict[int, list[Path]] = {}
    for path in sorted(Path(log_dir).glob("*/attempt_*/*/std*.log")):
        with contextlib.suppress(ValueError):
            out.setdefault(int(path.parent.name), []).append(path)
    return out
