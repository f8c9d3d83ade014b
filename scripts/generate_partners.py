#!/usr/bin/env python3
"""Generate data/partners.json and src/domain/currency_codes.rs.

Source: Debian's iso-codes package (ISO 3166-1 and ISO 4217 JSON files and the
Ukrainian ISO 3166-1 translations). Run from the repository root:

    python3 scripts/generate_partners.py

Output is deterministic. The script asserts that no name/alias/code of one
partner folds to the same key as anything belonging to another partner.
"""

import gettext
import json
import re
import sys
import unicodedata
from pathlib import Path

ISO_DIR = Path("/usr/share/iso-codes/json")
ISO_3166_1 = ISO_DIR / "iso_3166-1.json"
ISO_4217 = ISO_DIR / "iso_4217.json"
UK_MO = Path("/usr/share/locale/uk/LC_MESSAGES/iso_3166-1.mo")

REPO_ROOT = Path(__file__).resolve().parent.parent
PARTNERS_OUT = REPO_ROOT / "data" / "partners.json"
CURRENCY_OUT = REPO_ROOT / "src" / "domain" / "currency_codes.rs"

# English display names where iso-codes' common_name/name is awkward
# (inverted "X, Republic of" style, parenthesised qualifiers, long forms).
NAME_OVERRIDES = {
    "BN": "Brunei",
    "CD": "DR Congo",
    "FK": "Falkland Islands",
    "FM": "Micronesia",
    "MF": "Saint Martin",
    "PS": "Palestine",
    "RU": "Russia",
    "SX": "Sint Maarten",
    "VA": "Holy See",
    "VG": "British Virgin Islands",
    "VI": "U.S. Virgin Islands",
}

# Ukrainian display names where the .mo translation of `name` is inverted,
# long-form, parenthesised or lower-cased.
NAME_UK_OVERRIDES = {
    "CC": "Кокосові острови",
    "CD": "Демократична Республіка Конго",
    "FK": "Фолклендські острови",
    "FM": "Мікронезія",
    "LA": "Лаос",
    "MD": "Молдова",
    "MF": "Сен-Мартен",
    "NR": "Науру",
    "PS": "Палестина",
    "RU": "Росія",
    "SX": "Сінт-Мартен",
    "SY": "Сирія",
    "TK": "Токелау",
    "TV": "Тувалу",
    "TW": "Тайвань",
    "TZ": "Танзанія",
    "VA": "Святий Престол",
    "VE": "Венесуела",
    "VG": "Британські Віргінські острови",
    "VI": "Американські Віргінські острови",
}

# Typos in the iso-codes Ukrainian translations (applied to every string
# taken from the .mo file).
UK_TYPO_FIXES = {
    "Респуліка": "Республіка",
    "Східна Республік Уругвай": "Східна Республіка Уругвай",
}

# Hand-curated aliases (English and Ukrainian) that people commonly type.
EXTRA_ALIASES = {
    "AE": ["UAE", "ОАЕ"],
    "BA": ["Bosnia"],
    "BS": ["The Bahamas"],
    "CC": ["Cocos Islands", "Keeling Islands"],
    "CD": [
        "DRC",
        "Democratic Republic of the Congo",
        "Democratic Republic of Congo",
        "Congo-Kinshasa",
        "ДР Конго",
        "ДРК",
        "Конго-Кіншаса",
    ],
    "CG": ["Republic of the Congo", "Congo-Brazzaville", "Конго-Браззавіль"],
    "CI": ["Ivory Coast", "Берег Слонової Кістки"],
    "CV": ["Cape Verde", "Острови Зеленого Мису"],
    "CZ": ["Czech Republic"],
    "DE": ["Federal Republic of Germany", "ФРН"],
    "FK": ["Falklands"],
    "GB": [
        "UK",
        "U.K.",
        "Britain",
        "Great Britain",
        "United Kingdom of Great Britain and Northern Ireland",
        "Британія",
        "Сполучене Королівство",
        "Об’єднане Королівство",
    ],
    "GM": ["The Gambia"],
    "GS": ["South Georgia"],
    "KG": ["Киргизія"],
    "KP": ["DPRK", "КНДР"],
    "KR": ["Republic of Korea", "Республіка Корея"],
    "MK": ["Macedonia", "North Macedonia", "Македонія"],
    "MM": ["Burma", "Бірма"],
    "MO": ["Macau"],
    "NL": ["Holland", "The Netherlands", "Голландія"],
    "PN": ["Pitcairn Islands"],
    "PS": ["State of Palestine"],
    "RU": ["Russian Federation", "РФ"],
    "SH": ["Saint Helena"],
    "SZ": ["Swaziland", "Свазіленд"],
    "TL": ["East Timor", "Тимор-Лешті"],
    "TR": ["Turkey", "Turkiye"],
    "US": [
        "USA",
        "U.S.A.",
        "United States of America",
        "America",
        "U.S.",
        "США",
        "Сполучені Штати",
        "Америка",
    ],
    "VA": ["Vatican", "Vatican City", "Vatican City State", "Ватикан"],
    "VI": ["US Virgin Islands", "United States Virgin Islands"],
    "ZA": ["ПАР"],
}

# Endonyms: what a partner calls itself, which readers type (Deutschland,
# Polska, Nihon). Names that fold to the English one (España, România) need
# no entry.
ENDONYMS = {
    "AL": ["Shqipëria", "Shqipëri"],
    "AT": ["Österreich"],
    "BE": ["België", "Belgique", "Belgien"],
    "CH": ["Schweiz", "Suisse", "Svizzera"],
    "CZ": ["Česko", "Česká republika"],
    "DE": ["Deutschland", "Bundesrepublik Deutschland"],
    "DK": ["Danmark"],
    "EE": ["Eesti"],
    "FI": ["Suomi"],
    "GR": ["Ελλάδα", "Hellas"],
    "HR": ["Hrvatska"],
    "HU": ["Magyarország"],
    "IE": ["Éire"],
    "IS": ["Ísland"],
    "IT": ["Italia"],
    "JP": ["Nihon", "Nippon", "日本"],
    "KR": ["대한민국", "Hanguk"],
    "LT": ["Lietuva"],
    "LU": ["Lëtzebuerg", "Luxemburg"],
    "LV": ["Latvija"],
    "NL": ["Nederland"],
    "NO": ["Norge", "Noreg"],
    "PL": ["Polska"],
    "SE": ["Sverige"],
    "SI": ["Slovenija"],
    "SK": ["Slovensko"],
    "TR": ["Türkiye"],
}

EU = {
    "code": "EU",
    "iso3": None,
    "kind": "organization",
    "name": "European Union",
    "name_uk": "Європейський Союз",
    "aliases": ["EU institutions", "ЄС", "Євросоюз"],
}

# (partner code, alias) pairs where a 2/3-letter alpha code of one partner
# is allowed to equal an alias of another partner. Keep empty unless
# unavoidable; every entry must be reported.
ALLOWED_CODE_ALIAS_COLLISIONS = set()


def fold(s):
    decomposed = unicodedata.normalize("NFD", s)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", stripped.lower()).strip()


def clean_official(s):
    # iso-codes writes some official names as "the State of X".
    return s[4:] if s.startswith("the ") else s


def load_translator():
    with open(UK_MO, "rb") as fh:
        t = gettext.GNUTranslations(fh)

    def tr(msgid):
        if not msgid:
            return None
        out = t.gettext(msgid)
        if out == msgid:
            return None
        for bad, good in UK_TYPO_FIXES.items():
            out = out.replace(bad, good)
        return out

    return tr


def build_partners():
    tr = load_translator()
    with open(ISO_3166_1, encoding="utf-8") as fh:
        entries = json.load(fh)["3166-1"]

    partners = []
    for e in entries:
        code = e["alpha_2"]
        iso_name = e["name"]
        official = e.get("official_name")
        common = e.get("common_name")

        name = NAME_OVERRIDES.get(code) or common or iso_name

        uk_candidates = [tr(iso_name), tr(common), tr(official)]
        name_uk = NAME_UK_OVERRIDES.get(code) or next(
            (c for c in uk_candidates if c), None
        )

        raw_aliases = []
        for s in (iso_name, official, common):
            if s:
                raw_aliases.append(clean_official(s))
        # Ukrainian translations of the iso-codes names (official, inverted
        # short name, common name) when they differ from name_uk.
        for s in uk_candidates:
            if s:
                raw_aliases.append(s)
        raw_aliases.extend(EXTRA_ALIASES.get(code, []))
        raw_aliases.extend(ENDONYMS.get(code, []))

        partners.append(
            {
                "code": code,
                "iso3": e["alpha_3"],
                "kind": "country",
                "name": name,
                "name_uk": name_uk,
                "aliases": raw_aliases,
            }
        )

    partners.append(dict(EU, aliases=list(EU["aliases"])))

    for p in partners:
        own = {fold(x) for x in (p["code"], p["iso3"], p["name"], p["name_uk"]) if x}
        seen = set()
        aliases = []
        for a in p["aliases"]:
            a = re.sub(r"\s+", " ", a).strip()
            k = fold(a)
            if not a or k in own or k in seen:
                continue
            seen.add(k)
            aliases.append(a)
        p["aliases"] = aliases

    partners.sort(key=lambda p: p["code"])
    return partners


def check(partners):
    errors = []
    codes = [p["code"] for p in partners]
    if len(codes) != len(set(codes)):
        errors.append("duplicate partner codes")

    for p in partners:
        if p["name_uk"] is not None and re.search(r"[A-Za-z]", p["name_uk"]):
            errors.append(f"{p['code']}: name_uk contains Latin text: {p['name_uk']!r}")
        for field in ("name", "name_uk"):
            v = p[field]
            if v and ("," in v or "(" in v) and p["code"] not in {"BQ", "SH", "CC"}:
                errors.append(f"{p['code']}: {field} looks inverted/qualified: {v!r}")
        own = [p["code"], p["iso3"], p["name"], p["name_uk"]]
        own_keys = {fold(x) for x in own if x}
        alias_keys = [fold(a) for a in p["aliases"]]
        if len(alias_keys) != len(set(alias_keys)):
            errors.append(f"{p['code']}: duplicate aliases")
        for a, k in zip(p["aliases"], alias_keys):
            if k in own_keys:
                errors.append(f"{p['code']}: alias {a!r} repeats code/iso3/name/name_uk")
            if not isinstance(a, str) or not a:
                errors.append(f"{p['code']}: bad alias {a!r}")

    # key -> list of (partner code, what, original string)
    owners = {}
    for p in partners:
        items = [("code", p["code"]), ("iso3", p["iso3"]), ("name", p["name"]), ("name_uk", p["name_uk"])]
        items += [("alias", a) for a in p["aliases"]]
        for what, s in items:
            if s:
                owners.setdefault(fold(s), []).append((p["code"], what, s))

    for key, hits in sorted(owners.items()):
        partner_codes = {h[0] for h in hits}
        if len(partner_codes) < 2:
            continue
        # Allowed only: an alpha code (2/3 letters) of one partner equal to
        # an alias of another, and explicitly whitelisted.
        allowed = False
        kinds = {h[1] for h in hits}
        if len(partner_codes) == 2 and kinds <= {"code", "iso3", "alias"}:
            code_hits = [h for h in hits if h[1] in ("code", "iso3")]
            alias_hits = [h for h in hits if h[1] == "alias"]
            if (
                len(code_hits) == 1
                and len(alias_hits) == 1
                and code_hits[0][0] != alias_hits[0][0]
                and re.fullmatch(r"[a-z]{2,3}", key)
                and (alias_hits[0][0], alias_hits[0][2]) in ALLOWED_CODE_ALIAS_COLLISIONS
            ):
                allowed = True
        if not allowed:
            errors.append(f"fold collision on {key!r}: {hits}")

    if errors:
        for err in errors:
            print("ERROR:", err, file=sys.stderr)
        raise SystemExit(f"generate_partners.py: {len(errors)} validation error(s)")


def write_partners(partners):
    PARTNERS_OUT.parent.mkdir(parents=True, exist_ok=True)
    ordered = [
        {k: p[k] for k in ("code", "iso3", "kind", "name", "name_uk", "aliases")}
        for p in partners
    ]
    text = json.dumps({"partners": ordered}, ensure_ascii=False, indent=2) + "\n"
    PARTNERS_OUT.write_text(text, encoding="utf-8")


def write_currencies():
    with open(ISO_4217, encoding="utf-8") as fh:
        codes = sorted({e["alpha_3"] for e in json.load(fh)["4217"]})
    for c in codes:
        assert re.fullmatch(r"[A-Z]{3}", c), c
    lines = [
        "//! ISO 4217 alphabetic currency codes, generated by scripts/generate_partners.py"
        " from Debian's iso-codes. Do not edit by hand.",
        "",
        "/// Sorted, so membership is a binary search.",
        "pub const ISO_4217_CODES: &[&str] = &[",
    ]
    # rustfmt packs short string literals ("AED" is well under its
    # short_array_element_width_threshold) several to a line, filling up to
    # max_width = 100; reproduce that so `rustfmt --check` passes.
    max_width = 100
    line = ""
    for c in codes:
        item = f'"{c}",'
        candidate = f"{line} {item}" if line else f"    {item}"
        if len(candidate) > max_width:
            lines.append(line)
            candidate = f"    {item}"
        line = candidate
    if line:
        lines.append(line)
    lines += ["];", ""]
    CURRENCY_OUT.parent.mkdir(parents=True, exist_ok=True)
    CURRENCY_OUT.write_text("\n".join(lines), encoding="utf-8")
    return codes


def main():
    partners = build_partners()
    check(partners)
    write_partners(partners)
    codes = write_currencies()
    n_aliases = sum(len(p["aliases"]) for p in partners)
    print(
        f"wrote {PARTNERS_OUT.relative_to(REPO_ROOT)}: {len(partners)} partners, "
        f"{n_aliases} aliases; {CURRENCY_OUT.relative_to(REPO_ROOT)}: {len(codes)} currencies"
    )


if __name__ == "__main__":
    main()
