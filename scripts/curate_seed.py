#!/usr/bin/env python3
"""Curate the research dataset on Ukraine's bilateral security agreements into
the seed files the `accords` service loads on first start.

Usage (from the repository root):

    python3 scripts/curate_seed.py [path-to-research.json]

Default input: ../shared/data/ua-security-agreements.research.json
Outputs:       data/areas.json, data/agreements.json

Python 3.11 standard library only; deterministic (same input -> byte-identical
output).  Rules applied:

* A fact the dataset marks 'UNVERIFIED' (in the field itself or in an entry's
  `unverified_fields`), or that is unclear, becomes null.
* Every per-agreement judgement (legal nature, summary, area details, pledge
  interpretation, source metadata) is written out by hand in the CURATION /
  LATER_AGREEMENTS / PENDING / SOURCE_TITLE_OVERRIDES tables below, keyed by
  research id or URL, and cross-checked against the dataset with asserts.
* Every source URL of the dataset's agreements (and of the pending entry) is
  kept.  Multilateral related documents (partner_code "MULTI") are excluded.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import sys
from decimal import Decimal
from pathlib import Path

DEFAULT_INPUT = "../shared/data/ua-security-agreements.research.json"
REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "data"
ISO_4217 = Path("/usr/share/iso-codes/json/iso_4217.json")
ISO_3166 = Path("/usr/share/iso-codes/json/iso_3166-1.json")

MOD_URL = (
    "https://mod.gov.ua/en/news/ukraine-s-security-agreements-what-they-entail-"
    "and-which-countries-have-signed-them-explained-by-the-ministry-of-defence"
)

# --------------------------------------------------------------------------
# 1. Cooperation-area vocabulary
# --------------------------------------------------------------------------
AREAS = [
    ("accountability", "Accountability",
     "Accountability for Russia's aggression, including a special tribunal, prosecution of war crimes "
     "and compensation for damage, for example from immobilised Russian assets."),
    ("air-defence", "Air Defence",
     "Air and missile defence systems, interceptors and related support."),
    ("armoured-vehicles", "Armoured Vehicles",
     "Tanks, infantry fighting vehicles and other armoured vehicles, including via the UDCG armour coalition."),
    ("artillery", "Artillery and Ammunition",
     "Artillery systems and large-calibre artillery ammunition."),
    ("border-security", "Border Security",
     "Protection of Ukraine's borders."),
    ("cbrn-nuclear-safety", "CBRN and Nuclear Safety",
     "Nuclear and radiation safety and protection against chemical, biological, radiological and nuclear threats."),
    ("children-return", "Return of Children",
     "Return of Ukrainian children deported or forcibly transferred by Russia."),
    ("civil-protection", "Civil Protection",
     "Protection of the civilian population and civil emergency response."),
    ("combat-aircraft", "Combat Aircraft",
     "Combat aircraft such as the F-16, including training of pilots and technicians and the Air Force Capability Coalition."),
    ("consultations", "Consultations",
     "Consultation mechanisms between the parties, notably consultations within 24 hours in the event of a "
     "future Russian armed attack on Ukraine."),
    ("cultural-heritage", "Cultural Heritage",
     "Protection and restoration of Ukraine's cultural heritage."),
    ("cyber-security", "Cyber Security",
     "Cyber defence and cooperation against cyber attacks."),
    ("defence-assistance", "Defence Assistance",
     "Military assistance to Ukraine's armed forces, including weapons, equipment and non-lethal support."),
    ("defence-industry", "Defence Industry",
     "Defence-industrial cooperation, including joint production and localisation of weapons production in Ukraine."),
    ("demining", "Demining",
     "Humanitarian demining, mine clearance equipment and training."),
    ("development-cooperation", "Development Cooperation",
     "Development cooperation programmes supporting Ukraine."),
    ("drones", "Drones",
     "Unmanned systems (drones), including their supply and production."),
    ("economic-cooperation", "Economic Cooperation",
     "Trade, investment, business and industrial cooperation."),
    ("education", "Education",
     "Cooperation in education."),
    ("electronic-warfare", "Electronic Warfare",
     "Electronic warfare systems and capabilities."),
    ("energy", "Energy",
     "Energy security and the protection and resilience of energy and other critical infrastructure."),
    ("environmental-damage", "Environmental Damage",
     "Assessment of environmental damage caused by the war."),
    ("eu-integration", "EU Integration",
     "Support for Ukraine's accession to the European Union."),
    ("financial-support", "Financial Support",
     "Budget, macro-financial and economic support to Ukraine, including loans and grants."),
    ("food-security", "Food Security",
     "Food security and Ukrainian grain exports, such as the Grain from Ukraine initiative."),
    ("humanitarian", "Humanitarian Aid",
     "Humanitarian assistance to Ukraine's population, including internally displaced persons."),
    ("hybrid-threats", "Hybrid Threats and Disinformation",
     "Countering hybrid threats, disinformation and information manipulation, and information security."),
    ("intelligence-sharing", "Intelligence Sharing",
     "Exchange of intelligence and cooperation on intelligence, surveillance and reconnaissance capabilities."),
    ("logistics", "Logistics and Transit",
     "Military logistics, airlift and logistics hubs, and the transport and transit of equipment and goods to Ukraine."),
    ("long-range-weapons", "Long-Range Weapons",
     "Long-range strike capabilities such as missiles."),
    ("maritime-security", "Maritime Security",
     "Naval capabilities and security in the Black Sea, the Sea of Azov and other sea areas."),
    ("medical", "Medical Support",
     "Military medicine, medical training, treatment and rehabilitation of wounded soldiers, and prosthetics."),
    ("military-it", "Military IT and Communications",
     "Information technology and communications for Ukraine's armed forces, including via the UDCG IT coalition."),
    ("nato-integration", "NATO Integration",
     "Support for Ukraine's path to NATO membership and interoperability with NATO forces."),
    ("organised-crime", "Organised Crime",
     "Cooperation against organised crime and in law enforcement."),
    ("reconstruction", "Reconstruction and Recovery",
     "Reconstruction and economic recovery of Ukraine, including debris removal and partnerships for specific cities and regions."),
    ("reforms", "Reforms",
     "Reforms in Ukraine such as rule of law, anti-corruption, governance and transparency."),
    ("sanctions", "Sanctions",
     "Sanctions against Russia and measures against their circumvention."),
    ("science-technology", "Science and Technology",
     "Cooperation in science, research and technology."),
    ("training", "Military Training",
     "Training of Ukrainian military personnel, including within the EU Military Assistance Mission (EUMAM)."),
    ("veterans", "Veterans",
     "Support for Ukrainian war veterans."),
    ("women-in-armed-forces", "Women in the Armed Forces",
     "Support for women serving in Ukraine's armed forces."),
]

REQUIRED_AREAS = {
    "defence-assistance", "air-defence", "intelligence-sharing", "cyber-security", "training",
    "medical", "defence-industry", "maritime-security", "demining", "sanctions", "reconstruction",
    "humanitarian", "energy", "reforms", "eu-integration", "nato-integration", "accountability",
    "consultations", "financial-support",
}

# dataset cooperation_areas code -> vocabulary code(s).  Only eu_nato_integration
# maps to two codes (it names two distinct integration tracks).
AREA_MAP = {
    "accountability_tribunal": ["accountability"],
    "air_defence": ["air-defence"],
    "airlift_logistics": ["logistics"],
    "annual_defence_consultations": ["consultations"],
    "armour": ["armoured-vehicles"],
    "artillery": ["artillery"],
    "artillery_ammunition": ["artillery"],
    "black_sea_security": ["maritime-security"],
    "border_infrastructure_transit": ["logistics"],
    "border_security": ["border-security"],
    "cbrn_nuclear": ["cbrn-nuclear-safety"],
    "children_return": ["children-return"],
    "civil_protection": ["civil-protection"],
    "combat_aircraft": ["combat-aircraft"],
    "combat_aircraft_training": ["combat-aircraft"],
    "compensation_russian_assets": ["accountability"],
    "consultation_24h": ["consultations"],
    "cultural_heritage": ["cultural-heritage"],
    "cyber_security": ["cyber-security"],
    "debris_removal": ["reconstruction"],
    "defence_assistance": ["defence-assistance"],
    "defence_assistance_non_lethal": ["defence-assistance"],
    "defence_industry": ["defence-industry"],
    "demining": ["demining"],
    "development_cooperation": ["development-cooperation"],
    "disinformation": ["hybrid-threats"],
    "drones": ["drones"],
    "economic_cooperation": ["economic-cooperation"],
    "economic_financial_support": ["financial-support"],
    "education": ["education"],
    "electronic_warfare": ["electronic-warfare"],
    "energy": ["energy"],
    "energy_critical_infrastructure": ["energy"],
    "environmental_damage": ["environmental-damage"],
    "eu_integration": ["eu-integration"],
    "eu_nato_integration": ["eu-integration", "nato-integration"],
    "food_security": ["food-security"],
    "humanitarian": ["humanitarian"],
    "hybrid_threats": ["hybrid-threats"],
    "industry_modernisation": ["economic-cooperation"],
    "information_security": ["hybrid-threats"],
    "intelligence_sharing": ["intelligence-sharing"],
    "intelligence_surveillance_equipment": ["intelligence-sharing"],
    "interoperability": ["nato-integration"],
    "it_coalition": ["military-it"],
    "logistics_hub": ["logistics"],
    "long_range_weapons": ["long-range-weapons"],
    "maritime_security": ["maritime-security"],
    "maritime_transport_logistics": ["logistics"],
    "medical_training": ["medical"],
    "medical_training_prosthetics": ["medical"],
    "medical_treatment_rehabilitation": ["medical"],
    "nato_trust_fund": ["defence-assistance"],
    "nuclear_safety": ["cbrn-nuclear-safety"],
    "organized_crime": ["organised-crime"],
    "reconstruction_recovery": ["reconstruction"],
    "reforms": ["reforms"],
    "sanctions": ["sanctions"],
    "security_defence_non_lethal": ["defence-assistance"],
    "training": ["training"],
    "transit_facilitation": ["logistics"],
    "veterans": ["veterans"],
    "women_in_armed_forces": ["women-in-armed-forces"],
}

# --------------------------------------------------------------------------
# 2. Per-agreement curation, keyed by research id
# --------------------------------------------------------------------------
# legally_binding: True only for ratified / explicitly legally binding; False only
#   when status.legal_nature explicitly says political / not legally binding for
#   THIS agreement; None otherwise (asserted: None whenever legal_nature is UNVERIFIED).
# pledges: one spec per dataset pledge, by index.  Either {"drop": reason} or the
#   curated fields; "amount" is the expected exact decimal string and is checked
#   against the dataset float.  "sources" (optional) = dataset source indexes that
#   support this pledge; default = every source whose `supports` mentions pledges,
#   or, if none, every "all core fields" source.
# areas: {vocabulary code: detail phrase from cooperation_notes}; codes not
#   listed get detail null.  Every listed code must result from the mapping.

DROP_NO_AMOUNT = "amount unknown (null in dataset)"

CURATION: dict[str, dict] = {
    "ua-bsa-gb-2024": {
        "legally_binding": False,  # "political agreement (first bilateral agreement under the G7 Declaration)"
        "summary": (
            "First bilateral agreement under the G7 Joint Declaration of Support for Ukraine, covering intelligence "
            "sharing, cyber security, medical and military training and defence-industrial cooperation. The parties "
            "consult within 24 hours and the UK is to provide 'swift and sustained' assistance if Russia attacks "
            "again. Term of 10 years, described by Zelenskyy as valid until Ukraine joins NATO."
        ),
        "areas": {
            "defence-assistance": "long-range missiles, air defence, artillery ammunition, maritime security funded from the £2.5bn",
            "training": "medical and military training",
            "medical": "medical training",
            "defence-industry": "defence-industrial cooperation",
            "consultations": "consult within 24h if Russia attacks again",
        },
        "pledges": [
            {"amount": "2500000000", "year_from": 2024, "year_to": 2025, "kind": "military",
             "measure": "allocation",
             "description": "Military aid in financial year 2024/25, including at least £200m for drones",
             "note": "the agreement recalls £2.3bn provided in 2022 and £2.3bn in 2023"},
        ],
    },
    "ua-bsa-de-2024": {
        "legally_binding": None,  # legal_nature UNVERIFIED
        "summary": (
            "Covers weapons under agreed contracts, sustainable forces and a defence-industry focus, resilience of "
            "energy and critical infrastructure, information security, organised crime, compensation for losses, a "
            "special tribunal, sanctions and frozen assets. Valid for ten years from the date of signature (Zhovkva)."
        ),
        "areas": {
            "defence-assistance": "weapons under agreed contracts; sustainable forces",
            "defence-industry": "defence-industry focus",
            "energy": "energy and critical infrastructure resilience",
            "hybrid-threats": "information security",
            "accountability": "compensation for losses; special tribunal; frozen assets",
        },
        "pledges": [
            {"amount": "7100000000", "year_from": 2024, "year_to": 2024, "kind": "military",
             "measure": "allocation",
             "description": "Military support for 2024",
             "note": ("Zhovkva called it a record €7.1bn of 'financial and military' support; Zelenskyy cited "
                      "'€7 billion for this year'; a separate €1.1bn package announced the same day is not part "
                      "of the agreement")},
        ],
    },
    "ua-bsa-fr-2024": {
        "legally_binding": None,
        "summary": (
            "France leads the UDCG artillery and air-defence coalitions and is a member of the air-force and "
            "maritime coalitions; the agreement also covers joint production and localisation, long-range weapons "
            "and combat aircraft, cyber, a compensation mechanism, frozen Russian assets and sanctions. Term of 10 years."
        ),
        "areas": {
            "artillery": "lead role in the UDCG artillery coalition",
            "air-defence": "lead role in the UDCG air-defence coalition",
            "combat-aircraft": "member of the air-force coalition; combat aircraft",
            "maritime-security": "member of the maritime coalition",
            "defence-industry": "joint production/localisation",
            "accountability": "compensation mechanism; frozen Russian assets",
        },
        "pledges": [
            {"amount": "3000000000", "year_from": 2024, "year_to": 2024, "kind": "military",
             "measure": "allocation",
             "description": "Additional military aid in 2024",
             "note": "'up to' €3bn (a ceiling); France provided €1.7bn in 2022 and €2.1bn in 2023"},
        ],
    },
    "ua-bsa-dk-2024": {
        "legally_binding": None,
        "summary": (
            "First agreement with a state outside the G7; term of 10 years, extendable by agreement of the parties. "
            "Covers holistic F-16 capability via the Air Force Capability Coalition, navy development, demining, "
            "drones, communications and radars, and a reconstruction partnership for Mykolaiv."
        ),
        "areas": {
            "combat-aircraft": "F-16 holistic capability via the Air Force Capability Coalition (jets, munitions, simulators, training, maintenance)",
            "maritime-security": "navy development",
            "drones": "drones, comms, radars",
            "reconstruction": "Mykolaiv reconstruction partnership",
        },
        "pledges": [
            {"amount": "1800000000", "year_from": 2024, "year_to": 2024, "kind": "military",
             "measure": "allocation",
             "description": "Military support in 2024",
             "note": "at least €1.8bn"},
            {"amount": "8500000000", "year_from": 2023, "year_to": 2028, "kind": "mixed",
             "measure": "commitment",
             "description": "Denmark's Ukraine Fund, the framework for long-term military and civilian support",
             "note": None},
        ],
    },
    "ua-bsa-ca-2024": {
        "legally_binding": False,  # "not a binding treaty (CBC via New Pathway)"
        "summary": (
            "Creates a Canada-Ukraine Strategic Security Partnership with a 24-hour consultation mechanism; Canada "
            "takes a leading role on the return of deported Ukrainian children and supports veterans. Term of 10 "
            "years from signing, which may be revised if Ukraine joins NATO earlier; not a binding treaty (CBC)."
        ),
        "areas": {
            "children-return": "leading role on return of deported Ukrainian children",
            "veterans": "support for veterans",
            "consultations": "24h consultation mechanism",
        },
        "pledges": [
            {"amount": "3020000000", "year_from": 2024, "year_to": 2024, "kind": "mixed",
             "measure": "allocation",
             "description": ("Financial and military support in 2024, including about C$2.4bn in loans administered "
                             "via the IMF and about C$320m of new military spending"),
             "note": "about US$2.2bn; C$75m for demining and intelligence was also reported"},
        ],
    },
    "ua-bsa-it-2024": {
        "legally_binding": False,  # "not legally binding, no ratification (FM Tajani)"
        "text_url": "https://president.gov.ua/en/news/ugoda-pro-spivrobitnictvo-u-sferi-bezpeki-mizh-ukrayinoyu-ta-89245",
        "summary": (
            "Covers a list of weapons including long-range ones, reconstruction of Odesa city and oblast, and the "
            "Ukraine Recovery Conference in Italy in 2025. No amount was published: Italy is to maintain the same "
            "level of support in 2024, with costs covered by ordinary budgets. Not legally binding and not subject "
            "to ratification (Foreign Minister Tajani); 10-year term."
        ),
        "areas": {
            "long-range-weapons": "list of weapons incl. long-range",
            "reconstruction": "reconstruction of Odesa city/oblast; Ukraine Recovery Conference in Italy 2025",
        },
        "pledges": [
            {"drop": "no amount published (amount null; pledges.amount UNVERIFIED)"},
        ],
    },
    "ua-bsa-nl-2024": {
        "legally_binding": None,
        "summary": (
            "Priorities are air defence, artillery, naval capabilities and long-range weapons, strengthening of "
            "Ukraine's Air Force and NATO interoperability. Term of 10 years, with further defence aid over the decade."
        ),
        "areas": {
            "air-defence": "priority",
            "artillery": "priority",
            "maritime-security": "naval priority",
            "long-range-weapons": "priority",
            "combat-aircraft": "Air Force strengthening",
            "nato-integration": "NATO interoperability",
        },
        "pledges": [
            {"amount": "2000000000", "year_from": 2024, "year_to": 2024, "kind": "military",
             "measure": "allocation",
             "description": "Military aid in 2024",
             "note": "further defence aid promised over the decade (no amount)"},
        ],
    },
    "ua-bsa-fi-2024": {
        "legally_binding": None,
        "summary": (
            "Covers energy-sector rebuilding, environmental damage assessment, border and critical infrastructure "
            "protection and treatment of Ukrainian soldiers. Term of 10 years."
        ),
        "areas": {
            "energy": "energy sector rebuilding; critical infrastructure protection",
            "environmental-damage": "environmental damage assessment",
            "border-security": "border protection",
            "medical": "treatment of Ukrainian soldiers",
        },
        "pledges": [
            {"amount": "188000000", "year_from": 2024, "year_to": 2024, "kind": "military",
             "measure": "allocation",
             "description": "23rd defence package (air defence, ammunition), announced at signing",
             "note": "inclusion in the agreement text not verified"},
            {"amount": "290000000", "year_from": None, "year_to": None, "kind": "reconstruction",
             "measure": None,
             "description": "Four-year development and reconstruction plan being prepared by Finland",
             "note": ("reported by the Office of the President; years of the four-year plan and inclusion in "
                      "the agreement text not verified")},
        ],
    },
    "ua-bsa-lv-2024": {
        "legally_binding": False,  # "political, not legally binding (Latvian MFA via Delfi)"
        "summary": (
            "Covers the land, air, sea and cyber-electromagnetic domains, with the aim that Ukraine could in turn "
            "support Latvia if attacked. Latvia targets military support of 0.25% of GDP annually in 2024-2026 "
            "(about €112m in 2024). Political, not legally binding (Latvian MFA); 10-year term."
        ),
        "areas": {
            "defence-assistance": "land, air, sea and cyber-electromagnetic domains",
        },
        "pledges": [
            {"drop": "amount is a share of GDP ('0.25% of GDP per year'), not a sum; only an approximate €112m for 2024 is reported"},
            {"amount": "2000000", "year_from": 2024, "year_to": 2025, "kind": "military",
             "measure": "commitment",
             "description": "Annual contribution to NATO's Comprehensive Assistance Package (CAP) for Ukraine",
             "note": "amount is per year (2024 and 2025), not a total; total Latvian CAP contribution €3.3m"},
        ],
    },
    "ua-bsa-es-2024": {
        "legally_binding": False,  # "political agreement (Spanish government)"
        "summary": (
            "Spain takes part in the UDCG coalitions for integrated air and missile defence, artillery, armour, "
            "maritime security, IT and demining; the agreement also covers medical training and prosthetics and "
            "joint production. A political agreement (Spanish government); 10-year term."
        ),
        "areas": {
            "air-defence": "UDCG IAMD coalition",
            "artillery": "UDCG artillery coalition",
            "armoured-vehicles": "UDCG armour coalition",
            "maritime-security": "UDCG maritime security coalition",
            "military-it": "UDCG IT coalition",
            "demining": "UDCG demining coalition",
            "medical": "medical training and prosthetics",
            "defence-industry": "joint production",
        },
        "pledges": [
            # source 0 (all core fields) is titled "... provides for EUR 1 billion in military aid in 2024"
            {"amount": "1000000000", "year_from": 2024, "year_to": 2024, "kind": "military",
             "measure": "allocation", "sources": [0, 2, 3],
             "description": "Military aid in 2024",
             "note": None},
            {"amount": "5000000000", "year_from": 2024, "year_to": 2027, "kind": "military",
             "measure": None,
             "description": "Support through the European Peace Facility's Ukraine Assistance Fund",
             "note": ("figure unclear: reported as '€5bn over three years / 2024-2027 through the Ukraine "
                      "Assistance Fund under the European Peace Facility'; whether this is Spain's share or the "
                      "EU-wide total is not established; inclusion in the agreement text not verified")},
            {"amount": "15000000", "year_from": 2024, "year_to": 2024, "kind": "reconstruction",
             "measure": "allocation", "sources": [3],
             "description": "Recovery support channelled via the World Bank",
             "note": "per Spanish government press release; inclusion in the agreement text not verified"},
        ],
    },
    "ua-bsa-be-2024": {
        "legally_binding": None,
        "summary": (
            "Belgium is to deliver 30 F-16 aircraft by 2028 (the first in 2024), the first agreement to specify a "
            "number of aircraft. Also covers use of confiscated Russian assets for Ukraine's needs and the peace "
            "formula; 10-year term."
        ),
        "areas": {
            "accountability": "use of confiscated Russian assets for Ukraine's needs",
        },
        "pledges": [
            {"amount": "977000000", "year_from": 2024, "year_to": 2024, "kind": "military",
             "measure": "allocation",
             "description": "Military support in 2024",
             "note": "at least €977m"},
            {"drop": "in-kind pledge ('30 F-16 aircraft' by 2028), no monetary amount or currency"},
        ],
    },
    "ua-bsa-pt-2024": {
        "legally_binding": None,
        "summary": (
            "Covers the F-16 and maritime capability coalitions, procurement of large-calibre ammunition, and the "
            "International Coalition for the Return of Ukrainian Children. Term of 10 years with possibility of "
            "extension (RTP)."
        ),
        "areas": {
            "combat-aircraft": "F-16 coalition",
            "maritime-security": "maritime capability coalition",
            "artillery": "large-calibre ammunition procurement",
            "children-return": "International Coalition for the Return of Ukrainian Children",
        },
        "pledges": [
            {"amount": "126000000", "year_from": 2024, "year_to": 2024, "kind": "military",
             "measure": "allocation",
             "description": "Military support in 2024",
             "note": "at least €126m"},
        ],
    },
    "ua-bsa-se-2024": {
        "legally_binding": None,
        "summary": (
            "Covers Archer and CV90 including joint production, ASC 890 aircraft, the prospect of JAS 39 Gripen "
            "with training, and military medicine and rehabilitation. Term of 10 years."
        ),
        "areas": {
            "artillery": "Archer incl. joint production",
            "armoured-vehicles": "CV90 incl. joint production",
            "combat-aircraft": "ASC 890 aircraft; prospect of JAS 39 Gripen with training",
            "medical": "military medicine and rehabilitation",
            "defence-industry": "joint production of Archer and CV90",
        },
        "pledges": [
            {"amount": "75000000000", "year_from": 2024, "year_to": 2026, "kind": "military",
             "measure": "commitment",
             "description": "Military support for 2024-2026",
             "note": ("about €6.5bn, about €2.2bn per year, to grow over the 10-year term; the Swedish government "
                      "put the total scope of bilateral support at SEK 105bn or more (about €9bn) for 2022-2026")},
        ],
    },
    "ua-bsa-is-2024": {
        "legally_binding": None,
        "summary": (
            "Covers chartered cargo flights for NATO allies' military supplies, support for women in the Armed "
            "Forces and a stronger Icelandic diplomatic presence in Kyiv. Initially valid for 10 years (dpa)."
        ),
        "areas": {
            "logistics": "chartered cargo flights for NATO allies' military supplies",
            "women-in-armed-forces": "support for women in the Armed Forces",
        },
        "pledges": [
            {"amount": "4000000000", "year_from": 2024, "year_to": 2028, "kind": "mixed",
             "measure": "commitment",
             "description": "Economic, humanitarian and defence support",
             "note": "amount is per year (at least ISK 4bn annually, about US$30m), not a total"},
        ],
    },
    "ua-bsa-no-2024": {
        "legally_binding": None,
        "summary": (
            "Covers F-16 readiness, maritime capabilities in the Black and Azov seas, NASAMS and training, and "
            "continued treatment of Ukrainians in Norwegian hospitals. Term of ten years (Norwegian government)."
        ),
        "areas": {
            "combat-aircraft": "F-16 readiness",
            "maritime-security": "maritime capabilities in the Black and Azov seas",
            "air-defence": "NASAMS and training",
            "medical": "Norwegian hospitals continue to treat Ukrainians",
        },
        "pledges": [
            {"amount": "13500000000", "year_from": 2024, "year_to": 2024, "kind": "military",
             "measure": "allocation",
             "description": "Military support in 2024",
             "note": "at least NOK 13.5bn (about €1.2bn)"},
            {"amount": "75000000000", "year_from": 2023, "year_to": 2027, "kind": "mixed",
             "measure": "commitment",
             "description": "Nansen Support Programme for military, civilian and humanitarian support",
             "note": "about €6.4bn; allocations decided annually"},
        ],
    },
    "ua-bsa-jp-2024": {
        "legally_binding": None,
        "summary": (
            "Shaped by Article 9 of Japan's Constitution: support centres on non-lethal equipment, treatment of "
            "wounded soldiers, the NATO CAP trust fund and demining. The parties consult within 24 hours if Ukraine "
            "is attacked again; 10-year term."
        ),
        "areas": {
            "defence-assistance": "non-lethal equipment; NATO CAP trust fund",
            "medical": "treatment of wounded soldiers",
            "consultations": "consultations within 24h if attacked",
        },
        "pledges": [
            {"amount": "4500000000", "year_from": 2024, "year_to": 2024, "kind": "mixed",
             "measure": "allocation",
             "description": "Financial, humanitarian and non-lethal security support in 2024",
             # wording as specified for the service; it covers both the discrepancy and the
             # unverified field "pledges.currency (conflict)"
             "note": ("figure disputed: Japan Forward reported ¥4.5 billion (about $28.5 million); Jiji says the "
                      "text states the 2024 amount without quoting it")},
        ],
    },
    "ua-bsa-us-2024": {
        # "executive agreement (legally binding per US officials) not ratified by Congress"
        "legally_binding": True,
        "summary": (
            "Covers Patriot and F-16 provisions, co-production with US industry, end-use monitoring commitments by "
            "Ukraine and a meeting of senior officials within 24 hours after an attack, and is described as a "
            "'bridge' to NATO membership; 10-year term. The text contains no specific monetary pledge; an annex "
            "refers to working with Congress on sustainable resources. An executive agreement, legally binding per "
            "US officials but not ratified by Congress, from which a future president could withdraw."
        ),
        "areas": {
            "air-defence": "Patriot provisions reported",
            "combat-aircraft": "F-16 provisions reported",
            "defence-industry": "co-production with US industry",
            "consultations": "senior officials meet within 24h after an attack",
            "nato-integration": "'bridge' to NATO membership",
        },
        "pledges": [
            {"drop": "no specific monetary pledge in the text (amount null)"},
        ],
    },
    "ua-bsa-eu-2024": {
        "legally_binding": False,  # "non-binding joint commitments"
        "summary": (
            "Joint commitments in nine areas of security policy, including EUMAM training, use of windfall profits "
            "of immobilised Russian assets, intelligence and satellite imagery, and consultations within 24 hours "
            "at Ukraine's request; Ukraine commits to reforms and transparency; NATO membership is not mentioned. "
            "No fixed term: the EU is to review the commitments not later than ten years, and they remain in force "
            "as Ukraine pursues its European path. Non-binding; signing authorised by the EU Council on 25 Jun 2024."
        ),
        "areas": {
            "training": "EUMAM training",
            "accountability": "windfall profits of immobilised Russian assets",
            "intelligence-sharing": "intelligence and satellite imagery",
            "consultations": "24h consultations on Ukraine's request",
            "reforms": "Ukraine commits to reforms and transparency",
        },
        "pledges": [
            {"amount": "5000000000", "year_from": 2024, "year_to": 2024, "kind": "military",
             "measure": "allocation",
             "description": "European Peace Facility - Ukraine Assistance Fund for 2024",
             "note": "'further comparable annual increases could be envisaged until 2027', subject to Council guidance"},
            {"drop": "amount null (Ukraine Facility €50bn referenced in coverage; mention in the text UNVERIFIED)"},
        ],
    },
    "ua-bsa-lt-2024": {
        "legally_binding": None,
        "text_url": "https://president.gov.ua/en/news/ugoda-pro-spivrobitnictvo-u-sferi-bezpeki-mizh-ukrayinoyu-ta-91809",
        "summary": (
            "Covers the land, air, sea, space and cyber-electromagnetic domains, possible reopening of a training "
            "mission on Ukrainian territory, counter-intelligence, and anti-corruption and law-enforcement reform. "
            "Lithuania 'will seek to provide' 0.25% of GDP annually for security and defence; 10-year term."
        ),
        "areas": {
            "defence-assistance": "land, air, sea, space and cyber-electromagnetic domains",
            "training": "possible reopening of a training mission on Ukrainian territory",
            "intelligence-sharing": "counter-intelligence",
            "reforms": "anti-corruption and law-enforcement reform",
        },
        "pledges": [
            {"drop": "amount is a share of GDP ('0.25% of GDP per year'), not a sum"},
        ],
    },
    "ua-bsa-ee-2024": {
        "legally_binding": False,  # "political declaration of intent (ERR)"
        "text_url": "https://president.gov.ua/en/news/ugoda-pro-spivrobitnictvo-u-sferi-bezpeki-ta-dovgostrokovu-p-91793",
        "summary": (
            "A political declaration of intent (ERR) centred on defence and security, EU and NATO integration, "
            "sanctions, compensation, development cooperation, reconstruction and civilian protection. It reaffirms "
            "Estonia's target of military support worth 0.25% of GDP per year in 2024-2027; ten-year term."
        ),
        "areas": {
            "civil-protection": "civilian protection",
        },
        "pledges": [
            {"drop": "amount is a share of GDP ('0.25% of GDP per year'); the ~€100m/yr figure is a pre-signing ERR estimate"},
        ],
    },
    "ua-bsa-pl-2024": {
        "legally_binding": None,
        "summary": (
            "Ten chapters, including a study of intercepting Russian missiles and drones in Ukrainian airspace "
            "heading to Poland, a 'Ukrainian Legion' trained in Poland, POLLOGHUB, LitPolUkrBrig and Polish defence "
            "production in Ukraine. Poland is to provide several more military assistance packages in 2024 (no "
            "amount stated) and to consider at least one additional MiG-29 squadron, conditional on replacement "
            "for Poland; 10-year term."
        ),
        "areas": {
            "air-defence": "study of intercepting Russian missiles/drones in Ukrainian airspace heading to Poland",
            "training": "'Ukrainian Legion' trained in Poland",
            "logistics": "POLLOGHUB",
            "defence-industry": "Polish defence production in Ukraine",
        },
        "pledges": [
            {"drop": "amount null ('several more military assistance packages' in 2024, no amount)"},
            {"drop": "in-kind pledge (at least one additional MiG-29 squadron, to be considered), no monetary amount; years UNVERIFIED"},
        ],
    },
    "ua-bsa-lu-2024": {
        "legally_binding": None,
        "text_url": "https://president.gov.ua/en/news/ugoda-pro-spivrobitnictvo-u-sferi-bezpeki-ta-dovgostrokovu-p-92057",
        "summary": (
            "Luxembourg co-leads the IT coalition (with Estonia) and takes part in the air force and artillery "
            "coalitions; the agreement also covers Lux-Development reconstruction, IDPs, return of children and "
            "cultural heritage. Per Obozrevatel it still needs approval by the Luxembourg Parliament (funding-"
            "related); 10-year term."
        ),
        "areas": {
            "military-it": "co-lead of the IT coalition (with Estonia)",
            "combat-aircraft": "air force coalition",
            "artillery": "artillery coalition",
            "reconstruction": "Lux-Development reconstruction",
            "humanitarian": "IDPs",
            "children-return": "return of children",
        },
        "pledges": [
            {"amount": "80000000", "year_from": 2024, "year_to": 2024, "kind": "military",
             "measure": "allocation",
             "description": "Military support in 2024",
             "note": ("the same dynamics are to continue each year of the term, subject to parliamentary approval; "
                      "2022: €74.4m, 2023: €96m, over €250m since 2022")},
        ],
    },
    "ua-bsa-ro-2024": {
        "legally_binding": None,
        "summary": (
            "Romania commits one Patriot air-defence system and support 'with the same dynamics as in 2022-2024'. "
            "Covers Black Sea demining, an F-16 training centre, the fastest possible transit of equipment through "
            "Romania and a 24-hour response mechanism; ten-year term."
        ),
        "areas": {
            "demining": "Black Sea demining",
            "combat-aircraft": "F-16 training centre",
            "logistics": "fastest possible transit of equipment through Romania",
            "consultations": "24h response mechanism",
        },
        "pledges": [
            {"drop": "in-kind pledge ('1 Patriot air-defence system'), no monetary amount or currency"},
        ],
    },
    "ua-bsa-cz-2024": {
        "legally_binding": False,  # "not a legally binding international treaty (Fiala)"
        "summary": (
            "Covers the Czech ammunition initiative (155mm/122mm), co-production (ammunition, small arms, UAVs, "
            "electronic warfare, MRO), training of up to 4,000 Ukrainian soldiers per year including within EUMAM, "
            "and a partnership with Dnipro city and oblast; Ukraine commits to assist Czechia if attacked. Czechia "
            "is to maintain the same dynamics as the ~€400m of military aid provided since 2022. Not a legally "
            "binding international treaty (Fiala); ten-year term."
        ),
        "areas": {
            "artillery": "Czech ammunition initiative (155mm/122mm)",
            "defence-industry": "co-production (ammunition, small arms, UAVs, EW, MRO)",
            "reconstruction": "partnership with Dnipro city/oblast",
            # from the dataset's own area code annual_defence_consultations (not the 24h mechanism)
            "consultations": "annual defence consultations",
        },
        "pledges": [
            {"drop": "amount null ('same dynamics' as ~€400m since 2022, no annual figure)"},
            {"drop": "in-kind pledge (training of up to 4,000 soldiers per year), no monetary amount or currency"},
        ],
    },
    "ua-bsa-si-2024": {
        # "not a binding international treaty (political will) - per Slovenian statements before signing"
        "legally_binding": False,
        "signed_at": "near Oxford, United Kingdom (4th European Political Community summit)",
        "summary": (
            "Slovenia is to promote Ukrainian defence-industry projects within the EU and maintain its level of "
            "military support (13 shipments 2022-2024); Russia is to be held financially responsible for the damage. "
            "Described before signing as a political, not legally binding, instrument and approved by the Slovenian "
            "government. Term not verified for Slovenia specifically; Ukraine's MoD states all its security "
            "agreements run for 10 years."
        ),
        "areas": {
            "accountability": "Russia financially responsible for damage",
        },
        "pledges": [
            {"amount": "5000000", "year_from": 2024, "year_to": 2024, "kind": "mixed",
             "measure": "allocation",
             "description": "Humanitarian aid, recovery and the Grain from Ukraine programme in 2024",
             "note": "no additional financial commitments beyond this (RTV SLO)"},
        ],
    },
    "ua-bsa-ie-2024": {
        "legally_binding": None,
        "summary": (
            "As a neutral state Ireland provides non-lethal support only, including mine clearance and EOD "
            "equipment and EUMAM training; Ukraine commits to anti-corruption and governance reforms. "
            "10-year agreement (Anadolu)."
        ),
        "areas": {
            "defence-assistance": "non-lethal support only",
            "demining": "mine clearance and EOD equipment",
            "training": "EUMAM training",
            "reforms": "anti-corruption/governance reform commitments by Ukraine",
        },
        "pledges": [
            {"amount": "128000000", "year_from": 2024, "year_to": 2024, "kind": "military",
             "measure": "allocation",
             "description": "Additional non-lethal military support in 2024",
             "note": None},
            {"amount": "40000000", "year_from": 2024, "year_to": 2024, "kind": "humanitarian",
             "measure": "allocation",
             "description": "Humanitarian support in 2024",
             "note": "at least €40m; about €380m of Irish aid in total since 2022"},
        ],
    },
    "ua-bsa-gr-2024": {
        "legally_binding": None,
        "summary": (
            "Emphasis on reconstruction of Odesa, business cooperation and green energy; Greece is to provide "
            "additional resources to accelerate F-16 training for pilots and technicians (no amount stated). Per "
            "Ukrinform/MoD (Nov 2025) the agreement must still be ratified. Term not verified for Greece "
            "specifically; Ukraine's MoD states all its security agreements run for 10 years."
        ),
        "areas": {
            "reconstruction": "reconstruction of Odesa",
            "economic-cooperation": "business cooperation",
            "energy": "green energy",
        },
        "pledges": [
            {"drop": "amount null and unquantified (F-16 training resources); pledges UNVERIFIED"},
        ],
    },
    "ua-bsa-al-2025": {
        "legally_binding": None,
        "text_url": "https://president.gov.ua/en/news/ugoda-pro-dovgostrokove-spivrobitnictvo-ta-pidtrimku-mizh-uk-95573",
        "summary": (
            "Albania is to continue supporting Ukraine in the same way as in 2022-2024, including English-language "
            "training for Ukrainian pilots and technicians, with joint production localised in Ukraine; the "
            "agreement states it is not a substitute for NATO membership. Distinct from the Treaty on Friendship and "
            "Cooperation signed in Tirana on 28 Feb 2024; ten-year term."
        ),
        "areas": {
            "defence-industry": "joint production localised in Ukraine",
        },
        "pledges": [
            {"drop": "amount null (support 'in the same way as in 2022-2024', unquantified)"},
        ],
    },
}

# later_agreements entries, keyed by (parent research id, index)
LATER_AGREEMENTS: dict[tuple[str, int], dict] = {
    ("ua-bsa-gb-2024", 0): {
        "include": True,
        "kind": "partnership",
        # status text: "Ratified by Verkhovna Rada 2025-09-17 (295 votes); entered into force 2025-10-15"
        "status": "in_force",
        "status_must_contain": "entered into force",
        "legally_binding": True,  # ratified by the Verkhovna Rada
        "term_years": None,
        # dataset: "Keir Starmer / Volodymyr Zelenskyy" (no roles); roles taken from the dataset itself:
        # Zelenskyy's role as in every parent entry, Starmer's from the source title "British PM Starmer ..."
        "signatories": [
            {"name": "Volodymyr Zelenskyy", "role": "President of Ukraine", "side": "ukraine"},
            {"name": "Keir Starmer", "role": "Prime Minister", "side": "partner"},
        ],
        "summary": (
            "Covers defence including maritime security (Baltic, Black and Azov seas), drones and technology, "
            "science, energy, trade, a £40m economic recovery programme and a Grain Verification Scheme. Ratified "
            "by the Verkhovna Rada on 17 Sep 2025 (295 votes); in force since 15 Oct 2025 per Rada Speaker Stefanchuk."
        ),
        "areas": {
            "maritime-security": "defence incl. maritime security (Baltic, Black, Azov seas)",
            "drones": "drones/technology",
            "science-technology": "science",
            "energy": None,
            "economic-cooperation": "trade",
            "reconstruction": "£40m economic recovery programme",
            "food-security": "Grain Verification Scheme",
        },
        "pledges": [
            {"amount": "40000000", "currency": "GBP", "check_in_content": "£40m economic recovery programme", "year_from": None, "year_to": None,
             "kind": "reconstruction", "measure": None, "in_agreement_text": None,
             "description": "Economic recovery programme",
             "note": ("listed in the dataset's summary of the agreement's content; whether it is in the treaty "
                      "text or was announced alongside it is not verified")},
        ],
    },
    ("ua-bsa-fr-2024", 0): {
        "include": False,
        "reason": ("trilateral France-UK-Ukraine declaration of intent (signed with the multilateral Paris "
                   "Declaration); does not fit the one-partner model"),
    },
    ("ua-bsa-eu-2024", 0): {
        "include": False,
        "reason": "the Ukraine Compact is multilateral (same document as related_documents ua-compact-2024)",
    },
}

# The "ua-pending" related document -> one negotiating agreement per partner.
PENDING = {
    "ME": {
        "name": "Montenegro",
        "sources": [0, 2],
        "summary": (
            "Talks on a security agreement began on 30 Aug 2024; a signing in Podgorica planned for mid-May 2025 "
            "was postponed (Vijesti). No signature verified; not in Ukraine's MoD list of 28 agreements (Nov 2025)."
        ),
    },
    "BG": {
        "name": "Bulgaria",
        "sources": [1, 2],
        "summary": (
            "A first round of negotiations on a security agreement was reported (UNN). No signature verified; not "
            "in Ukraine's MoD list of 28 agreements (Nov 2025)."
        ),
    },
    "MK": {
        "name": "North Macedonia",
        "sources": [2],
        "summary": (
            "Preparation of a security agreement was discussed in mid-2024. No signature verified; not in "
            "Ukraine's MoD list of 28 agreements (Nov 2025)."
        ),
    },
}

# --------------------------------------------------------------------------
# 3. Source metadata
# --------------------------------------------------------------------------
# Titles of the simple form "Title (Publisher)" / "Title (Publisher, 14 Jan 2024)"
# are parsed automatically.  Everything else is decided here, by URL:
# (title, publisher, published_on).
SOURCE_TITLE_OVERRIDES: dict[str, tuple[str, str | None, str | None]] = {
    "https://dodofinance.com/announcement-of-security-agreement-during-pm-sunaks-visit-to-kyiv-on-dodo-finance/":
        ("UK and Ukraine Sign Landmark Security Agreement", "Dodo Finance", "2024-01-12"),
    "https://turan.az/en/in-world/kyiv-and-london-signed-an-agreement-on-security-guarantees":
        ("Kyiv and London signed an agreement on security guarantees", "Turan (citing DW)", None),
    "https://www.pravda.com.ua/eng/news/2024/02/16/7442267/":
        ("France to provide up to €3bn military aid under security agreement "
         "[note: article body mis-states '16 January']", "Ukrainska Pravda", "2024-02-16"),
    "https://president.gov.ua/en/news/ugoda-pro-spivrobitnictvo-u-sferi-bezpeki-mizh-ukrayinoyu-ta-89245":
        ("Agreement on security cooperation between Ukraine and Italy (full text)", "President of Ukraine", "2024-02-24"),
    "https://www.pravda.com.ua/eng/news/2024/02/22/7443115/":
        ("Italy expects to sign security agreement (citing Tajani)", "Ukrainska Pravda", None),
    "https://www.pravda.com.ua/eng/news/2024/04/4/7449623/":
        ("Latvia plans to sign security agreement with Kyiv on 11 April", "Ukrainska Pravda (citing Delfi)", None),
    "https://www.nippon.com/en/news/yjj2024061400005/japan-ukraine-agree-on-talks-within-24-hours-of-attack.html":
        ("Japan, Ukraine agree on talks within 24 hours of attack (Fasano)", "Jiji Press", None),
    "https://japan-forward.com/japan-ukraine-sign-breakthrough-first-security-agreement-on-g7-sidelines/":
        ("Japan, Ukraine Sign 'Breakthrough' First Security Agreement on G7 Sidelines [conflicting amount]",
         "Japan Forward", None),
    "https://president.gov.ua/en/news/ugoda-pro-spivrobitnictvo-u-sferi-bezpeki-mizh-ukrayinoyu-ta-91809":
        ("Agreement on Security Cooperation between Ukraine and the Republic of Lithuania (full text)",
         "President of Ukraine", None),
    "https://www.globalsecurity.org/wmd/library/news/ukraine/2024/06/ukraine-240627-estonia-mfa01.htm":
        ("Foreign Minister Tsahkna: The security agreement reaffirms Estonia's continued and unwavering support",
         "Estonian MFA release via GlobalSecurity", "2024-06-27"),
    "https://president.gov.ua/en/news/ugoda-pro-spivrobitnictvo-u-sferi-bezpeki-ta-dovgostrokovu-p-91793":
        ("Agreement on Security Cooperation and Long-term Support between Ukraine and Estonia (full text)",
         "President of Ukraine", "2024-06-27"),
    "https://newsukraine.rbc.ua/news/over-100-million-a-year-details-of-security-1717591106.html":
        ("Over €100 million a year: Details of security agreement with Estonia revealed (pre-signing draft)",
         "RBC-Ukraine (citing ERR)", None),
    "https://brusselssignal.eu/2024/07/polish-mulls-shooting-down-russian-missiles-over-ukraine/":
        ("Poland mulls shooting down Russian missiles over Ukraine (EPA caption: Chancellery, Warsaw)",
         "Brussels Signal", None),
    "https://president.gov.ua/en/news/ugoda-pro-spivrobitnictvo-u-sferi-bezpeki-ta-dovgostrokovu-p-92057":
        ("Agreement on security cooperation and long-term support between Ukraine and the Grand-Duchy of "
         "Luxembourg (full text)", "President of Ukraine", "2024-07-10"),
    "https://brnodaily.cz/2024/07/19/news/politics/fiala-and-zelenskiy-sign-security-cooperation-deal-at-epc-summit-in-oxford":
        ("Fiala and Zelenskiy Sign Security Cooperation Deal at EPC Summit in Oxford", "Brno Daily (citing CTK)", None),
    "https://publicnow.com/view/248C176E96B5B3E0402A7A8E8098008F0B5AF89E":
        ("Ukraine and Ireland Sign Bilateral Agreement", "President of Ukraine press release via Public", "2024-09-04"),
    "https://www.ukrinform.de/amp/rubric-ato/4056649-28-bilaterale-sicherheitsabkommen-seit-2024-unterzeichnet.html":
        ("28 bilaterale Sicherheitsabkommen seit 2024 unterzeichnet (notes Greece still to be ratified)",
         "Ukrinform (citing MoD)", None),
    "https://president.gov.ua/en/news/ugoda-pro-dovgostrokove-spivrobitnictvo-ta-pidtrimku-mizh-uk-95573":
        ("Agreement on long-term cooperation and support between Ukraine and Albania (full text)",
         "President of Ukraine", None),
    "https://www.pravda.com.ua/eng/news/2024/07/12/7465276/":
        ("Ukraine Compact signed by 23 countries and EU at NATO Summit", "European Pravda", None),
}

# Titles kept exactly as in the dataset, publisher null: the parenthetical names
# a copy / secondary site rather than a publisher.
KEEP_TITLE_AS_IS = {
    "https://mixedtimes.com/news/ukraine-germany-finalize-bilateral-security-agreement",          # (UPI copy)
    "https://timesinworld.com/ukraine-war-in-rare-visit-to-kharkiv-netherlands-pm-signs-security-deal-with-kyiv",  # (citing Reuters)
    "http://urbanclean.info/index-371.html",                                                      # (copy of Euractiv report)
    "https://webjosh.com/article/us-and-ukraine-expected-to-sign-long-term-security-agreement-at-g7-1718201354-10346",  # (CNN copy)
    "https://antalyareklamajansi.net/news/biden-signs-10-pact-ukraine-214233421.html",            # (USA Today copy; ...)
    "https://good-time-invest.com/blog/ukraine-signs-security-agreements-with-czech-republic-and-slovenia",  # (secondary summary)
}

MONTHS = {m: i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)}
FULL_DATE_RE = re.compile(r"^(\d{1,2}) ([A-Z][a-z]{2}) (\d{4})$")
MONTH_YEAR_RE = re.compile(r"^([A-Z][a-z]{2}) (\d{4})$")
SIMPLE_TITLE_RE = re.compile(r"^(?P<title>.+?) \((?P<inner>[^()\[\];]+)\)$")


def parse_full_date(text: str) -> str | None:
    m = FULL_DATE_RE.match(text)
    if not m or m.group(2) not in MONTHS:
        return None
    return _dt.date(int(m.group(3)), MONTHS[m.group(2)], int(m.group(1))).isoformat()


def source_meta(url: str, raw_title: str) -> tuple[str, str | None, str | None]:
    """(title, publisher, published_on) for a dataset source."""
    if url in SOURCE_TITLE_OVERRIDES:
        return SOURCE_TITLE_OVERRIDES[url]
    if url in KEEP_TITLE_AS_IS:
        return raw_title, None, None
    m = SIMPLE_TITLE_RE.match(raw_title)
    assert m, f"source title needs a manual decision: {url} {raw_title!r}"
    title, inner = m.group("title"), m.group("inner")
    parts = inner.split(", ")
    if len(parts) == 1:
        return title, parts[0], None
    assert len(parts) == 2, f"source title needs a manual decision: {url} {raw_title!r}"
    publisher, date_text = parts
    full = parse_full_date(date_text)
    if full:
        return title, publisher, full
    mm = MONTH_YEAR_RE.match(date_text)
    assert mm and mm.group(1) in MONTHS, f"source title needs a manual decision: {url} {raw_title!r}"
    # month-only date: keep it in the title, never guess a day
    return f"{title} ({date_text})", publisher, None


# --------------------------------------------------------------------------
# 4. Helpers
# --------------------------------------------------------------------------
AMOUNT_RE = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$")
SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
KINDS = {"bilateral_security", "partnership", "declaration", "other"}
STATUSES = {"negotiating", "signed", "ratified", "in_force", "expired", "terminated"}
PLEDGE_KINDS = {"military", "financial", "humanitarian", "reconstruction", "mixed"}
MEASURES = {"commitment", "allocation", None}


def is_unverified(value) -> bool:
    return isinstance(value, str) and "UNVERIFIED" in value


def exact_amount(value) -> str:
    """Exact decimal string from a JSON number (float), no exponent, <= 2 decimals."""
    assert isinstance(value, (int, float)) and not isinstance(value, bool), value
    d = Decimal(repr(value))
    if d == d.to_integral_value():
        d = d.quantize(Decimal(1))
    else:
        assert d == d.quantize(Decimal("0.01")), f"amount {value!r} has more than 2 decimal places"
        d = d.normalize()  # a non-integral value: drop trailing zeros, never an exponent here
    s = format(d, "f")
    assert AMOUNT_RE.match(s), s
    return s


def split_signatory(text: str, side: str) -> dict:
    m = re.match(r"^(.+?) \((.+)\)$", text.strip())
    if m:
        return {"name": m.group(1).strip(), "role": m.group(2).strip(), "side": side}
    return {"name": text.strip(), "role": None, "side": side}


def signatories_of(sig: dict) -> list[dict]:
    out = []
    for side in ("ukraine", "partner"):
        raw = sig.get(side)
        if raw is None or is_unverified(raw):
            continue  # an UNVERIFIED signatory is omitted
        for part in raw.split("; "):
            out.append(split_signatory(part, side))
    return out


def supports_pledges(src: dict) -> bool:
    return any(s == "pledges" or s.startswith("pledges ") or s.startswith("pledges(") for s in src["supports"])


def map_areas(dataset_codes: list[str], details: dict) -> list[dict]:
    codes = set()
    for c in dataset_codes:
        assert c in AREA_MAP, f"unmapped cooperation area: {c}"
        codes.update(AREA_MAP[c])
    for code in details:
        assert code in codes, f"area detail for {code}, which the agreement's cooperation_areas do not map to"
    return [{"code": c, "detail": details.get(c)} for c in sorted(codes)]


def build_sources(agreement_id: str, dataset_sources: list[dict], links: dict[int, list[str]]) -> list[dict]:
    """One SOURCE per dataset source (dataset order); a source supporting several
    pledges is emitted once per pledge.  A URL repeated within one entry is emitted once."""
    out, seen = [], set()
    n = 0
    for i, src in enumerate(dataset_sources):
        if src["url"] in seen:
            assert not links.get(i), "duplicate URL carrying pledge links"
            continue
        seen.add(src["url"])
        title, publisher, published_on = source_meta(src["url"], src["title"])
        for pledge_id in links.get(i) or [None]:
            n += 1
            out.append({
                "id": f"{agreement_id}-s{n}",
                "url": src["url"],
                "title": title,
                "publisher": publisher,
                "published_on": published_on,
                "pledge_id": pledge_id,
            })
    return out


def build_pledges(agreement_id: str, ds_pledges: list[dict], specs: list[dict], ds_sources: list[dict],
                  dropped: list[str]) -> tuple[list[dict], dict[int, list[str]]]:
    assert len(specs) == len(ds_pledges), f"{agreement_id}: every dataset pledge needs a decision"
    default_src = [i for i, s in enumerate(ds_sources) if supports_pledges(s)]
    if not default_src:
        default_src = [i for i, s in enumerate(ds_sources) if "all core fields" in s["supports"]]
    pledges, links = [], {}
    for raw, spec in zip(ds_pledges, specs):
        if "drop" in spec:
            dropped.append(f"{agreement_id}: {raw.get('amount')!r} {raw.get('currency')!r} "
                           f"({raw.get('years')}) - {spec['drop']}")
            continue
        amount = exact_amount(raw["amount"])
        assert amount == spec["amount"], f"{agreement_id}: amount {amount} != expected {spec['amount']}"
        currency = raw["currency"]
        pid = f"{agreement_id}-p{len(pledges) + 1}"
        in_text = raw["in_agreement_text"]
        in_text = None if is_unverified(in_text) else in_text
        assert in_text in (True, False, None)
        note = spec["note"]
        if in_text is None:
            assert note and "not verified" in note, f"{pid}: unverified in_agreement_text must be noted"
        pledges.append({
            "id": pid,
            "amount": amount,
            "currency": currency,
            "year_from": spec["year_from"],
            "year_to": spec["year_to"],
            "kind": spec["kind"],
            "measure": spec["measure"],
            "in_agreement_text": in_text,
            "description": spec["description"],
            "note": note,
        })
        for i in spec.get("sources", default_src):
            links.setdefault(i, []).append(pid)
    return pledges, links


def later_agreement_sources(parent: dict) -> list[dict]:
    return [s for s in parent["sources"] if any(x.startswith("later_agreements") for x in s["supports"])]


# --------------------------------------------------------------------------
# 5. Main
# --------------------------------------------------------------------------
def main() -> int:
    in_path = Path(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_INPUT)
    data = json.loads(in_path.read_text(encoding="utf-8"))
    currencies = {c["alpha_3"] for c in json.loads(ISO_4217.read_text(encoding="utf-8"))["4217"]}
    countries = {c["alpha_2"] for c in json.loads(ISO_3166.read_text(encoding="utf-8"))["3166-1"]} | {"EU"}

    # ---- areas vocabulary
    vocab = sorted(AREAS)
    vocab_codes = [a[0] for a in vocab]
    assert len(set(vocab_codes)) == len(vocab_codes)
    assert REQUIRED_AREAS <= set(vocab_codes), REQUIRED_AREAS - set(vocab_codes)
    for code, name, desc in vocab:
        assert SLUG_RE.match(code) and len(code) <= 64, code
        assert name and desc.endswith(".")
    for targets in AREA_MAP.values():
        assert all(t in vocab_codes for t in targets), targets
    areas_doc = {"areas": [{"code": c, "name": n, "description": d} for c, n, d in vocab]}

    agreements: list[dict] = []
    used_ids: set[str] = set()
    dropped: list[str] = []
    excluded: list[str] = []

    def make_id(code: str, signed_on: str | None) -> str:
        base = f"ua-{code.lower()}" + (f"-{signed_on[:4]}" if signed_on else "")
        aid = base if base not in used_ids else f"{base}-2"
        assert aid not in used_ids, f"third agreement for {base}"
        used_ids.add(aid)
        return aid

    covered_later = set()
    assert set(CURATION) == {a["id"] for a in data["agreements"]}, "every agreement needs a curation entry"
    for a in data["agreements"]:
        cur = CURATION[a["id"]]
        code = a["partner_code"]
        assert code in countries, code
        assert a["status"]["signed"] is True
        signed_on = a["date_signed"]
        assert not is_unverified(signed_on)
        aid = make_id(code, signed_on)

        # legal nature: never claim anything the dataset does not say explicitly
        ln = a["status"]["legal_nature"]
        if is_unverified(ln) or "status" in a["unverified_fields"]:
            assert cur["legally_binding"] is None, f"{a['id']}: legal nature is UNVERIFIED"
        # term: null when the dataset marks it unverified
        term = a["term_years"]
        if any(f.startswith("term_years") for f in a["unverified_fields"]):
            term = None
        place = cur.get("signed_at", a["place_signed"])
        place = None if is_unverified(place) else place

        pledges, links = build_pledges(aid, a["pledges"], cur["pledges"], a["sources"], dropped)
        text_url = cur.get("text_url")
        if text_url:
            assert text_url in {s["url"] for s in a["sources"]}, text_url
        agreements.append({
            "id": aid,
            "partner": code,
            "title": a["agreement_title"],
            "kind": "bilateral_security",
            "status": "signed",  # no entry's dataset status states ratification / entry into force with a source
            "signed_on": signed_on,
            "signed_at": place,
            "signatories": signatories_of(a["signatories"]),
            "term_years": term,
            "expires_on": None,  # the dataset gives no explicit end dates
            "legally_binding": cur["legally_binding"],
            "summary": cur["summary"],
            "text_url": text_url,
            "areas": map_areas(a["cooperation_areas"], cur["areas"]),
            "pledges": pledges,
            "sources": build_sources(aid, a["sources"], links),
        })

        # ---- later agreements of this entry
        for li, la in enumerate(a.get("later_agreements") or []):
            key = (a["id"], li)
            assert key in LATER_AGREEMENTS, f"later agreement needs a decision: {key}"
            covered_later.add(key)
            dec = LATER_AGREEMENTS[key]
            if not dec["include"]:
                excluded.append(f"{a['id']} later_agreements[{li}] '{la['title']}' ({la.get('date_signed')}): {dec['reason']}")
                continue
            assert dec["status_must_contain"] in la["status"]
            lid = make_id(code, la["date_signed"])
            l_sources = later_agreement_sources(a)
            assert l_sources, f"{key}: no source supports later_agreements"
            l_pledges, l_links = [], {}
            for spec in dec["pledges"]:
                pid = f"{lid}-p{len(l_pledges) + 1}"
                assert AMOUNT_RE.match(spec["amount"]) and spec["currency"] in currencies
                assert spec["check_in_content"] in la["content"], spec["check_in_content"]
                l_pledges.append({"id": pid, **{k: spec[k] for k in (
                    "amount", "currency", "year_from", "year_to", "kind", "measure", "in_agreement_text",
                    "description", "note")}})
                # the content list is supported by the source(s) whose supports is exactly "later_agreements"
                for i, s in enumerate(l_sources):
                    if "later_agreements" in s["supports"]:
                        l_links.setdefault(i, []).append(pid)
            agreements.append({
                "id": lid,
                "partner": code,
                "title": la["title"],
                "kind": dec["kind"],
                "status": dec["status"],
                "signed_on": la["date_signed"],
                "signed_at": la.get("place_signed"),
                "signatories": dec["signatories"],
                "term_years": dec["term_years"],
                "expires_on": None,
                "legally_binding": dec["legally_binding"],
                "summary": dec["summary"],
                "text_url": None,
                "areas": [{"code": c, "detail": dec["areas"][c]} for c in sorted(dec["areas"])],
                "pledges": l_pledges,
                "sources": build_sources(lid, l_sources, l_links),
            })
    assert covered_later == set(LATER_AGREEMENTS), "stale LATER_AGREEMENTS entries"

    # ---- related documents
    for r in data["related_documents"]:
        if r["partner_code"] == "MULTI":
            excluded.append(f"related_documents {r['id']} ({r['date_signed']}): multilateral, not modelled")
            continue
        assert r["id"] == "ua-pending", r["id"]
        codes = r["partner_code"].split(";")
        assert set(codes) == set(PENDING), codes
        for code in codes:
            p = PENDING[code]
            assert code in countries and p["name"] in r["partner_name"]
            aid = make_id(code, None)
            srcs = [r["sources"][i] for i in p["sources"]]
            agreements.append({
                "id": aid,
                "partner": code,
                "title": f"Security agreement between Ukraine and {p['name']} (under negotiation)",
                "kind": "bilateral_security",
                "status": "negotiating",
                "signed_on": None,
                "signed_at": None,
                "signatories": [],
                "term_years": None,
                "expires_on": None,
                "legally_binding": None,
                "summary": p["summary"],
                "text_url": None,
                "areas": [],
                "pledges": [],
                "sources": build_sources(aid, srcs, {}),
            })

    agreements.sort(key=lambda x: x["id"])

    # ---- run-time checks
    ids = [a["id"] for a in agreements]
    assert len(ids) == len(set(ids)), "agreement ids not unique"
    all_ids = list(ids)
    kept_urls = set()
    for a in agreements:
        assert re.match(r"^ua-[a-z]{2}(-\d{4}(-2)?)?$", a["id"]), a["id"]
        assert a["partner"] in countries
        assert a["kind"] in KINDS and a["status"] in STATUSES
        assert a["title"] and a["summary"]
        for d in (a["signed_on"], a["expires_on"]):
            if d is not None:
                assert _dt.date.fromisoformat(d).isoformat() == d, d
        assert a["term_years"] is None or isinstance(a["term_years"], int)
        assert a["legally_binding"] in (True, False, None)
        assert a["status"] not in ("ratified", "in_force") or a["kind"] == "partnership"  # only the UK treaty
        for s in a["signatories"]:
            assert s["side"] in ("ukraine", "partner") and s["name"]
        codes = [x["code"] for x in a["areas"]]
        assert codes == sorted(set(codes)), a["id"]
        assert all(c in vocab_codes for c in codes), a["id"]
        assert len(a["sources"]) >= 1, f"{a['id']} has no source"
        for p in a["pledges"]:
            assert p["id"].startswith(a["id"] + "-p")
            assert AMOUNT_RE.match(p["amount"]), p
            assert p["currency"] in currencies, p
            assert p["kind"] in PLEDGE_KINDS and p["measure"] in MEASURES
            assert p["in_agreement_text"] in (True, False, None)
            assert (p["year_from"] is None) == (p["year_to"] is None)
            if p["year_from"] is not None:
                assert 2000 <= p["year_from"] <= p["year_to"] <= 2100
            assert p["description"]
            assert any(s["pledge_id"] == p["id"] for s in a["sources"]), f"pledge {p['id']} has no linked source"
            all_ids.append(p["id"])
        pledge_ids = {p["id"] for p in a["pledges"]}
        for s in a["sources"]:
            assert s["id"].startswith(a["id"] + "-s")
            assert s["pledge_id"] is None or s["pledge_id"] in pledge_ids
            if s["published_on"] is not None:
                assert _dt.date.fromisoformat(s["published_on"]).isoformat() == s["published_on"]
            kept_urls.add(s["url"])
            all_ids.append(s["id"])
    assert len(all_ids) == len(set(all_ids)), "ids not unique"
    # disputed Japan figure must be flagged
    jp = next(a for a in agreements if a["id"] == "ua-jp-2024")
    assert jp["pledges"][0]["note"].startswith("figure disputed: ")
    # every source URL of the agreements (and of the pending entry) is kept
    wanted = {s["url"] for a in data["agreements"] for s in a["sources"]}
    wanted |= {s["url"] for r in data["related_documents"] if r["id"] == "ua-pending" for s in r["sources"]}
    assert wanted <= kept_urls, wanted - kept_urls
    out_text = json.dumps({"agreements": agreements}, ensure_ascii=False, indent=2) + "\n"
    assert "UNVERIFIED" not in out_text

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "areas.json").write_text(
        json.dumps(areas_doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (OUT_DIR / "agreements.json").write_text(out_text, encoding="utf-8")

    n_pledges = sum(len(a["pledges"]) for a in agreements)
    n_sources = sum(len(a["sources"]) for a in agreements)
    print(f"areas: {len(vocab)}")
    print(f"agreements: {len(agreements)}")
    print(f"pledges: {n_pledges}")
    print(f"sources: {n_sources}")
    print("dropped pledges:")
    for d in dropped:
        print(f"  - {d}")
    print("not imported:")
    for e in excluded:
        print(f"  - {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
