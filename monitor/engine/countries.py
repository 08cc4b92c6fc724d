"""The world's country names in English, and a few other place names that are proper nouns only.

Why: ``english.COMMON_WORDS`` comes from word frequencies with case folded away, so it holds
"iran", "syria", "turkey" and "georgia" beside "government". ``monitor check`` must not tell an
analyst that *Iran* "is a common English word": a place term named after a country is the
most ordinary thing a Syria/Iraq watchlist holds, and a warning on every one of them teaches
analysts to skip the warnings that matter. This module is data for that decision only; the
matcher does not read it.

Source: the tz database's ``iso3166.tab`` (tzdata 2025b, as installed at
``/usr/share/zoneinfo/iso3166.tab``; public domain, maintained by the IANA tz project). Of the
usual sources it is the one whose column is "the usual English name" ("Syria", "Iran",
"Russia", "Turkey") rather than ISO's official forms ("Syrian Arab Republic", "Iran (Islamic
Republic of)", "Türkiye") that pycountry and iso-codes give; and it is not read at run time, so
monitor needs neither a system file (absent on some machines) nor pycountry (a few MB of
locale data) for a lint.

What was kept, so the list means "countries" and nothing looser: the 193 UN member states,
the two UN observer states (Holy See as "Vatican City", Palestine), Taiwan, and Kosovo (which
has no ISO 3166-1 code, so it is added by hand). The 53 dependent territories and other areas
of the table were dropped: "Jersey" or "Guernsey" are not countries, and "jersey" *is* a common
English word. The table's abbreviations are written out ("&" -> "and", "St" -> "Saint",
"Congo (Dem. Rep.)" -> "Democratic Republic of the Congo", "Britain (UK)" -> "United
Kingdom", "Samoa (western)" -> "Samoa"). ``OTHER_COUNTRY_NAMES`` adds other English names in
current use (Türkiye, Czechia, Ivory Coast, Burma ...).
"""

from __future__ import annotations

COUNTRY_NAMES: tuple[str, ...] = (
    "Afghanistan", "Albania", "Algeria", "Andorra", "Angola", "Antigua and Barbuda",
    "Argentina", "Armenia", "Australia", "Austria", "Azerbaijan", "Bahamas", "Bahrain",
    "Bangladesh", "Barbados", "Belarus", "Belgium", "Belize", "Benin", "Bhutan", "Bolivia",
    "Bosnia and Herzegovina", "Botswana", "Brazil", "Brunei", "Bulgaria", "Burkina Faso",
    "Burundi", "Cambodia", "Cameroon", "Canada", "Cape Verde", "Central African Republic",
    "Chad", "Chile", "China", "Colombia", "Comoros", "Costa Rica", "Côte d'Ivoire", "Croatia",
    "Cuba", "Cyprus", "Czech Republic", "Democratic Republic of the Congo", "Denmark",
    "Djibouti", "Dominica", "Dominican Republic", "East Timor", "Ecuador", "Egypt",
    "El Salvador", "Equatorial Guinea", "Eritrea", "Estonia", "Eswatini", "Ethiopia", "Fiji",
    "Finland", "France", "Gabon", "Gambia", "Georgia", "Germany", "Ghana", "Greece", "Grenada",
    "Guatemala", "Guinea", "Guinea-Bissau", "Guyana", "Haiti", "Honduras", "Hungary", "Iceland",
    "India", "Indonesia", "Iran", "Iraq", "Ireland", "Israel", "Italy", "Jamaica", "Japan",
    "Jordan", "Kazakhstan", "Kenya", "Kiribati", "Kosovo", "Kuwait", "Kyrgyzstan", "Laos",
    "Latvia", "Lebanon", "Lesotho", "Liberia", "Libya", "Liechtenstein", "Lithuania",
    "Luxembourg", "Madagascar", "Malawi", "Malaysia", "Maldives", "Mali", "Malta",
    "Marshall Islands", "Mauritania", "Mauritius", "Mexico", "Micronesia", "Moldova", "Monaco",
    "Mongolia", "Montenegro", "Morocco", "Mozambique", "Myanmar", "Namibia", "Nauru", "Nepal",
    "Netherlands", "New Zealand", "Nicaragua", "Niger", "Nigeria", "North Korea",
    "North Macedonia", "Norway", "Oman", "Pakistan", "Palau", "Palestine", "Panama",
    "Papua New Guinea", "Paraguay", "Peru", "Philippines", "Poland", "Portugal", "Qatar",
    "Republic of the Congo", "Romania", "Russia", "Rwanda", "Saint Kitts and Nevis",
    "Saint Lucia", "Saint Vincent and the Grenadines", "Samoa", "San Marino",
    "Sao Tome and Principe", "Saudi Arabia", "Senegal", "Serbia", "Seychelles", "Sierra Leone",
    "Singapore", "Slovakia", "Slovenia", "Solomon Islands", "Somalia", "South Africa",
    "South Korea", "South Sudan", "Spain", "Sri Lanka", "Sudan", "Suriname", "Sweden",
    "Switzerland", "Syria", "Taiwan", "Tajikistan", "Tanzania", "Thailand", "Togo", "Tonga",
    "Trinidad and Tobago", "Tunisia", "Turkey", "Turkmenistan", "Tuvalu", "Uganda", "Ukraine",
    "United Arab Emirates", "United Kingdom", "United States", "Uruguay", "Uzbekistan",
    "Vanuatu", "Vatican City", "Venezuela", "Vietnam", "Yemen", "Zambia", "Zimbabwe",
)

# Other English names of the same countries in current use (official renamings, older forms
# that outlets still print, short forms). Acronyms (UK, USA, UAE) are left out: all-capitals
# spellings are matched case-sensitively and never get the common-word warning anyway.
OTHER_COUNTRY_NAMES: tuple[str, ...] = (
    "Britain", "Burma", "Cabo Verde", "Congo", "Czechia", "DR Congo", "Great Britain",
    "Holy See", "Ivory Coast", "Macedonia", "São Tomé and Príncipe", "State of Palestine",
    "Swaziland", "The Bahamas", "The Gambia", "Timor-Leste", "Türkiye",
    "United States of America", "Vatican",
)

# Place names that are not countries but, like them, are proper nouns only in English and sit
# in the common-word list: the continents and the nations of the United Kingdom. Deliberately
# not cities or US states: "Reading", "Nice", "Bath" and "Mobile" are ordinary words, and a
# warning on them is right.
OTHER_PROPER_PLACE_NAMES: tuple[str, ...] = (
    "Africa", "America", "Americas", "Antarctica", "Asia", "Europe", "Oceania",
    "England", "Northern Ireland", "Scotland", "Wales",
)

_PLACE_KEYS: frozenset[str] = frozenset(
    name.casefold() for name in (*COUNTRY_NAMES, *OTHER_COUNTRY_NAMES, *OTHER_PROPER_PLACE_NAMES)
)


def is_country_or_proper_place(text: str) -> bool:
    """True when ``text`` (any case, surrounding spaces ignored) is one of the names above."""
    return " ".join(text.split()).casefold() in _PLACE_KEYS
