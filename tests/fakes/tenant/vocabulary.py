"""Names, domains, departments and the status and role mixes the generator draws from."""

from __future__ import annotations

from .records import SITE_ADMIN_ROLE

_FIRST = [
    ("Maria", "maria"), ("James", "james"), ("Aisha", "aisha"), ("Wei", "wei"), ("Olga", "olga"),
    ("José", "jose"), ("Zoë", "zoe"), ("Łukasz", "lukasz"), ("Søren", "soren"), ("Ngọc", "ngoc"),
    ("Fatima", "fatima"), ("Kenji", "kenji"), ("Priya", "priya"), ("Liam", "liam"), ("Chloé", "chloe"),
    ("Björn", "bjorn"), ("Ana", "ana"), ("Mohammed", "mohammed"), ("Emily", "emily"), ("Noah", "noah"),
    ("Sofía", "sofia"), ("Jürgen", "jurgen"), ("Ava", "ava"), ("Ethan", "ethan"), ("Mei", "mei"),
    ("Oluwaseun", "oluwaseun"), ("Siobhán", "siobhan"), ("Dmitri", "dmitri"), ("Isabella", "isabella"),
    ("Lucas", "lucas"), ("Hana", "hana"), ("Mateo", "mateo"), ("Grace", "grace"), ("Ravi", "ravi"),
    ("Élodie", "elodie"), ("Tomás", "tomas"), ("Ingrid", "ingrid"), ("Yusuf", "yusuf"), ("Camila", "camila"),
    ("Daniel", "daniel"), ("Ji-woo", "jiwoo"), ("Nadia", "nadia"), ("Omar", "omar"), ("Leah", "leah"),
    ("Ахмед", "akhmed"), ("明", "ming"), ("Ren", "ren"), ("Amara", "amara"), ("Samuel", "samuel"),
]


_LAST = [
    ("Smith", "smith"), ("García", "garcia"), ("Nguyễn", "nguyen"), ("Müller", "muller"), ("O'Brien", "obrien"),
    ("Kowalski", "kowalski"), ("Johnson", "johnson"), ("Okafor", "okafor"), ("Tanaka", "tanaka"), ("Patel", "patel"),
    ("Ødegård", "odegard"), ("Dubois", "dubois"), ("Rossi", "rossi"), ("Andersson", "andersson"), ("Kim", "kim"),
    ("Hernández", "hernandez"), ("Williams", "williams"), ("Schröder", "schroder"), ("Brown", "brown"),
    ("Silva", "silva"),
    ("D'Angelo", "dangelo"), ("Ivanova", "ivanova"), ("Chen", "chen"), ("Lopez", "lopez"), ("Núñez", "nunez"),
    ("Wilson", "wilson"), ("Haddad", "haddad"), ("Ólafsdóttir", "olafsdottir"), ("Davis", "davis"),
    ("Martin", "martin"),
    ("Mbeki", "mbeki"), ("van der Berg", "vanderberg"), ("Taylor", "taylor"), ("Moreau", "moreau"), ("Lee", "lee"),
    ("Yılmaz", "yilmaz"), ("Novák", "novak"), ("Clark", "clark"), ("Santos", "santos"), ("Thomas", "thomas"),
    ("Смирнов", "smirnov"), ("王", "wang"), ("Moore", "moore"), ("Zhang", "zhang"), ("Jackson", "jackson"),
]


_DOMAINS = ("example.com", "example.org", "clinic.example", "health.example.net", "lab.example.com")


_STATES = ("AK", "AZ", "CA", "CO", "DC", "FL", "MD", "MN", "NY", "TX", "WA", "PR", "GA", "IL", "OR")


_ORG_WORDS_A = ("Harbor", "Summit", "Riverside", "Prairie", "Lakeview", "Cedar", "Sunrise", "Granite",
                "Pioneer", "Bayou", "Mesa", "Evergreen", "Liberty", "Canyon", "Northstar", "Willow")


_ORG_WORDS_B = ("Health", "Clinic", "Labs", "Testing", "Medical", "Community Care", "Pharmacy", "Schools",
                "Urgent Care", "Diagnostics")


_UNICODE_ORG_NAMES = ("Clínica São José", "Gesundheitszentrum Müller", "Centre de Santé Éloïse",
                      "Zdrowie Łódź", "Kōkua Health", "Salud Niño & Familia")


_DEPARTMENTS = ("Lab", "Front Desk", "Nursing", "Administration", "Recherche & Développement", "IT",
                "Pharmacy", "Quality", "Öffentlichkeitsarbeit")


_STATUS_THRESHOLDS = (
    (0.80, "ACTIVE"),
    (0.83, "STAGED"),
    (0.87, "PROVISIONED"),
    (0.92, "SUSPENDED"),
    (0.95, "DEPROVISIONED"),
    (0.97, "LOCKED_OUT"),
    (0.99, "PASSWORD_EXPIRED"),
    (1.01, "RECOVERY"),
)


_PRIMARY_ROLE_THRESHOLDS = ((0.50, "USER"), (0.70, "ENTRY_ONLY"), (0.85, "ADMIN"), (1.01, "ALL_FACILITIES"))


_THREE_YEARS = 3 * 365 * 86400.0


_ROLE_DESCRIPTIONS = {
    "NO_ACCESS": "Member of the organization without permissions",
    "ADMIN": "Organization administrator (all facilities)",
    "USER": "Standard user",
    "ENTRY_ONLY": "Can enter test results only",
    "ALL_FACILITIES": "Access to all facilities of the organization",
    SITE_ADMIN_ROLE: "Site administrator",
}


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))


_UUID_SET = (0x4000 << 64) | (0x8000 << 48)
