"""Helpers shared by the matching benchmarks (bench/match.py, bench/match_real.py): repeated
timing with medians, the peak-memory reading, and the exact pyahocorasick baseline over the
engine's normalised words."""

from __future__ import annotations

import gc
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ahocorasick

from monitor.engine.tokens import tokenize
from monitor.models import Term

T = TypeVar("T")


def peak_mb() -> float:
    """Resident-set high-water mark of this process so far (MB; ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def repeated(fn: Callable[[], T], repeat: int) -> list[T]:
    """``fn()`` ``repeat`` times (at least once), collecting garbage in between so one run's
    leftovers do not slow the next."""
    out = []
    for _ in range(max(1, repeat)):
        gc.collect()
        out.append(fn())
    return out


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(rates: Sequence[float], digits: int = 0) -> str:
    """`` [median of N, X–Y/s]`` (min–max) for N > 1 runs, else "" (the single-run line)."""
    if len(rates) < 2:
        return ""
    return (f" [median of {len(rates)}, {min(rates):,.{digits}f}–{max(rates):,.{digits}f}/s]")


# ---------------------------------------------------------------- exact baseline

def norm_text(text: str) -> str:
    """The engine's normalised keys of every word, space-separated (same tokeniser)."""
    return " " + " ".join(tokenize(text, len(text)).keys()) + " "


def build_automaton(terms: Iterable[Term]) -> ahocorasick.Automaton:
    """An Aho-Corasick automaton over every spelling's normalised words, padded with spaces
    so that only whole words match; the value is the term id."""
    auto = ahocorasick.Automaton()
    for term in terms:
        for spelling in term.spellings:
            key = norm_text(spelling)
            if key.strip():
                auto.add_word(key, term.id)
    auto.make_automaton()
    return auto


def scan_exact(auto: ahocorasick.Automaton,
               texts: Sequence[str]) -> tuple[float, float, list[set[str]]]:
    """(normalisation seconds, scan seconds, term ids found per text)."""
    start = time.perf_counter()
    normalised = [norm_text(text) for text in texts]
    norm_time = time.perf_counter() - start
    start = time.perf_counter()
    found = [{tid for _, tid in auto.iter(text)} for text in normalised]
    return norm_time, time.perf_counter() - start, found


def run_exact(terms: Iterable[Term],
              texts: Sequence[str]) -> tuple[float, float, list[set[str]]]:
    """A fresh automaton, then ``scan_exact`` (after a full collection)."""
    auto = build_automaton(terms)
    gc.collect()
    return scan_exact(auto, texts)
