"""Serving the app to a team: who may change the corpus (ui.access), whole-app login, and
the bounded question queue (ui.gate).

The policy and the gate are tested as plain functions; the rest against real servers
through gradio_client: two `python -m ui` processes on the real index (read-only because
served on 0.0.0.0 with no password; admin password + --auth), and one in-process app on a
stand-in assistant whose answers take a while (the busy message).
"""
from __future__ import annotations

import concurrent.futures as cf
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest_ui import ROOT, Server, free_port, ui_corpus, ui_index  # noqa: F401
from ui.access import (
    ADMIN_PASSWORD_ENV,
    AccessPolicy,
    AuthError,
    Users,
    auth_users,
    is_local_host,
    parse_auth,
    read_auth_file,
)
from ui.gate import BUSY_MESSAGE, Gate

Q = "Who will succeed Jens Stoltenberg as Secretary General?"
ADMIN_PASSWORD = "correct horse battery"
NEW_RELEASE = (
    "Port of Kelby opens a new ferry terminal\n\nSource: Port of Kelby\n\n"
    "Kelby, 9 September 2024. The Port of Kelby opened its new ferry terminal today. "
    "The terminal was designed by the architect Ingrid Falk and can handle 3,000 passengers a day.\n"
)
#: refused before the release is indexed (the reader answers the number question from another release's figure)
NEW_QUESTION = "Who designed the Kelby ferry terminal?"
PASSENGERS_QUESTION = "How many passengers can the Kelby ferry terminal handle?"


# --------------------------------------------------------------------------- the policy


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_local_hosts(host):
    assert is_local_host(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "", None, "::", "192.168.1.20", "10.0.0.1", "example.com"])
def test_other_hosts_are_not_local(host):
    assert not is_local_host(host)


def test_localhost_without_password_is_open_to_everyone():
    p = AccessPolicy.from_options("127.0.0.1", env={})
    assert p.mode == "open" and p.everyone_admin and p.admin_enabled and not p.needs_sign_in
    assert p.is_admin(None) and p.is_admin("any-session")
    assert p.startup_notice() is None


def test_other_host_without_password_is_read_only_and_says_how_to_enable():
    p = AccessPolicy.from_options("0.0.0.0", env={})
    assert p.mode == "read-only" and not p.admin_enabled
    assert not p.is_admin("s1")
    assert not p.sign_in("s1", "") and not p.sign_in("s1", "anything")
    notice = p.startup_notice()
    assert notice and "\n" not in notice and "--admin-password" in notice and ADMIN_PASSWORD_ENV in notice
    assert "read-only" in p.refusal()


def test_empty_password_counts_as_none():
    assert AccessPolicy.from_options("0.0.0.0", admin_password="", env={}).mode == "read-only"
    assert AccessPolicy.from_options("0.0.0.0", env={ADMIN_PASSWORD_ENV: ""}).mode == "read-only"


def test_password_from_env_or_flag_and_the_flag_wins():
    p = AccessPolicy.from_options("0.0.0.0", env={ADMIN_PASSWORD_ENV: "from-env"})
    assert p.mode == "password" and p.check_password("from-env") and p.startup_notice() is None
    p = AccessPolicy.from_options("0.0.0.0", admin_password="from-flag", env={ADMIN_PASSWORD_ENV: "from-env"})
    assert p.check_password("from-flag") and not p.check_password("from-env")


def test_password_on_localhost_also_needs_sign_in():
    p = AccessPolicy.from_options("127.0.0.1", admin_password="pw", env={})
    assert p.mode == "password" and p.needs_sign_in and not p.everyone_admin
    assert not p.is_admin("s1")


@pytest.mark.parametrize("password", [None, "pw"])
def test_read_only_flag_wins_even_on_localhost(password):
    p = AccessPolicy.from_options("localhost", admin_password=password, read_only=True, env={})
    assert p.mode == "read-only" and not p.is_admin("s1") and not p.sign_in("s1", "pw")
    assert p.startup_notice() is None
    assert p.refusal() == "This server is read-only: uploading releases and rebuilding the index are turned off."


def test_sign_in_marks_only_that_session():
    p = AccessPolicy.from_options("0.0.0.0", admin_password="s3cret", env={})
    assert not p.sign_in("s1", "wrong") and not p.is_admin("s1")
    assert not p.sign_in("s1", "S3CRET") and not p.sign_in("s1", None) and not p.sign_in("s1", ["s3cret"])
    assert not p.sign_in(None, "s3cret"), "a caller with no session cannot sign in"
    assert p.sign_in("s1", "s3cret") and p.is_admin("s1")
    assert not p.is_admin("s2") and not p.is_admin(None)

    class Req:  # what gr.Request offers
        session_hash = "s1"

    assert p.is_admin(Req())
    p.sign_out("s1")
    assert not p.is_admin("s1")


def test_a_sign_in_expires():
    p = AccessPolicy(local=False, admin_password="pw", session_ttl_s=-1.0)
    assert p.sign_in("s1", "pw")
    assert not p.is_admin("s1")


def test_refusals_are_one_sentence():
    for p in (AccessPolicy.from_options("0.0.0.0", env={}),
              AccessPolicy.from_options("0.0.0.0", admin_password="pw", env={}),
              AccessPolicy.from_options("127.0.0.1", read_only=True, env={})):
        text = p.refusal()
        assert text.endswith(".") and text.count(". ") == 0 and "\n" not in text


# --------------------------------------------------------------------------- --auth parsing


def test_parse_auth():
    assert parse_auth("alice:s3cret") == ("alice", "s3cret")
    assert parse_auth("alice:a:b:c") == ("alice", "a:b:c")


@pytest.mark.parametrize("value", ["alice", "alice:", ":s3cret", "  :x", ""])
def test_parse_auth_refuses_malformed_values(value):
    with pytest.raises(AuthError) as err:
        parse_auth(value)
    assert "USER:PASSWORD" in str(err.value) and "\n" not in str(err.value)


def test_read_auth_file(tmp_path):
    f = tmp_path / "users.txt"
    f.write_text("# team\nalice:wonderland\n\n  bob : b:c \n", encoding="utf-8")
    assert read_auth_file(f) == [("alice", "wonderland"), ("bob", " b:c")]


def test_read_auth_file_names_the_bad_line(tmp_path):
    f = tmp_path / "users.txt"
    f.write_text("alice:wonderland\n# comment\njust-a-name\n", encoding="utf-8")
    with pytest.raises(AuthError) as err:
        read_auth_file(f)
    assert str(err.value).startswith("Line 3 of the auth file") and "user:password" in str(err.value)


def test_read_auth_file_missing_or_empty(tmp_path):
    with pytest.raises(AuthError, match="cannot be read"):
        read_auth_file(tmp_path / "nowhere.txt")
    (tmp_path / "empty.txt").write_text("# nobody yet\n", encoding="utf-8")
    with pytest.raises(AuthError, match="lists no users"):
        read_auth_file(tmp_path / "empty.txt")


def test_users_check_names_and_passwords(tmp_path):
    f = tmp_path / "users.txt"
    f.write_text("carol:pw3\n", encoding="utf-8")
    users = auth_users(["alice:pw1", "bob:pw2"], f)
    assert isinstance(users, Users) and sorted(users.names) == ["alice", "bob", "carol"]
    assert users("alice", "pw1") and users("carol", "pw3")
    assert not users("alice", "pw2") and not users("dave", "pw1") and not users("alice", "")
    assert auth_users(None, None) is None and auth_users([], None) is None


# --------------------------------------------------------------------------- the gate


def test_gate_admits_then_queues_then_turns_away():
    gate = Gate(concurrency=1, queue_size=1, wait_s=10)
    holding, release = threading.Event(), threading.Event()
    results: dict[str, bool] = {}

    def hold():
        with gate.admit() as ok:
            results["first"] = ok
            holding.set()
            release.wait(10)

    def wait_in_line():
        with gate.admit() as ok:
            results["second"] = ok

    t1 = threading.Thread(target=hold)
    t1.start()
    assert holding.wait(5)
    t2 = threading.Thread(target=wait_in_line)
    t2.start()
    deadline = time.monotonic() + 5
    while gate.inside < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    with gate.admit() as third:
        assert third is False, "past the queue a caller is turned away at once"
    release.set()
    t1.join(5)
    t2.join(5)
    assert results == {"first": True, "second": True}
    assert gate.inside == 0
    with gate.admit() as ok:
        assert ok


def test_gate_wait_runs_out():
    gate = Gate(concurrency=1, queue_size=5, wait_s=0.05)
    with gate.admit() as first:
        assert first
        with gate.admit() as second:
            assert second is False
    assert gate.inside == 0


# --------------------------------------------------------------------------- servers


def corpus_snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def index_generation(index_dir: Path) -> str:
    return str((index_dir / "current").resolve())


def new_release_file(tmp_path: Path) -> str:
    f = tmp_path / "harbour.txt"
    f.write_text(NEW_RELEASE, encoding="utf-8")
    return str(f)


@pytest.fixture(scope="module")
def read_only_server(ui_index):
    """Served on 0.0.0.0 with no admin password: read-only by default."""
    server = Server(ui_index, extra=["--host", "0.0.0.0", "--no-warmup"], env={ADMIN_PASSWORD_ENV: ""}).start()
    yield server
    server.stop()


def test_read_only_server_says_so_at_start(read_only_server):
    lines = [line for line in read_only_server.output.splitlines() if line.startswith("Read-only:")]
    assert len(lines) == 1 and "--admin-password" in lines[0], read_only_server.output


def test_read_only_server_answers_but_refuses_changes(read_only_server, ui_corpus, ui_index, tmp_path):
    from gradio_client import Client, handle_file

    c = Client(read_only_server.url, verbose=False)
    assert c.predict(Q, api_name="/ask")["answer"] == "Mark Rutte"
    before, generation = corpus_snapshot(ui_corpus), index_generation(ui_index)
    sentence = AccessPolicy.from_options("0.0.0.0", env={}).refusal()

    _, log = c.predict(api_name="/rebuild")
    assert sentence in log
    _, report, _ = c.predict([handle_file(new_release_file(tmp_path))], api_name="/upload")
    assert sentence in report
    _, message, folders = c.predict("anything", api_name="/admin_login")
    assert sentence in message and folders == ""

    assert corpus_snapshot(ui_corpus) == before
    assert index_generation(ui_index) == generation
    assert not c.predict(NEW_QUESTION, api_name="/ask")["answered"]


def test_read_only_page_holds_no_folder_paths(read_only_server, ui_corpus, ui_index):
    config = httpx.get(read_only_server.url + "config", timeout=30).text
    assert str(ui_corpus) not in config and str(ui_index) not in config
    assert "read-only" in config  # the Index tab says why there is nothing to do there


@pytest.fixture(scope="module")
def admin_server(ui_index):
    """On localhost with an admin password and a whole-app login."""
    server = Server(ui_index, extra=["--no-warmup", "--admin-password", ADMIN_PASSWORD,
                                     "--auth", "alice:wonderland", "--auth", "bob:builder"]).start()
    yield server
    server.stop()


def test_login_is_required(admin_server):
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    with pytest.raises(AuthenticationError):
        Client(admin_server.url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(admin_server.url, verbose=False, auth=("alice", "builder"))
    r = httpx.post(admin_server.url + "gradio_api/call/ask", json={"data": [Q, None]}, timeout=30)
    assert r.status_code == 401
    assert "read-only" not in admin_server.output.lower(), "a password is set: no read-only notice"

    c = Client(admin_server.url, verbose=False, auth=("alice", "wonderland"))
    assert c.predict(Q, api_name="/ask")["answer"] == "Mark Rutte"


def test_admin_sign_in_enables_upload_and_rebuild(admin_server, ui_corpus, ui_index, tmp_path):
    from gradio_client import Client, handle_file

    admin = Client(admin_server.url, verbose=False, auth=("alice", "wonderland"))
    other = Client(admin_server.url, verbose=False, auth=("bob", "builder"))
    sentence = AccessPolicy.from_options("127.0.0.1", admin_password="x", env={}).refusal()
    before, generation = corpus_snapshot(ui_corpus), index_generation(ui_index)
    upload = [handle_file(new_release_file(tmp_path))]

    # not signed in: refused, nothing touched
    assert sentence in admin.predict(api_name="/rebuild")[1]
    assert sentence in admin.predict(upload, api_name="/upload")[1]
    # a wrong password changes nothing either
    _, message, folders = admin.predict("wrong password", api_name="/admin_login")
    assert "not the admin password" in message and folders == ""
    assert sentence in admin.predict(upload, api_name="/upload")[1]
    assert corpus_snapshot(ui_corpus) == before and index_generation(ui_index) == generation
    config = httpx.get(admin_server.url + "config", cookies=admin.cookies, timeout=30).text
    assert str(ui_corpus) not in config, "the folders are not in the page before sign-in"

    # the right password: this session may upload (which rebuilds) and sees the folders
    _, message, folders = admin.predict(ADMIN_PASSWORD, api_name="/admin_login")
    assert "Signed in as admin" in message and str(ui_corpus) in folders
    _, report, _ = admin.predict(upload, api_name="/upload")
    assert "harbour.txt" in report and sentence not in report, report
    assert (ui_corpus / "uploads" / "harbour.txt").read_text(encoding="utf-8") == NEW_RELEASE
    assert index_generation(ui_index) != generation
    r = admin.predict(NEW_QUESTION, api_name="/ask")
    assert r["answered"] and r["answer"] == "Ingrid Falk"
    _, log = admin.predict(api_name="/rebuild")
    assert sentence not in log and "qa-build-log" in log

    # another signed-in user is still not an admin, and signing out ends it
    assert sentence in other.predict(api_name="/rebuild")[1]
    admin.predict(api_name="/admin_logout")
    assert sentence in admin.predict(api_name="/rebuild")[1]


def test_uploads_land_in_the_ignored_uploads_folder_of_the_project_corpus(tmp_path):
    """On the project's own corpus/, an upload is saved in corpus/uploads/ (which git ignores: `git status`
    does not show it), indexed with the corpus and answered from; the test removes it afterwards."""
    from gradio_client import Client, handle_file

    corpus = ROOT / "corpus"
    uploads, name = corpus / "uploads", f"test-upload-{free_port()}.txt"
    text = NEW_RELEASE.replace("3,000 passengers", "4,321 passengers")
    (tmp_path / name).write_text(text, encoding="utf-8")
    had_uploads = uploads.exists()
    server = Server(tmp_path / "index", extra=["--corpus", str(corpus), "--no-warmup"]).start()
    try:
        c = Client(server.url, verbose=False)
        _, report, _ = c.predict([handle_file(str(tmp_path / name))], api_name="/upload")
        assert name in report, report
        assert (uploads / name).read_text(encoding="utf-8") == text and not (corpus / name).exists()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
        assert name not in status and "uploads" not in status, status
        r = c.predict(PASSENGERS_QUESTION, api_name="/ask")
        assert r["answered"] and r["answer"] == "4,321"
    finally:
        server.stop()
        (uploads / name).unlink(missing_ok=True)
        if not had_uploads and uploads.exists() and not any(uploads.iterdir()):
            uploads.rmdir()


def test_malformed_auth_file_stops_the_start_with_one_sentence(tmp_path, ui_index):
    bad = tmp_path / "users.txt"
    bad.write_text("alice:wonderland\nbob\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "ui", "--port", str(free_port()), "--index", str(ui_index),
         "--auth-file", str(bad)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert (f"Cannot start: Line 2 of the auth file {bad} is not user:password; "
            "write one user a line, e.g. alice:s3cret.") in proc.stderr.splitlines()


# --------------------------------------------------------------------------- busy, not broken


class SlowAssistant:
    """Stands in for qa.Assistant: every answer takes `delay` seconds."""

    def __init__(self, delay: float):
        self.delay = delay

    def ask(self, question, history=None, **filters):
        time.sleep(self.delay)
        return {"question": question, "text": "an answer", "answered": True, "score": 0.9, "sources": []}

    def status(self):
        return {"releases": 1, "chunks": 1}

    def release(self, release_id, generation=None):
        raise KeyError(release_id)


@pytest.fixture(scope="module")
def slow_app(tmp_path_factory):
    from ui.app import build_app, launch

    folder = tmp_path_factory.mktemp("slow")
    demo = build_app(SlowAssistant(2.0), examples=[], corpus_dir=folder / "corpus", index_dir=folder / "index",
                     ask_concurrency=1, ask_queue_size=1)
    url = launch(demo, port=free_port())
    yield demo, url
    demo.close()


def test_past_the_queue_a_question_hears_busy(slow_app):
    """One question answered at a time and one waiting: of four asked at once, two are
    answered and two are told at once to try again, and the app still answers afterwards."""
    from gradio_client import Client

    _, url = slow_app
    clients = [Client(url, verbose=False) for _ in range(4)]
    with cf.ThreadPoolExecutor(4) as pool:
        timed = list(pool.map(lambda c: (time.perf_counter(), c.predict("q?", api_name="/ask"), time.perf_counter()),
                              clients))
    answered = [r for _, r, _ in timed if r["answered"]]
    busy = [(t1 - t0, r) for t0, r, t1 in timed if not r["answered"]]
    assert len(answered) == 2 and len(busy) == 2, [r["message"] for _, r, _ in timed]
    for seconds, r in busy:
        assert r["message"] == BUSY_MESSAGE and "try again in a moment" in r["message"]
        assert seconds < 1.9, "turned away at once, not after waiting"
    assert clients[0].predict("again?", api_name="/ask")["answered"]


def test_gradio_queue_is_bounded_too(slow_app):
    from ui.app import QUEUE_MAX_SIZE

    demo, _ = slow_app
    assert demo._queue.max_size == QUEUE_MAX_SIZE > 0


# --------------------------------------------------------------------------- the page


@pytest.fixture(scope="module")
def browser():
    import os

    from ui.screenshot import CHROMIUM, launch_browser

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_browser(p)
        yield b
        b.close()


def _open_index_tab(browser, url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.locator("#question textarea").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Index").click()
    return context, page


@pytest.mark.parametrize("mode", ["open", "password", "read-only"])
def test_page_shows_admin_controls_only_to_admins(browser, tmp_path, mode):
    """On localhost with no password the controls and folders show at once; with a password
    only after signing in on the Index tab; read-only never (it says why instead)."""
    from ui.app import build_app, launch

    corpus = tmp_path / "the-corpus-folder"
    policy = {"open": AccessPolicy.from_options("127.0.0.1", env={}),
              "password": AccessPolicy.from_options("0.0.0.0", admin_password="pw", env={}),
              "read-only": AccessPolicy.from_options("0.0.0.0", env={})}[mode]
    demo = build_app(SlowAssistant(0.0), examples=[], corpus_dir=corpus, index_dir=tmp_path / "idx", policy=policy)
    url = launch(demo, port=free_port())
    context, page = _open_index_tab(browser, url)
    try:
        rebuild, folders = page.locator("#rebuild"), page.locator("#folders")
        if mode == "open":
            rebuild.wait_for(state="visible", timeout=10_000)
            assert str(corpus) in folders.inner_text()
            assert "MB each" in page.locator("#upload").inner_text()
            assert page.locator("#admin-password").count() == 0 or not page.locator("#admin-password").is_visible()
            return
        if mode == "read-only":
            page.locator("#read-only-note").wait_for(state="visible", timeout=10_000)
            assert "read-only" in page.locator("#read-only-note").inner_text()
            assert not rebuild.is_visible() and page.locator("#admin-password input").count() == 0
            assert str(corpus) not in page.content()
            return
        box = page.locator("#admin-password input")
        box.wait_for(state="visible", timeout=10_000)
        assert not rebuild.is_visible() and str(corpus) not in page.content()
        box.fill("not it")
        page.locator("#admin-signin-btn").click()
        page.locator("#admin-message").filter(has_text="not the admin password").wait_for(timeout=10_000)
        assert not rebuild.is_visible()
        box.fill("pw")
        page.locator("#admin-signin-btn").click()
        rebuild.wait_for(state="visible", timeout=10_000)
        assert str(corpus) in folders.inner_text()
        assert not box.is_visible()
        page.locator("#admin-signout").click()
        page.locator("#admin-password input").wait_for(state="visible", timeout=10_000)
        assert not rebuild.is_visible()
    finally:
        context.close()
        demo.close()


def test_page_says_busy_and_keeps_the_question(browser, tmp_path):
    """While the one answering slot is taken and nobody may wait, the page's question is
    answered with a "busy" notice and stays in the box to send again."""
    from gradio_client import Client

    from ui.app import build_app, launch

    demo = build_app(SlowAssistant(4.0), examples=[], corpus_dir=tmp_path / "c", index_dir=tmp_path / "i",
                     ask_concurrency=1, ask_queue_size=0)
    url = launch(demo, port=free_port())
    context, page = _open_index_tab(browser, url)
    try:
        with cf.ThreadPoolExecutor(1) as pool:
            busy_client = Client(url, verbose=False)
            held = pool.submit(busy_client.predict, "holding the slot", api_name="/ask")
            time.sleep(1.0)
            page.locator("#question textarea").fill("Anyone there?")
            page.locator("#question textarea").press("Enter")
            page.get_by_text("try again in a moment").first.wait_for(timeout=3_000)
            assert page.locator("#question textarea").input_value() == "Anyone there?"
            assert page.locator("#chat .qa-reply").count() == 0
            assert held.result(timeout=30)["answered"]
    finally:
        context.close()
        demo.close()
