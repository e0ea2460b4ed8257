"""ui.render: answers, sources, releases and status as safe HTML (pure functions, real qa types)."""
from __future__ import annotations

import re

from qa import Answer, Source
from index.releases import Release
from ui import render

TEXT = ("Brussels, 26 June 2024. Mark Rutte will succeed Jens Stoltenberg as Secretary General. "
        "He takes office on 1 October 2024. <script>alert('x')</script> costs $5 and *stars*.")
A0 = TEXT.index("Mark Rutte")
E0, E1 = A0, TEXT.index("General.") + len("General.")


def _source(title="NATO <b>Allies</b> pick Rutte", start=0, end=len(TEXT), rid="r1", score=0.91):
    return Source(rid, title, "2024-06-26", TEXT[start:end], score, start, end, "news.txt")


def _answer(**kw):
    base = dict(question="Who will succeed Jens Stoltenberg?", text="Mark Rutte", evidence=TEXT[E0:E1],
                answered=True, score=0.87, sources=[_source(), _source("Other", rid="r2", score=0.4)],
                release_id="r1", start=A0, end=A0 + 10, evidence_start=E0, evidence_end=E1)
    base.update(kw)
    return Answer(**base)


def _tags(markup: str) -> set[str]:
    return set(re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", markup))


ALLOWED = {"div", "p", "strong", "blockquote", "mark", "cite", "span", "ol", "ul", "li", "q", "h3", "br"}


def test_escape_everything():
    assert render.escape("<b>&\"'") == "&lt;b&gt;&amp;&quot;&#x27;"
    assert render.escape(None) == ""
    assert render.question_html("<script>x</script>\nnext") == "&lt;script&gt;x&lt;/script&gt;<br>next"


def test_highlight_nested_and_overlapping_spans():
    text = "abc <def> ghi"
    out = render.highlight(text, [(0, 13, "outer"), (4, 9, "mark")])
    assert out == '<span class="outer">abc </span><span class="outer"><mark>&lt;def&gt;</mark></span><span class="outer"> ghi</span>'
    # out-of-range, empty and missing spans are ignored
    assert render.highlight(text, [(50, 60, "mark"), (3, 3, "mark"), (None, 2, "mark")]) == render.escape(text)
    # overlapping (not nested) spans: every character still appears once, in order
    out = render.highlight("0123456789", [(2, 6, "mark"), (4, 8, "x")])
    assert re.sub(r"<[^>]+>", "", out) == "0123456789"


def test_answer_html_bold_answer_marked_evidence_and_citation():
    out = render.answer_html(_answer())
    assert "<strong>Mark Rutte</strong>" in out
    assert "<mark>Mark Rutte</mark> will succeed Jens Stoltenberg" in out
    assert "NATO &lt;b&gt;Allies&lt;/b&gt; pick Rutte" in out and "2024-06-26" in out
    # confidence as a word, the number on hover
    word = _answer().label
    assert f'<span class="qa-confidence qa-{word}" title="confidence score 0.87">{word}</span>' in out
    assert ">score" not in out
    assert _tags(out) <= ALLOWED


def test_confidence_label_comes_from_the_answer_or_its_score():
    from qa.calibration import shipped

    LABEL_CUTOFFS = shipped().cutoffs

    low = _answer(score=LABEL_CUTOFFS["likely"] - 0.01)
    assert low.label == "unsure" and ">unsure</span>" in render.answer_html(low)
    assert ">likely</span>" in render.answer_html(_answer(score=0.3, label="likely"))  # a reader's own label
    d = {"answered": True, "answer": "x", "evidence": "x", "score": LABEL_CUTOFFS["confident"], "sources": []}
    assert ">confident</span>" in render.answer_html(d)  # an API dict without a label


def test_answer_html_accepts_the_api_dict():
    from ui.api import answer_to_dict

    d = answer_to_dict(_answer())
    assert d["answer"] == "Mark Rutte" and d["title"] == "NATO <b>Allies</b> pick Rutte"
    assert render.answer_html(d, d["title"], d["date"]) == render.answer_html(_answer())


def test_answer_with_markup_is_literal():
    ev = "The <img src=x onerror=alert(1)> Gizmo <script>alert(2)</script> ships."
    a = _answer(text="<script>alert(2)</script>", evidence=ev, start=None, end=None,
                evidence_start=None, evidence_end=None)
    out = render.answer_html(a)
    assert "<script" not in out and "<img" not in out
    assert "<mark>&lt;script&gt;alert(2)&lt;/script&gt;</mark>" in out
    assert _tags(out) <= ALLOWED


def test_abstention_says_so_and_lists_closest_passages():
    a = _answer(text="", answered=False, start=None, end=None, score=0.1,
                message="The releases do not seem to answer this question; the closest passages are shown.")
    out = render.answer_html(a)
    assert "do not seem to answer" in out and "qa-abstained" in out
    assert "<mark>" not in out and "<strong>Mark Rutte</strong>" not in out
    assert out.count("<li>") == 2 and "closest passages" in out
    assert "&lt;script&gt;" in out  # the passage snippet is escaped


def test_snippet_cuts_at_a_word():
    s = render.snippet("word " * 100, limit=50)
    assert len(s) <= 51 and s.endswith("…") and not s.endswith(" …")


def test_answer_span_uses_offsets_when_given():
    text = "Rutte met Rutte."
    assert render.answer_span_in(text, 100, "Rutte", 110, 115) == (10, 15)
    assert render.answer_span_in(text, 100, "Rutte", 200, 205) is None  # the answer lies elsewhere
    assert render.answer_span_in(text, None, "Rutte", None, None) == (0, 5)
    assert render.answer_span_in(text, None, "", None, None) is None


def test_sources_html_marks_answer_in_its_passage_only():
    out = render.sources_html(_answer())
    assert out.count('class="qa-source"') == 2
    assert out.count("<mark>") == 1
    # the answer's passage carries the answer's confidence; every passage its retrieval score on hover
    assert out.count('class="qa-confidence') == 1 and f">{_answer().label}</span>" in out
    assert 'title="retrieval score 0.91"' in out and 'title="retrieval score 0.40"' in out
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in out
    assert "Ask a question" in render.sources_html(None)


def test_release_html_marks_answer_and_evidence():
    rel = Release("r1", "NATO <b>Allies</b> pick Rutte", TEXT, "news.txt", source="NATO <press>", date="2024-06-26")
    out = render.release_html(rel, _answer(), passage=(0, 60))
    assert "<mark>Mark Rutte</mark>" in out
    assert 'class="qa-evidence-span"' in out and 'class="qa-passage-span"' in out
    assert "<h3" in out and "NATO &lt;b&gt;Allies&lt;/b&gt; pick Rutte" in out and "NATO &lt;press&gt;" in out
    assert _tags(out) <= ALLOWED
    # a passage that is the whole release is not shaded
    assert "qa-passage-span" not in render.release_html(rel, _answer(), passage=(0, len(TEXT)))
    # an answer from another release marks nothing
    assert "<mark>" not in render.release_html(rel, _answer(release_id="r2"))
    # whitespace is kept (the container is pre-wrap): the text survives verbatim after unescaping
    import html as _html
    body = re.search(r'<div class="qa-release-text">(.*)</div></div>$', out).group(1)
    assert _html.unescape(re.sub(r"<[^>]+>", "", body)) == TEXT


def test_status_html():
    st = {"releases": 12, "chunks": 40, "built_at": "2024-06-01T10:00:00+0000", "stale": True}
    out = render.status_html(st)
    assert "12" in out and "40" in out and "2024-06-01 10:00 UTC" in out and "changed" in out
    assert "up to date" in render.status_html({**st, "stale": False})
    assert "Index unavailable" in render.status_html(None, "No index <here>")
    assert "&lt;here&gt;" in render.status_html(None, "No index <here>")


def test_ingest_html():
    out = render.ingest_html(["a.txt"], [("b.pdf", "only .txt and .md files can be added as releases.")])
    assert "a.txt" in out and "b.pdf" in out and "only .txt and .md" in out
    assert "<script" not in render.ingest_html(["<script>.txt"], [])


def test_a_source_with_a_url_links_its_release_and_bad_urls_do_not():
    from qa.answer import Answer, Source

    good = Source("r1", "Nordkai opens", "2024-06-24", "The harbour master is Ingrid Solberg.", 0.9, 0, 37,
                  "nordkai.html", url="https://port.example/news/nordkai.html?a=1&b=2")
    bad = Source("r2", "Other", None, "Text.", 0.5, 0, 5, "x.html", url="javascript:alert(1)")
    html = render.sources_html(Answer("Who?", "Ingrid Solberg", good.text, True, 0.9, [good, bad], "r1", 22, 36))
    assert 'href="https://port.example/news/nordkai.html?a=1&amp;b=2"' in html
    assert "javascript:" not in html and html.count("<a ") == 1


def test_sources_show_each_release_once_with_its_best_passage():
    a = _answer(sources=[_source(), _source("Other", rid="r2", score=0.4), _source(start=0, end=20, score=0.3)])
    assert [s.release_id for s in render.distinct_sources(a)] == ["r1", "r2"]
    out = render.sources_html(a)
    assert out.count('class="qa-source"') == 2 and out.count("<mark>") == 1
    abstained = _answer(text="", answered=False, start=None, end=None, sources=a.sources)
    assert render.abstain_html(abstained).count("<li>") == 2


def test_no_function_in_ui_is_over_150_lines():
    import ast
    from pathlib import Path

    long = []
    for path in sorted((Path(__file__).parent.parent / "ui").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 150:
                long.append(f"{path.name}:{node.name}")
    assert long == []
