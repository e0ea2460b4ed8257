"""Parsing, annotation and embedding on a Ray cluster, for corpora one machine cannot embed in time.

`ray_processor()` gives the build a `processor` (see `index.build.build_index`): handed the releases to
embed, in corpus order, it yields lists of `pipeline.Processed` covering exactly those releases, in the
same order. The work itself is `pipeline.process`, run by a pool of Ray actors through Ray Data
(`map_batches`), so each worker loads the embedding model once; the driver then writes the index as a
single-process build does (same chunk ids, generation swap, lock and checksums).

What travels through Ray is plain data: each release as a dict of its fields in, and per release a JSON
string (sentences and chunks) and the `.npy` bytes of its vectors out; `Processed` objects are rebuilt on
the driver around the driver's own `Release`s.

Ray is an optional extra (`pip install -e '.[scale]'`; `ray://` addresses also need `ray[client]`) and
is imported only inside these functions. Faults become one-sentence `DistributedBuildError`s (an `IndexStoreError`); the build then
drops its half-written generation without switching to it, so the previous index is left as it was and
the next build starts clean:
- an address where no Ray answers: checked up front with one small gRPC call, so it fails in seconds
  instead of Ray's minutes of reconnecting;
- a worker that dies: Ray restarts the actor and retries its batch (`RETRIES` times); only a batch that
  still fails stops the build;
- an error in the pipeline on a worker, a full disk, a Ray that will not start or refuses the token.
A Ray this module started (or connected to) is shut down when the releases are done, and on any error.
"""
from __future__ import annotations

import errno
import io
import json
import logging
import os
import re
import socket
import time
from dataclasses import fields
from typing import Iterator

import numpy as np

from .errors import CorpusError, DistributedBuildError, IndexStoreError
from .pipeline import Processed, Processor
from .types import Annotation, Chunk, Release


#: releases per `pipeline.process` call on a worker
BATCH_SIZE = 16
#: times a batch is retried (on a restarted actor) after its worker died
RETRIES = 2
#: seconds allowed for reaching a Ray address before giving up
CONNECT_TIMEOUT = 10.0
#: seconds to wait for the worker pool to be scheduled (a cluster with too few free CPUs)
ACTORS_TIMEOUT = 300.0
#: test hook: a worker that finds the file named here deletes it and dies (os._exit) before its batch;
#: one that holds "always" is kept, so every try dies
CRASH_ENV = "QA_INDEX_TEST_WORKER_CRASH"
#: what `--ray` without an address means
LOCAL = "local"

_INSTALL_HINT = "install the scale extra: pip install -e '.[scale]'"
_DEFAULT_PORTS = {"ray": 10001, "": 6379}


def ray_processor(address: str | None = None, workers: int | None = None,
                  batch_size: int = BATCH_SIZE, retries: int = RETRIES) -> Processor:
    """A build `processor` that runs `pipeline.process` on Ray.

    `address`: a running cluster ("host:port" of its head, "ray://host:port" for Ray Client, or "auto"
    for the one `ray start` made on this machine); None or "local" starts a Ray on this machine with
    `workers` CPUs (default: all) and stops it afterwards. When this process is already connected to a
    Ray, that one is used as it is, and left running. `workers` is the number of actors embedding at
    once (default: the cluster's CPUs); a batch whose worker died is retried `retries` times on a
    restarted worker. Raises DistributedBuildError at once when Ray is not installed or the
    address does not answer; Ray itself is started only when there are releases to process.
    """
    _import_ray()
    if workers is not None and workers < 1:
        raise ValueError("workers must be at least 1")
    if batch_size < 1 or retries < 0:
        raise ValueError("batch_size must be at least 1 and retries at least 0")
    address = None if address in (None, "", LOCAL) else address
    if address is not None:
        check_address(address)

    def process(releases: list[Release]) -> Iterator[list[Processed]]:
        if not releases:
            return
        yield from _run(list(releases), address, workers, batch_size, retries)

    return process


# ---------------------------------------------------------------------------------------------- driver


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise DistributedBuildError(f"Ray is not installed, so the build cannot run on Ray; {_INSTALL_HINT}.") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of "host:port", "ray://host[:port]" or "[v6]:port"; None for "auto"."""
    if address == "auto":
        return None
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "", address
    if scheme not in _DEFAULT_PORTS:
        raise DistributedBuildError(f"The Ray address {address!r} is not understood; give host:port, "
                              "ray://host:port or auto.")
    rest = rest.rstrip("/")
    if rest.startswith("["):  # [IPv6]:port
        host, _, port = rest[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    try:
        number = int(port) if port else _DEFAULT_PORTS[scheme]
    except ValueError:
        number = -1
    if not host or not 0 < number < 65536:
        raise DistributedBuildError(f"The Ray address {address!r} is not understood; give host:port, "
                              "ray://host:port or auto.")
    return host, number


def check_address(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast, with one sentence, unless a Ray head answers at `address`.

    `ray.init` on an address where no Ray answers retries for minutes (and hangs on a port that accepts
    connections but is not Ray). This makes one small gRPC call to the head instead (the GCS's
    GetClusterId, or a Ray Client server's ClusterInfo), spoken over a plain socket so that it needs no
    gRPC package, and takes at most `timeout` seconds.
    """
    target = _host_port(address)
    if target is None:  # "auto": $RAY_ADDRESS, or the cluster `ray start` made on this machine
        try:
            from ray._private.services import canonicalize_bootstrap_address

            found = canonicalize_bootstrap_address("auto")
        except Exception:  # noqa: BLE001 - Ray's own lookup (a private function) will say it at init
            found = None
        if not found:
            return  # ray.init says at once that there is no cluster to find
        target, address = _host_port(found), f"{found} (found by auto)"
    host, port = target
    unreachable = (f"The Ray cluster at {address} cannot be reached ({{}}); start it (`ray start --head`) "
                   "or check the address.")
    method = ("/ray.rpc.RayletDriver/ClusterInfo" if address.startswith("ray://")
              else "/ray.rpc.NodeInfoGcsService/GetClusterId")
    try:
        answer = _grpc_probe(host, port, method, timeout)
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc)).lower()
        raise DistributedBuildError(unreachable.format(why)) from None
    if answer == "ray-token" and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        raise _token_error(address)  # Ray would retry for a minute before saying so
    if answer == "silent":
        raise DistributedBuildError(unreachable.format(f"nothing there answered within {timeout:.0f} s"))
    if answer not in ("ray", "ray-token"):
        raise DistributedBuildError(f"Something answers at {address}, but not a Ray cluster; give the head node's "
                              "address (host:6379, or ray://host:10001 for Ray Client).")


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def _hpack_literal(name: str, value: str) -> bytes:
    """A header as an HPACK literal without indexing (new name, no Huffman coding); short strings only."""
    n, v = name.encode(), value.encode()
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def _grpc_probe(host: str, port: int, method: str, timeout: float) -> str:
    """Make one unary gRPC call with an empty request by hand: "ray" when a gRPC reply came back (a message,
    or a status other than UNIMPLEMENTED), "ray-token" when it asks for a token (UNAUTHENTICATED), "silent"
    when nothing answered, "other" for anything else (not HTTP/2, an unknown method, no reply).
    Raises OSError when no TCP connection can be made."""
    deadline = time.monotonic() + timeout
    headers = b"".join(_hpack_literal(k, v) for k, v in (
        (":method", "POST"), (":scheme", "http"), (":path", method), (":authority", f"{host}:{port}"),
        ("content-type", "application/grpc"), ("te", "trailers")))
    hello = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0)  # preface, empty SETTINGS
             + _frame(1, 0x4, 1, headers)  # HEADERS, END_HEADERS, stream 1
             + _frame(0, 0x1, 1, b"\x00\x00\x00\x00\x00"))  # DATA: an empty message, END_STREAM
    with socket.create_connection((host, port), timeout=timeout) as sock:
        buf, data, heard = b"", b"", False
        try:
            sock.sendall(hello)
            while time.monotonic() < deadline:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                heard, buf = True, buf + chunk
                while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                    size, kind, flags = int.from_bytes(buf[:3], "big"), buf[3], buf[4]
                    stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                    payload, buf = buf[9:9 + size], buf[9 + size:]
                    if kind == 4 and not flags & 0x1:  # SETTINGS: acknowledge
                        sock.sendall(_frame(4, 0x1, 0))
                    elif kind == 6 and not flags & 0x1:  # PING: answer
                        sock.sendall(_frame(6, 0x1, 0, payload))
                    elif kind == 0 and stream == 1:  # DATA of our call
                        if flags & 0x8 and payload:  # PADDED
                            payload = payload[1:len(payload) - payload[0]]
                        data += payload
                        if len(data) >= 5 and data[0] in (0, 1) and int.from_bytes(data[1:5], "big") == len(data) - 5:
                            return "ray"  # one whole gRPC message came back
                    elif kind == 1 and stream == 1 and b"grpc-status" in payload:
                        # A gRPC server ended the call with a status (a head asking for its auth token,
                        # say): Ray, unless the method is unknown there (12, UNIMPLEMENTED).
                        if b"grpc-status\x0212" in payload:
                            return "other"
                        return "ray-token" if b"grpc-status\x0216" in payload else "ray"  # 16: UNAUTHENTICATED
                    elif kind in (3, 7) or (kind == 1 and stream == 1 and flags & 0x1):
                        return "other"  # RST_STREAM, GOAWAY, or the call ended without a reply message
        except TimeoutError:
            pass
        except OSError:
            return "other" if heard else "silent"
    return "other" if heard else "silent"


def _connect(ray, address: str | None, workers: int | None) -> bool:
    """Connect to (or start) Ray; True when this call did, so it has to shut it down."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reporting home (a build may run offline)
    kwargs = dict(logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False,
                  configure_logging=True)
    try:
        if address is None:
            ray.init(address=LOCAL, num_cpus=workers, **kwargs)
        else:
            if address.startswith("ray://"):
                kwargs.pop("include_dashboard")
            ray.init(address=address, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; one sentence for all
        _shutdown(ray)
        if _disk_full(exc):
            raise DistributedBuildError("Ray could not start because the disk is full; free some space "
                                  "(Ray writes its session files to /tmp/ray) and build again.") from None
        causes = _causes(exc)
        if address is not None and any(type(e).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(e)
                                       for e in causes):
            raise _token_error(address) from None
        if address is None:
            raise DistributedBuildError(f"A local Ray could not be started: {_first_line(causes[-1])}.") from None
        raise DistributedBuildError(f"Could not connect to the Ray cluster at {address}: "
                              f"{_first_line(causes[-1])}.") from None
    return True


def _token_error(address: str) -> DistributedBuildError:
    return DistributedBuildError(f"The Ray cluster at {address} asks for its authentication token; set RAY_AUTH_MODE=token "
                           "and give the cluster's token in RAY_AUTH_TOKEN (or ~/.ray/auth_token).")


def _shutdown(ray) -> None:
    try:
        ray.shutdown()
    except Exception:  # noqa: BLE001 - nothing more to do about a Ray that will not stop
        pass


def _run(releases: list[Release], address: str | None, workers: int | None, batch_size: int,
         retries: int) -> Iterator[list[Processed]]:
    ray = _import_ray()
    from ray.data import DataContext

    started = _connect(ray, address, workers)
    ctx = DataContext.get_current()
    settings = {
        "enable_progress_bars": False,  # the build reports progress itself
        "print_on_execution_start": False,
        "enable_auto_log_stats": False,
        "wait_for_min_actors_s": ACTORS_TIMEOUT,  # not forever, on a cluster without free CPUs
        "raise_original_map_exception": True,  # a worker's own error, not "UDF failed to process a data block"
    }
    saved = {k: getattr(ctx, k) for k in settings if hasattr(ctx, k)}  # (settings older Rays lack are skipped)
    console = _quiet_console()
    try:
        for k in saved:
            setattr(ctx, k, settings[k])
        cpus = int(ray.cluster_resources().get("CPU", 1))
        pool = max(1, min(workers or cpus, cpus))
        # Batches small enough that every worker gets one, and as many blocks as batches.
        per = max(1, min(batch_size, -(-len(releases) // pool)))
        blocks = -(-len(releases) // per)
        pool = min(pool, blocks)
        rows = [dict(r.to_dict(), pos=i) for i, r in enumerate(releases)]
        ds = _map(ray.data.from_items(rows, override_num_blocks=blocks), per, pool, retries)
        # Results come back in whatever order the workers finish; hand them on in corpus order.
        waiting: dict[int, Processed] = {}
        next_pos = 0
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for row in range(len(batch["pos"])):
                pos = int(batch["pos"][row])
                waiting[pos] = _decode(releases[pos], batch, row)
            ready = []
            while next_pos in waiting:
                ready.append(waiting.pop(next_pos))
                next_pos += 1
            if ready:
                yield ready
        if next_pos != len(releases):
            raise DistributedBuildError(f"Ray returned {next_pos} of {len(releases)} releases; build again.")
    except (IndexStoreError, CorpusError):
        raise
    except Exception as exc:  # noqa: BLE001 - translated into one sentence
        raise _explain(exc, address, retries) from None
    finally:
        for k, v in saved.items():
            setattr(ctx, k, v)
        for handler, level in console:
            handler.setLevel(level)
        if started:
            _shutdown(ray)


def _quiet_console() -> list[tuple[logging.Handler, int]]:
    """Silence Ray Data's console log (its tracebacks; the build explains errors in one sentence), keeping
    its log file (ray-data.log in the Ray session's logs); returns what to restore."""
    saved = []
    for handler in logging.getLogger("ray.data").handlers:
        if "File" not in type(handler).__name__:
            saved.append((handler, handler.level))
            handler.setLevel(logging.CRITICAL + 1)
    return saved


def _map(ds, batch_size: int, pool: int, retries: int):
    """`pipeline.process` over the dataset on `pool` actors, each batch retried `retries` times."""
    import warnings

    kwargs = dict(batch_size=batch_size, batch_format="numpy", concurrency=pool, num_cpus=1,
                  fn_constructor_kwargs={"crash_flag": os.environ.get(CRASH_ENV) or None})
    # Ray Data's default is to restart a dead actor and retry its batch forever, which a batch that
    # always kills its worker would turn into a hang. Ray 2.60 takes these limits only through the
    # deprecated `**ray_remote_args` (to be removed in 2.64), hence the fallback to Ray's default.
    limits = dict(max_restarts=retries, max_task_retries=retries)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        try:
            return ds.map_batches(_Worker, **kwargs, **limits)
        except TypeError:
            return ds.map_batches(_Worker, **kwargs)


def _explain(exc: BaseException, address: str | None, retries: int) -> Exception:
    """One sentence for an error raised while Ray was processing releases."""
    from ray import exceptions as rx

    where = "the local Ray" if address is None else f"the Ray cluster at {address}"
    seen = _causes(exc)
    for e in seen:
        if isinstance(e, (IndexStoreError, CorpusError)):
            return e
        if _disk_full(e):
            return DistributedBuildError("The disk filled up while Ray was processing releases; free some space "
                                   "and build again (the index was left as it was).")
    died = (rx.RayActorError, rx.WorkerCrashedError, rx.NodeDiedError, rx.LocalRayletDiedError,
            rx.ObjectLostError, rx.OutOfMemoryError)
    if any(isinstance(e, died) for e in seen):
        again = f"and again on each of {retries} retries" if retries else "(no retries were allowed)"
        return DistributedBuildError(f"A worker of {where} died while processing releases {again}, so the build "
                               f"was stopped and the index left as it was (Ray's logs: "
                               f"/tmp/ray/session_latest/logs on {'this machine' if address is None else 'its nodes'}).")
    if any(isinstance(e, (rx.GetTimeoutError, TimeoutError)) for e in seen):
        return DistributedBuildError(f"{where[0].upper()}{where[1:]} did not start its workers in time (too few free "
                               f"CPUs?); the index was left as it was.")
    return DistributedBuildError(f"Processing releases on {where} failed ({_worker_error(seen)}); "
                           "the index was left as it was.")


def _worker_error(seen: list[BaseException]) -> str:
    """"Kind: message" of the error a worker raised, found in Ray's wrappers or in the traceback they carry."""
    from ray import exceptions as rx

    user = next((e for e in seen[1:] if not isinstance(e, rx.RayError)), None)
    if user is not None:
        return f"{type(user).__name__}: {_first_line(user)}"
    for e in seen:
        for line in _ANSI.sub("", str(e)).splitlines():
            m = re.match(r"^([A-Za-z_][\w.]*(?:Error|Exception)\w*): (.+)$", line.strip())
            if m and not m[1].startswith("ray."):
                return f"{m[1].rsplit('.', 1)[-1]}: {m[2].rstrip('.')}"
    return _first_line(seen[0])


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it, outermost first (Ray wraps its errors several times)."""
    seen: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and all(e is not s for s in seen):
        seen.append(e)
        e = getattr(e, "cause", None) or e.__cause__ or e.__context__
    return seen


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    name = type(exc).__name__
    return name in ("OutOfDiskError",) or "No space left on device" in str(exc)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes in the tracebacks Ray carries


def _first_line(exc: BaseException) -> str:
    """The gist of an exception's message: its first line, or the last error line of a traceback in it."""
    lines = [ln.strip() for ln in _ANSI.sub("", str(exc)).splitlines() if ln.strip()]
    if any(ln.startswith("Traceback") for ln in lines):
        errors = [m[1] for ln in lines if (m := re.match(r"^[\w.]*(?:Error|Exception)\w*: (.+)$", ln))]
        lines = errors[-1:] or lines
    text = next((ln for ln in lines if not ln.startswith(("Traceback", "File ", "ray::"))), "")
    text = text or type(exc).__name__
    return text[:300].rstrip(".: ")


# ---------------------------------------------------------------------------------------------- wire format

_RELEASE_FIELDS = [f.name for f in fields(Release)]


def _encode(batch: list[Processed], pos) -> dict[str, list]:
    """Processed releases as plain columns: JSON for sentences and chunks, .npy bytes for the vectors."""
    meta, vectors = [], []
    for p in batch:
        meta.append(json.dumps({"release_id": p.release.release_id, "annotation": p.annotation.to_dict(),
                                "chunks": [c.to_dict() for c in p.chunks]}))
        buf = io.BytesIO()
        np.save(buf, p.vectors, allow_pickle=False)
        vectors.append(buf.getvalue())
    return {"pos": np.asarray(pos, dtype=np.int64), "meta": meta, "vectors": vectors}


def _decode(release: Release, batch: dict, row: int) -> Processed:
    """The driver's Processed for `release` from one row of a worker's output."""
    meta = json.loads(str(batch["meta"][row]))
    if meta["release_id"] != release.release_id:
        raise DistributedBuildError("Ray returned a release out of place; build again.")
    vectors = np.load(io.BytesIO(bytes(batch["vectors"][row])), allow_pickle=False)
    return Processed(release=release, annotation=Annotation.from_dict(meta["annotation"]),
                     chunks=[Chunk(**c) for c in meta["chunks"]], vectors=vectors)


def _release(batch: dict, row: int) -> Release:
    def value(name):
        v = batch[name][row]
        return None if v is None else str(v)

    return Release(**{name: value(name) for name in _RELEASE_FIELDS})


# ---------------------------------------------------------------------------------------------- worker


class _Worker:
    """A Ray actor running `pipeline.process`; the models are loaded once, when it starts."""

    def __init__(self, crash_flag: str | None = None):
        import torch

        torch.set_num_threads(1)  # one CPU per actor: as many actors as CPUs, not threads fighting
        from . import annotate, embedder

        embedder.load_model()  # offline, from the bundled package (it sets HF_HUB_OFFLINE and friends)
        annotate.load_nlp()
        self.crash_flag = crash_flag

    def __call__(self, batch: dict) -> dict:
        from . import pipeline

        if self.crash_flag:
            self._crash_test()
        releases = [_release(batch, i) for i in range(len(batch["pos"]))]
        return _encode(pipeline.process(releases), batch["pos"])

    def _crash_test(self) -> None:
        """Die as a killed worker would, when the test's file is there: once (the file is taken), or
        every time when the file says "always"."""
        try:
            with open(self.crash_flag) as f:
                always = f.read().strip() == "always"
            if not always:
                os.remove(self.crash_flag)  # only one worker wins the file
        except OSError:
            return
        os._exit(1)
