"""The app in a real browser: headless Debian Chromium driven by Playwright, against the
real app (build_app on a real index of a corpus written here), one server for the module."""
from __future__ import annotations

import os
import re

import pytest

from conftest_ui import free_port, ui_corpus, ui_index  # noqa: F401
from ui.screenshot import CHROMIUM, ask_in_page, capture, launch_browser

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")

EXAMPLES = ["Who will succeed Jens Stoltenberg as Secretary General?", "How much did Northwind Robotics raise?"]
NATO_TITLE = "NATO Allies select Mark Rutte as the next Secretary General"
ACME_TITLE = "Acme <b>Widgets</b> unveils the <script>alert('title')</script> Gizmo"


@pytest.fixture(scope="module")
def app_url(ui_index, ui_corpus):
    import qa
    from ui.app import build_app, launch

    demo = build_app(qa.Assistant(index_dir=ui_index), examples=EXAMPLES, corpus_dir=ui_corpus, index_dir=ui_index)
    url = launch(demo, port=free_port())
    yield url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_browser(p)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.dialogs = []  # any alert() would mean markup ran as HTML
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.goto(app_url)
    pg.locator("#question textarea").wait_for(timeout=60_000)
    yield pg
    assert pg.dialogs == []
    context.close()


def last_reply(page):
    return page.locator("#chat .qa-reply").last


def last_answer(page) -> str:
    """The short answer of the last reply, or the reply's whole text when it has none."""
    reply = last_reply(page)
    if reply.locator(".qa-answer").count() == 0:
        return "NO ANSWER: " + reply.inner_text()
    return reply.locator(".qa-answer").inner_text()


def test_question_shows_answer_evidence_and_citation(page):
    ask_in_page(page, "Who will succeed Jens Stoltenberg as Secretary General?")
    reply = last_reply(page)
    assert reply.locator(".qa-answer strong").inner_text() == "Mark Rutte"
    assert reply.locator(".qa-evidence mark").inner_text() == "Mark Rutte"
    assert "Mark Rutte" in reply.locator(".qa-evidence").inner_text()
    citation = reply.locator(".qa-citation").inner_text()
    assert NATO_TITLE in citation and "2024-06-26" in citation
    # the sources panel lists the passages, the answer marked in the first
    sources = page.locator("#sources .qa-source")
    assert sources.count() >= 2
    assert NATO_TITLE in sources.first.inner_text()
    assert sources.first.locator("mark").inner_text() == "Mark Rutte"
    # how sure: a word in the chat and on the answer's passage, the number on hover
    sure = reply.locator(".qa-citation .qa-confidence")
    assert sure.inner_text() in ("confident", "likely", "unsure")
    assert re.fullmatch(r"confidence score \d\.\d\d", sure.get_attribute("title"))
    assert sources.first.locator(".qa-confidence").inner_text() == sure.inner_text()
    # the whole release is open with the answer marked
    release = page.locator("#release")
    assert release.locator(".qa-release-title").inner_text() == NATO_TITLE
    assert release.locator("mark").inner_text() == "Mark Rutte"
    assert "Allies thanked Jens Stoltenberg" in release.inner_text()


def test_follow_up_and_clear(page):
    ask_in_page(page, "Who will succeed Jens Stoltenberg as Secretary General?")
    ask_in_page(page, "When does he take office?")
    assert last_answer(page) == "1 October 2024"
    page.locator("#clear").click()
    page.locator("#chat .qa-reply").first.wait_for(state="detached", timeout=10_000)
    assert page.locator("#chat [data-testid=user]").count() == 0
    # after clearing, a follow-up has no context to lean on
    ask_in_page(page, "How much did Northwind Robotics raise?")
    assert last_answer(page) == "$40 million"


def test_clicking_an_example_asks_it(page):
    page.locator("#examples").get_by_text(EXAMPLES[1]).click()
    reply = page.locator("#chat .qa-reply").first
    reply.wait_for(timeout=30_000)
    assert page.locator("#chat [data-testid=user]").first.inner_text() == EXAMPLES[1]
    assert reply.locator(".qa-answer").inner_text() == "$40 million"


def test_unanswerable_question_says_so_and_shows_closest_passages(page):
    ask_in_page(page, "How many moons does Jupiter have?")
    reply = last_reply(page)
    assert "qa-abstained" in reply.get_attribute("class")
    assert "do not" in reply.inner_text().lower()
    assert reply.locator(".qa-closest li").count() >= 1
    assert reply.locator("mark").count() == 0
    assert "closest passages" in page.locator("#sources").inner_text()


def test_markup_in_question_and_corpus_is_shown_literally(page):
    question = "Which product did Acme Widgets unveil? <b>bold</b> <script>window.__xss = 1</script>"
    ask_in_page(page, question)
    user = page.locator("#chat [data-testid=user]").last
    assert user.inner_text() == question
    assert user.locator("b, script").count() == 0
    assert page.evaluate("window.__xss") is None
    reply = last_reply(page)
    assert "Gizmo 3000" in last_answer(page)
    assert ACME_TITLE in reply.locator(".qa-citation").inner_text()
    assert reply.locator("b, script, img, i").count() == 0
    # the release text, with <script>, <i> and <img onerror> in it, is text in both panels
    for panel in ("#sources", "#release"):
        text = page.locator(panel).inner_text()
        assert "<script>alert('body')</script>" in text and "<i>weather station</i>" in text
        assert """<img src=x onerror="alert('img')">""" in text
        assert page.locator(f"{panel} script, {panel} img, {panel} i, {panel} b").count() == 0


def test_open_another_release(page):
    ask_in_page(page, "Who will succeed Jens Stoltenberg as Secretary General?")
    page.locator("#release-pick input").click()
    page.get_by_role("option", name=re.compile("^Northwind Robotics raises")).click()
    title = page.locator("#release .qa-release-title")
    title.filter(has_text="Northwind").wait_for(timeout=10_000)
    assert "Series B funding" in page.locator("#release").inner_text()
    assert page.locator("#release mark").count() == 0  # the answer is not in this release


def test_index_status_is_shown(page):
    status = page.locator("#index-status")
    status.filter(has_text="releases").wait_for(timeout=10_000)
    text = status.inner_text()
    assert re.search(r"\b4 releases\b", text) and "chunks" in text and "built" in text
    assert "up to date" in text


def set_date(page, which: str, value: str) -> None:
    box = page.locator(f"#{which} input")
    if not box.is_visible():
        page.locator("#date-range").get_by_text("Release dates").click()
    box.fill(value)


def assert_since_keeps_march_out(page, since: str) -> None:
    """With `since` typed as 1 June 2024, the March release is outside the range: the question it answers is
    refused, and every source shown is dated from 1 June."""
    set_date(page, "since", since)
    ask_in_page(page, "How much did Northwind Robotics raise?")
    assert "qa-abstained" in last_reply(page).get_attribute("class")
    dates = page.locator("#sources .qa-date").all_inner_texts()
    assert dates and all(d.strip("()") >= "2024-06-01" for d in dates)


def test_date_range_keeps_the_chat_to_releases_in_it(page):
    assert not page.locator("#since input").is_visible()  # off by default, folded away
    assert_since_keeps_march_out(page, "2024-06-01")
    set_date(page, "until", "2024-05-01")
    ask_in_page(page, "Who will succeed Jens Stoltenberg as Secretary General?")
    assert "backwards" in last_reply(page).inner_text()
    set_date(page, "since", "")
    set_date(page, "until", "")
    ask_in_page(page, "How much did Northwind Robotics raise?")
    assert last_answer(page) == "$40 million"


def test_typed_dates_take_effect_or_are_refused_never_stale(page):
    """Days as people type them are read ("june 1", "14/03/2024"); one that is not a day is refused in the
    chat, and a later valid value is used, not refused again."""
    set_date(page, "since", "2024-13-45")
    ask_in_page(page, "Who will succeed Jens Stoltenberg as Secretary General?")
    assert "since date '2024-13-45' is not a date" in last_reply(page).inner_text()
    assert_since_keeps_march_out(page, "june 1")
    set_date(page, "since", "")
    set_date(page, "until", "14/03/2024")
    ask_in_page(page, "How much did Northwind Robotics raise?")
    assert last_answer(page) == "$40 million"
    dates = page.locator("#sources .qa-date").all_inner_texts()
    assert dates and all(d.strip("()") <= "2024-03-14" for d in dates)


def test_source_picker_keeps_the_chat_to_the_sources_picked(page):
    assert not page.locator("#source-pick input").is_visible()  # off by default, folded away
    page.locator("#source-filter").get_by_text("Sources", exact=True).click()
    pick = page.locator("#source-pick input")
    pick.click()
    options = page.locator("#source-pick [role=option]")
    options.first.wait_for(timeout=10_000)
    assert [t.strip() for t in options.all_inner_texts()] == ["Acme Widgets (1 release)", "City of Riverside (1 release)",
                                         "NATO press office (1 release)", "Northwind Robotics (1 release)"]
    options.filter(has_text="Northwind Robotics").click()
    page.keyboard.press("Escape")
    ask_in_page(page, "Who will succeed Jens Stoltenberg as Secretary General?")
    titles = page.locator("#sources .qa-title").all_inner_texts()
    assert titles and all(t.startswith("Northwind Robotics") for t in titles), titles
    assert last_answer(page) != "Mark Rutte"
    page.locator("#source-pick .remove-all").click()  # cleared: every source again
    ask_in_page(page, "Who will succeed Jens Stoltenberg as Secretary General?")
    assert last_answer(page) == "Mark Rutte"


# --------------------------------------------------------------------------- the layout fits

SIZES = [(1400, 1000), (1024, 768)]

#: Elements of the page whose text runs past their box (an input's value and placeholder measured in its font).
OVERFLOWING_JS = """(selector) => [...document.querySelectorAll(selector)].filter(el => {
  if (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA') {
    const cs = getComputedStyle(el), ctx = document.createElement('canvas').getContext('2d');
    ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    const room = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    return Math.max(ctx.measureText(el.value).width, ctx.measureText(el.placeholder).width) > room + 1;
  }
  return el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1;
}).map(el => el.id || el.className || el.tagName)"""

#: Visible elements floating (absolute, fixed or sticky) inside the chat, over the bubbles as they scroll.
FLOATING_IN_CHAT_JS = """() => [...document.querySelectorAll('#chat *')].filter(el => {
  const cs = getComputedStyle(el), r = el.getBoundingClientRect();
  return ['absolute', 'fixed', 'sticky'].includes(cs.position) && cs.display !== 'none'
    && cs.visibility !== 'hidden' && parseFloat(cs.opacity) > 0 && r.width * r.height > 0
    && el.closest('[data-testid=status-tracker]') === null && !el.matches('[data-testid=status-tracker]');
}).map(el => el.className.toString())"""


def overflowing(page, selector: str) -> list[str]:
    return page.evaluate(OVERFLOWING_JS, selector)


def overlap(a: dict, b: dict) -> bool:
    """Whether two bounding boxes share more than a pixel's edge."""
    return (a["x"] < b["x"] + b["width"] - 1 and b["x"] < a["x"] + a["width"] - 1
            and a["y"] < b["y"] + b["height"] - 1 and b["y"] < a["y"] + a["height"] - 1)


def boxes(page, *selectors: str) -> list[dict]:
    return [page.locator(s).bounding_box() for s in selectors]


def assert_apart(page, *selectors: str) -> None:
    found = boxes(page, *selectors)
    for i, a in enumerate(found):
        for j in range(i + 1, len(found)):
            assert not overlap(a, found[j]), f"{selectors[i]} overlaps {selectors[j]}: {a} {found[j]}"


def assert_within_width(page, width: int, *selectors: str) -> None:
    for s, b in zip(selectors, boxes(page, *selectors)):
        assert b["x"] >= 0 and b["x"] + b["width"] <= width + 0.5, f"{s} runs past {width} px: {b}"


def release_options(page) -> list[str]:
    """The 'Open a release' choices, read by opening the picker."""
    page.locator("#release-pick input").click()
    options = page.locator("#release-pick [role=option]")
    options.first.wait_for(timeout=10_000)
    texts = [t.replace("✓", "").strip() for t in options.all_inner_texts()]
    page.keyboard.press("Escape")
    return texts


@pytest.mark.parametrize("width,height", SIZES)
def test_layout_fits_the_screen(browser, app_url, tmp_path, width, height):
    """At both sizes nothing runs off the screen or overlaps: the date boxes with their labels and typed
    values, the example questions whole, the source cards whole and one per release, nothing floating over
    the chat; an over-long question is refused before it is posted; every release can be opened."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        page.goto(app_url)
        page.locator("#question textarea").wait_for(timeout=60_000)
        # before any question, every release of the index can be opened
        assert len(set(release_options(page))) == releases_in_status(page)
        page.locator("#date-range").get_by_text("Release dates").click()
        page.locator("#source-filter").get_by_text("Sources", exact=True).click()
        page.locator("#since input").fill("20 June 2024")
        page.locator("#until input").fill("26/06/2024")
        page.screenshot(path=str(tmp_path / f"filters-{width}x{height}.png"), full_page=True)
        assert_apart(page, "#since input", "#until input", "#date-note", "#source-pick")
        assert_apart(page, "#since [data-testid=block-info]", "#since input", "#until [data-testid=block-info]")
        assert_apart(page, "#date-range", "#source-filter")
        assert overflowing(page, "#since input, #until input, #date-range [data-testid=block-info]") == []
        page.locator("#since input").fill("")
        page.locator("#until input").fill("")

        long_question = "Who will succeed Jens Stoltenberg as Secretary General? " * 20
        page.locator("#question textarea").fill(long_question)
        page.locator("#question textarea").press("Enter")
        page.get_by_text("characters long").first.wait_for(timeout=10_000)
        assert page.locator("#question textarea").input_value() == long_question  # the text stays
        assert page.locator("#chat [data-testid=user]").count() == 0  # and is never posted
        page.locator("[data-testid=toast-close]").first.click()

        for question in ("Who will succeed Jens Stoltenberg as Secretary General?", "When does he take office?",
                         "How much did Northwind Robotics raise?"):
            ask_in_page(page, question)
        page.wait_for_timeout(500)
        page.screenshot(path=str(tmp_path / f"layout-{width}x{height}.png"), full_page=True)

        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert_within_width(page, width, "#chat", "#question", "#ask", "#date-range", "#source-filter",
                            "#examples", "#clear", "#sources", "#release-pick", "#release", "#index-status")
        assert_apart(page, "#chat", "#question", "#date-range", "#examples", "#clear")
        assert_apart(page, "#chat", "#sources")
        assert page.evaluate(FLOATING_IN_CHAT_JS) == []
        buttons = page.locator("#examples button")
        assert [t.strip() for t in buttons.all_inner_texts()] == EXAMPLES
        assert overflowing(page, "#examples button") == []
        assert_apart(page, *(f"#examples button >> nth={i}" for i in range(buttons.count())))
        titles = page.locator("#sources .qa-source .qa-title").all_inner_texts()
        assert len(titles) >= 2 and len(titles) == len(set(titles)), titles  # one card per release
        assert overflowing(page, "#sources .qa-passage, #sources .qa-source-head") == []
        assert_apart(page, *(f"#sources .qa-source >> nth={i}" for i in range(len(titles))))
        assert len(set(release_options(page))) == releases_in_status(page)
    finally:
        context.close()


def test_screenshot_module(app_url, browser, tmp_path):
    out = capture(app_url, tmp_path / "shot.png", question="How many books does the Eastside branch hold?", browser=browser)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def top_source(page) -> str:
    """The release title of the first passage in the sources panel."""
    return page.locator("#sources .qa-source .qa-title").first.inner_text()


def releases_in_status(page) -> int:
    status = page.locator("#index-status")
    status.filter(has_text="releases").wait_for(timeout=10_000)
    return int(re.search(r"(\d+) releases", status.inner_text()).group(1))


def test_status_shows_a_changed_corpus_and_rebuild_catches_up(page, ui_corpus):
    """Adds a release to the module's corpus (the tests after this one expect it)."""
    before = releases_in_status(page)
    (ui_corpus / "space.txt").write_text(
        "Orbital Dynamics launches its first weather satellite\n\nSource: Orbital Dynamics\n\n"
        "Kourou, 3 July 2024. Orbital Dynamics launched its first weather satellite, Zephyr-1, today.\n",
        encoding="utf-8")
    page.reload()
    page.locator("#index-status").filter(has_text="changed since").wait_for(timeout=15_000)
    page.get_by_role("tab", name="Index").click()
    page.locator("#rebuild").click()
    page.locator("#build-log .qa-build-log").wait_for(timeout=120_000)
    assert "1 added" in page.locator("#build-log").inner_text()
    page.locator("#index-status").filter(has_text="up to date").wait_for(timeout=10_000)
    assert releases_in_status(page) == before + 1
    # the new release is searched without a restart
    ask_in_page(page, "What is the name of the Orbital Dynamics weather satellite?")
    page.get_by_role("tab", name="Sources").click()
    assert top_source(page) == "Orbital Dynamics launches its first weather satellite"


def test_upload_then_rebuild_while_the_chat_keeps_answering(page, ui_corpus, tmp_path):
    """Runs last: it adds a release to the module's corpus."""
    before = releases_in_status(page)
    new = tmp_path / "harbour.txt"
    new.write_text(
        "Port of Kelby opens a new ferry terminal\n\nSource: Port of Kelby\n\n"
        "Kelby, 9 September 2024. The Port of Kelby opened its new ferry terminal today. "
        "The terminal was designed by the architect Ingrid Falk and can handle 3,000 passengers a day.\n",
        encoding="utf-8")
    bad = tmp_path / "notes.pdf"
    bad.write_bytes(b"%PDF-1.4 not a release")
    page.get_by_role("tab", name="Index").click()
    page.locator("#upload input[type=file]").set_input_files([str(new), str(bad)])
    page.locator("#upload").get_by_text("harbour.txt").first.wait_for(timeout=60_000)
    page.locator("#upload-btn").click()
    # the chat answers while the rebuild runs (or right after it, if it was quicker)
    page.get_by_role("tab", name="Sources").click()
    ask_in_page(page, "How many books does the Eastside branch hold?")
    assert top_source(page) == "Riverside Public Library opens its Eastside branch"
    page.get_by_role("tab", name="Index").click()
    report = page.locator("#upload-report")
    report.locator(".qa-accepted").wait_for(timeout=120_000)
    assert "harbour.txt" in report.locator(".qa-accepted").inner_text()
    refused = report.locator(".qa-refused").inner_text()
    assert "notes.pdf" in refused and "damaged PDF" in refused  # a PDF is read now; a broken one is refused
    uploads = ui_corpus / "uploads"  # uploads are saved in the corpus folder's uploads/
    assert (uploads / "harbour.txt").exists() and not (uploads / "notes.pdf").exists()
    page.locator("#index-status").filter(has_text=f"{before + 1} releases").wait_for(timeout=30_000)
    # the new release is searched without a restart
    ask_in_page(page, "How many passengers can the Kelby ferry terminal handle?")
    page.get_by_role("tab", name="Sources").click()
    assert top_source(page) == "Port of Kelby opens a new ferry terminal"
