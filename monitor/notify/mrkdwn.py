"""Clean text made inert and cut to size for Slack mrkdwn (RELIABILITY.md B5, X01–X03, N08).

Input is text already cleaned by ``monitor.notify.text`` (steps 1–2 of the policy for
untrusted text); this module takes the last two:

3. **Neutralise mrkdwn** (``neutralise_mrkdwn``): the formatting characters ``*``, ``_``,
   ``~`` and backtick are replaced with look-alikes that Slack does not treat as markup
   (``∗ ˍ ∼ ˋ``), and a ``>`` that starts a line becomes ``＞`` so it cannot open a quote.
   No zero-width characters are added, so copying the text out of Slack keeps it readable.
   Bold around matched terms (``render_segments``) and the title link are the only markup,
   and they come from templates, never from input.
4. **Escape last** (``slack_escape``): ``&`` then ``<`` then ``>``. Nothing after this step
   decodes entities, so no input can produce ``<!channel>``, ``<@U…>``, ``<#C…>`` or a
   ``<url|label>`` link. Links are built only from ``safe_link`` URLs, after
   ``canonical_url`` has dropped tracking parameters and the fragment.

Lengths are counted in UTF-16 code units (``slack_len``), the stricter of Slack's possible
counts, and text is cut only between escaped characters (never inside ``&amp;``), never
after a ZWJ or before a combining mark, with ``…`` marking the cut. A link's label is cut
on its own (``fit_plain``) before the link is built round it, so no cut falls inside a link.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from monitor.notify.text import ELLIPSIS, can_cut_before

URL_LIMIT = 2_000

_MRKDWN = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"})
_QUOTE_START = re.compile(r"(^|\n)([ \t]*)>", re.MULTILINE)


def slack_escape(text: str) -> str:
    """Escape the three characters Slack treats as control: ``&`` first, then ``<``, ``>``.

    Apply last, after ``html_to_text``/``clean_text``: anything that decodes entities after
    this step would undo it.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def neutralise_mrkdwn(text: str) -> str:
    """Make ``*bold*``, ``_italic_``, ``~strike~``, code and ``>`` quotes inert (see module doc)."""
    return _QUOTE_START.sub(lambda m: f"{m.group(1)}{m.group(2)}＞", text.translate(_MRKDWN))


def inert(text: str) -> str:
    """Cleaned, neutralised and escaped: untrusted text ready for a mrkdwn object."""
    return slack_escape(neutralise_mrkdwn(text))


def safe_link(url: str) -> str | None:
    """``url`` fit to sit inside ``<url|label>``, or None.

    Only http/https with a host and no userinfo, at most 2,000 characters; ``<``, ``>``,
    ``|`` (and spaces, controls) are percent-encoded so the link cannot end early or carry a
    second label. ``&`` is written as ``&amp;`` as Slack requires inside ``<…>``.
    """
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > URL_LIMIT or any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    encoded = quote(url, safe="!#$%&'()*+,-./:;=?@[]~_")
    encoded = encoded.replace("&", "&amp;")
    return encoded if len(encoded) <= URL_LIMIT else None


def slack_len(text: str) -> int:
    """Length in UTF-16 code units: an emoji outside the BMP counts 2."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def fit_plain(text: str, limit: int) -> str:
    """Cut unescaped ``text`` to ``limit`` UTF-16 units once escaped, ending in ``…``.

    Returns the *escaped* string; cuts fall between characters, so an entity is never split.
    Every character costs at least one unit once escaped, so only the first ``limit + 1``
    can matter: a 100,000-character name is not escaped whole just to be cut.
    """
    text = text[: limit + 1]
    escaped = inert(text)
    if slack_len(escaped) <= limit:
        return escaped
    return render_segments([(text, False)], limit)


def render_segments(segments: Sequence[tuple[str, bool]], limit: int) -> str:
    """Escape ``(text, bold)`` segments into mrkdwn of at most ``limit`` UTF-16 units.

    Bold segments are wrapped in ``*…*``. When the budget runs out the text ends with ``…``
    (and a closing ``*`` if a bold run was open), cut at a safe character boundary.
    """
    rendered = [_wrap(inert(text), bold) for text, bold in segments]
    if slack_len("".join(rendered)) <= limit:
        return "".join(rendered)
    out: list[str] = []
    used = 0
    reserve = slack_len(ELLIPSIS) + 1  # room for "…" and a closing "*"
    for (text, bold), wrapped in zip(segments, rendered, strict=True):
        if used + slack_len(wrapped) <= limit - reserve:
            out.append(wrapped)
            used += slack_len(wrapped)
            continue
        out.append(_cut_segment(text, bold, limit - used - reserve))
        return "".join(out) + ELLIPSIS + ("*" if bold and out[-1] else "")
    return "".join(out)


def _wrap(piece: str, bold: bool) -> str:
    """Bold with the spaces outside the asterisks: Slack ignores ``* word *``."""
    core = piece.strip()
    if not bold or not core:
        return piece
    lead, trail = piece[: len(piece) - len(piece.lstrip())], piece[len(piece.rstrip()) :]
    return f"{lead}*{core}*{trail}"


def _cut_segment(text: str, bold: bool, budget: int) -> str:
    """The longest escaped prefix of ``text`` that fits ``budget`` (bold opener included)."""
    budget -= 1 if bold else 0
    neutral = neutralise_mrkdwn(text)
    taken, used, best = [], 0, 0
    for i, char in enumerate(neutral):
        cost = slack_len(slack_escape(char))
        if used + cost > budget:
            break
        taken.append(slack_escape(char))
        used += cost
        if can_cut_before(neutral, i + 1):
            best = len(taken)
    body = "".join(taken[:best]).rstrip()
    if not body:
        return ""
    return f"*{body}" if bold else body
