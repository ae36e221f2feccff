"""Persistent benchmark worker processes, driven in lock-step so that figures are interleaved.

The machine these benchmarks run on is shared and noisy, so a MindSpore figure and a PyTorch figure
taken a minute apart are not comparable.  Each framework/configuration therefore lives in its own
long-lived subprocess (the oneDNN ISA cap is read once per process, and each framework's peak RSS must
be measured on its own), and the parent asks the workers for one timed repetition at a time, round-robin:
``ms, torch, ms, torch, ...``.  Load spikes then hit both sides alike and the ratio stays meaningful.

Protocol: the parent writes one JSON object per line to the worker's stdin and reads one JSON object per
line back from a private pipe (the worker's real stdout is redirected to stderr, so library chatter cannot
corrupt the protocol).  A worker module implements ``handle(request) -> dict``.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
import traceback
from typing import Callable

ISA_ENV = "ONEDNN_MAX_CPU_ISA"
NO_CAP_ENV = "MS_OSR_NO_ISA_CAP"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker_env(kind: str, threads: int) -> dict:
    """Environment for a worker: ``ms`` (ms_osr's automatic cap), ``ms-nofix`` (no cap) or ``torch``."""
    env = dict(os.environ)
    env.pop(ISA_ENV, None)  # a figure labelled "with fix" must show ms_osr's own choice
    env.pop(NO_CAP_ENV, None)
    if kind == "ms-nofix":
        env[NO_CAP_ENV] = "1"
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("GLOG_v", "3")  # MindSpore: errors only
    return env


class Worker:
    """One persistent subprocess running ``script --worker KIND``."""

    def __init__(self, script: str, kind: str, threads: int, extra_args: list[str] | None = None):
        self.kind = kind
        rfd, wfd = os.pipe()
        cmd = [sys.executable, script, "--worker", kind, "--threads", str(threads), "--reply-fd", str(wfd)]
        cmd += extra_args or []
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=worker_env(kind, threads), cwd=REPO, text=True, pass_fds=(wfd,))
        os.close(wfd)
        self.replies = os.fdopen(rfd, "r")
        self._stderr_tail: list[str] = []
        # Drain stderr in the background so a chatty library cannot block the worker.
        import threading

        def _drain():
            for line in self.proc.stderr:
                self._stderr_tail.append(line)
                del self._stderr_tail[:-40]

        threading.Thread(target=_drain, daemon=True).start()

    def call(self, **request) -> dict:
        return self.send(**request).receive()

    def send(self, **request) -> "Worker":
        """Send a request without waiting (pair with :meth:`receive`), e.g. to set two workers up at once."""
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        return self

    def receive(self) -> dict:
        try:
            line = self.replies.readline()
        except OSError:
            line = ""
        if not line:
            self.proc.wait(timeout=30)
            tail = "".join(self._stderr_tail[-15:])
            return {"error": f"{self.kind} worker exited (rc {self.proc.returncode}): {tail.strip()[-1500:]}"}
        return json.loads(line)

    def close(self) -> dict:
        info = self.call(op="quit")
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return info


def serve(handle: Callable[[dict], dict], reply_fd: int) -> None:
    """Worker main loop: answer requests from stdin until ``quit``; stdout is sent to stderr."""
    out = os.fdopen(reply_fd, "w")
    os.dup2(2, 1)  # anything printed by libraries goes to stderr
    sys.stdout = sys.stderr
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("op") == "quit":
            out.write(json.dumps({"maxrss_mb": peak_rss_mb()}) + "\n")
            out.flush()
            return
        try:
            reply = handle(req)
        except Exception as exc:  # report, keep serving the other cases
            reply = {"error": f"{type(exc).__name__}: {exc}".strip()[:2000],
                     "trace": traceback.format_exc()[-3000:]}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn: Callable[[], None], reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def interleave(workers: dict[str, Worker], request: dict, rounds: int, pause: float = 0.05) -> dict[str, list[float]]:
    """Ask each worker for one timed repetition per round, round-robin; return all times per worker.

    ``pause`` seconds separate two calls so that the OpenMP/threadpool threads of the worker that just ran
    have stopped spin-waiting before the next one starts (otherwise they steal its cores).
    """
    times: dict[str, list[float]] = {k: [] for k in workers}
    dead: set[str] = set()
    for _ in range(rounds):
        for key, worker in workers.items():
            if key in dead:
                continue
            time.sleep(pause)
            reply = worker.call(**request)
            if "error" in reply:
                dead.add(key)
                times[key] = reply  # type: ignore[assignment]
            else:
                times[key].extend(reply["times"])
                if "stock_times" in reply:  # a worker that also timed MindSpore's own op, alternately
                    times.setdefault(key + ":stock", []).extend(reply["stock_times"])
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def machine_info() -> dict:
    """CPU model, core count, load average and library versions for the results header."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    f = line.split()
                    flags = "avx512" if "avx512f" in f else ("avx2" if "avx2" in f else "")
                    if "amx_tile" in f:
                        flags += "+amx"
                    break
    except OSError:
        pass
    return {"cpu": cpu, "isa": flags, "cores": os.cpu_count(), "load": os.getloadavg()}


def fmt_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-markdown table with padded columns (readable in a terminal too)."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def splice_block(path: str, name: str, text: str, title: str = "# Benchmarks") -> str:
    """Contents of ``path`` with the generated block ``name`` replaced by ``text`` (appended if absent).

    Results files mix generated tables and hand-written analysis; only the block between
    ``<!-- name:begin -->`` and ``<!-- name:end -->`` is rewritten.  Header lines (before the first blank
    line of ``text``) get markdown line breaks.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    old = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            old = fh.read()
    lines = text.split("\n")
    n_head = lines.index("") if "" in lines else 0
    block = begin + "\n" + "  \n".join(lines[:n_head]) + "\n" + "\n".join(lines[n_head:]) + "\n" + end
    if begin in old and end in old:
        return old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    return (old.rstrip("\n") + "\n\n" if old else title + "\n\n") + block + "\n"
