"""E-mails (`.eml`, the standard library's `email`): a release sent by a press office.

The subject is the title, the sender (the From: name, else its address) the source, and the `Date:`
header the date when the text names none. The text is the text/plain part, its hard-wrapped lines
joined into paragraphs, or else the HTML part through the same extraction as a web page.
"""
from __future__ import annotations

import re

from ..errors import CorpusError

_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+")


def unwrap(text: str) -> str:
    """Plain text with its hard-wrapped lines joined: paragraphs (blank-line separated) become one line
    each; list items and a signature separator keep their own lines."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [" ".join(line.split()) for line in block.split("\n")]
        lines = [line for line in lines if line]
        out: list[str] = []
        for line in lines:
            if out and not _LIST_ITEM.match(line) and line != "--" and out[-1] != "--":
                out[-1] = f"{out[-1]} {line}"
            else:
                out.append(line)
        if out:
            paragraphs.append("\n".join(out))
    return "\n\n".join(paragraphs)


def convert(data: bytes, name: str, limits: dict) -> list[dict]:
    import email
    import email.policy
    import email.utils

    try:
        msg = email.message_from_bytes(data, policy=email.policy.default)
        headers = {k.lower() for k in msg.keys()}
    except Exception as exc:
        raise CorpusError(f"{name} is not a readable e-mail ({type(exc).__name__}); save the message as .eml again.") from None
    if not headers & {"from", "subject", "date", "to", "message-id"}:
        raise CorpusError(f"{name} is not an e-mail message (it has no From:, Subject: or Date: header); "
                          "save the message from the mail program as .eml.")
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        content = part.get_content() if part is not None else ""
    except Exception as exc:
        raise CorpusError(f"{name} has a body that could not be decoded ({type(exc).__name__}); "
                          "save the message as .eml again.") from None
    if part is not None and part.get_content_type() == "text/html" and content.strip():
        from .html import extract

        text = extract(content, name, what="e-mail")["text"]
    else:
        text = unwrap(content or "")
    if not text.strip():
        raise CorpusError(f"{name} has no body text; only e-mails with a written message can be read.")
    subject = " ".join(str(msg.get("subject", "") or "").split())
    source = ""
    try:
        sender = msg.get("from")
        if sender is not None and sender.addresses:
            a = sender.addresses[0]
            source = a.display_name or a.addr_spec
    except Exception:
        source = " ".join(str(msg.get("from", "") or "").split())
    day = None
    try:
        if msg.get("date"):
            day = email.utils.parsedate_to_datetime(str(msg["date"])).date().isoformat()
    except (TypeError, ValueError):
        day = None
    return [{"title": subject, "text": text, "date": day, "url": "", "source": source}]
