"""Matching benchmark (issue 3): the engine against a naive fuzzy loop and an exact automaton.

Run:  .venv/bin/python bench/match.py [--terms 10000] [--articles 2000] [--seed 7] [--quick]
                                     [--repeat 3]

Builds a synthetic watchlist of Arabic-derived names (people "Given [Patronymic] al-Family",
places "Deir al-X", organisations "Liwa al-X"), and news-like articles of about 3,000
characters made of common English words and unrelated capitalised names, with injected
mentions of watchlist terms in one of five variant channels: transliteration, article and
spacing change, Arabic script, one typo, or exact. Prints, in one run and on one core:

* engine articles/s and MB/s, index build time, peak memory (RSS high-water mark);
* the naive baseline (rapidfuzz ``partial_ratio`` of every spelling against every article,
  cutoff 90), timed on a sample and extrapolated, and an exact pyahocorasick automaton over
  the engine's normalised keys (whole words), the practical limit;
* recall of each on the injected mentions (overall and per channel), false alerts per 1,000
  clean articles (no injected mention; any reported match is false by construction);
* engine throughput at 100, 1,000, 10,000 and 50,000 terms.

Machines are noisy: every throughput figure (engine, exact, naive, each scaling row) is the
median of ``--repeat`` runs (default 3), each with a freshly built matcher or automaton, with
the min-max range after it; build times are medians too. Recall and false alerts come from the
first run (the engines are deterministic).

Caveat: the variant generator and the normaliser were written by the same people, so recall
on the transliteration/article/Arabic channels partly measures shared rules; the typo channel
is independent of them.
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import median, peak_mb, repeated, spread
from _common import run_exact as _run_exact
from rapidfuzz import fuzz

from monitor.engine.english import COMMON_WORDS
from monitor.engine.matcher import compile_watchlists
from monitor.models import Item, Term, Watchlist


def _split(text: str) -> list[str]:
    return text.split()


GIVEN = _split("""Ahmad Mohammad Ali Hussein Hassan Omar Khalid Mahmoud Mustafa Ibrahim Youssef
Abdullah Saleh Samir Tariq Walid Ziad Adel Amer Ayman Bassam Fadi Faisal Ghassan Haitham Hisham Imad
Jamal Kamal Karim Majid Marwan Mazen Nabil Nizar Osama Qasim Rami Riad Saad Salim Talal Wael
Yasser Yahya Zaid Anas Bilal Hamza Jalal Khaled Munir Murad Nasser Raed Rashid Sami Sultan
Fuad Asaad Jafar Suleiman Mansour Sharif Hadi Firas Ammar Bakr Issa Jawad Kazem Nuri""")
PREFIX_PLACE = _split("Deir Tal Ras Ain Kafr Jabal Wadi Bir Qasr Khirbet Tell Arab")
PREFIX_ORG = _split("Liwa Jaish Harakat Kataib Saraya Jabhat Ansar Ahrar Tajamu")
CONS = _split("b t th j h kh d dh r z s sh f q k l m n gh y b d r s k l m n t")
VOWELS = ["a", "a", "a", "i", "i", "u", "ou", "ee", "aa", "e", "o"]
ENDINGS = ["", "", "", "i", "i", "ani", "awi", "a", "iyya", "oun"]
CHANNELS = ("exact", "translit", "article", "arabic", "typo")


@dataclass(frozen=True)
class Mention:
    term: str
    channel: str
    text: str


def family(rng: random.Random) -> str:
    """An Arabic-looking family or place name: CV(C)VC plus an optional nisba/plural ending,
    with no vowel clusters (Shaibani, Khazali, Qamishli, Tughian)."""
    core = rng.choice(CONS) + rng.choice(VOWELS) + rng.choice(CONS)
    if rng.random() < 0.7:
        core += rng.choice(VOWELS) + rng.choice(CONS)
    return (core + rng.choice(ENDINGS)).capitalize()


def make_terms(n: int, rng: random.Random) -> list[Term]:
    terms: list[Term] = []
    seen: set[str] = set()
    while len(terms) < n:
        kind = rng.choices(["person", "place", "org"], weights=[6, 2, 2])[0]
        name = family(rng)
        if kind == "person":
            parts = [rng.choice(GIVEN)]
            if rng.random() < 0.2:
                parts.append(rng.choice(GIVEN))
            text = " ".join(parts) + " al-" + name
        elif kind == "place":
            text = (rng.choice(PREFIX_PLACE) + " al-" + name) if rng.random() < 0.5 else name
        else:
            text = rng.choice(PREFIX_ORG) + " al-" + name
        if text.lower() in seen or name.lower() in COMMON_WORDS:
            continue
        seen.add(text.lower())
        terms.append(Term(f"t{len(terms)}", text, (), kind))  # type: ignore[arg-type]
    return terms


_TRANSLIT = [("ou", "u"), ("u", "ou"), ("ee", "i"), ("i", "ee"), ("sh", "ch"), ("q", "k"),
             ("kh", "ch"), ("aa", "a"), ("a", "e"), ("ss", "s"), ("s", "ss"), ("dh", "z"),
             ("th", "t"), ("y", "i"), ("Mohammad", "Muhammad"), ("Ahmad", "Ahmed"),
             ("Hussein", "Husayn"), ("Youssef", "Yusuf"), ("Fuad", "Fouad"), ("Asaad", "As'ad")]
_AR = {"sh": "ش", "kh": "خ", "gh": "غ", "th": "ث", "dh": "ذ", "b": "ب", "t": "ت", "j": "ج",
       "h": "ح", "d": "د", "r": "ر", "z": "ز", "s": "س", "f": "ف", "q": "ق", "k": "ك", "l": "ل",
       "m": "م", "n": "ن", "w": "و", "y": "ي", "aa": "ا", "ee": "ي", "ou": "و", "ii": "ي",
       "'": "ا"}
_AR_GIVEN = {"Ahmad": "أحمد", "Mohammad": "محمد", "Ali": "علي", "Hussein": "حسين",
             "Hassan": "حسن", "Omar": "عمر", "Khalid": "خالد", "Ibrahim": "إبراهيم",
             "Youssef": "يوسف", "Abdullah": "عبد الله", "Fuad": "فؤاد", "Asaad": "أسعد"}


def translit(text: str, rng: random.Random) -> str:
    options = [(a, b) for a, b in _TRANSLIT if a in text[1:] or (len(a) > 3 and a in text)]
    rng.shuffle(options)
    for a, b in options:
        i = text.find(a, 1 if len(a) < 3 else 0)
        out = text[:i] + b + text[i + len(a):]
        if i >= 0 and not re.search(r"[aeiou]{3}", out.lower()):
            return out
    return text


def article(text: str, rng: random.Random) -> str:
    if " al-" not in text:
        return text.upper() if rng.random() < 0.3 else text.replace(" ", "-", 1)
    choice = rng.randrange(5)
    if choice == 0:
        return text.replace(" al-", " ")
    if choice == 1:
        return text.replace(" al-", " Al")  # joined: Alsharaa
    if choice == 2:
        return text.replace(" al-", " el-")
    if choice == 3:
        return text.replace(" al-", " Al ")
    head, name = text.split(" al-", 1)
    sun = name[:2].lower() if name[:2].lower() in ("sh", "th", "dh") else name[0].lower()
    return f"{head} a{sun}-{name}" if sun[0] in "tdrzsnl" else text.replace(" al-", " Al-")


def arabic_word(word: str) -> str:
    """A plausible Arabic spelling: consonants, long vowels as letters, glides as ي, a final
    -i as ي and -a as ة, geminates written once (as Arabic does without shadda)."""
    if word in _AR_GIVEN:
        return _AR_GIVEN[word]
    w = re.sub(r"([bdfhjklmnqrstwyz])\1", r"\1", word.lower())
    w = ("'" + w) if w[0] in "aeiou" else w  # initial vowel: written on an alef
    w = re.sub(r"(?<=[^aeiou])i(?=[aou])", "y", w)
    out: list[str] = []
    i = 0
    while i < len(w):
        for size in (2, 1):
            piece = w[i:i + size]
            if piece in _AR:
                out.append(_AR[piece])
                i += size
                break
        else:
            if w[i] == "i" and i == len(w) - 1:
                out.append("ي")
            elif w[i] == "a" and i == len(w) - 1:
                out.append("ة")
            i += 1
    return "".join(out)


def arabic(text: str) -> str:
    words = text.replace("al-", "ال").split()
    return " ".join(("ال" + arabic_word(w[2:])) if w.startswith("ال") else arabic_word(w)
                    for w in words)


def typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    longest = max(range(len(words)), key=lambda i: len(words[i].split("-")[-1]))
    w = words[longest]
    head, _, core = w.rpartition("-")
    if len(core) < 5:
        return text
    i = rng.randrange(1, len(core) - 1)
    op = rng.randrange(3)
    if op == 0:
        core = core[:i] + core[i + 1:]
    elif op == 1:
        core = core[:i] + core[i + 1] + core[i] + core[i + 2:]
    else:
        core = core[:i] + rng.choice("aeioulnrst") + core[i + 1:]
    words[longest] = (head + "-" if head else "") + core
    return " ".join(words)


def variant(term: Term, channel: str, rng: random.Random) -> str:
    if channel == "translit":
        return translit(term.name, rng)
    if channel == "article":
        return article(term.name, rng)
    if channel == "arabic":
        return arabic(term.name)
    if channel == "typo":
        return typo(term.name, rng)
    return term.name


_FILLER = sorted(w for w in COMMON_WORDS if len(w) > 1)
_PROPER = ["Washington", "Paris", "London", "Beirut", "Baghdad", "Damascus", "Ankara", "Tehran",
           "Reuters", "Monday", "Tuesday", "January", "Europe", "Smith", "Johnson", "Macron",
           "Brussels", "Geneva", "Cairo", "Amman", "Riyadh", "Doha", "Erbil", "Basra"]


def sentence(rng: random.Random) -> str:
    words = [rng.choice(_FILLER) for _ in range(rng.randint(8, 22))]
    for _ in range(rng.randint(0, 2)):
        words[rng.randrange(len(words))] = rng.choice(_PROPER)
    return " ".join(words).capitalize() + "."


def article_text(rng: random.Random, mentions: list[str], size: int = 3000) -> str:
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < size:
        parts.append(sentence(rng))
    for m in mentions:
        i = rng.randrange(len(parts))
        words = parts[i].split(" ")
        k = rng.randrange(1, len(words))
        words.insert(k, m)
        parts[i] = " ".join(words)
    return " ".join(parts)


def make_articles(terms: list[Term], n: int, clean: int,
                  rng: random.Random) -> tuple[list[Item], list[list[Mention]]]:
    items: list[Item] = []
    truth: list[list[Mention]] = []
    for i in range(n + clean):
        mentions: list[Mention] = []
        if i < n:
            for _ in range(rng.randint(1, 3)):
                term = rng.choice(terms)
                channel = rng.choice(CHANNELS)
                mentions.append(Mention(term.id, channel, variant(term, channel, rng)))
        text = article_text(rng, [m.text for m in mentions])
        items.append(Item(id=f"a{i}", source="bench", title="", content=text))
        truth.append(mentions)
    return items, truth


# ---------------------------------------------------------------- engines

def run_engine(terms: list[Term], items: list[Item],
               warm: bool = False) -> tuple[float, float, list[set[str]]]:
    """(build seconds, matching seconds, terms found per item). With ``warm`` the items are
    matched once before timing, as in a long-running daemon whose per-word caches are full.

    A full garbage collection runs between building and timing: otherwise the collector's
    debt from building the index (a one-off in a daemon) lands inside the timed pass or not
    depending on the allocation history (at 50,000 terms one such pass costs about 0.3 s and
    halved the cold figure from one run configuration to another)."""
    start = time.perf_counter()
    matcher = compile_watchlists([Watchlist("bench", tuple(terms))])
    build = time.perf_counter() - start
    if warm:
        for item in items:
            matcher.find(item)
    gc.collect()
    start = time.perf_counter()
    found = [{m.term for m in matcher.find(item)} for item in items]
    return build, time.perf_counter() - start, found


def run_exact(terms: list[Term], items: list[Item]) -> tuple[float, float, list[set[str]]]:
    """(normalisation seconds, scan seconds, terms found per item): bench/_common.py."""
    return _run_exact(terms, [item.content for item in items])


def run_naive(terms: list[Term], items: list[Item]) -> tuple[float, list[set[str]]]:
    names = [t.name for t in terms]
    start = time.perf_counter()
    found = []
    for item in items:
        text = item.content
        found.append({terms[i].id for i, name in enumerate(names)
                      if fuzz.partial_ratio(name, text, score_cutoff=90)})
    return time.perf_counter() - start, found


def recall(found: list[set[str]], truth: list[list[Mention]]) -> tuple[float, dict[str, float]]:
    hit: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for f, mentions in zip(found, truth, strict=True):
        for m in mentions:
            total[m.channel] += 1
            hit[m.channel] += m.term in f
    overall = sum(hit.values()) / max(1, sum(total.values()))
    return overall, {c: hit[c] / total[c] for c in CHANNELS if total[c]}


def false_alerts(found: list[set[str]], truth: list[list[Mention]]) -> float:
    """Reported terms that were not injected, per 1,000 articles."""
    wrong = sum(len(f - {m.term for m in t}) for f, t in zip(found, truth, strict=True))
    return 1000 * wrong / max(1, len(found))


def fmt(per_channel: dict[str, float]) -> str:
    return " ".join(f"{c}={v:.2f}" for c, v in per_channel.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--terms", type=int, default=10_000)
    ap.add_argument("--articles", type=int, default=2_000)
    ap.add_argument("--clean", type=int, default=1_000)
    ap.add_argument("--naive-sample", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per throughput measurement; the median is printed (default 3)")
    ap.add_argument("--quick", action="store_true", help="smaller run, skips 50k scaling")
    args = ap.parse_args()
    if args.quick:
        args.articles, args.clean, args.naive_sample = 300, 200, 5
    repeat = max(1, args.repeat)
    rng = random.Random(args.seed)
    all_terms = make_terms(50_000, rng)
    terms = all_terms[: args.terms]
    items, truth = make_articles(terms, args.articles, args.clean, rng)
    mb = sum(len(i.content.encode()) for i in items) / 1e6
    print(f"watchlist: {len(terms):,} terms; articles: {args.articles:,} with mentions + "
          f"{args.clean:,} clean, {mb / len(items) * 1e6:,.0f} bytes each")

    runs = repeated(lambda: run_engine(terms, items), repeat)
    found = runs[0][2]
    build = median([b for b, _, _ in runs])
    secs = median([t for _, t, _ in runs])
    r, per = recall(found[: args.articles], truth[: args.articles])
    fa = false_alerts(found[args.articles:], truth[args.articles:])
    eng_rate = len(items) / secs
    print(f"engine : {eng_rate:8,.0f} articles/s {mb / secs:6.2f} MB/s"
          f"{spread([len(items) / t for _, t, _ in runs])}  build {build:.2f}s  "
          f"recall {r:.3f} ({fmt(per)})  false alerts/1k clean {fa:.1f}  "
          f"peak RSS {peak_mb():.0f} MB")

    ex_runs = repeated(lambda: run_exact(terms, items), repeat)
    exact_found = ex_runs[0][2]
    ex_secs = median([n + s for n, s, _ in ex_runs])
    scan_secs = median([s for _, s, _ in ex_runs])
    r, per = recall(exact_found[: args.articles], truth[: args.articles])
    fa = false_alerts(exact_found[args.articles:], truth[args.articles:])
    ex_rate = len(items) / ex_secs
    print(f"exact  : {ex_rate:8,.0f} articles/s {mb / ex_secs:6.2f} MB/s"
          f"{spread([len(items) / (n + s) for n, s, _ in ex_runs])} "
          f"(scan only {len(items) / scan_secs:,.0f}/s)  recall {r:.3f} ({fmt(per)})  "
          f"false alerts/1k clean {fa:.1f}")

    sample = items[: args.naive_sample]
    naive_runs = repeated(lambda: run_naive(terms, sample), repeat)
    naive_found = naive_runs[0][1]
    r, per = recall(naive_found, truth[: len(sample)])
    naive_rate = len(sample) / median([t for t, _ in naive_runs])
    print(f"naive  : {naive_rate:8,.1f} articles/s (sample of {len(sample)})"
          f"{spread([len(sample) / t for t, _ in naive_runs], 1)}  "
          f"recall {r:.3f} ({fmt(per)})")
    print(f"ratios : engine/naive {eng_rate / naive_rate:,.0f}x  "
          f"engine/exact 1/{ex_rate / eng_rate:.1f}" + (" (medians)" if repeat > 1 else ""))

    sizes = [100, 1_000, 10_000] + ([] if args.quick else [50_000])
    sub = items[: min(500, len(items))]
    sub_truth = truth[: len(sub)]
    print("scaling (first 500 articles, mentions drawn from the 10k list; cold = fresh "
          "matcher, warm = second pass over the same articles"
          + (f"; median of {repeat} runs [min–max]" if repeat > 1 else "") + "):")
    for n in sizes:
        warm_rates: list[float] = []
        cold_rates: list[float] = []
        builds: list[float] = []
        found = []
        for _ in range(repeat):
            gc.collect()
            _, warm_secs, _ = run_engine(all_terms[:n], sub, warm=True)
            gc.collect()
            build, secs, found = run_engine(all_terms[:n], sub)
            warm_rates.append(len(sub) / warm_secs)
            cold_rates.append(len(sub) / secs)
            builds.append(build)
        hits = sum(m.term in f for f, t in zip(found, sub_truth, strict=True) for m in t
                   if int(m.term[1:]) < n)
        total = sum(1 for t in sub_truth for m in t if int(m.term[1:]) < n)
        cold_range = warm_range = ""
        if repeat > 1:
            cold_range = f" [{min(cold_rates):,.0f}–{max(cold_rates):,.0f}]"
            warm_range = f" [{min(warm_rates):,.0f}–{max(warm_rates):,.0f}]"
        print(f"  {n:6,} terms: cold {median(cold_rates):7,.0f} articles/s{cold_range}  warm "
              f"{median(warm_rates):7,.0f} articles/s{warm_range}  build "
              f"{median(builds):5.2f}s  recall {hits / max(1, total):.3f}  "
              f"peak RSS {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
