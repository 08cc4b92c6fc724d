"""Build test feeds. The seed story is read from ../shared/data at test time (it is
someone else's article: never copied into the project)."""

from __future__ import annotations

import email.utils
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip (fail under CI=true) when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        reason = f"{path} is absent: the shared data folder is not beside this checkout"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@dataclass(frozen=True)
class Entry:
    title: str
    link: str
    description: str = ""
    content: str = ""
    guid: str = ""
    # Now, by default: a source's first poll alerts only on recent items (older ones are
    # primed), and most tests are about what happens to news, not to a backlog.
    pub_date: str = field(default_factory=lambda: rfc822())


def rfc822(seconds_ago: float = 0.0) -> str:
    """An RSS ``pubDate`` ``seconds_ago`` before now."""
    return email.utils.formatdate(time.time() - seconds_ago, usegmt=True)


def rss(entries: list[Entry], title: str = "Test feed") -> bytes:
    items = []
    for e in entries:
        parts = [f"<title>{escape(e.title)}</title>", f"<link>{escape(e.link)}</link>"]
        if e.pub_date:  # "" leaves the item undated
            parts.append(f"<pubDate>{e.pub_date}</pubDate>")
        if e.guid:
            parts.append(f'<guid isPermaLink="false">{escape(e.guid)}</guid>')
        if e.description:
            parts.append(f"<description>{escape(e.description)}</description>")
        if e.content:
            parts.append(f"<content:encoded>{escape(e.content)}</content:encoded>")
        items.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>{escape(title)}</title><link>https://news.example/</link>"
        "<description>test</description>" + "".join(items) + "</channel></rss>"
    ).encode()


def seed_story(link: str = "https://news.example/syrian-officers-iraq") -> Entry:
    text = shared_data("seed-article.txt").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    title = lines[1]  # line 0 is the section name ("Policy")
    body = "\n\n".join(lines[2:])
    return Entry(title=title, link=link, description=lines[2], content=body)


UNRELATED = [
    Entry(
        "Central bank holds interest rates steady",
        "https://news.example/rates",
        "Policy makers kept the benchmark rate unchanged, citing easing inflation.",
    ),
    Entry(
        "Storm batters northern coast, thousands without power",
        "https://news.example/storm",
        "Winds of 120 km/h toppled trees and power lines.",
    ),
    Entry(
        "Five-set thriller decides the tennis final",
        "https://news.example/tennis",
        "The defending champion saved two match points before winning the title.",
    ),
    Entry(
        "Researchers map deep-sea coral reefs",
        "https://news.example/coral",
        "A survey found reefs at depths of 800 metres off the continental shelf.",
    ),
]
