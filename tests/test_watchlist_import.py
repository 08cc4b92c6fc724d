"""`monitor watchlist import`: big watchlists are loaded from a CSV or FollowTheMoney
entities, not typed; the file it writes loads back to the same terms, says what happened to
every row, and `monitor check` on 10,000 imported terms is quick and summarised."""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.engine.watchlist import load_watchlist
from monitor.lint import find_positions
from monitor.yamlfile import position, read_yaml
from tests.harness.daemon import run_monitor

pytestmark = pytest.mark.timeout(120)


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


def terms_of(path: Path) -> list[tuple[str, str, list[str], str]]:
    return [(t.id, t.name, list(t.aliases), t.kind) for t in load_watchlist(path).terms]


def header_of(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if line.startswith("#"))


SMALL_CSV = [
    ["name", "aliases", "kind"],                                                # line 1
    ["Ahmad al-Sharaa", "Abu Mohammad al-Jolani; Jolani | Al-Julani", "individual"],
    ["Rutba", "Ar-Rutbah", "city"],
    ["NO", "", "org"],                                   # YAML 1.1 reads it as false
    ["", "orphan alias", "person"],                      # 5: empty name
    ["ahmad  AL-SHARAA", "Ahmed al-Shara; Jolani", "person"],  # duplicate of line 2
    ["Yes Movement", "yes; ~Tilde; *Star Group; #Hash Tag; Key: Value; 1e3", "group"],
    ["X", "", "person"],                                 # 8: one letter
    ["Ab", "", "person"],                                # 9: two letters, not an acronym
    ["A" * 201, "", "person"],                           # 10: not a name
    ["Hayat Tahrir al-Sham", "HTS", "vessel"],           # unknown kind
]


def test_a_csv_becomes_a_watchlist_that_loads_back_with_duplicates_merged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_csv(tmp_path / "syria.csv", SMALL_CSV)
    out = tmp_path / "rules" / "syria.yaml"
    assert main(["watchlist", "import", str(source), "--out", str(out)]) == 0
    assert terms_of(out) == [
        ("ahmad-al-sharaa", "Ahmad al-Sharaa",
         ["Abu Mohammad al-Jolani", "Ahmed al-Shara", "Al-Julani", "Jolani"], "person"),
        ("hayat-tahrir-al-sham", "Hayat Tahrir al-Sham", ["HTS"], "topic"),
        ("no", "NO", [], "org"),
        ("rutba", "Rutba", ["Ar-Rutbah"], "place"),
        ("yes-movement", "Yes Movement",
         ["#Hash Tag", "*Star Group", "1e3", "Key: Value", "yes", "~Tilde"], "org"),
    ]
    assert load_watchlist(out).name == "syria"
    text = out.read_text(encoding="utf-8")
    for quoted in ("'NO'", "'yes'", "'1e3'", "'*Star Group'", "'#Hash Tag'", "'Key: Value'"):
        assert quoted in text, quoted
    assert "- ~Tilde" in text, "a string to every YAML reader: left plain"
    header = header_of(out)
    assert f"from {source}" in header and " UTC." in header
    assert "read 10 rows: imported 5 term(s), merged 1 row into the terms they duplicate, " \
        "skipped 4" in header
    assert "skipped 2 rows: name of fewer than 3 letters (after normalisation) (lines 8, 9)" \
        in header
    assert "skipped 1 row: empty name (line 5)" in header
    assert "skipped 1 row: name over 200 characters (line 10)" in header
    assert "kind values not understood (the default kind was used): 'vessel' (1)" in header
    assert "add one by hand with 'match: exact'" in header
    assert "kept 1 spelling(s) of two capital letters as acronyms" in header
    printed = capsys.readouterr().out
    assert "skipped 1 row: empty name (line 5)" in printed
    assert f"wrote {out}: watchlist 'syria', 5 term(s)" in printed


def test_check_places_warnings_in_an_imported_file_where_the_loader_does(
    tmp_path: Path,
) -> None:
    source = write_csv(tmp_path / "syria.csv", SMALL_CSV)
    out = tmp_path / "syria.yaml"
    assert main(["watchlist", "import", str(source), "--out", str(out)]) == 0
    wl = load_watchlist(out)
    locs = [("terms", i, "name") for i in range(len(wl.terms))] + [
        ("terms", i, "aliases", j) for i, t in enumerate(wl.terms) for j in range(len(t.aliases))]
    root = read_yaml(out)
    fast = find_positions(out, locs, wl)  # line by line, checked against the loaded terms
    walked = find_positions(out, locs)  # the YAML parser's events
    for loc in locs:
        assert fast[loc] == walked[loc] == position(root, list(loc)), loc


def test_yaml_hostile_strings_are_quoted_so_every_reader_sees_text(tmp_path: Path) -> None:
    hostile = ["NO", "yes", "ON", "Off", "null", "1e3", "0x1F", "12:30", "*Anchor Name",
               "&Amp Name", "#Hash Name", "Name: With Colon", "[Bracket Name]", "{Brace Name}",
               "!Bang Name", "%Percent", "@At Name", "`Tick Name", "|Pipe Name", ">Fold Name",
               "'Quote' Name", '"Double" Name', "Back\\slash Name", "Comma, Name",
               "- Dash Name", "? Query Name"]
    source = write_csv(tmp_path / "hostile.csv", [["name", "kind"]] + [[h, "org"] for h in hostile])
    out = tmp_path / "hostile.yaml"
    assert main(["watchlist", "import", str(source), "--out", str(out)]) == 0
    names = {name for _, name, _, _ in terms_of(out)}
    assert names == set(hostile)
    for plain in ("NO", "yes", "ON", "Off", "null", "1e3", "0x1F", "12:30"):
        assert f"name: '{plain}'" in out.read_text(encoding="utf-8"), plain


def test_csv_columns_come_from_flags_and_the_delimiter_from_the_header(
    tmp_path: Path,
) -> None:
    source = write_csv(tmp_path / "list.csv", [
        ["Ref", "Full Name", "Other names", "Type"],
        ["SY-001", "Maher al-Assad", "Maher Assad / Abu Bashar", "Individual"],
        ["SY-002", "Fourth Armoured Division", "4th Division", "Entity"],
        ["SY-001", "Maher Hafez al-Assad", "", "Individual"],  # same id: one entity
    ], delimiter=";")
    out = tmp_path / "list.yaml"
    code = main(["watchlist", "import", str(source), "--out", str(out), "--name", "officers",
                 "--name-column", "full name", "--aliases-column", "Other names",
                 "--alias-separator", "/", "--kind-column", "Type", "--id-column", "Ref"])
    assert code == 0
    assert terms_of(out) == [
        ("sy-002", "Fourth Armoured Division", ["4th Division"], "org"),
        ("sy-001", "Maher al-Assad", ["Abu Bashar", "Maher Assad", "Maher Hafez al-Assad"],
         "person"),
    ]
    assert load_watchlist(out).name == "officers"
    assert "CSV, delimiter ';'; columns: name='Full Name', aliases='Other names', " \
        "kind='Type', id='Ref'" in header_of(out)


def test_kind_flag_sets_the_kind_of_every_row_without_one(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "people.csv", [["name"], ["Fuad Hussein"], ["Hadi al-Amiri"]])
    out = tmp_path / "people.yaml"
    assert main(["watchlist", "import", str(source), "--out", str(out), "--kind", "person"]) == 0
    assert [kind for *_, kind in terms_of(out)] == ["person", "person"]


@pytest.mark.parametrize(("rows", "flags", "message"), [
    ([["who", "what"], ["Rutba", "place"]], [],
     "no column is obviously the name (columns: 'who', 'what'); choose one with --name-column"),
    ([["name", "kind"], ["Rutba", "place"]], ["--kind-column", "knd"],
     "--kind-column 'knd': "),
    ([["name"], ["Rutba"]], ["--weak-aliases"], "--weak-aliases: only for FollowTheMoney"),
    ([["name"], ["Rutba"]], ["--delimiter", ";;"], "--delimiter ';;': one character"),
])
def test_flags_that_do_not_fit_the_source_are_bad_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list[list[str]],
    flags: list[str], message: str,
) -> None:
    source = write_csv(tmp_path / "x.csv", rows)
    out = tmp_path / "x.yaml"
    assert main(["watchlist", "import", str(source), "--out", str(out), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_an_unknown_column_flag_suggests_the_close_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_csv(tmp_path / "x.csv", [["name", "kind"], ["Rutba", "place"]])
    assert main(["watchlist", "import", str(source), "--out", str(tmp_path / "x.yaml"),
                 "--kind-column", "knd"]) == 2
    assert "did you mean 'kind'?" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing", "not-utf8", "header-only", "nothing-usable"])
def test_a_source_that_cannot_be_read_or_has_no_usable_row_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    source = tmp_path / "src.csv"
    if case == "not-utf8":
        source.write_bytes(b"name\nRutba\nDeir ez-Zor\n" + "Hal\xe9b\n".encode("latin-1"))
    elif case == "header-only":
        source.write_text("name,aliases\n", encoding="utf-8")
    elif case == "nothing-usable":
        write_csv(source, [["name", "kind"], ["", "person"], ["Ab", "person"], ["x", "org"]])
    out = tmp_path / "out.yaml"
    assert main(["watchlist", "import", str(source), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert {"missing": "cannot read", "not-utf8": "not UTF-8 text",
            "header-only": "no usable row (0 read)",
            "nothing-usable": "no usable row (3 read)"}[case] in err
    assert not out.exists()


FTM = [
    {"id": "NK-a1b2C3", "schema": "Person", "properties": {
        "name": ["Ahmad al-Sharaa", "Ahmed al-Shara"], "alias": ["Abu Mohammad al-Jolani"],
        "weakAlias": ["Abu Mohammad"], "previousName": ["Ahmad Hussein al-Sharaa"],
        "birthDate": ["1982"], "nationality": ["sy"]}},
    {"id": "Q1140582", "schema": "Organization", "properties": {
        "name": ["Hay'at Tahrir al-Sham"], "alias": ["HTS", "NO"]}},
    {"id": "addr-rutba", "schema": "Address", "properties": {
        "full": ["Rutba, Anbar Governorate, Iraq"], "country": ["iq"]}},
    {"id": "vessel-1", "schema": "Vessel", "properties": {"name": ["Sea Star"]}},
    {"id": "ofac-2", "schema": "Company", "properties": {"name": ["HAY'AT  TAHRIR AL-SHAM"],
                                                         "alias": ["Jabhat al-Nusra"]}},
]


def write_ftm(path: Path) -> Path:
    lines = [json.dumps(e) for e in FTM]
    lines.insert(4, "{not json")  # line 5
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_followthemoney_entities_become_terms_by_schema_without_weak_aliases(
    tmp_path: Path,
) -> None:
    source = write_ftm(tmp_path / "sanctions.jsonl")
    out = tmp_path / "sanctions.yaml"
    assert main(["watchlist", "import", str(source), "--out", str(out)]) == 0
    assert terms_of(out) == [
        ("nk-a1b2c3", "Ahmad al-Sharaa",
         ["Abu Mohammad al-Jolani", "Ahmad Hussein al-Sharaa", "Ahmed al-Shara"], "person"),
        ("q1140582", "Hay'at Tahrir al-Sham", ["HTS", "Jabhat al-Nusra", "NO"], "org"),
        ("addr-rutba", "Rutba, Anbar Governorate, Iraq", [], "place"),
    ]
    header = header_of(out)
    assert "read 6 entities: imported 3 term(s), merged 1 entity into the terms they " \
        "duplicate, skipped 2" in header
    assert "schemas not imported: Vessel (1)" in header
    assert "skipped 1 entity: not JSON (line 5)" in header
    assert "skipped 1 entity: schema not imported (line 4)" in header
    assert "left out 1 weak alias(es) (weakAlias): short, common strings" in header
    assert "--weak-aliases keeps them" in header


def test_weak_aliases_are_imported_only_when_asked(tmp_path: Path) -> None:
    source = write_ftm(tmp_path / "sanctions.jsonl")
    out = tmp_path / "sanctions.yaml"
    assert main(["watchlist", "import", str(source), "--out", str(out), "--weak-aliases",
                 "--format", "ftm"]) == 0
    assert "Abu Mohammad" in load_watchlist(out).terms[0].aliases
    assert "kept 1 weak alias(es) (--weak-aliases)" in header_of(out)


def test_an_existing_file_is_replaced_only_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rules" / "w.yaml"
    out.parent.mkdir()
    out.write_text("terms: [Rutba]\n", encoding="utf-8")
    source = write_csv(tmp_path / "w.csv", [["name"], ["Anbar"]])
    assert main(["watchlist", "import", str(source), "--out", str(out)]) == 1
    assert "exists; nothing written (--force replaces it)" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "terms: [Rutba]\n"
    assert main(["watchlist", "import", str(source), "--out", str(out), "--force"]) == 0
    assert [name for _, name, _, _ in terms_of(out)] == ["Anbar"]
    assert [p.name for p in out.parent.iterdir()] == ["w.yaml"], "no temporary file left"


def test_a_reordered_source_imports_to_the_same_file(tmp_path: Path) -> None:
    rows = [row for row in SMALL_CSV[1:] if row[0] != "ahmad  AL-SHARAA"]  # no merge order
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    for rows_, out in ((rows, first), (shuffled, second)):
        source = write_csv(tmp_path / "src.csv", [SMALL_CSV[0], *rows_])
        assert main(["watchlist", "import", str(source), "--out", str(out), "--force"]) == 0

    def body(path: Path) -> list[str]:
        return [line for line in path.read_text(encoding="utf-8").splitlines()
                if not line.startswith("#")]

    assert body(first) == body(second)


# --- 10,000 terms, end to end ---------------------------------------------------------------

GIVEN = ["Ahmad", "Mohammad", "Ali", "Hussein", "Hassan", "Omar", "Khalid", "Mahmoud",
         "Mustafa", "Ibrahim", "Youssef", "Abdullah", "Saleh", "Samir", "Tariq", "Walid", "Ziad",
         "Adel", "Amer", "Ayman", "Bassam", "Fadi", "Faisal", "Ghassan", "Haitham", "Hisham",
         "Imad", "Jamal", "Kamal", "Karim", "Majid", "Marwan", "Mazen", "Nabil", "Nizar", "Osama",
         "Qasim", "Rami", "Riad", "Saad", "Salim", "Talal", "Wael", "Yasser", "Yahya", "Zaid",
         "Anas", "Bilal", "Hamza", "Munir", "Murad", "Nasser", "Raed", "Rashid", "Sami", "Sultan",
         "Fuad", "Jafar", "Suleiman", "Mansour", "Hadi", "Firas", "Ammar", "Layla", "Fatima",
         "Maryam", "Zainab", "Huda", "Rana"]
CONSONANTS = ["b", "t", "th", "j", "h", "kh", "d", "dh", "r", "z", "s", "sh", "f", "q", "k", "l",
              "m", "n", "gh", "y"]
VOWELS = ["a", "a", "i", "i", "u", "ou", "ee", "aa", "e", "o"]
ENDINGS = ["", "", "i", "i", "ani", "awi", "a", "iyya", "oun"]
PLACES = ["Deir", "Tal", "Ras", "Ain", "Kafr", "Jabal", "Wadi", "Bir", "Qasr", "Khirbet"]
UNITS = ["Liwa", "Jaish", "Harakat", "Kataib", "Saraya", "Ansar"]
FIRMS = ["Trading Company", "Holding Group", "Logistics LLC", "General Contracting", "Exchange"]


def family(rng: random.Random) -> str:
    """An Arabic-looking family or place name (Shaibani, Khazali, Qamishli)."""
    core = rng.choice(CONSONANTS) + rng.choice(VOWELS) + rng.choice(CONSONANTS)
    if rng.random() < 0.7:
        core += rng.choice(VOWELS) + rng.choice(CONSONANTS)
    return (core + rng.choice(ENDINGS)).capitalize()


def sanctions_rows(n: int, seed: int = 7) -> list[list[str]]:
    """A sanctions-style list: people with patronymics and kunyas, armed groups and firms
    with their initials, places; a few bare surnames, as real lists have."""
    rng = random.Random(seed)
    rows = [["ref", "full name", "aliases", "type"]]
    for i in range(n):
        kind = rng.choices(["individual", "entity", "city"], weights=[6, 3, 1])[0]
        name, aliases = family(rng), []
        if kind == "individual":
            given = " ".join(rng.sample(GIVEN, 2 if rng.random() < 0.3 else 1))
            if rng.random() < 0.4:
                aliases.append(f"Abu {rng.choice(GIVEN)} al-{family(rng)}")
            if rng.random() > 0.05:
                name = f"{given} al-{name}"
        elif kind == "entity":
            name = (f"{rng.choice(UNITS)} al-{name}" if rng.random() < 0.5
                    else f"{name} {rng.choice(FIRMS)}")
            if rng.random() < 0.3:  # initials: "Kataib al-Shaibani" is "KS"
                aliases.append("".join(w.removeprefix("al-")[0] for w in name.split()).upper())
        elif rng.random() < 0.6:
            name = f"{rng.choice(PLACES)} al-{name}"
        rows.append([f"SY-{i:05d}", name, "; ".join(aliases), kind])
    return rows


@pytest.mark.slow
def test_ten_thousand_imported_terms_check_quickly_with_summarised_warnings(
    tmp_path: Path,
) -> None:
    source = write_csv(tmp_path / "sanctions.csv", sanctions_rows(10_000))
    out = tmp_path / "rules" / "sanctions.yaml"
    imported = run_monitor("watchlist", "import", str(source), "--out", str(out),
                           "--id-column", "ref", "--kind-column", "type")
    assert imported.code == 0, imported.stderr
    assert "read 10,000 rows" in imported.stdout
    wrote = re.search(r"wrote .*: watchlist 'sanctions', ([\d,]+) term\(s\)", imported.stdout)
    assert wrote is not None, imported.stdout
    terms = int(wrote.group(1).replace(",", ""))
    assert terms > 9_900

    checked = run_monitor("check", "--rules", str(out))
    assert checked.code == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    total = re.search(r"ok: 1 watchlist\(s\), (\d+) term\(s\), (\d+) warning\(s\)",
                      checked.stdout)
    assert total is not None, checked.stdout
    assert int(total.group(1)) == terms
    assert int(total.group(2)) > 200, "a list this size has hundreds of warnings"
    more = [line for line in lines if line.startswith("… and ")]
    assert more and all(line.endswith("warnings; --all-warnings prints every one")
                        for line in more)
    assert len(lines) < 60, checked.stdout
    assert all(re.match(rf"{re.escape(str(out))}:\d+:\d+: warning: ", line)
               for line in lines if "warning:" in line and not line.startswith("…"))
