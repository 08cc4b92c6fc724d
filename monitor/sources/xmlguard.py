"""Refuse XML whose DOCTYPE declares entities, before feedparser sees it (RELIABILITY.md P05).

feedparser 6 hands entity declarations to expat (strict parser) and re-inserts "safe" ones
for its loose parser, so billion laughs and quadratic blowup reach it (17.5 s and ~2.9 GB
for one 110 KB feed, measured). Feeds have no legitimate need for entity declarations, so
any ``<!ENTITY`` in the DOCTYPE rejects the document — general or parameter, internal or
external (XXE). A plain external DOCTYPE such as RSS 0.91's Netscape DTD is allowed:
neither expat nor feedparser fetches it.

Why a small expat prolog screen and not defusedxml: defusedxml uses the same mechanism
(expat's ``EntityDeclHandler``) but parses the whole document and fails on malformed
bodies, which feedparser must still be allowed to recover. This screen feeds the text to
expat in 64 KiB pieces and stops at the root element, so a 10 MB body costs only its
prolog. It decodes the bytes itself (BOM, BOM-less UTF-16/32, EBCDIC, the declared
encoding, and Latin-1 as an ASCII-transparent view of everything else) because expat
knows neither UTF-32 nor multi-byte legacy encodings; every plausible decoding is screened,
so an entity hidden by an encoding trick is still seen. If expat cannot parse the prolog
(the document is malformed), the text up to the first element is searched for ``<!ENTITY``
instead, which covers what feedparser's loose parser would take.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from collections.abc import Iterator
from xml.parsers import expat

from monitor.errors import FetchRejected

PIECE = 64 * 1024
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SNIFF = (  # how "<?" or "<" starts in BOM-less wide encodings
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
    (b"\x4c\x6f\xa7\x94", "cp037"),  # "<?xm" in EBCDIC
)
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._\-]+)["']""")
_ENTITY = re.compile(r"<!ENTITY", re.IGNORECASE)
_ELEMENT = re.compile(r"<[A-Za-z_:]")


class _RootReached(Exception):
    """Raised from the start-element handler: the prolog is over."""


class _EntityDeclared(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


def check_xml(body: bytes, charset: str | None = None) -> None:
    """Raise ``FetchRejected('xml_entities')`` if ``body``'s DOCTYPE declares any entity.

    ``charset`` is the HTTP ``Content-Type`` charset, if any: feedparser honours it
    (RFC 3023), so the screen reads the body that way too. Cheap on large bodies: parsing
    stops at the root element. Never fetches anything.
    """
    for encoding in candidate_encodings(body, charset):
        found = _screen(_pieces(body, encoding))
        if found is not None:
            raise FetchRejected(
                "xml_entities",
                f"document declares entity {found!r} in its DOCTYPE (read as {encoding})",
                retryable=False,
            )


def candidate_encodings(body: bytes, charset: str | None = None) -> list[str]:
    """Every decoding a parser could plausibly apply to ``body``, most specific first."""
    found: list[str] = []
    head = body[:4]
    found += [name for bom, name in _BOMS if head.startswith(bom)][:1]
    found += [name for sig, name in _SNIFF if head.startswith(sig)][:1]
    declared = _DECLARED.match(body[:1024])
    for name in (charset, declared.group(1).decode("ascii") if declared else None):
        if name:
            with contextlib.suppress(LookupError):
                found.append(codecs.lookup(name.strip().strip("\"'")).name)
    found.append("latin-1")  # ASCII-transparent: markup of any ASCII-based encoding survives
    return list(dict.fromkeys(found))


def _pieces(body: bytes, encoding: str) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    for start in range(0, len(body), PIECE):
        text = decoder.decode(body[start : start + PIECE], final=start + PIECE >= len(body))
        yield text.lstrip("\ufeff") if start == 0 else text


def _screen(pieces: Iterator[str]) -> str | None:
    """The first declared entity's name, or None. Stops at the root element."""
    parser = expat.ParserCreate()
    parser.StartElementHandler = _stop_at_root
    parser.EntityDeclHandler = _entity_found
    seen: list[str] = []
    try:
        for piece in pieces:
            seen.append(piece)
            parser.Parse(piece, False)  # str input: expat reads it as UTF-8, ignoring the decl
        parser.Parse("", True)
    except _RootReached:
        return None
    except _EntityDeclared as found:
        return found.name
    except expat.ExpatError:
        return _fallback("".join(seen), parser.ErrorByteIndex)
    return None


def _fallback(text: str, error_at: int) -> str | None:
    """Malformed prolog: look for ``<!ENTITY`` up to the first element after the error."""
    start = max(0, min(error_at, len(text)))
    element = _ELEMENT.search(text, start)
    end = element.start() if element else len(text)
    return "<unparsed>" if _ENTITY.search(text, 0, end) else None


def _stop_at_root(name: str, attributes: object) -> None:
    raise _RootReached


def _entity_found(name: str, *rest: object) -> None:
    raise _EntityDeclared(name)
