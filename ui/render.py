"""Pure functions that turn answers, sources, releases and index status into safe HTML.

Everything taken from the corpus or typed by a user goes through `escape` before it is
placed in markup, so a release or a question holding `<script>` or other tags is shown
literally. The only tags in the output are the ones written here (<strong>, <mark>, ...).
The chat shows this HTML with Markdown rendering switched off, so Markdown syntax in the
corpus (`*`, `#`, `$`) is shown as written too.

Inputs are `qa.Answer` / `qa.Source` objects or their `to_dict()` form (any object with the
same attributes, or a mapping with the same keys), so these functions import nothing heavy.
"""
from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

__all__ = [
    "escape",
    "get",
    "highlight",
    "answer_span_in",
    "answer_text",
    "question_html",
    "answer_html",
    "message_html",
    "sources_html",
    "release_html",
    "status_html",
    "ingest_html",
    "citation_text",
    "confidence_html",
    "snippet",
    "distinct_sources",
]

#: How many characters of a passage the chat quotes when it abstains.
SNIPPET_CHARS = 200


def escape(text: Any) -> str:
    """`text` as HTML text: every `&`, `<`, `>`, `"` and `'` is replaced by its entity."""
    if text is None:
        return ""
    return html.escape(str(text), quote=True)


def get(obj: Any, name: str, default: Any = None) -> Any:
    """Attribute `name` of a dataclass-like object, or key `name` of a mapping."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _squash(text: str) -> str:
    """Whitespace runs (newlines included) folded to one space, for one-line quotes."""
    return re.sub(r"\s+", " ", text).strip()


def highlight(text: str, spans: Iterable[tuple[int | None, int | None, str]] = ()) -> str:
    """`text` escaped, with each span (start, end, tag_or_class) wrapped in markup.

    A span whose third item is "mark" is wrapped in <mark>; any other value is used as the
    class of a <span>. Spans may nest or overlap: each stretch of text between two span
    boundaries is wrapped on its own, outermost (longest) span first. Spans outside the
    text, empty or with missing offsets are ignored.
    """
    n = len(text)
    clean = []
    for start, end, kind in spans:
        if start is None or end is None:
            continue
        start, end = max(0, int(start)), min(n, int(end))
        if start < end:
            clean.append((start, end, kind))
    if not clean:
        return escape(text)
    cuts = sorted({0, n, *(s for s, _, _ in clean), *(e for _, e, _ in clean)})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        piece = escape(text[a:b])
        covering = sorted((s for s in clean if s[0] <= a and b <= s[1]), key=lambda s: s[0] - s[1])
        for _, _, kind in reversed(covering):  # innermost first, so the outermost ends up outside
            if kind == "mark":
                piece = f"<mark>{piece}</mark>"
            else:
                piece = f'<span class="{escape(kind)}">{piece}</span>'
        out.append(piece)
    return "".join(out)


def answer_span_in(container: str, container_start: int | None, answer_text: str,
                   answer_start: int | None, answer_end: int | None) -> tuple[int, int] | None:
    """Where the answer lies inside `container` (a passage or sentence of the release).

    With offsets (release offsets of the container and of the answer) only that exact place
    counts, so another mention of the same words is never marked as the answer; without
    offsets, the first occurrence of the answer text. None when it is not in `container`.
    """
    if not answer_text:
        return None
    if container_start is not None and answer_start is not None and answer_end is not None:
        rs, re_ = answer_start - container_start, answer_end - container_start
        if 0 <= rs < re_ <= len(container) and container[rs:re_] == answer_text:
            return rs, re_
        return None
    i = container.find(answer_text)
    return (i, i + len(answer_text)) if i >= 0 else None


def citation_text(title: Any, date: Any) -> str:
    """'Title (date)' as plain text, or just the title."""
    title = str(title or "Untitled release")
    return f"{title} ({date})" if date else title


def _safe_url(url: Any) -> str:
    """`url` when it is an http(s) address (never a javascript: or data: link), else ""."""
    url = str(url or "").strip()
    return url if re.match(r"^https?://[^\s\x00-\x1f]+$", url, re.I) else ""


def _citation_html(title: Any, date: Any, url: Any = "") -> str:
    out = f'<cite class="qa-title">{escape(title or "Untitled release")}</cite>'
    link = _safe_url(url)
    if link:
        out = f'<a class="qa-release-link" href="{escape(link)}" target="_blank" rel="noopener noreferrer">{out}</a>'
    if date:
        out += f' <span class="qa-date">({escape(date)})</span>'
    return out


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of `text` on one line, cut at a word boundary with an ellipsis if longer than `limit`."""
    text = _squash(text or "")
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip(" ,;:") + "…"


def answer_text(answer: Any) -> str:
    """The short answer: `text` of a qa.Answer, or `answer` of the API's dict form."""
    text = get(answer, "text")
    if text is None and isinstance(get(answer, "answer"), str):
        text = get(answer, "answer")
    return text or ""


def _answer_source(answer: Any) -> Any:
    """The source the answer was taken from (same release), else the top source, else None."""
    sources = get(answer, "sources") or []
    rid = get(answer, "release_id")
    for s in sources:
        if rid is not None and get(s, "release_id") == rid:
            return s
    return sources[0] if sources else None


def question_html(question: str) -> str:
    """A user's question as chat-message HTML (shown literally, line breaks kept)."""
    return escape(question).replace("\n", "<br>")


def message_html(message: str, kind: str = "note") -> str:
    """A plain notice in the chat (an invalid question, an error), escaped."""
    return f'<div class="qa-reply qa-{escape(kind)}"><p>{escape(message)}</p></div>'


def confidence_html(answer: Any) -> str:
    """How sure the answer is, as a plain word (confident / likely / unsure: its `label`) with the
    score on hover; numbers alone read as doubt ("score 0.34" for a right answer)."""
    try:
        score = float(get(answer, "score"))
    except (TypeError, ValueError):
        return ""
    word = get(answer, "label")
    if not word:
        from qa.calibration import label  # an answer made without one

        word = label(score)
    return (f'<span class="qa-confidence qa-{escape(word)}" title="confidence score {score:.2f}">'
            f"{escape(word)}</span>")


def _retrieval_title(source: Any) -> str:
    """A passage's retrieval score, for a hover title (its rank in the list already says how close it is)."""
    try:
        return f' title="retrieval score {float(get(source, "score")):.2f}"'
    except (TypeError, ValueError):
        return ""


def answer_html(answer: Any, title: str | None = None, date: str | None = None) -> str:
    """One assistant reply: the short answer in bold, the evidence sentence with the answer
    marked, and the release's title and date; or, when the corpus does not answer, a plain
    statement and the closest passages."""
    if not get(answer, "answered"):
        return abstain_html(answer)
    text = answer_text(answer)
    evidence = get(answer, "evidence") or ""
    src = _answer_source(answer)
    if title is None:
        title = get(src, "title") if src is not None else None
    if date is None:
        date = get(src, "date") if src is not None else None
    span = answer_span_in(evidence, get(answer, "evidence_start"), text, get(answer, "start"), get(answer, "end"))
    quoted = highlight(evidence, [(span[0], span[1], "mark")] if span else [])
    parts = [
        '<div class="qa-reply qa-answered">',
        f'<p class="qa-answer"><strong>{escape(text)}</strong></p>',
    ]
    if evidence:
        parts.append(f'<blockquote class="qa-evidence">{quoted}</blockquote>')
    parts.append(
        f'<p class="qa-citation">Source: {_citation_html(title, date)} · {confidence_html(answer)}</p>'
    )
    parts.append("</div>")
    return "".join(parts)


def abstain_html(answer: Any, max_passages: int = 3) -> str:
    """The reply when the corpus does not answer: says so plainly, then the closest passages."""
    message = _squash(get(answer, "message") or "") or "The press releases do not answer this question."
    parts = ['<div class="qa-reply qa-abstained">', f'<p class="qa-no-answer"><strong>{escape(message)}</strong></p>']
    sources = distinct_sources(answer)[:max_passages]
    if sources:
        if "closest" not in message.lower():
            parts.append("<p>The closest passages:</p>")
        parts.append('<ol class="qa-closest">')
        for s in sources:
            parts.append(
                f"<li>{_citation_html(get(s, 'title'), get(s, 'date'))}: "
                f'<q>{escape(snippet(get(s, "text") or ""))}</q></li>'
            )
        parts.append("</ol>")
    parts.append("</div>")
    return "".join(parts)


def distinct_sources(answer: Any) -> list:
    """The answer's passages, one per release: its best-ranked (the answer's own, for its release), so no
    release is shown twice."""
    seen: set = set()
    out = []
    for s in get(answer, "sources") or []:
        rid = get(s, "release_id")
        if rid is None or rid not in seen:
            seen.add(rid)
            out.append(s)
    return out


def sources_html(answer: Any) -> str:
    """The sources panel: each retrieved release's best passage with its title and date (its retrieval score
    on hover); the answer marked inside the passage it came from, with the answer's confidence."""
    if answer is None:
        return '<div class="qa-sources qa-empty">Ask a question to see the passages behind the answer.</div>'
    sources = distinct_sources(answer)
    if not sources:
        return '<div class="qa-sources qa-empty">No passages were retrieved for this question.</div>'
    rid, text = get(answer, "release_id"), answer_text(answer)
    answered = bool(get(answer, "answered"))
    parts = ['<div class="qa-sources">']
    if not answered:
        parts.append('<p class="qa-note">No answer was found; these are the closest passages.</p>')
    parts.append("<ol>")
    for s in sources:
        passage = get(s, "text") or ""
        spans = []
        if answered and get(s, "release_id") == rid:
            span = answer_span_in(passage, get(s, "start"), text, get(answer, "start"), get(answer, "end"))
            if span:
                spans.append((span[0], span[1], "mark"))
        sure = f" · answer {confidence_html(answer)}" if spans else ""
        parts.append(
            '<li class="qa-source">'
            f'<div class="qa-source-head"{_retrieval_title(s)}>'
            f'{_citation_html(get(s, "title"), get(s, "date"), get(s, "url"))}{sure}</div>'
            f'<div class="qa-passage">{highlight(passage, spans)}</div>'
            "</li>"
        )
    parts.append("</ol></div>")
    return "".join(parts)


def release_html(release: Any, answer: Any = None, passage: tuple[int, int] | None = None) -> str:
    """A whole release as HTML: title, date, source line and the full text, with the
    answer marked and its sentence underlined when `answer` came from this release, and
    `passage` (offsets into the text) shaded when given and shorter than the whole text."""
    if release is None:
        return '<div class="qa-release qa-empty">Pick a release to read it in full.</div>'
    text = get(release, "text") or ""
    spans: list[tuple[int | None, int | None, str]] = []
    if passage and not (passage[0] <= 0 and passage[1] >= len(text)):  # shading all of it says nothing
        spans.append((passage[0], passage[1], "qa-passage-span"))
    if answer is not None and get(answer, "answered") and get(answer, "release_id") == get(release, "release_id"):
        spans.append((get(answer, "evidence_start"), get(answer, "evidence_end"), "qa-evidence-span"))
        s, e = get(answer, "start"), get(answer, "end")
        if s is not None and e is not None and text[s:e] == answer_text(answer):
            spans.append((s, e, "mark"))
    head = [f'<h3 class="qa-release-title">{escape(get(release, "title") or "Untitled release")}</h3>']
    meta = []
    if get(release, "date"):
        meta.append(escape(get(release, "date")))
    if get(release, "source"):
        meta.append("Source: " + escape(get(release, "source")))
    link = _safe_url(get(release, "url"))
    if link:
        meta.append(f'<a class="qa-release-link" href="{escape(link)}" target="_blank" '
                    f'rel="noopener noreferrer">{escape(link)}</a>')
    if meta:
        head.append(f'<p class="qa-release-meta">{" · ".join(meta)}</p>')
    return (
        '<div class="qa-release">' + "".join(head)
        + f'<div class="qa-release-text">{highlight(text, spans)}</div></div>'
    )


def _when(iso: Any) -> str:
    if not iso:
        return "unknown"
    try:
        dt = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
        return dt.strftime("%Y-%m-%d %H:%M UTC")
    return dt.strftime("%Y-%m-%d %H:%M")


def status_html(status: Mapping[str, Any] | None, error: str | None = None) -> str:
    """The index status line: releases, chunks, when built, and whether the corpus changed."""
    if error:
        return f'<div class="qa-status qa-status-error">Index unavailable: {escape(error)}</div>'
    if not status:
        return '<div class="qa-status">Index status unknown.</div>'
    releases, chunks = status.get("releases", "?"), status.get("chunks", "?")
    stale = status.get("stale")
    if stale is True:
        fresh = '<span class="qa-stale">the corpus has changed since this build; rebuild to include the changes</span>'
    elif stale is False:
        fresh = '<span class="qa-fresh">up to date with the corpus</span>'
    else:
        fresh = "corpus state unknown"
    return (
        '<div class="qa-status">'
        f"<strong>{escape(releases)}</strong> releases, <strong>{escape(chunks)}</strong> chunks · "
        f"built {escape(_when(status.get('built_at')))} · {fresh}"
        "</div>"
    )


def ingest_html(accepted: Iterable[str] = (), refused: Iterable[tuple[str, str]] = (), note: str = "") -> str:
    """The upload report: accepted files, and refused files with the reason for each."""
    accepted, refused = list(accepted), list(refused)
    parts = ['<div class="qa-ingest">']
    if note:
        parts.append(f"<p>{escape(note)}</p>")
    if accepted:
        parts.append('<p class="qa-accepted-head">Accepted:</p><ul class="qa-accepted">')
        parts += [f"<li>{escape(name)}</li>" for name in accepted]
        parts.append("</ul>")
    if refused:
        parts.append('<p class="qa-refused-head">Refused:</p><ul class="qa-refused">')
        parts += [f"<li><strong>{escape(name)}</strong>: {escape(why)}</li>" for name, why in refused]
        parts.append("</ul>")
    if not accepted and not refused and not note:
        parts.append("<p>No files were given.</p>")
    parts.append("</div>")
    return "".join(parts)
