"""Linguistic tables for Arabic-derived names in English-language news.

General knowledge only (article forms, given-name spellings, honorifics); nothing here is
tuned to one watchlist's entities. Every word is in the normalised key space of
``normalize.py``: lower-case ASCII, no apostrophes, no diacritics.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Arabic article written as its own token: always an article ("al Sharaa", "el-Assad").
ARTICLES_ALWAYS: frozenset[str] = frozenset({"al", "el", "il", "ul"})
# Sun-letter assimilated forms ("ar-Rutba", "ash-Shibani"): articles only when joined to the
# next word by a hyphen or apostrophe, because "as", "an", "at" are English words too.
ARTICLES_HYPHENATED: frozenset[str] = frozenset(
    {"ar", "as", "ash", "ad", "an", "at", "az", "adh", "ath", "ed", "er", "es", "esh", "en",
     "et", "ez", "ud", "ur", "us", "ush", "un", "ut", "uz"}
)

# Spellings of one given name that a consonant skeleton does not unify (t/d endings of
# Turkish forms, q/k/gh alternations). Each maps to a canonical key.
GIVEN_NAME_VARIANTS: dict[str, str] = {}
_GROUPS: tuple[tuple[str, ...], ...] = (
    ("ahmad", "ahmed", "ahmet", "achmed", "ahmat"),
    ("mohammad", "mohammed", "muhammad", "muhammed", "mohamed", "mohamad", "muhamad",
     "mehmet", "mehmed", "mohammod", "mouhamad", "mouhammad", "mohamud", "mahomed"),
    ("hussein", "husayn", "hussain", "husain", "hussien", "husein", "hossein", "huseyin",
     "husseyn", "hussin", "hosein"),
    ("hassan", "hasan", "hassen", "hasen"),
    ("fuad", "fouad", "foad", "fuat", "fuaad"),
    ("asaad", "asad", "asaad", "assaad", "esad", "esat", "asat"),
    ("yusuf", "yousef", "youssef", "yusef", "yousif", "youssif", "yousuf", "yosef", "yussef"),
    ("omar", "umar", "omer", "ömer"),
    ("osama", "usama", "ousama", "oussama", "usamah"),
    ("khalid", "khaled", "halid", "haled", "chalid"),
    ("mustafa", "mostafa", "moustafa", "mustapha", "mostapha", "moustapha"),
    ("qasim", "qassem", "kassem", "qasem", "kasim", "ghasem", "gassem", "kasem", "qassim"),
    ("abdullah", "abdallah", "abdulla", "abdellah", "abdollah"),
    ("ibrahim", "ebrahim", "brahim", "ibraheem"),
    ("suleiman", "sulaiman", "sulayman", "soleiman", "soliman", "suleyman", "sleiman"),
    ("jafar", "jaafar", "jaffar", "djafar", "cafer"),
    ("faisal", "faysal", "feisal", "faycal", "faisel"),
    ("mahmoud", "mahmud", "mahmood", "mahmut"),
    ("mansour", "mansur", "mansoor"),
    ("said", "saeed", "saied", "saiid", "sayid"),
    ("walid", "waleed", "oualid", "velid"),
    ("rashid", "rasheed", "rachid", "reshid"),
    ("sergei", "sergey", "serguei", "sergej"),
    ("bin", "ibn", "ben", "bn"),
)
for _group in _GROUPS:
    for _name in _group:
        GIVEN_NAME_VARIANTS[_name] = _group[0]

# Common given names (Arabic, Persian, Kurdish, Turkish and a few Western ones seen in Middle
# East news). Used two ways: a capitalised given name right before a surname means another
# person of that family ("Farouk al-Sharaa", "Omar Assad"), and a term's last token that is
# itself a common given name ("Hussein") is too ambiguous to stand alone.
COMMON_GIVEN_NAMES: frozenset[str] = frozenset(
    set(GIVEN_NAME_VARIANTS)
    | _words(
        """
        ali abbas abd abdel abdul abdo abu umm adel adil adnan akram amer amir ammar
        anas anwar ayman aziz bashar bashir bassam bilal fadi fadel fahd farid
        farouk faruk farooq faris fawzi fayez ghassan hafez hafiz haidar haider
        hamad hamid hamza hani haitham hisham hashem hashim imad issa jalal jamal
        jamil jawad kamal karim kareem kazem kadhim majid maher mahir mahdi mehdi
        malik marwan mazen mazin mohsen muhsin munir murad nabil nadim naji nasser
        nasir nizar nour nouri nuri qais qays raed rafiq rami riad riyad reza saad
        sadiq saddam saleh salih salim salem salman sami samir sultan talal tamer
        tariq tarek wael wasim yasser yasir yahya younes yunus zaid zayd zakaria
        ziad ziyad abdulaziz abdelaziz abdulrahman abdelrahman abdulkarim abdelkarim
        abdulhamid adham akram alaa amjad arif ashraf atef ayad badr bakr bassel
        basel emad essam fares fathi firas ghazi habib hadi hakim hamdi hazem ihsan
        ismail ismael jihad kais khalil louay luay lutfi mamoun mansour marwan moaz
        muaz mounir muhannad nidal omran imran qusay rabih ragheb raja ramzi rifaat
        ruba samer shadi sharif suhail suheil tawfiq tayseer wissam yaser zuhair
        masoud massoud masud nechirvan mazloum recep tayyip ilham rania layla leila
        fatima zeinab mariam maryam aisha noor hind huda lina rima salma sara hana
        dalia elif vladimir sergei dmitry mikhail john james david michael joe
        donald boris emmanuel
        """
    )
)

# Women's given names: a bare family name in the news names a man of the family far more
# often ("Assad" is Bashar, not Asma), so a woman's surname alone needs an honorific.
FEMALE_GIVEN_NAMES: frozenset[str] = _words(
    """
    asma rania layla leila laila fatima fatma zeinab zainab mariam maryam aisha aysha noor
    nour hind huda lina rima salma sara sarah hana dalia elif amina amal reem rasha bushra
    nadia samira yasmin yasmine jihan suzan nasrin shirin hevrin ilham bouthaina buthaina
    """
)
FEMALE_TITLES: frozenset[str] = _words("mrs ms madam madame lady queen princess")

# Honorifics and role words that may stand right before a surname without being a given name
# ("President Assad", "Sheikh Sharaa"). Demonyms belong here for "Syrian Assad"-style bylines.
TITLES: frozenset[str] = _words(
    """
    president presidents prime minister ministers foreign deputy gen general brig
    brigadier col colonel lt maj major capt captain sgt sheikh shaikh sheik sayyed
    sayyid mullah imam ayatollah emir amir king prince mr mrs ms dr prof leader
    commander dictator strongman ruler chief spokesman envoy counterpart former late
    ousted deposed exiled interim acting new iraqi syrian kurdish lebanese jordanian
    iranian turkish egyptian saudi emirati qatari israeli palestinian yemeni libyan
    russian american british french german regime
    cleric clerics preacher cardinal patriarch warlord militant lawmaker mp speaker
    governor mayor ambassador diplomat premier chancellor senator sen gov adm admiral
    marshal caliph grand supreme jihadist insurgent rebel tribal sunni shia shiite druze
    alawite afghan pakistani sudanese tunisian algerian moroccan bahraini kuwaiti omani
    ukrainian chinese indian
    """
)

# Titles an analyst may type in front of a person's name; they are not part of the name.
HONORIFICS: frozenset[str] = _words(
    """
    president prime minister sheikh shaikh sheik mr mrs ms dr gen general king prince emir
    sayyed sayyid imam ayatollah mullah colonel col brigadier brig lt
    """
)

# Generic words of Arabic organisation names ("front", "organisation", "brigades"). A partial
# mention of an organisation must still carry every word that is not one of these, and an
# unmatched one just before a match ("Kataib Hezbollah") names a different organisation.
ORG_GENERIC: frozenset[str] = _words(
    """
    jabhat jabha hayat haiat haya harakat haraka jaish jaysh liwa kataib kataeb saraya
    asaib hizb tanzim quwat majlis tajamu front brigade brigades army movement party
    organisation organization forces force council units unit group battalion battalions
    """
)
# Words that follow a place's name without making it another place ("Anbar Province",
# "Rutba District", "Mosul Dam" is another thing but names the place too).
PLACE_GENERIC: frozenset[str] = _words(
    """
    province provinces governorate governorates district districts city town village
    region countryside subdistrict municipality camp crossing border airport dam
    """
)
# Of those, the Arabic words that open a different organisation's name when they stand right
# before a matched organisation term.
ORG_PREFIXES: frozenset[str] = _words(
    """
    kataib kataeb harakat jaish jaysh liwa saraya asaib hizb tanzim quwat
    """
)

# Nouns that a family name modifies when it names a regime or clan rather than a person
# ("the Assad regime", "the Sharaa government", "Assad family's rule").
FAMILY_MODIFIERS: frozenset[str] = _words(
    """
    regime regimes government governments family families forces force era rule loyalists
    loyalist clan clans dynasty cousins cousin dictatorship administration supporters officials
    camp militias militia troops army cabinet years decades
    """
)

# Function words that may sit inside multi-word names and be omitted or varied ("Syrian
# Observatory for Human Rights", "Kurdistan Region of Iraq").
NAME_STOPWORDS: frozenset[str] = frozenset({"of", "for", "the", "and", "de", "du", "des", "la"})


def canonical_given_name(key: str) -> str | None:
    """The canonical spelling of a known given-name variant, else None."""
    return GIVEN_NAME_VARIANTS.get(key)
