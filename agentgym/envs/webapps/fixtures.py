"""The seeded fixture of the web apps: products, users, settings, clinic slots, and the SQLite database made from them.

A fixture is a pure function of its seed (:func:`fixture`): the same seed always gives the same
catalogue, prices, users, permissions and free slots, so a task id names one starting state.
:func:`create_database` writes a fresh database from it for one episode.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import random
import sqlite3
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

CATEGORIES = ("Kitchen", "Garden", "Office", "Toys", "Sports")
_NOUNS = {
    "Kitchen": ("Kettle", "Toaster", "Blender", "Teapot", "Colander", "Whisk", "Skillet", "Grater"),
    "Garden": ("Trowel", "Hose", "Planter", "Rake", "Sprinkler", "Shears", "Wheelbarrow", "Birdhouse"),
    "Office": ("Stapler", "Notebook", "Desk Lamp", "Organizer", "Whiteboard", "Pen Set", "Monitor Stand", "Binder"),
    "Toys": ("Kite", "Puzzle", "Robot", "Yo-yo", "Marble Run", "Train Set", "Spinning Top", "Plush Bear"),
    "Sports": (
        "Yoga Mat",
        "Dumbbell",
        "Jump Rope",
        "Water Bottle",
        "Tennis Racket",
        "Football",
        "Bike Light",
        "Headband",
    ),
}
_ADJECTIVES = ("Classic", "Deluxe", "Compact", "Sturdy", "Bright", "Quiet", "Nimble", "Rustic", "Modern", "Handy")
_COMMON_ORIGINS = ("Germany", "Japan", "Mexico", "Canada", "Italy", "Vietnam")
RARE_ORIGINS = ("Iceland", "Portugal", "Chile", "Kenya", "Norway", "Peru", "Estonia", "Ghana")
COUPONS = {"SAVE10": 10, "WELCOME15": 15}
"""Coupon code -> percent off the order's subtotal."""

FIRST = ("Alice", "Bruno", "Chen", "Dana", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Liam", "Mona")
LAST = ("Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka", "Ueda", "Varga", "Weber", "Young", "Zhang")
DEPARTMENTS = ("Sales", "Support", "Engineering", "Finance")
ROLES = ("viewer", "editor", "admin")
PERMISSIONS = ("reports", "billing", "export", "deploy")
LANGUAGES = ("English", "German", "French", "Spanish")
DOCTORS = ("Dr. Amara Lindqvist", "Dr. Tomas Herrera", "Dr. Priya Natarajan")
TIMES = ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "13:00", "13:30", "14:00", "14:30", "15:00", "15:30")
INSURERS = ("Acme Health", "Blue Harbor", "Northwind Care")


@dataclass(frozen=True)
class Product:
    """A shop item; ``origin`` and ``warranty_years`` are shown only on its detail page."""

    id: int
    name: str
    category: str
    price_cents: int
    stock: int
    origin: str
    warranty_years: int
    description: str


@dataclass(frozen=True)
class User:
    """An admin-console account; ``extension`` is shown only on its detail page."""

    id: int
    username: str
    name: str
    email: str
    department: str
    role: str
    active: bool
    last_login: str
    extension: str


@dataclass(frozen=True)
class Slot:
    """A clinic appointment slot."""

    id: int
    doctor: str
    date: str
    time: str
    free: bool


@dataclass(frozen=True)
class Booking:
    """A clinic booking made before the episode (for the cancel task)."""

    ref: str
    slot_id: int
    name: str
    email: str
    phone: str
    dob: str


@dataclass(frozen=True)
class Fixture:
    """Everything a seed decides; :func:`create_database` writes it to SQLite."""

    seed: int
    products: tuple[Product, ...]
    users: tuple[User, ...]
    permissions: frozenset[tuple[int, str]]
    settings: dict[str, str] = field(hash=False)
    admin_username: str = "admin"
    admin_password: str = ""
    slots: tuple[Slot, ...] = ()
    bookings: tuple[Booking, ...] = ()
    today: str = "2026-12-01"

    def product(self, name: str) -> Product:
        """The product called ``name``."""
        return next(p for p in self.products if p.name == name)

    def user(self, username: str) -> User:
        """The user with ``username``."""
        return next(u for u in self.users if u.username == username)

    @property
    def dates(self) -> list[str]:
        """The clinic's bookable dates, in order."""
        return sorted({s.date for s in self.slots})


def _password_hash(password: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()


@lru_cache(maxsize=64)
def fixture(seed: int) -> Fixture:
    """The starting state for ``seed`` (deterministic; cached)."""
    rng = random.Random(f"agentgym-webapps-{seed}")
    products: list[Product] = []
    rare = rng.choice(RARE_ORIGINS)
    rare_index = rng.randrange(5 * len(CATEGORIES))
    all_prices = rng.sample(range(500, 20000, 25), 5 * len(CATEGORIES))  # distinct: one cheapest, one priciest
    for c, category in enumerate(CATEGORIES):
        nouns = rng.sample(_NOUNS[category], 5)
        adjectives = rng.sample(_ADJECTIVES, 5)
        prices = all_prices[5 * c : 5 * c + 5]
        for i in range(5):
            pid = c * 5 + i + 1
            origin = rare if pid - 1 == rare_index else rng.choice(_COMMON_ORIGINS)
            name = f"{adjectives[i]} {nouns[i]}"
            warranty = rng.randint(1, 5)
            products.append(
                Product(
                    pid,
                    name,
                    category,
                    prices[i],
                    rng.randint(3, 40),
                    origin,
                    warranty,
                    f"A {adjectives[i].lower()} {nouns[i].lower()} for everyday use.",
                )
            )
    base = dt.date(2026, 11, 1) + dt.timedelta(days=seed % 20)
    people = rng.sample([(f, last) for f in FIRST for last in LAST], 12)
    users = [
        User(
            1,
            "admin",
            "Site Administrator",
            "admin@example.test",
            "Engineering",
            "admin",
            True,
            base.isoformat(),
            "100",
        )
    ]
    for i, (first, last) in enumerate(people, start=2):
        login = base - dt.timedelta(days=rng.randint(0, 120))
        users.append(
            User(
                i,
                f"{first.lower()}.{last.lower()}",
                f"{first} {last}",
                f"{first.lower()}.{last.lower()}@example.test",
                DEPARTMENTS[(i + rng.randrange(2)) % len(DEPARTMENTS)],
                rng.choice(("viewer", "viewer", "editor", "admin")),
                rng.random() < 0.85,
                login.isoformat(),
                str(rng.randint(200, 899)),
            )
        )
    permissions = frozenset((u.id, p) for u in users[1:] for p in PERMISSIONS if rng.random() < 0.35)
    settings = {
        "site_name": rng.choice(("Northwind Portal", "Harbor Hub", "Acme Intranet")),
        "support_email": "help@example.test",
        "maintenance_mode": "off",
        "max_upload_mb": str(rng.choice((10, 20, 25, 50))),
        "default_language": rng.choice(LANGUAGES),
    }
    words = ("amber", "birch", "cobalt", "delta", "ember", "fjord", "garnet", "harbor")
    password = f"{rng.choice(words)}-{rng.choice(words)}-{rng.randint(10, 99)}"
    today = base + dt.timedelta(days=30)
    slots: list[Slot] = []
    for d in range(1, 6):
        date = (today + dt.timedelta(days=d)).isoformat()
        for doctor in DOCTORS:
            for time in TIMES:
                slots.append(Slot(len(slots) + 1, doctor, date, time, rng.random() < 0.35))
    taken = [s for s in slots if not s.free]
    bookings = []
    for k, slot in enumerate(rng.sample(taken, 3)):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        ref = f"{'ABCDEFGHJK'[rng.randrange(10)]}{'LMNPQRSTUV'[rng.randrange(10)]}{rng.randint(1000, 9999)}{k}"
        bookings.append(
            Booking(
                ref,
                slot.id,
                f"{first} {last}",
                f"{first.lower()}@example.test",
                f"555{rng.randint(1000000, 9999999)}",
                f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            )
        )
    return Fixture(
        seed,
        tuple(products),
        tuple(users),
        permissions,
        settings,
        "admin",
        password,
        tuple(slots),
        tuple(bookings),
        today.isoformat(),
    )


SCHEMA = """
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, category TEXT, price_cents INTEGER, stock INTEGER,
    origin TEXT, warranty_years INTEGER, description TEXT);
CREATE TABLE sessions (sid TEXT PRIMARY KEY, user_id INTEGER, coupon TEXT);
CREATE TABLE cart (sid TEXT, product_id INTEGER, qty INTEGER, PRIMARY KEY (sid, product_id));
CREATE TABLE orders (id INTEGER PRIMARY KEY, sid TEXT, full_name TEXT, street TEXT, city TEXT, postal_code TEXT,
    country TEXT, notes TEXT, coupon TEXT, subtotal_cents INTEGER, total_cents INTEGER);
CREATE TABLE order_items (order_id INTEGER, product_id INTEGER, qty INTEGER, price_cents INTEGER);
CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE, name TEXT, email TEXT, department TEXT, role TEXT,
    active INTEGER, last_login TEXT, extension TEXT, password_salt TEXT, password_hash TEXT);
CREATE TABLE permissions (user_id INTEGER, perm TEXT, PRIMARY KEY (user_id, perm));
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE audit (id INTEGER PRIMARY KEY, actor TEXT, action TEXT);
CREATE TABLE slots (id INTEGER PRIMARY KEY, doctor TEXT, date TEXT, time TEXT, free INTEGER);
CREATE TABLE drafts (sid TEXT, slot_id INTEGER, name TEXT, email TEXT, phone TEXT, dob TEXT, reason TEXT,
    insurer TEXT, member_id TEXT, PRIMARY KEY (sid, slot_id));
CREATE TABLE bookings (ref TEXT PRIMARY KEY, slot_id INTEGER, name TEXT, email TEXT, phone TEXT, dob TEXT,
    reason TEXT, insurer TEXT, member_id TEXT, status TEXT);
"""


def create_database(path: str | Path, fx: Fixture) -> Path:
    """Write a fresh database for ``fx`` at ``path`` (which must not exist yet)."""
    path = Path(path)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        conn.executemany(
            "INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (p.id, p.name, p.category, p.price_cents, p.stock, p.origin, p.warranty_years, p.description)
                for p in fx.products
            ],
        )
        rows = []
        for u in fx.users:
            salt = hashlib.sha256(f"{fx.seed}:{u.username}".encode()).hexdigest()[:16]
            secret = fx.admin_password if u.username == fx.admin_username else f"unused-{salt}"
            fields = (u.id, u.username, u.name, u.email, u.department, u.role, int(u.active), u.last_login)
            rows.append((*fields, u.extension, salt, _password_hash(secret, salt)))
        conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO permissions VALUES (?, ?)", sorted(fx.permissions))
        conn.executemany("INSERT INTO settings VALUES (?, ?)", sorted(fx.settings.items()))
        conn.executemany(
            "INSERT INTO slots VALUES (?, ?, ?, ?, ?)",
            [(s.id, s.doctor, s.date, s.time, int(s.free)) for s in fx.slots],
        )
        conn.executemany(
            "INSERT INTO bookings VALUES (?, ?, ?, ?, ?, ?, '', '', '', 'booked')",
            [(b.ref, b.slot_id, b.name, b.email, b.phone, b.dob) for b in fx.bookings],
        )
        conn.commit()
    finally:
        conn.close()
    return path


def check_password(conn: sqlite3.Connection, username: str, password: str) -> int | None:
    """The id of the active admin ``username`` if ``password`` is theirs, else None."""
    row = conn.execute(
        "SELECT id, password_salt, password_hash FROM users WHERE username = ? AND role = 'admin' AND active = 1",
        (username,),
    ).fetchone()
    if row is None:
        return None
    return int(row[0]) if hmac.compare_digest(_password_hash(password, row[1]), row[2]) else None
