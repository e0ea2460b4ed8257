"""`POST /api/ask`: the chat's answer as plain JSON on the app's own server, for `curl` and any HTTP client.

JSON `{question, history, since, until, source}` in (only `question` required), the dict `/ask`
returns out. Bad input is HTTP 400 (413 for an over-large body) with `{"error": "one sentence"}`;
past the question gate 503 with the busy sentence, at once; an index or reader that cannot be used
503. Behind `--auth` the same users sign in with HTTP Basic (`curl -u user:password`), else 401.
Asking changes nothing, so a read-only server answers it too.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from .api import Asker, Busy, Refusal

#: The route's path on the app's server.
PATH = "/api/ask"

#: The largest request body read, in bytes (a question is at most qa's 1,000 characters; the history adds some).
MAX_BODY_BYTES = 256 * 1024

FIELDS = ("question", "history", "since", "until", "source")


def _error(status: int, sentence: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": sentence}, status_code=status, headers=headers)


def parse_request(body: bytes) -> dict[str, Any]:
    """The fields of an `/api/ask` request body, by name; Refusal (400) with one sentence when it is not
    a JSON object with a text `question`, or names a field that is not one of FIELDS."""
    example = 'send an object like {"question": "Who will succeed Jens Stoltenberg?"}'
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Refusal(f"The request body is not JSON; {example}.") from None
    if not isinstance(data, dict):
        raise Refusal(f"The request body must be a JSON object; {example}.")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise Refusal(f"The request has the unknown field {unknown[0]!r}; the fields are question, history, "
                      "since, until and source.")
    if not isinstance(data.get("question"), str):
        raise Refusal(f"The request has no question as text; {example}.")
    for name in ("since", "until"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise Refusal(f"The {name} date must be text, like \"2024-06-26\" or \"26 June\".")
    return data


async def _read_body(request: Request) -> bytes | None:
    """The request body, or None once it grows past MAX_BODY_BYTES (the rest is never read into memory)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _signed_in(request: Request, users: Callable[[str, str], bool] | None) -> bool:
    """Whether the request may ask: always without --auth, else with HTTP Basic credentials of one of `users`."""
    if users is None:
        return True
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return bool(sep) and users(user, password)


def add_json_api(app: Any, asker: Asker, users: Callable[[str, str], bool] | None = None) -> None:
    """Serve `POST /api/ask` on `app` (the FastAPI app Gradio runs), answering with `asker`;
    `users` is the `--auth` check (None: no login)."""

    async def api_ask(request: Request) -> JSONResponse:
        if not _signed_in(request, users):
            return _error(401, "Sign in first: send the user name and password the server was started with "
                               "(curl -u USER:PASSWORD).", {"WWW-Authenticate": 'Basic realm="press-qa"'})
        body = await _read_body(request)
        if body is None:
            return _error(413, f"The request is larger than {MAX_BODY_BYTES:,} bytes; send one question "
                               "with a shorter history.")
        try:
            fields = parse_request(body)
            return JSONResponse(await run_in_threadpool(asker, **fields))
        except Refusal as exc:
            return _error(exc.status, exc.message)
        except Busy as exc:
            return _error(503, exc.message, {"Retry-After": "5"})

    app.add_api_route(PATH, api_ask, methods=["POST"], include_in_schema=False)
