"""Transliteration benchmark (issue 3): which route from Arabic script into the engine's
comparison space recalls best?

Run:  .venv/bin/python bench/translit.py [--synthetic 3000] [--seed 7]

Three routes map one Arabic-script word into the space the engine compares names in (key,
consonant skeleton, final vowel class; see ``monitor/engine/normalize.py``):

* ``engine``   the engine's own consonant-class table (``_arabic_form``: what ships);
* ``anyascii`` anyascii of the word, then the engine's Latin normaliser and skeleton;
* ``icu``      PyICU ``Any-Latin; Latin-ASCII``, then the engine's Latin normaliser and skeleton.

All three share the engine's Arabic pre-normalisation (NFKC, harakat removed, alef variants,
alif maqsura, tatweel) and its article handling: the same readings of the word (as written,
with the attached article ال / وال / بال / ... removed, with the conjunction و removed) are
transliterated, and separate article words and compounds (أبو محمد, عبد الله) are folded by
the engine's tokeniser. Only the letter-to-Latin step differs.

A word "equals" a spelling word when some reading of each has the same key, the same
canonical given name, or the same consonant skeleton and final vowel class (the engine's rule
for Arabic script; "skeleton only" ignores the final class). A mention is recalled when, for
some spelling of its entity, every word of the spelling is found in order in the mention
(extra words such as a patronymic allowed), or every word of the mention is found in order in
the spelling ending on its last word (a surname or a nom de guerre alone: الجولاني).

Data: (i) every labelled mention with Arabic letters in the dev set
(``$MONITOR_MATCHING_DEV`` or ../shared/data/matching-dev, read at run time; skipped with a
message when absent); (ii) the Arabic-script variants of ``bench/match.py``'s generator
(imported, not copied); (iii) hard negatives: look-alikes that must NOT equal the name
(the Arabic word for "legitimacy" vs Sharaa, مسؤول "official" vs Mosul, and the dev set's
Arabic-script look-alikes). This measures the comparison space, not the matcher: the engine's
further guards (e.g. a one-word Arabic match needs four consonants, or three plus the article)
are not applied, so a "false equality" here is a trap the guards must catch.

Caveat: ``bench/match.py``'s Arabic generator was written next to the engine's table, so the
synthetic column favours the ``engine`` route; the dev column is real text.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import match as synth  # bench/match.py: the synthetic watchlist and its Arabic generator
from anyascii import anyascii

from monitor.engine.index import compile_spelling
from monitor.engine.matcher import compile_watchlists
from monitor.engine.names import canonical_given_name
from monitor.engine.normalize import (
    _AR_NORMAL,
    _AR_PREFIXES,
    _ARABIC_RE,
    _IGNORABLE_TABLE,
    _arabic_form,
    readings,
    strong_readings,
    token_form,
)
from monitor.engine.tokens import tokenize
from monitor.engine.watchlist import load_watchlist
from monitor.models import Item, Term, Watchlist

_DEFAULT_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "matching-dev"
ICU_ID = "Any-Latin; Latin-ASCII"
ICU_HOWTO = "apt-get install -y libicu-dev pkg-config && .venv/bin/pip install PyICU"

# Hard negatives that are not (only) in the dev labels: (Arabic text, spelling, what it is).
HARD_NEGATIVES = (
    ("الشرعية", "Ahmed al-Sharaa", "al-shar'iyya, legitimacy"),
    ("مسؤول", "Mosul", "mas'ul, official"),
    ("الشريعة", "Ahmed al-Sharaa", "al-sharia, Islamic law"),
)
_VARIANT_NOTE = "surface form matches a variant"  # dev label: a true spelling, wrong referent

Reading = tuple[str, str, bool]  # (key, skeleton, final vowel)


# ---------------------------------------------------------------- routes

def _ar_normal(raw: str) -> str:
    """The engine's Arabic pre-normalisation (shared by every route)."""
    word = "".join(c for c in unicodedata.normalize("NFKC", raw)
                   if not unicodedata.combining(c)).translate(_AR_NORMAL)
    return word.translate(_IGNORABLE_TABLE)


def _ar_readings(word: str) -> list[str]:
    """The engine's readings of a normalised Arabic word: as written, article removed,
    conjunction و removed (the same rules as ``normalize._arabic_form``)."""
    out = [word]
    for prefix, _ in _AR_PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 2:
            out.append(word[len(prefix):])
            break
    if word.startswith("و") and len(word) >= 4 and not word.startswith("وال"):
        out.append(word[1:])
    return out


_latin_form = token_form.__wrapped__  # uncached, so the timing is the real cost


def _via_latin(translit: Callable[[str], str]) -> Callable[[str], frozenset[Reading]]:
    def route(raw: str) -> frozenset[Reading]:
        out: set[Reading] = set()
        for reading in _ar_readings(_ar_normal(re.sub(r"[\s\-]+", "", raw))):
            form = _latin_form(translit(reading))
            out.update((r.key, r.skel, r.final_vowel) for r in strong_readings(form) if r.key)
        return frozenset(out)
    return route


def engine_route(raw: str) -> frozenset[Reading]:
    form = _arabic_form(re.sub(r"[\s\-]+", "", raw))
    return frozenset((r.key, r.skel, r.final_vowel) for r in readings(form))


def make_routes() -> tuple[dict[str, Callable[[str], frozenset[Reading]]], str | None]:
    routes = {"engine table": engine_route, "anyascii": _via_latin(anyascii)}
    try:
        import icu  # type: ignore[import-not-found]  # optional, not a project dependency
    except ImportError:
        return routes, (f"PyICU not installed: ICU column skipped. To enable it: {ICU_HOWTO}")
    trans = icu.Transliterator.createInstance(ICU_ID)
    routes[f"ICU {ICU_ID}"] = _via_latin(trans.transliterate)
    return routes, None


# ---------------------------------------------------------------- comparison

@dataclass(frozen=True)
class Word:
    raw: str
    arabic: bool
    readings: frozenset[Reading]  # Latin words: the engine's strong readings


def latin_word(form_readings: Iterable) -> frozenset[Reading]:
    return frozenset((r.key, r.skel, r.final_vowel) for r in form_readings if r.key)


def words_of(text: str, route: Callable[[str], frozenset[Reading]]) -> list[Word]:
    """The engine's tokens of ``text``; Arabic ones mapped by ``route``."""
    out = []
    for tok in tokenize(text, len(text)):
        if _ARABIC_RE.search(tok.raw):
            out.append(Word(tok.raw, True, route(tok.raw)))
        else:
            out.append(Word(tok.raw, False, latin_word(strong_readings(tok.form))))
    return out


def spelling_words(term: Term, text: str) -> list[Word]:
    sp = compile_spelling(0, "bench", term, text)  # honorifics dropped, as the engine does
    if sp is None:
        return []
    return [Word(t.raw, False, latin_word(strong_readings(t.form)))
            for t in sp.tokens if not t.stop]


def equal(a: Word, b: Word, strict: bool) -> bool:
    for ka, sa, fa in a.readings:
        ca = canonical_given_name(ka)
        for kb, sb, fb in b.readings:
            if ka == kb or (ca is not None and ca == canonical_given_name(kb)):
                return True
            if sa and sa == sb and (fa == fb or not strict):
                return True
    return False


def _embeds(small: Sequence[Word], big: Sequence[Word], strict: bool) -> bool:
    """Every word of ``small`` equals a word of ``big``, in order (greedy is exact here)."""
    j = 0
    for w in small:
        while j < len(big) and not equal(w, big[j], strict):
            j += 1
        if j == len(big):
            return False
        j += 1
    return True


def recalled(mention: Sequence[Word], spellings: Sequence[Sequence[Word]], strict: bool) -> bool:
    for sp in spellings:
        if not sp or not mention:
            continue
        if _embeds(sp, mention, strict):
            return True  # the whole spelling, in order (a patronymic may stand inside)
        if (len(mention) < len(sp) and equal(mention[-1], sp[-1], strict)
                and _embeds(mention[:-1], sp[:-1], strict)):
            return True  # a trailing part of the spelling alone (surname, nom de guerre)
    return False


# ---------------------------------------------------------------- data

@dataclass(frozen=True)
class Case:
    text: str  # Arabic-script mention
    term: Term
    note: str = ""


def dev_dir() -> Path:
    return Path(os.environ.get("MONITOR_MATCHING_DEV") or _DEFAULT_DEV)


def dev_cases(dev: Path) -> tuple[list[Case], list[Case]]:
    """(labelled Arabic-script mentions, Arabic-script look-alikes) of the dev set."""
    terms = {t.id: t for t in load_watchlist(dev / "watchlist.yaml").terms}
    mentions: list[Case] = []
    negatives: list[Case] = []
    for line in (dev / "labels.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        for m in row["mentions"]:
            if _ARABIC_RE.search(m["surface"]) and m["entity"] in terms:
                mentions.append(Case(m["surface"], terms[m["entity"]], row["id"]))
        for h in row.get("hard_negatives", []):
            if (_ARABIC_RE.search(h["surface"]) and h["looks_like"] in terms
                    and _VARIANT_NOTE not in h.get("note", "")):
                negatives.append(Case(h["surface"], terms[h["looks_like"]], h.get("note", "")))
    return mentions, negatives


def synthetic_cases(n: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    return [Case(synth.variant(t, "arabic", rng), t, "synthetic")
            for t in synth.make_terms(n, rng)]


def negative_cases(dev_negatives: Sequence[Case]) -> list[Case]:
    cases = [Case(text, Term(f"neg{i}", name, (), "person" if " " in name else "place"), note)
             for i, (text, name, note) in enumerate(HARD_NEGATIVES)]
    seen = {(c.text, c.term.name) for c in cases}
    for c in dev_negatives:
        key = (c.text, c.term.name)
        if key not in seen and not any(c.text == h[0] for h in HARD_NEGATIVES):
            seen.add(key)
            cases.append(c)
    return cases


# ---------------------------------------------------------------- measurement

def run(cases: Sequence[Case], route: Callable[[str], frozenset[Reading]],
        strict: bool) -> tuple[int, list[Case]]:
    """(recalled count, the cases not recalled)."""
    cache: dict[str, list[list[Word]]] = {}
    hits = 0
    missed: list[Case] = []
    for c in cases:
        sps = cache.get(c.term.id)
        if sps is None:
            sps = cache[c.term.id] = [spelling_words(c.term, s) for s in c.term.spellings]
        if recalled(words_of(c.text, route), sps, strict):
            hits += 1
        else:
            missed.append(c)
    return hits, missed


def us_per_word(route: Callable[[str], frozenset[Reading]], words: Sequence[str],
                repeat: int = 5) -> float:
    """Median over ``repeat`` passes of the uncached cost of one word, in µs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for w in words:
            route(w)
        times.append((time.perf_counter() - start) / len(words) * 1e6)
    return statistics.median(times)


def matcher_hits(cases: Sequence[Case]) -> int:
    """How many cases the full matcher (engine table plus its guards) reports when the
    Arabic text stands alone as an item: a check that the token-level criterion is sane."""
    terms = tuple({c.term.id: c.term for c in cases}.values())
    if not terms:
        return 0
    matcher = compile_watchlists([Watchlist("bench", terms)])
    return sum(c.term.id in {m.term for m in matcher.find(Item(id=str(i), source="bench",
                                                                 title="", content=c.text))}
               for i, c in enumerate(cases))


def arabic_words(cases: Iterable[Case]) -> list[str]:
    out = []
    for c in cases:
        out.extend(t.raw for t in tokenize(c.text, len(c.text)) if _ARABIC_RE.search(t.raw))
    return out


def pct(hits: int, total: int) -> str:
    return f"{hits / total:.3f} ({hits}/{total})" if total else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", type=int, default=3000,
                    help="synthetic terms (one Arabic-script variant each)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--misses", type=int, default=12, help="misses listed per route")
    args = ap.parse_args()

    routes, icu_note = make_routes()
    if icu_note:
        print(icu_note)
    dev = dev_dir()
    if (dev / "labels.jsonl").is_file() and (dev / "watchlist.yaml").is_file():
        dev_mentions, dev_negatives = dev_cases(dev)
    else:
        print(f"dev set not found at {dev} (set MONITOR_MATCHING_DEV): dev column skipped")
        dev_mentions, dev_negatives = [], []
    synthetic = synthetic_cases(args.synthetic, args.seed)
    negatives = negative_cases(dev_negatives)
    words = sorted(set(arabic_words(dev_mentions) + arabic_words(synthetic[:500])
                       + arabic_words(negatives)))
    print(f"dev Arabic-script mentions: {len(dev_mentions)} "
          f"({len({c.text for c in dev_mentions})} distinct); synthetic Arabic variants: "
          f"{len(synthetic)}; hard negatives: {len(negatives)}; timing words: {len(words)}")

    results = {}
    for strict in (True, False):
        title = ("skeleton + final vowel class (the engine's rule for Arabic script)" if strict
                 else "skeleton only (final vowel class ignored)")
        print(f"\nequality = key, canonical given name, or {title}")
        print(f"  {'route':34} {'recall dev Arabic':>20} {'recall synthetic':>22} "
              f"{'false equalities':>17} {'µs/word':>8}")
        for name, route in routes.items():
            dev_hits, dev_missed = run(dev_mentions, route, strict)
            syn_hits, syn_missed = run(synthetic, route, strict)
            neg_hits, neg_missed = run(negatives, route, strict)
            false_eq = [c for c in negatives if c not in neg_missed]
            us = us_per_word(route, words)
            print(f"  {name:34} {pct(dev_hits, len(dev_mentions)):>20} "
                  f"{pct(syn_hits, len(synthetic)):>22} {f'{neg_hits}/{len(negatives)}':>17} "
                  f"{us:8.1f}")
            results[name, strict] = (dev_missed, syn_missed, false_eq)

    print(f"\nfull matcher (engine table + its guards), each text alone as an item: dev "
          f"{pct(matcher_hits(dev_mentions), len(dev_mentions))}, synthetic "
          f"{pct(matcher_hits(synthetic), len(synthetic))}, hard negatives alerted "
          f"{matcher_hits(negatives)}/{len(negatives)}")

    print("\nhard negatives (Arabic text vs spelling: which routes equate them, strict / loose):")
    for c in negatives:
        marks = ", ".join(
            f"{name.split()[0]} {'=' if c in results[name, True][2] else '-'}"
            f"{'=' if c in results[name, False][2] else '-'}" for name in routes)
        print(f"  {c.text:12} vs {' / '.join(c.term.spellings)}: {marks}   ({c.note})")

    for name in routes:
        dev_missed, syn_missed, _ = results[name, True]
        print(f"\nmisses of {name} (strict): dev {len(dev_missed)}, synthetic "
              f"{len(syn_missed)} (skeletons of the Arabic words' readings; V = ends in a vowel)")
        for label, missed in (("dev", dev_missed), ("synthetic", syn_missed)):
            distinct: dict[tuple[str, str], int] = {}
            for c in missed:
                distinct[c.text, c.term.name] = distinct.get((c.text, c.term.name), 0) + 1
            for (text, term), count in list(distinct.items())[: args.misses]:
                shown = " ".join(sorted({r[1] + ("V" if r[2] else "")
                                         for w in words_of(text, routes[name]) if w.arabic
                                         for r in w.readings}))
                print(f"  {label:9} {text} (x{count}) vs {term!r}: skeletons {shown}")
            if len(distinct) > args.misses:
                print(f"  {label:9} ... {len(distinct) - args.misses} more distinct")


if __name__ == "__main__":
    main()
