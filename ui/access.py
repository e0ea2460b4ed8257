"""Who may change the corpus, and who may use the app at all; kept free of gradio.

Asking questions is what a served app shares; uploading releases and rebuilding the index
(the "admin actions") change what the assistant knows for everyone, so:

- served on localhost (127.0.0.1, ::1, localhost) with no admin password, everyone who
  reaches the page is the machine's own user and may do everything, as before;
- with an admin password (`--admin-password` or $QA_ADMIN_PASSWORD), only a session that
  signed in with it may (`AccessPolicy.sign_in`, remembered on the server by Gradio's
  session hash, never by anything the page sends back as state);
- served on any other address with no password, or with `--read-only`, nobody may.

Whole-app login (`--auth USER:PASSWORD`, `--auth-file FILE`) is Gradio's own: `Users` is the
callable given to `launch(auth=...)`. Every comparison of a secret uses hmac.compare_digest.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

#: Environment variable holding the admin password (the flag wins when both are given).
ADMIN_PASSWORD_ENV = "QA_ADMIN_PASSWORD"

#: How long an admin sign-in lasts without a page closing it (seconds).
ADMIN_SESSION_TTL_S = 12 * 3600.0

#: Seconds a wrong admin password waits before the answer (sign-ins are handled one at a
#: time, so this also bounds guessing to a couple of tries a second).
WRONG_PASSWORD_DELAY_S = 0.5

OPEN, PASSWORD, READ_ONLY = "open", "password", "read-only"


class AuthError(ValueError):
    """A malformed --auth value or auth file; the message is one sentence saying what to fix."""


def is_local_host(host: str | None) -> bool:
    """True when `host` only listens on this machine: localhost or a loopback address
    (127.0.0.1, ::1, [::1]). A wildcard ("", 0.0.0.0, ::) or any other address is not."""
    name = (host or "").strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def same_secret(given: Any, expected: str | None) -> bool:
    """Constant-time comparison of a secret typed by a user with the expected one."""
    if expected is None or not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _session_of(request: Any) -> str | None:
    if request is None:
        return None
    if isinstance(request, str):
        return request or None
    return getattr(request, "session_hash", None) or None


@dataclass
class AccessPolicy:
    """What this server lets its users do; `mode` is "open" (everyone may change the corpus:
    localhost with no password), "password" (only sessions signed in with `admin_password`)
    or "read-only" (nobody). Signed-in sessions are kept here, on the server."""

    local: bool = True
    admin_password: str | None = None
    read_only: bool = False
    host: str = "127.0.0.1"
    session_ttl_s: float = ADMIN_SESSION_TTL_S
    _sessions: dict[str, float] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @classmethod
    def from_options(cls, host: str | None = "127.0.0.1", admin_password: str | None = None,
                     read_only: bool = False, env: Mapping[str, str] | None = None) -> "AccessPolicy":
        """The policy for a server on `host`: the password from the flag, else from
        $QA_ADMIN_PASSWORD in `env` (default os.environ); an empty password counts as none."""
        env = os.environ if env is None else env
        password = admin_password if admin_password is not None else env.get(ADMIN_PASSWORD_ENV)
        return cls(local=is_local_host(host), admin_password=password or None, read_only=bool(read_only),
                   host=host if host is not None else "")

    # ---- the decision ---------------------------------------------------------------------

    @property
    def mode(self) -> str:
        if self.read_only:
            return READ_ONLY
        if self.admin_password:
            return PASSWORD
        return OPEN if self.local else READ_ONLY

    @property
    def admin_enabled(self) -> bool:
        """Whether anyone at all may upload and rebuild on this server."""
        return self.mode != READ_ONLY

    @property
    def everyone_admin(self) -> bool:
        return self.mode == OPEN

    @property
    def needs_sign_in(self) -> bool:
        return self.mode == PASSWORD

    def is_admin(self, request: Any) -> bool:
        """Whether the caller (a gr.Request, or its session hash) may upload and rebuild."""
        mode = self.mode
        if mode == OPEN:
            return True
        if mode != PASSWORD:
            return False
        session = _session_of(request)
        if session is None:
            return False
        with self._lock:
            at = self._sessions.get(session)
            if at is None:
                return False
            if time.monotonic() - at > self.session_ttl_s:
                del self._sessions[session]
                return False
        return True

    def check_password(self, given: Any) -> bool:
        return self.mode == PASSWORD and same_secret(given, self.admin_password)

    def sign_in(self, request: Any, password: Any) -> bool:
        """Mark the caller's session as admin when `password` is the admin password."""
        session = _session_of(request)
        if session is None or not self.check_password(password):
            return False
        with self._lock:
            self._sessions[session] = time.monotonic()
        return True

    def sign_out(self, request: Any) -> None:
        session = _session_of(request)
        if session is not None:
            with self._lock:
                self._sessions.pop(session, None)

    # ---- what to say ----------------------------------------------------------------------

    def refusal(self) -> str:
        """The one sentence a caller who may not change the corpus gets instead."""
        if self.mode == PASSWORD:
            return ("Only an admin can upload releases or rebuild the index; "
                    "sign in with the admin password on the Index tab first.")
        if self.read_only:
            return "This server is read-only: uploading releases and rebuilding the index are turned off."
        return ("This server is read-only: uploading releases and rebuilding the index are turned off "
                "because it is served beyond this machine without an admin password.")

    def startup_notice(self) -> str | None:
        """The line `python -m ui` prints when it serves read-only only because the host is
        not local and no admin password is set; None otherwise."""
        if self.read_only or self.admin_password or self.local:
            return None
        shown = self.host or "all interfaces"
        return (f"Read-only: served on {shown} with no admin password, so uploads and rebuilds are off; "
                f"start with --admin-password PASSWORD (or set {ADMIN_PASSWORD_ENV}) to enable them for admins.")


# --------------------------------------------------------------------------- whole-app login


def parse_auth(value: str) -> tuple[str, str]:
    """`USER:PASSWORD` (the password may itself hold colons) -> (user, password)."""
    user, sep, password = (value or "").partition(":")
    user = user.strip()
    if not sep or not user or not password:
        raise AuthError(f"--auth {value!r} is not USER:PASSWORD; give a user name and a password "
                        "separated by a colon, e.g. --auth alice:s3cret.")
    return user, password


def read_auth_file(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The users of an auth file: one `user:password` a line; blank lines and lines starting
    with # are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise AuthError(f"The auth file {path} cannot be read ({why}).") from None
    users = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user.strip() or not password:
            raise AuthError(f"Line {n} of the auth file {path} is not user:password; "
                            "write one user a line, e.g. alice:s3cret.")
        users.append((user.strip(), password))
    if not users:
        raise AuthError(f"The auth file {path} lists no users; write one user:password a line.")
    return users


def auth_users(auth: Iterable[str] | None = None, auth_file: str | os.PathLike | None = None) -> "Users | None":
    """The users given by `--auth` values and an `--auth-file`, or None when there are none."""
    users = [parse_auth(a) for a in (auth or [])]
    if auth_file:
        users += read_auth_file(auth_file)
    return Users(users) if users else None


class Users:
    """The callable given to Gradio's `launch(auth=...)`: True for a known user name with its
    password (compared in constant time)."""

    def __init__(self, users: Iterable[tuple[str, str]]):
        self._passwords: dict[str, str] = {}
        for user, password in users:
            self._passwords[user] = password  # a later line for the same user wins

    @property
    def names(self) -> list[str]:
        return list(self._passwords)

    def __len__(self) -> int:
        return len(self._passwords)

    def __call__(self, username: str, password: str) -> bool:
        expected = self._passwords.get(username)
        # compare against something even for an unknown user, so timing does not tell names apart
        ok = same_secret(password, expected if expected is not None else "\x00unknown-user")
        return ok and expected is not None
