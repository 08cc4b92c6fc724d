"""Precision guards for watchlists the size of a sanctions list (issue 7, item 1).

Each guard is shown on sentences of the kind real news prints, in English, Arabic, French and
Russian, beside the sentence that must still match, so a guard cannot pass by matching
nothing. The false alerts they stop were seen with 10,000 real names of people from Arab
countries over real news text.
"""

from __future__ import annotations

import pytest

from monitor.engine.matcher import compile_watchlists
from monitor.models import Item, Term, Watchlist


def terms_found(terms: list[Term], text: str) -> set[tuple[str, str]]:
    matcher = compile_watchlists([Watchlist("w", tuple(terms))])
    return {(m.term, m.matched_text) for m in matcher.find(Item(id="1", source="s", content=text))}


def person(term_id: str, name: str, *, short: bool = False) -> Term:
    return Term(term_id, name, (), "person", short=short)


def place(term_id: str, name: str) -> Term:
    return Term(term_id, name, (), "place")


# --- a family name alone ---------------------------------------------------------------


def test_family_name_alone_is_someone_else_until_the_full_name_appears() -> None:
    basma = person("basma", "Basma Alhaddad")
    assert terms_found([basma], "Haddad said the talks in Beirut would resume on Monday.") == set()
    found = terms_found([basma], "Basma Alhaddad, the committee's spokeswoman, arrived "
                                 "late. Haddad said the talks would resume on Monday.")
    assert found == {("basma", "Basma Alhaddad"), ("basma", "Haddad")}


def test_analyst_opts_in_to_a_headline_family_name_with_short() -> None:
    assert terms_found([person("assad", "Bashar al-Assad")], "Assad flees to Moscow") == set()
    assert terms_found([person("assad", "Bashar al-Assad", short=True)],
                       "Assad flees to Moscow") == {("assad", "Assad")}


def test_nisba_family_name_never_matches_the_plain_adjective() -> None:
    iraqi = person("rawia", "Rawia Aliraqi", short=True)
    baghdadi = person("baghdadi", "Abu Bakr al-Baghdadi", short=True)
    assert terms_found([iraqi], "Iraqi officials said the border at Rutba would reopen.") \
        == set()
    assert terms_found([baghdadi], "Baghdadi cuisine is famous for its masgouf.") == set()
    assert terms_found([iraqi], "قال المسؤول العراقي إن المعبر سيفتح") == set()
    assert terms_found([baghdadi], "Al-Baghdadi was killed in a raid in 2019.") \
        == {("baghdadi", "Al-Baghdadi")}
    assert terms_found([person("shibani", "Asaad al-Shibani", short=True)],
                       "Shaibani said Syria wants good relations") == {("shibani", "Shaibani")}


# --- Arabic words that are everyday words ----------------------------------------------


@pytest.mark.parametrize(("term", "text"), [
    (person("wazir", "Khaled Wazir", short=True), "قال وزير الخارجية العراقي"),  # minister
    (person("rahbi", "Salem Alrahbi", short=True), "هاجم التنظيم الإرهابي القرية"),  # terrorist
    (person("haddad", "Basma Alhaddad", short=True), "أغلقت القوات الحدود مع سوريا"),  # borders
    (person("cherkaoui", "Omar Cherkaoui", short=True), "في الريف الشرقي لدير الزور"),  # eastern
    (place("minya", "Minya"), "تحدث عن أمنية قديمة"),  # a wish
    (Term("gabha", "Gabha", (), "org"), "أعلنت جبهة النصرة"),  # front
])
def test_everyday_arabic_word_never_matches_a_name_by_its_skeleton(term: Term, text: str) -> None:
    assert terms_found([term], text) == set()


@pytest.mark.parametrize(("term", "text", "surface"), [
    (place("mosul", "Mosul"), "وصل الوفد إلى الموصل أمس", "الموصل"),
    (place("baghdad", "Baghdad"), "عقد الاجتماع في بغداد", "بغداد"),
    (place("raqqa", "Raqqa"), "اشتباكات في ريف الرقة الشمالي", "الرقة"),
    (place("gaza", "Gaza"), "المساعدات إلى غزة", "غزة"),
    (Term("isis", "Islamic State", ("Daesh",), "org"), "هجوم لتنظيم داعش", "داعش"),
    (place("idlib", "Idlib"), "قصف على إدلب", "إدلب"),
])
def test_names_in_arabic_script_still_match(term: Term, text: str, surface: str) -> None:
    assert terms_found([term], text) == {(term.id, surface)}


# --- names that are everyday words in a supported language -----------------------------


def test_everyday_word_term_matches_only_as_written() -> None:
    of = place("of", "Of")
    assert terms_found([of], "the history of Iraq and the fall of Mosul") == set()
    assert terms_found([of], "Floods hit Of, a town on the Black Sea coast.") == {("of", "Of")}
    nord = place("nord", "Nord")
    assert terms_found([nord], "les combats dans le nord du pays") == set()


def test_lower_case_russian_word_is_not_a_name() -> None:
    gaza = place("gaza", "Gaza")
    assert terms_found([gaza], "поставки газа в Европу сократились") == set()  # "of gas"
    assert terms_found([gaza], "гуманитарная помощь в Газе") == {("gaza", "Газе")}


# --- the words of a name stand together ----------------------------------------------


def test_name_words_are_never_matched_across_another_word() -> None:
    assert terms_found([person("hayat", "Ahmad Hayat")],
                       "Ahmed al-Sharaa's Hayat Tahrir al-Sham took Damascus") == set()
    assert terms_found([person("hayet", "Hayet Alsham")],
                       "fighters of Hayat Tahrir al-Sham entered the city") == set()


def test_a_fathers_name_may_stand_inside_a_full_name() -> None:
    assert terms_found([person("sharaa", "Ahmad al-Sharaa")],
                       "Ahmed Hussein al-Sharaa was born in Riyadh") \
        == {("sharaa", "Ahmed Hussein al-Sharaa")}


# --- bounded work on hostile text (issue 7, item 5) -------------------------------------


def test_a_repeated_word_costs_one_verification_per_word_whatever_the_term() -> None:
    quix = Term("quix", " ".join(["Quix"] * 12), (), "topic")  # the longest spelling allowed
    matcher = compile_watchlists([Watchlist("w", (quix,))])
    text = "quix " * 2_600  # 13 kB
    item = Item(id="1", source="s", content=text)
    assert matcher.verifications(item) <= 2_600  # linear: one anchor, however many repeats


def test_alternating_name_parts_cost_linear_work_at_a_thousand_terms() -> None:
    given = ["Ahmad", "Mohammed", "Hassan", "Omar", "Khaled", "Youssef", "Ali", "Fuad"]
    family = [f"al-{a}{b}" for a in ("Shar", "Haddad", "Mas", "Rahb", "Qad")
              for b in ("aa", "i", "ani", "awi", "oun")]
    terms = tuple(Term(f"t{i}", f"{given[i % 8]} {family[i % 25]}", (), "person")
                  for i in range(1_000))  # each family word anchors 40 spellings
    words = " ".join(f"{g} {f}" for g, f in zip(given * 200, family * 64, strict=False))
    item = Item(id="1", source="s", content=words[:13_000])
    tokens = len(item.content.split())
    # A word is verified against the spellings its anchors point to: each family word
    # anchors 40 here, and a family word is also a look-alike of one or two others
    # (al-Sharaa, al-Shari: one skeleton). Work grows with the item's words, not faster:
    # at worst (every anchor hit verified) as at best (only the spellings whose given
    # name may stand right before the family word: one in eight).
    unfiltered = compile_watchlists([Watchlist("w", terms)])
    unfiltered.index.without_prefilter()
    worst = unfiltered.verifications(item)
    assert 20 * tokens <= worst <= 64 * tokens
    best = compile_watchlists([Watchlist("w", terms)]).verifications(item)
    assert tokens <= best <= worst / 4


def test_arabic_function_words_are_never_part_of_a_name() -> None:
    assert terms_found([person("souma", "Alaa Souma")],
                       "أعلنت قواته سيطرتها على العاصمة دمشق") == set()  # "on the capital"


def test_a_word_written_far_more_often_is_not_a_respelling_of_a_small_place() -> None:
    lar = place("lar", "Lar")
    assert terms_found([lar], "Lair said the missiles came from the sea.") == set()
    assert terms_found([lar], "Protests spread to the southern town of Lar.") == {("lar", "Lar")}
    dayrah = place("dayrah", "Dayrah")
    assert terms_found([dayrah], "born in 1938 in Darʿā, in the south") == set()


# --- guards found with real names over real news (second round) -----------------------


def test_an_english_contraction_is_never_a_respelled_name() -> None:
    tyre = place("tyre", "Tyre")
    assert terms_found([tyre], "They’re lying | Asad Rehman. The agreement on fossil "
                               "fuels") == set()
    assert terms_found([tyre], "Strikes hit Tyre and Sidon overnight.") == {("tyre", "Tyre")}


def test_a_short_place_name_is_not_a_word_with_another_vowel_added() -> None:
    sal, hatta = place("sal", "Sal"), place("hatta", "Hatta")
    assert terms_found([sal], "Continue reading... Saul 'Canelo' Alvarez v John Ryder") \
        == set()
    assert terms_found([hatta], "In Turkey’s southern province of Hatay , one of the most "
                                "ravaged") == set()
    assert terms_found([place("kut", "Kut")], "Protests in Kout, south of Baghdad") \
        == {("kut", "Kout")}
    assert terms_found([place("daraa", "Daraa")], "Shelling near Deraa on Sunday") \
        == {("daraa", "Deraa")}


def test_a_place_in_iyeh_is_not_a_family_name_in_i() -> None:
    town = place("mohammadiyeh", "Mohammadiyeh")
    assert terms_found([town], "Speaking to the Iraqi News Agency (INA), al-Muhammadi "
                               "assured that Iraq’s borders are fully fortified") == set()
    assert terms_found([town], "Clashes in Mohammadiya near Damascus") \
        == {("mohammadiyeh", "Mohammadiya")}


def test_an_arabic_or_persian_everyday_word_is_not_a_rare_place() -> None:
    cases = [
        (place("sebil", "Sebil"), "السيسي: إقامة الدولة الفلسطينية السبيل الوحيد لتحقيق السلام"),
        (place("dail", "Dail"), "هو السبيل الوحيد لتحقيق السلام العادل والدائم والاستقرار"),
        (place("oran", "Oran"), "وزیر امور خارجه جمهوری اسلامی ایران با فواد حسین"),
        (place("gaza", "Gaza"), "بعد سيطرة إسرائيل على جزء كبير من الهضبة عام 1967"),
        (place("hail", "Hail"), "أكد الرئيس عبد الفتاح السيسي أن تطبيق حل الدولتين"),
        (place("arak", "Arak"), "وزارت خارجه عراق امروز (یکشنبه) از تماس تلفنی"),
        (place("jiroft", "Jiroft"), "از پارلمان این کشور رای اعتماد گرفت . محمدعلی الحکیم"),
    ]
    for term, text in cases:
        assert terms_found([term], text) == set(), term.name
    # the same names written as Arabic writes them are found
    assert terms_found([place("gaza", "Gaza")], "قصف على غزة اليوم") == {("gaza", "غزة")}
    assert terms_found([place("hail", "Hail")], "في مدينة حائل اليوم") == {("hail", "حائل")}
    assert terms_found([place("oran", "Oran")], "وصل الوفد إلى وهران") == set()  # not a respelling
    assert terms_found([place("jeddah", "Jeddah")], "وصل الوفد إلى جدة أمس") \
        == {("jeddah", "جدة")}


def test_an_arabic_given_name_after_a_title_is_not_a_place() -> None:
    badr = place("badr", "Badr")
    assert terms_found([badr], "بحضور الدكتور بدر عبد العاطي وزير الخارجية والهجرة") == set()
    assert terms_found([badr], "اشتباكات في بدر شمال المدينة") == {("badr", "بدر")}


def test_a_scholars_ayn_is_a_letter_the_name_must_have() -> None:
    text = "Farouk al-Chareh , born December 10, 1938 in Darʿā ) is a Syrian politician"
    assert terms_found([place("dara", "Dara")], text) == set()
    assert terms_found([place("daraa", "Daraa")], text) == {("daraa", "Darʿā")}


# --- look-up shortcuts never lose a match (issue 7, item 2) ----------------------------
# The cold path skips work that cannot match: deletion keys that drop a first consonant,
# normalising capitalised everyday words. These sentences are what the shortcuts must keep.


def test_a_name_of_one_consonant_is_found_without_its_first_vowel() -> None:
    # Eissa and Issa share the one consonant s: found through the deletion of the E.
    assert terms_found([person("eissa", "Hussain Eissa")],
                       "Houssain Issa told reporters in Basra on Monday") \
        == {("eissa", "Houssain Issa")}


def test_everyday_capitalised_words_still_match_the_terms_made_of_them() -> None:
    belt = Term("belt", "Security Belt Forces", (), "org")
    nice = Term("nice", "Nice", (), "place")  # an everyday word: matched as written
    assert terms_found([belt, nice], "Security Belt Forces entered Aden. Nice was quiet.") \
        == {("belt", "Security Belt Forces"), ("nice", "Nice")}
    assert terms_found([belt, nice], "Security forces said the town was nice.") == set()


def test_a_word_matched_alone_is_judged_in_each_context_by_one_matcher() -> None:
    """What a place's or organisation's word standing alone is worth depends on the word
    (remembered per word) and on its neighbours (judged at each occurrence): one matcher
    reading both sentences, in either order, rejects the word after another group's head
    word and accepts it alone."""
    other = "Kataib Hezbollah fighters crossed the border near Qusayr."
    alone = "Hezbollah fighters crossed the border near Qusayr."
    for order in ((other, alone), (alone, other)):
        matcher = compile_watchlists([Watchlist("w", (Term("hzb", "Hezbollah", (), "org"),))])
        for _ in range(2):
            for text in order:
                got = {m.matched_text for m in matcher.find(Item(id="1", source="s",
                                                                 content=text))}
                assert got == (set() if text == other else {"Hezbollah"}), text
