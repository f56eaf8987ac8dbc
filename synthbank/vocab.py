"""Small fixed vocabularies (Dutch counterparties, MCCs, places) that rows index into.

Rows carry integer codes; strings are materialised once per chunk with a gather, which keeps
generation vectorised. Index 0 of every vocabulary is None (a null in the output).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

# (name, mcc or None). Grouped by the role they play in the simulation.
EMPLOYERS = (
    "Philips Nederland B.V.",
    "ASML Netherlands B.V.",
    "Koninklijke Ahold Delhaize N.V.",
    "Gemeente Amsterdam",
    "Gemeente Rotterdam",
    "Rijksoverheid",
    "Erasmus Universiteit Rotterdam",
    "NS Groep N.V.",
    "KPN B.V.",
    "Heineken Nederland B.V.",
    "Randstad Nederland B.V.",
    "Coolblue B.V.",
    "Stichting Zorggroep Noord",
    "Bouwbedrijf De Vries B.V.",
    "Unilever Nederland B.V.",
    "PostNL B.V.",
)
PENSION_FUNDS = ("ABP", "PFZW", "PMT", "bpfBOUW")
LANDLORDS = ("Ymere", "Eigen Haard", "Woonstad Rotterdam", "Portaal", "Vestia", "Mitros")
MORTGAGE_BANKS = ("ING Hypotheken", "Rabobank Hypotheken", "ABN AMRO Hypotheken", "Obvion")
ENERGY = ("Vattenfall", "Eneco", "Essent")
WATER = ("Vitens", "Evides", "Waternet")
TELECOM = ("KPN", "Ziggo", "Odido")
HEALTH_INSURERS = ("Zilveren Kruis", "CZ", "VGZ", "Menzis")
OTHER_INSURERS = ("Centraal Beheer", "Interpolis", "Nationale-Nederlanden")
TRAVEL_INSURERS = ("Allianz Reisverzekering", "ANWB Reisverzekering")
SAVINGS_ELSEWHERE = ("Raisin", "Brand New Day", "Meesman")
DEBT_COLLECTORS = ("Intrum", "Flanderijn Incasso", "GGN Incasso")
NOTARIES = ("Notariskantoor Van Dijk", "Notariskantoor De Boer", "Notariskantoor Bakker")
UNIONS = ("FNV", "CNV")
PARISH = "Parochie H. Nicolaas"

GROCERIES = (("Albert Heijn", 5411), ("Jumbo", 5411), ("Lidl", 5411), ("Aldi", 5411))
SHOPS = (
    ("HEMA", 5311),
    ("Action", 5331),
    ("MediaMarkt", 5732),
    ("IKEA", 5712),
    ("Praxis", 5200),
    ("Gamma", 5200),
    ("H&M", 5651),
    ("Decathlon", 5941),
    ("Blokker", 5719),
    ("Shell", 5541),
)
RESTAURANTS = (
    ("Restaurant De Kas", 5812),
    ("Brasserie Het Veerhuis", 5812),
    ("Vapiano", 5812),
    ("McDonald's", 5814),
    ("Starbucks", 5814),
    ("FEBO", 5814),
)
ONLINE = (("bol.com", 5311), ("Zalando", 5969), ("Coolblue", 5732), ("Thuisbezorgd.nl", 5814))
BABY_SHOPS = (("Prenatal", 5641), ("Baby-Dump", 5641), ("Babypark", 5641))
AIRLINES = (("KLM", 4511), ("Transavia", 4511), ("Corendon", 4511))
SCHIPHOL = (("Schiphol Parking", 7523), ("HMSHost Schiphol", 5812), ("Rituals Schiphol", 5977))
ABROAD = {
    "ES": (("Mercadona", 5411), ("Restaurante El Faro", 5812), ("Hotel Playa Sol", 7011)),
    "FR": (("Carrefour", 5411), ("Boulangerie Paul", 5814), ("Hotel Ibis Paris", 7011)),
    "IT": (("Conad", 5411), ("Trattoria da Mario", 5812), ("Hotel Roma Centro", 7011)),
    "DE": (("Edeka", 5411), ("Gasthaus zum Anker", 5812), ("Aral Tankstelle", 5541)),
    "US": (("Walmart", 5311), ("Shake Shack", 5814), ("Marriott Orlando", 7011)),
    "PT": (("Pingo Doce", 5411), ("Tasca do Chico", 5812), ("Hotel Lisboa Mar", 7011)),
}
ABROAD_CITIES = {
    "ES": "Malaga",
    "FR": "Paris",
    "IT": "Roma",
    "DE": "Berlin",
    "US": "Orlando",
    "PT": "Lisboa",
}
CITIES = (
    "Amsterdam",
    "Rotterdam",
    "Den Haag",
    "Utrecht",
    "Eindhoven",
    "Groningen",
    "Tilburg",
    "Almere",
    "Breda",
    "Nijmegen",
)
SCHIPHOL_LOCATION = "Schiphol"


@dataclass
class Vocab:
    """An append-only list of strings with None at index 0; `code` finds or adds a string."""

    items: list[str | None] = field(default_factory=lambda: [None])
    index: dict[str, int] = field(default_factory=dict)

    def code(self, value: str) -> int:
        if value not in self.index:
            self.index[value] = len(self.items)
            self.items.append(value)
        return self.index[value]

    def codes(self, values: tuple[str, ...]) -> list[int]:
        return [self.code(v) for v in values]


@dataclass
class Vocabs:
    """The vocabularies of one generation run (descriptions include one per simulated month)."""

    counterparty: Vocab = field(default_factory=Vocab)
    description: Vocab = field(default_factory=Vocab)
    location: Vocab = field(default_factory=Vocab)
    country: Vocab = field(default_factory=Vocab)

    def iban(self) -> list[str | None]:
        """A stable fake IBAN for every named counterparty, aligned with `counterparty.items`."""
        return [None] + [
            f"NL{10 + zlib.crc32(name.encode()) % 89:02d}SYNC{zlib.crc32(name.encode()):010d}"
            for name in self.counterparty.items[1:]
            if name is not None
        ]
