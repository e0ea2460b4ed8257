"""Load on a real server: many people asking at once through `POST /api/ask`.

    python scripts/bench_load.py [--users 24] [--questions 3] [--url URL | --index DIR] [--timeout 180]

Starts `python -m ui` on a free port (the project's index, built first if missing; or --index), unless --url
names a running one. Each of --users people asks --questions questions about the bundled releases, one
after the other, all people at once. Every call must get an answer (or the closest passages), a refusal
(HTTP 400) or the busy sentence (HTTP 503, at once); none may fail otherwise or take past --timeout; at least
half must be answered; and a question asked afterwards is answered as usual. Prints the figures; exits 1
when one of these fails.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: What people ask, in turn (questions the bundled NATO releases answer).
QUESTIONS = [
    "Who will succeed Jens Stoltenberg as Secretary General?",
    "Which Baltic country's prime minister visited NATO headquarters on 27 June?",
    "Who welcomed President Zelenskyy to NATO Headquarters?",
    "Where did the Secretary General meet President Macron on 24 June?",
    "How many countries were represented at the Clearing House on Defence Education?",
]


@dataclass
class Call:
    """One question's outcome: its kind (answered, no answer, refused, busy, error) and how long it took."""

    kind: str
    seconds: float
    detail: str = ""


def ask(url: str, question: str, timeout: float) -> Call:
    """POST one question to `url`'s /api/ask and say what came back."""
    body = json.dumps({"question": question}).encode("utf-8")
    request = urllib.request.Request(url.rstrip("/") + "/api/ask", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = json.loads(response.read())
        return Call("answered" if reply.get("answered") else "no answer", time.perf_counter() - t0)
    except urllib.error.HTTPError as exc:  # busy is a 503 saying when to try again; another 503 is not
        busy = exc.code == 503 and exc.headers.get("Retry-After") is not None
        kind = "refused" if exc.code == 400 else "busy" if busy else "error"
        return Call(kind, time.perf_counter() - t0, f"HTTP {exc.code}: {_error_of(exc)}")
    except (OSError, ValueError) as exc:  # a timeout (a hang), a dropped connection, a reply that is not JSON
        return Call("error", time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")


def _error_of(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error", ""))
    except (ValueError, AttributeError):
        return ""


def person(url: str, n: int, first: int, timeout: float) -> list[Call]:
    """One person asking `n` questions in turn, starting at QUESTIONS[first]."""
    return [ask(url, QUESTIONS[(first + i) % len(QUESTIONS)], timeout) for i in range(n)]


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def start_server(index_dir: str | None, timeout: float = 600.0) -> tuple[subprocess.Popen, str]:
    """`python -m ui` on a free port; returns the process and its URL once it prints it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "ui", "--port", str(port), *(["--index", index_dir] if index_dir else [])]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    found: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        for line in proc.stdout:
            match = re.search(r"Running on local URL:\s*(\S+)", line)
            if match:
                found.append(match.group(1))
                ready.set()
        ready.set()  # the server exited

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout) or not found:
        proc.kill()
        raise SystemExit(f"python -m ui did not start (exit {proc.poll()}).")
    return proc, found[0]


def report(calls: list[Call], seconds: float, after: Call, users: int, each: int) -> bool:
    """Print the figures; True when every call got an answer, a refusal or the busy sentence, at least half
    were answered, and the question asked afterwards was answered."""
    kinds = Counter(c.kind for c in calls)
    replied = [c.seconds for c in calls if c.kind in ("answered", "no answer")]
    busy = [c.seconds for c in calls if c.kind == "busy"]
    print(f"{users} people x {each} questions = {len(calls)} calls in {seconds:.1f} s")
    for kind in ("answered", "no answer", "refused", "busy", "error"):
        print(f"  {kind:10} {kinds[kind]:4}")
    print(f"  answer time  p50 {percentile(replied, 50):.2f} s, p95 {percentile(replied, 95):.2f} s, "
          f"max {max(replied, default=float('nan')):.2f} s")
    if busy:
        print(f"  busy replies came in p50 {percentile(busy, 50):.2f} s, max {max(busy):.2f} s")
    for c in [c for c in calls if c.kind == "error"][:5]:
        print(f"  error after {c.seconds:.1f} s: {c.detail}")
    print(f"afterwards: {after.kind} in {after.seconds:.2f} s")
    ok = kinds["error"] == 0 and kinds["answered"] * 2 >= len(calls) and after.kind == "answered"
    print("PASS" if ok else "FAIL")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=24, help="people asking at once (default 24)")
    ap.add_argument("--questions", type=int, default=3, help="questions each person asks in turn (default 3)")
    ap.add_argument("--url", help="a running app (default: start one here)")
    ap.add_argument("--index", help="index folder for the app started here (default: the project's)")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds after which a call counts as hung")
    args = ap.parse_args(argv)
    proc, url = (None, args.url) if args.url else start_server(args.index)
    try:
        print(f"server {url}; first question: {ask(url, QUESTIONS[0], args.timeout).kind}")
        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(args.users) as pool:
            runs = [pool.submit(person, url, args.questions, i, args.timeout) for i in range(args.users)]
            calls = [c for run in runs for c in run.result()]
        seconds = time.perf_counter() - t0
        ok = report(calls, seconds, ask(url, QUESTIONS[0], args.timeout), args.users, args.questions)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
