"""The process that reads .html/.pdf/.docx/.eml files, so that one file cannot hang or sink a build or the app.

`Worker.read(kind, path, name, limits)` sends one file to a child process (`python -m
index.converters.worker`, one JSON line per request and per reply) and waits at most
`limits["timeout_s"]`: past it the child is killed, the file is refused with one sentence and the
next file gets a fresh child. The child's address space is capped (`limits["max_memory"]`), so a
PDF bomb ends in a MemoryError (or the child's death), not in the machine swapping. The child stays
up between files (its parsers are imported once) and ends with the process that started it.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..errors import CorpusError

_ROOT = Path(__file__).resolve().parent.parent.parent


class Worker:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.buffer = b""

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env.setdefault("OMP_NUM_THREADS", "1")
        self.buffer = b""
        return subprocess.Popen([sys.executable, "-m", "index.converters.worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=str(_ROOT))

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is not None:
            for f in (proc.stdin, proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass

    def read(self, kind: str, path: str, name: str, limits: dict) -> list[dict]:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self.stop()
                self.proc = self._start()
            request = json.dumps({"kind": kind, "path": path, "name": name, "limits": limits}) + "\n"
            try:
                self.proc.stdin.write(request.encode("utf-8"))
                self.proc.stdin.flush()
                line = self._reply(time.monotonic() + float(limits["timeout_s"]))
            except BrokenPipeError:
                line = None
            if line is None:
                timed_out = self.proc is not None and self.proc.poll() is None
                self.stop()
                if timed_out:
                    raise CorpusError(f"{name} took longer than {limits['timeout_s']:g} s to read, so it was "
                                      "skipped; split it or save it in a simpler form.")
                raise CorpusError(f"{name} could not be read: reading it ran out of memory or crashed the "
                                  "reader; split it or save it in a simpler form.")
            reply = json.loads(line)
            if "error" in reply:
                raise CorpusError(reply["error"])
            return reply["docs"]

    def _reply(self, deadline: float) -> bytes | None:
        """One line from the child, or None when it died or the deadline passed."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


_WORKER = Worker()
atexit.register(_WORKER.stop)


def read(kind: str, path: str, name: str, limits: dict) -> list[dict]:
    """Read one file in the shared worker process (see `Worker.read`)."""
    return _WORKER.read(kind, path, name, limits)


def _serve() -> None:
    """The child: read requests from stdin, answer each with one JSON line on the original stdout."""
    import importlib
    import resource

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # whatever a parser prints cannot break the replies
    limited = False
    for raw in sys.stdin.buffer:
        request = json.loads(raw)
        limits, name = request["limits"], request["name"]
        if not limited and limits.get("max_memory"):
            try:
                resource.setrlimit(resource.RLIMIT_AS, (int(limits["max_memory"]),) * 2)
            except (ValueError, OSError):
                pass
            limited = True
        try:
            module = importlib.import_module(f"index.converters.{request['kind']}")
            data = Path(request["path"]).read_bytes()
            reply = {"docs": module.convert(data, name, limits)}
        except CorpusError as exc:
            reply = {"error": str(exc)}
        except MemoryError:
            reply = {"error": f"{name} could not be read within the reader's memory limit; "
                              "split it or save it in a simpler form."}
        except RecursionError:
            reply = {"error": f"{name} is nested too deeply to be read; save it in a simpler form."}
        except OSError as exc:
            reply = {"error": f"{name} could not be opened ({exc.strerror or exc})."}
        except Exception as exc:  # a parser's own failure on a broken file
            reply = {"error": f"{name} could not be read ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
                              "check that it is a whole, valid file."}
        out.write(json.dumps(reply).encode("utf-8") + b"\n")
        out.flush()


if __name__ == "__main__":
    _serve()
