"""The `/ask` endpoint through gradio_client, against a real `python -m ui` server on a
small corpus written here and indexed with build_index (one server for the module)."""
from __future__ import annotations

import concurrent.futures as cf
import time

import pytest

from conftest_ui import Server, free_port, ui_corpus, ui_index, write_corpus  # noqa: F401

Q = "Who will succeed Jens Stoltenberg as Secretary General?"
NATO_TITLE = "NATO Allies select Mark Rutte as the next Secretary General"


@pytest.fixture(scope="module")
def ui_server(ui_index):
    """`python -m ui --port P --index I --watch`: the module's one server, watching its corpus."""
    server = Server(ui_index, extra=["--watch"]).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(ui_server):
    from gradio_client import Client

    return Client(ui_server.url, verbose=False)


def test_server_prints_its_url(ui_server):
    assert ui_server.url.startswith(f"http://127.0.0.1:{ui_server.port}")
    assert "Running on local URL:" in ui_server.output


def test_question_returns_answer_and_source(client):
    r = client.predict(Q, api_name="/ask")
    assert r["answered"] is True
    assert r["answer"] == "Mark Rutte"
    assert "Mark Rutte" in r["evidence"]
    assert 0.0 < r["score"] <= 1.0
    assert r["label"] in ("confident", "likely", "unsure")
    assert r["title"] == NATO_TITLE and r["date"] == "2024-06-26"
    top = r["sources"][0]
    assert top["title"] == NATO_TITLE
    assert "Mark Rutte" in top["text"]
    assert isinstance(top["score"], float)
    for s in r["sources"]:
        assert {"title", "text", "score"} <= set(s)
    # the offsets point into the release: the answer sits inside the evidence sentence
    assert r["evidence_start"] <= r["start"] < r["end"] <= r["evidence_end"]


def test_another_release(client):
    r = client.predict("How much did Northwind Robotics raise?", api_name="/ask")
    assert r["answered"] and r["answer"] == "$40 million"
    assert r["sources"][0]["title"].startswith("Northwind Robotics raises")


def test_follow_up_uses_history(client):
    r = client.predict("When does he take office?", [[Q, "Mark Rutte"]], api_name="/ask")
    assert r["answered"] is True
    assert r["answer"] == "1 October 2024"
    assert r["title"] == NATO_TITLE


def test_date_range_keeps_to_releases_in_it(client):
    """`since` / `until` after `history` (existing positional calls still work); dates inclusive."""
    r = client.predict(Q, None, "2024-06-26", "2024-06-26", api_name="/ask")
    assert r["answer"] == "Mark Rutte" and {s["date"] for s in r["sources"]} == {"2024-06-26"}
    r = client.predict("How many books does the Eastside branch hold?", until="2024-03-31", api_name="/ask")
    assert r["answer"] == "40,000" and r["sources"] and all(s["date"] <= "2024-03-31" for s in r["sources"])
    r = client.predict("How much did Northwind Robotics raise?", since="2024-06-01", api_name="/ask")
    assert all(s["date"] >= "2024-06-01" for s in r["sources"])


@pytest.mark.parametrize("since, until, fragment", [
    ("2024-07-01", "2024-06-01", "backwards"),
    ("2024-13-45", "", "not a date"),
    ("", "someday", "not a date"),
    ("2030-01-01", None, "No release is dated"),
])
def test_bad_date_range_gets_one_sentence(client, since, until, fragment):
    r = client.predict(Q, [], since, until, api_name="/ask")
    assert r["answered"] is False and r["sources"] == [] and fragment in r["message"]
    assert r["message"].endswith(".") and ". " not in r["message"]


def test_ask_takes_source_after_since_until(client):
    """`/ask`'s parameters keep their order; `source` comes last, optional."""
    params = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/ask"]["parameters"]
    assert [p["parameter_name"] for p in params] == ["question", "history", "since", "until", "source"]
    assert [p["parameter_has_default"] for p in params] == [False, True, True, True, True]


def test_source_keeps_to_releases_from_it(client):
    """A name or a list of names, any case; combined with the date range; positional after `until`."""
    r = client.predict(Q, None, None, None, "Northwind Robotics", api_name="/ask")
    assert r["sources"] and all(s["title"].startswith("Northwind Robotics") for s in r["sources"])
    assert r["answer"] != "Mark Rutte"
    r = client.predict(Q, source=["  nato PRESS office", "City of Riverside"], api_name="/ask")
    assert r["answer"] == "Mark Rutte" and r["title"] == NATO_TITLE
    assert {s["title"] for s in r["sources"]} <= {NATO_TITLE, "Riverside Public Library opens its Eastside branch"}
    r = client.predict("How many books does the Eastside branch hold?", until="2024-03-31", source="city of riverside",
                       api_name="/ask")
    assert r["answer"] == "40,000" and {s["date"] for s in r["sources"]} == {"2024-03-14"}
    r = client.predict(Q, source=[], api_name="/ask")  # empty: every source
    assert r["answer"] == "Mark Rutte"


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(source="Globex"), "No release has the source 'Globex'; the index's sources are Acme Widgets, City of "
                            "Riverside, NATO press office and Northwind Robotics."),
    (dict(source="Northwind Robotics", since="2024-06-01"), "No release from Northwind Robotics is dated from "
                                                            "2024-06-01 on; its releases are dated 2024-03-04 to 2024-03-04."),
])
def test_unknown_source_gets_one_sentence(client, kwargs, fragment):
    r = client.predict(Q, api_name="/ask", **kwargs)
    assert r["answered"] is False and r["sources"] == [] and r["message"] == fragment


def test_unanswerable_question_abstains_with_closest_passages(client):
    r = client.predict("How many moons does Jupiter have?", api_name="/ask")
    assert r["answered"] is False
    assert r["answer"] == ""
    assert r["message"]
    assert r["sources"], "the closest passages come back instead of a guess"


@pytest.mark.parametrize("question", ["", "   \n "])
def test_empty_question_gets_a_message_not_an_error(client, question):
    r = client.predict(question, api_name="/ask")
    assert r["answered"] is False
    assert "empty" in r["message"].lower()
    assert r["sources"] == [] and r["answer"] == ""


def test_overlong_question_gets_a_message(client):
    r = client.predict("why " * 400, api_name="/ask")
    assert r["answered"] is False and "characters" in r["message"]


def test_malformed_history_gets_a_message(client):
    r = client.predict(Q, [["only a question"]], api_name="/ask")
    assert r["answered"] is False and "history" in r["message"]


def test_markup_in_a_question_is_returned_as_text(client):
    q = "Which product did Acme Widgets unveil? <b>bold</b> <script>alert(1)</script>"
    r = client.predict(q, api_name="/ask")
    assert r["question"] == q
    assert r["answered"] and "Gizmo 3000" in r["answer"]
    assert r["sources"][0]["title"] == "Acme <b>Widgets</b> unveils the <script>alert('title')</script> Gizmo"


def test_several_users_at_once(ui_server):
    """Eight clients ask at the same time; each gets its own right answer."""
    from gradio_client import Client

    questions = [Q, "How much did Northwind Robotics raise?", "How many books does the Eastside branch hold?",
                 "Which product did Acme Widgets unveil?"] * 2
    expected = {Q: "Mark Rutte", "How much did Northwind Robotics raise?": "$40 million",
                "How many books does the Eastside branch hold?": "40,000",
                "Which product did Acme Widgets unveil?": "Gizmo 3000"}
    clients = [Client(ui_server.url, verbose=False) for _ in questions]
    with cf.ThreadPoolExecutor(len(questions)) as pool:
        results = list(pool.map(lambda cq: cq[0].predict(cq[1], api_name="/ask"), zip(clients, questions)))
    for q, r in zip(questions, results):
        assert r["answered"] and expected[q] in r["answer"], (q, r["answer"])


def test_answers_are_quick(client):
    times = []
    for _ in range(5):
        t = time.perf_counter()
        client.predict(Q, api_name="/ask")
        times.append(time.perf_counter() - t)
    assert sorted(times)[2] < 2.0, times


def test_watch_picks_up_a_new_release(ui_server, client, ui_corpus):
    """With --watch, a file dropped into the corpus is answerable soon after, without a restart."""
    assert ui_server.wait_for("Watching"), ui_server.output
    q = "Who designed the Kelby ferry terminal?"
    assert not client.predict(q, api_name="/ask")["answered"]
    (ui_corpus / "harbour.txt").write_text(
        "Port of Kelby opens a new ferry terminal\n\nSource: Port of Kelby\n\n"
        "Kelby, 9 September 2024. The Port of Kelby opened its new ferry terminal today. "
        "The terminal was designed by the architect Ingrid Falk and can handle 3,000 passengers a day.\n",
        encoding="utf-8")
    deadline = time.monotonic() + 120
    while True:
        r = client.predict(q, api_name="/ask")
        if r["answered"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert r["answered"] and r["answer"] == "Ingrid Falk", ui_server.output[-2000:]
    assert r["title"] == "Port of Kelby opens a new ferry terminal"


def test_main_builds_a_missing_index(tmp_path):
    """`python -m ui` on an empty index folder builds it from the corpus, then serves."""
    from gradio_client import Client

    corpus = write_corpus(tmp_path / "corpus")
    server = Server(tmp_path / "index", extra=["--corpus", str(corpus), "--no-warmup"])
    try:
        server.start()
        assert "Building the index" in server.output
        r = Client(server.url, verbose=False).predict("How many books does the Eastside branch hold?", api_name="/ask")
        assert r["answered"] and r["answer"] == "40,000"
    finally:
        server.stop()
    assert (tmp_path / "index" / "current").exists()


def test_main_reports_a_missing_corpus(tmp_path):
    import subprocess
    import sys

    from conftest_ui import ROOT

    proc = subprocess.run(
        [sys.executable, "-m", "ui", "--port", str(free_port()), "--index", str(tmp_path / "index"),
         "--corpus", str(tmp_path / "nowhere")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Cannot start" in proc.stderr and "nowhere" in proc.stderr


def test_pick_examples_keeps_what_the_index_answers(ui_index):
    import qa
    from ui.api import pick_examples

    a = qa.Assistant(index_dir=ui_index)
    picked = pick_examples(a, [Q, "When does he take office?", "How many moons does Jupiter have?",
                               "How many books does the Eastside branch hold?"])
    assert picked == [Q, "When does he take office?", "How many books does the Eastside branch hold?"]
    assert pick_examples(a, ["How many moons does Jupiter have?"]) == ["How many moons does Jupiter have?"]


# --------------------------------------------------------------------------- POST /api/ask


def post(base: str, payload=None, raw: bytes | None = None, user: tuple[str, str] | None = None,
         timeout: float = 120) -> tuple[int, dict]:
    """POST `payload` as JSON (or `raw` bytes) to /api/ask; (HTTP status, the JSON reply)."""
    import base64
    import json
    import urllib.error
    import urllib.request

    data = raw if raw is not None else json.dumps(payload).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(user).encode()).decode()
    req = urllib.request.Request(base.rstrip("/") + "/api/ask", data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def one_sentence(text: str) -> bool:
    return text.endswith(".") and ". " not in text.replace("e.g. ", "")


def test_api_ask_answers_plain_json_like_ask(ui_server, client):
    status, r = post(ui_server.url, {"question": Q})
    assert status == 200 and r["answered"] and r["answer"] == "Mark Rutte" and r["title"] == NATO_TITLE
    assert r == client.predict(Q, api_name="/ask")  # the same dict as the gradio_client endpoint


def test_api_ask_takes_history_dates_and_source(ui_server):
    status, r = post(ui_server.url, {"question": "When does he take office?", "history": [[Q, "Mark Rutte"]]})
    assert status == 200 and r["answer"] == "1 October 2024"
    status, r = post(ui_server.url, {"question": "How many books does the Eastside branch hold?",
                                     "since": "march 1", "until": "31/03/2024", "source": ["City of Riverside"]})
    assert status == 200 and r["answer"] == "40,000" and {s["date"] for s in r["sources"]} == {"2024-03-14"}


@pytest.mark.parametrize("payload, raw, status, fragment", [
    ({"question": ""}, None, 400, "The question is empty"),
    ({"question": "why " * 400}, None, 400, "characters long"),
    ({"question": Q, "since": "2024-13-45"}, None, 400, "since date '2024-13-45'"),
    ({"question": Q, "since": "2024-07-01", "until": "2024-06-01"}, None, 400, "backwards"),
    ({"question": Q, "source": "Globex"}, None, 400, "No release has the source 'Globex'"),
    ({"question": Q, "history": [["only a question"]]}, None, 400, "history"),
    ({"question": Q, "until": 20240601}, None, 400, "The until date must be text"),
    ({"question": Q, "topic": "x"}, None, 400, "unknown field 'topic'"),
    ({"q": Q}, None, 400, "unknown field 'q'"),
    ([Q], None, 400, "must be a JSON object"),
    (None, b"question=Who", 400, "not JSON"),
    (None, b"\xff\xfe", 400, "not JSON"),
    ({"question": Q, "history": [["x" * 1000, "y"]] * 300}, None, 413, "larger than"),
])
def test_api_ask_refuses_bad_input_in_one_sentence(ui_server, payload, raw, status, fragment):
    got, r = post(ui_server.url, payload, raw)
    assert got == status and set(r) == {"error"} and fragment in r["error"] and one_sentence(r["error"]), r


@pytest.fixture(scope="module")
def guarded_server(ui_index):
    """`python -m ui` served beyond localhost (read-only) behind --auth, answering one question at a
    time with none waiting, so a second question at once is told the assistant is busy."""
    server = Server(ui_index, extra=["--host", "0.0.0.0", "--auth", "alice:wonderland", "--no-warmup"],
                    env={"QA_UI_CONCURRENCY": "1", "QA_UI_QUEUE_SIZE": "0"}).start()
    yield server
    server.stop()


def test_api_ask_follows_auth_and_answers_read_only(guarded_server):
    """Behind --auth the same users sign in with HTTP Basic; asking works on a read-only server."""
    assert "Read-only" in guarded_server.output
    for user in (None, ("alice", "nope"), ("bob", "wonderland")):
        status, r = post(guarded_server.url, {"question": Q}, user=user)
        assert status == 401 and "Sign in" in r["error"] and one_sentence(r["error"])
    status, r = post(guarded_server.url, {"question": Q}, user=("alice", "wonderland"))
    assert status == 200 and r["answer"] == "Mark Rutte"


def test_api_ask_says_busy_at_once_instead_of_hanging(guarded_server):
    """Past the gate a question gets 503 and the busy sentence at once; every call gets an answer or
    that sentence, and the server answers normally afterwards."""
    import threading

    questions = [Q, "How much did Northwind Robotics raise?", "How many books does the Eastside branch hold?"] * 3
    start = threading.Barrier(len(questions))

    def ask(q: str) -> tuple[int, dict, float]:
        start.wait()
        t = time.perf_counter()
        status, r = post(guarded_server.url, {"question": q}, user=("alice", "wonderland"))
        return status, r, time.perf_counter() - t

    with cf.ThreadPoolExecutor(len(questions)) as pool:
        results = list(pool.map(ask, questions))
    answered = [r for status, r, _ in results if status == 200]
    busy = [(r, s) for status, r, s in results if status == 503]
    assert len(answered) + len(busy) == len(questions), results
    assert answered and all(r["answered"] for r in answered)
    assert busy, "one question at a time: the others arriving meanwhile are told the assistant is busy"
    for r, seconds in busy:
        assert r == {"error": "The assistant is busy answering other questions; try again in a moment."}
        assert seconds < 5.0
    status, r = post(guarded_server.url, {"question": Q}, user=("alice", "wonderland"))
    assert status == 200 and r["answer"] == "Mark Rutte"


@pytest.mark.parametrize("question, language", [
    ("Qui va succéder à Jens Stoltenberg comme secrétaire général ?", "French"),
    ("Wer wird Nachfolger von Jens Stoltenberg?", "German"),
    ("¿Cuántos libros tiene la nueva biblioteca?", "Spanish"),
])
def test_question_in_another_language_says_the_assistant_reads_english(ui_server, question, language):
    status, r = post(ui_server.url, {"question": question})
    assert status == 200 and not r["answered"] and r["sources"], "the closest passages are still shown"
    assert r["message"] == (f"This question seems to be in {language}, and the assistant reads English questions "
                            "only; ask it in English (the closest passages are shown).")


def test_english_question_without_an_answer_says_nothing_of_language(ui_server):
    status, r = post(ui_server.url, {"question": "How many moons does Jupiter have?"})
    assert status == 200 and not r["answered"] and "English" not in r["message"] and r["sources"]
