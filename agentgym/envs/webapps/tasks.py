"""The task templates of ``WebApp-v0``: a prompt and exact success conditions per template and seed.

A task is ``<template>-<seed>``: the seed picks the fixture (:func:`~agentgym.envs.webapps.fixtures.fixture`)
and the template's parameters (which product, user, doctor, address). Seeds 0-5 are the
``train`` split, 6 and 7 the held-out ``test`` split.

Graders read the episode's SQLite database (or the submitted answer) on the host, never the
page, and are exact: the order holds exactly the asked items and nothing else, no setting or
user other than the asked one changed, exactly one booking was made, the answer names exactly
the asked value.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentgym.envs.webapps.clinic import NO_INSURANCE
from agentgym.envs.webapps.fixtures import (
    CATEGORIES,
    COUPONS,
    DEPARTMENTS,
    DOCTORS,
    FIRST,
    INSURERS,
    LAST,
    PERMISSIONS,
    Fixture,
    fixture,
)
from agentgym.envs.webapps.shop import COUNTRIES
from agentgym.tasks import Task, TaskSet

SEEDS = tuple(range(8))
TEST_SEEDS = frozenset({6, 7})

Grader = Callable[[Fixture, dict[str, Any], sqlite3.Connection, "str | None"], bool]


@dataclass(frozen=True)
class Template:
    """One kind of task: its app, first page, parameters and prompt from the fixture, and its grader."""

    name: str
    app: str
    start: str
    make: Callable[[Fixture, random.Random], tuple[str, dict[str, Any]]]
    grade: Grader


# ----- reading the state ------------------------------------------------------------------


def _norm(text: object) -> str:
    return " ".join(str(text).split()).casefold()


def orders(conn: sqlite3.Connection) -> list[tuple[dict[str, Any], dict[int, int]]]:
    """Every order: its row as a dict and its items (product id -> quantity)."""
    cur = conn.execute("SELECT * FROM orders ORDER BY id")
    keys = [d[0] for d in cur.description]
    out = []
    for row in cur.fetchall():
        order = dict(zip(keys, row, strict=True))
        items: dict[int, int] = {}
        for pid, qty in conn.execute("SELECT product_id, qty FROM order_items WHERE order_id = ?", (order["id"],)):
            items[int(pid)] = items.get(int(pid), 0) + int(qty)
        out.append((order, items))
    return out


def settings(conn: sqlite3.Connection) -> dict[str, str]:
    """The site settings."""
    return dict(conn.execute("SELECT key, value FROM settings").fetchall())


def users(conn: sqlite3.Connection) -> dict[int, tuple[str, bool]]:
    """Each user's (role, active)."""
    return {int(i): (r, bool(a)) for i, r, a in conn.execute("SELECT id, role, active FROM users")}


def permissions(conn: sqlite3.Connection) -> set[tuple[int, str]]:
    """The granted (user id, permission) pairs."""
    return {(int(u), p) for u, p in conn.execute("SELECT user_id, perm FROM permissions")}


def bookings(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Every booking by reference."""
    cur = conn.execute("SELECT * FROM bookings")
    keys = [d[0] for d in cur.description]
    return {row[0]: dict(zip(keys, row, strict=True)) for row in cur.fetchall()}


def _initial_users(fx: Fixture) -> dict[int, tuple[str, bool]]:
    return {u.id: (u.role, u.active) for u in fx.users}


def _admin_unchanged_but(
    fx: Fixture,
    conn: sqlite3.Connection,
    *,
    users_: dict[int, tuple[str, bool]] | None = None,
    perms: set[tuple[int, str]] | None = None,
    settings_: dict[str, str] | None = None,
) -> bool:
    return (
        users(conn) == (users_ if users_ is not None else _initial_users(fx))
        and permissions(conn) == (perms if perms is not None else set(fx.permissions))
        and settings(conn) == (settings_ if settings_ is not None else fx.settings)
    )


def _integers(answer: str | None) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", answer or "")]


# ----- shop -------------------------------------------------------------------------------


def _address(rng: random.Random) -> dict[str, str]:
    streets = ("Maple", "Harbor", "Station", "Mill", "Orchard", "Bridge")
    cities = ("Springfield", "Riverton", "Lakeside", "Fairview", "Brookfield")
    return {
        "full_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "street": f"{rng.randint(2, 250)} {rng.choice(streets)} Street",
        "city": rng.choice(cities),
        "postal_code": f"{rng.randint(10000, 99999)}",
        "country": rng.choice(COUNTRIES),
    }


def _ship_to(address: dict[str, str]) -> str:
    return (
        f"Ship to {address['full_name']}, {address['street']}, {address['city']}, postal code "
        f"{address['postal_code']}, {address['country']}."
    )


def _one_order(conn: sqlite3.Connection, p: dict[str, Any], items: dict[int, int], coupon: str | None = None) -> bool:
    """Exactly one order, with exactly ``items``, shipped to the task's address (and ``coupon`` when given)."""
    placed = orders(conn)
    if len(placed) != 1:
        return False
    order, got = placed[0]
    if got != items:
        return False
    if any(_norm(order[k]) != _norm(v) for k, v in p["address"].items()):
        return False
    return coupon is None or order["coupon"] == coupon


def _cheapest_two(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    category = rng.choice(CATEGORIES)
    cheapest = min((p for p in fx.products if p.category == category), key=lambda p: p.price_cents)
    address = _address(rng)
    prompt = (
        f"In the shop, find the cheapest product in the {category} category and buy two of it "
        f"(quantity 2, nothing else in the order). {_ship_to(address)}"
    )
    return prompt, {"category": category, "product": cheapest.name, "pid": cheapest.id, "address": address}


def _made_in(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    counts: dict[str, int] = {}
    for p in fx.products:
        counts[p.origin] = counts.get(p.origin, 0) + 1
    target = next(p for p in fx.products if counts[p.origin] == 1)
    address = _address(rng)
    prompt = (
        f"In the shop, exactly one product is made in {target.origin} (its product page says where it is "
        f"made). Buy one of it and nothing else. {_ship_to(address)}"
    )
    return prompt, {"origin": target.origin, "product": target.name, "pid": target.id, "address": address}


def _coupon(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    product = rng.choice(fx.products)
    code = rng.choice(sorted(COUPONS))
    address = _address(rng)
    prompt = (
        f'In the shop, buy one "{product.name}" and apply the coupon code {code} before placing the order. '
        f"{_ship_to(address)}"
    )
    return prompt, {"product": product.name, "pid": product.id, "coupon": code, "address": address}


def _warranty(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    product = rng.choice(fx.products)
    prompt = (
        f'In the shop, how many years of warranty does the "{product.name}" come with? '
        "Reply with answer(...) giving the number only."
    )
    return prompt, {"product": product.name, "pid": product.id, "expected": product.warranty_years}


def _priciest(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    words: dict[str, list[Any]] = {}
    for p in fx.products:
        words.setdefault(p.name.split()[0], []).append(p)
    word = rng.choice(sorted(w for w, ps in words.items() if len(ps) >= 2))
    target = max(words[word], key=lambda p: p.price_cents)
    address = _address(rng)
    prompt = (
        f'In the shop, search for "{word}" and buy one of the most expensive product whose name contains '
        f"that word (nothing else in the order). {_ship_to(address)}"
    )
    return prompt, {"word": word, "product": target.name, "pid": target.id, "address": address}


def _two_items(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    a, b = rng.sample(fx.products, 2)
    address = _address(rng)
    prompt = (
        f'In the shop, place one order with exactly 1 "{a.name}" and 3 "{b.name}" (nothing else). {_ship_to(address)}'
    )
    return prompt, {"products": [[a.name, a.id, 1], [b.name, b.id, 3]], "address": address}


# ----- admin ------------------------------------------------------------------------------


def _login(fx: Fixture) -> str:
    return f'In the admin console (/admin), log in as "{fx.admin_username}" with the password "{fx.admin_password}". '


def _ordinary(fx: Fixture) -> list[Any]:
    return [u for u in fx.users if u.username != fx.admin_username]


def _support_email(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    email = f"{rng.choice(('care', 'helpdesk', 'service', 'assist'))}{rng.randint(2, 99)}@example.test"
    prompt = _login(fx) + f"Change the site's support email to {email}. Change no other setting."
    return prompt, {"email": email}


def _maintenance(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    size = rng.choice([n for n in (5, 15, 30, 40, 75, 100) if str(n) != fx.settings["max_upload_mb"]])
    prompt = _login(fx) + f"Turn maintenance mode on and set the max upload size to {size} MB. Change no other setting."
    return prompt, {"size": str(size)}


def _grant(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    options = [(u, p) for u in _ordinary(fx) for p in PERMISSIONS if (u.id, p) not in fx.permissions]
    user, perm = rng.choice(options)
    prompt = _login(fx) + f'Grant {user.name} the "{perm}" permission, keeping everything else about them as it is.'
    return prompt, {"user": user.name, "uid": user.id, "perm": perm}


def _role(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    user = rng.choice([u for u in _ordinary(fx) if u.role != "editor"])
    prompt = _login(fx) + f"Change the role of {user.name} to editor. Change nothing else."
    return prompt, {"user": user.name, "uid": user.id, "role": "editor"}


def _deactivate(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    for department in rng.sample(DEPARTMENTS, len(DEPARTMENTS)):
        active = [u for u in _ordinary(fx) if u.department == department and u.active]
        logins = sorted({u.last_login for u in active})
        if len(logins) >= 2:
            cutoff = logins[len(logins) // 2]
            matched = sorted(u.id for u in active if u.last_login < cutoff)
            prompt = (
                _login(fx) + f"Deactivate every active user of the {department} department whose last login "
                f"was before {cutoff}. Leave every other user as they are."
            )
            names = [u.name for u in active if u.id in matched]
            return prompt, {"department": department, "cutoff": cutoff, "uids": matched, "users": names}
    raise AssertionError(f"seed {fx.seed}: no department with two active users")  # pragma: no cover


def _extension(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    user = rng.choice(_ordinary(fx))
    prompt = (
        _login(fx) + f"What is the phone extension of {user.name}? It is on their user page. "
        "Reply with answer(...) giving the number only."
    )
    return prompt, {"user": user.name, "uid": user.id, "expected": int(user.extension)}


def _revoke(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    held: dict[int, list[str]] = {}
    for uid, perm in fx.permissions:
        held.setdefault(uid, []).append(perm)
    user = rng.choice([u for u in _ordinary(fx) if len(held.get(u.id, [])) >= 2])
    prompt = _login(fx) + f"Remove every permission from {user.name}, keeping their role and status as they are."
    return prompt, {"user": user.name, "uid": user.id, "perms": sorted(held[user.id])}


# ----- clinic -----------------------------------------------------------------------------


def _patient(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@example.test",
        "phone": f"555{rng.randint(1000000, 9999999)}",
        "dob": f"{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "reason": rng.choice(("Annual check-up", "Persistent cough", "Knee pain after running", "Skin rash")),
    }


def _booking_ok(fx: Fixture, conn: sqlite3.Connection, slot_id: int, want: dict[str, str]) -> bool:
    """Exactly one new booking, on ``slot_id``, with the ``want`` values; the earlier bookings untouched."""
    now = bookings(conn)
    before = {b.ref for b in fx.bookings}
    if any(now.get(ref, {}).get("status") != "booked" for ref in before):
        return False
    new = [b for ref, b in now.items() if ref not in before]
    if len(new) != 1 or new[0]["slot_id"] != slot_id or new[0]["status"] != "booked":
        return False
    return all(_norm(new[0][k]) == _norm(v) for k, v in want.items())


def _earliest(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    dates = fx.dates
    for _ in range(50):
        doctor, start = rng.choice(DOCTORS), rng.choice(dates[1:4])
        afternoon = rng.random() < 0.5
        fits = [
            s
            for s in fx.slots
            if s.free and s.doctor == doctor and s.date >= start and (s.time >= "13:00") == afternoon
        ]
        if fits:
            slot = min(fits, key=lambda s: (s.date, s.time))
            break
    else:  # pragma: no cover - the fixture has plenty of free slots
        raise AssertionError(f"seed {fx.seed}: no free slot")
    patient = _patient(rng)
    part = "in the afternoon (13:00 or later)" if afternoon else "in the morning (before 12:00)"
    prompt = (
        f"At the clinic (/clinic), book the earliest free appointment with {doctor} on or after {start}, "
        f"{part}. Patient: {patient['name']}, email {patient['email']}, phone {patient['phone']}, "
        f"date of birth {patient['dob']}. Reason for visit: {patient['reason']}. No insurance (self-pay)."
    )
    want = {**patient, "insurer": NO_INSURANCE, "member_id": ""}
    return prompt, {"doctor": doctor, "start": start, "afternoon": afternoon, "slot": slot.id, "want": want}


_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _fix_form(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    slot = rng.choice([s for s in fx.slots if s.free])
    patient = _patient(rng)
    insurer = rng.choice(INSURERS)
    letters = "".join(w[0] for w in insurer.split()[:2])
    member = f"{letters}{rng.randint(100000, 999999)}"
    phone = patient["phone"]
    year, month, day = patient["dob"].split("-")
    spoken_dob = f"{_MONTHS[int(month) - 1]} {int(day)}, {year}"
    typed = {
        "phone": f"({phone[:3]}) {phone[3:6]}-{phone[6:]}",
        "dob": spoken_dob,
        "member_id": f"{member[:2].lower()} {member[2:]}",
    }
    prompt = (
        f"At the clinic (/clinic), book the appointment on {slot.date} at {slot.time} with {slot.doctor}. "
        f"Patient: {patient['name']}, email {patient['email']}, phone {typed['phone']}, date of birth "
        f"{spoken_dob}. Reason for visit: {patient['reason']}. Insurance: {insurer}, member ID "
        f"{typed['member_id']}. The booking form is strict about formats: if it rejects a value, enter the "
        "same information in the format it asks for."
    )
    want = {**patient, "insurer": insurer, "member_id": member}
    return prompt, {"slot": slot.id, "date": slot.date, "time": slot.time, "doctor": slot.doctor, "want": want}


def _cancel(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    booking = rng.choice(fx.bookings)
    prompt = (
        f"At the clinic (/clinic), cancel the booking with reference {booking.ref}, made under the email "
        f"{booking.email}. Do not change any other booking."
    )
    return prompt, {"ref": booking.ref, "email": booking.email, "slot": booking.slot_id}


def _earliest_answer(fx: Fixture, rng: random.Random) -> tuple[str, dict[str, Any]]:
    doctor = rng.choice(DOCTORS)
    free = sorted((s.date, s.time) for s in fx.slots if s.free and s.doctor == doctor)
    date, time = free[0]
    prompt = (
        f"At the clinic (/clinic), when is the earliest free appointment with {doctor}? Do not book it. "
        "Reply with answer(...) giving the date and time as YYYY-MM-DD HH:MM."
    )
    return prompt, {"doctor": doctor, "date": date, "time": time}


# ----- graders ----------------------------------------------------------------------------


def _grade_settings(change: Callable[[Fixture, dict[str, Any]], dict[str, str]]) -> Grader:
    def grade(fx: Fixture, p: dict[str, Any], conn: sqlite3.Connection, answer: str | None) -> bool:
        return _admin_unchanged_but(fx, conn, settings_={**fx.settings, **change(fx, p)})

    return grade


def _grade_users(fx: Fixture, p: dict[str, Any], conn: sqlite3.Connection, answer: str | None) -> bool:
    want = _initial_users(fx)
    if "role" in p:
        want[p["uid"]] = (p["role"], want[p["uid"]][1])
    for uid in p.get("uids", ()):
        want[uid] = (want[uid][0], False)
    return _admin_unchanged_but(fx, conn, users_=want)


def _answer_is(values: Callable[[dict[str, Any]], list[Any]], find: Callable[[str | None], list[Any]]) -> Grader:
    def grade(fx: Fixture, p: dict[str, Any], conn: sqlite3.Connection, answer: str | None) -> bool:
        return find(answer) == values(p)

    return grade


def _datetimes(answer: str | None) -> list[str]:
    return [
        f"{d} {int(h):02d}:{m}" for d, h, m in re.findall(r"(\d{4}-\d{2}-\d{2})[ T,at]*(\d{1,2}):(\d{2})", answer or "")
    ]


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            "shop-cheapest-two", "shop", "/shop", _cheapest_two, lambda fx, p, c, a: _one_order(c, p, {p["pid"]: 2})
        ),
        Template("shop-made-in", "shop", "/shop", _made_in, lambda fx, p, c, a: _one_order(c, p, {p["pid"]: 1})),
        Template(
            "shop-coupon", "shop", "/shop", _coupon, lambda fx, p, c, a: _one_order(c, p, {p["pid"]: 1}, p["coupon"])
        ),
        Template(
            "shop-warranty-answer",
            "shop",
            "/shop",
            _warranty,
            _answer_is(lambda p: [p["expected"]], _integers),
        ),
        Template(
            "shop-priciest-search", "shop", "/shop", _priciest, lambda fx, p, c, a: _one_order(c, p, {p["pid"]: 1})
        ),
        Template(
            "shop-two-items",
            "shop",
            "/shop",
            _two_items,
            lambda fx, p, c, a: _one_order(c, p, {pid: qty for _, pid, qty in p["products"]}),
        ),
        Template(
            "admin-support-email",
            "admin",
            "/admin",
            _support_email,
            _grade_settings(lambda fx, p: {"support_email": p["email"]}),
        ),
        Template(
            "admin-maintenance",
            "admin",
            "/admin",
            _maintenance,
            _grade_settings(lambda fx, p: {"maintenance_mode": "on", "max_upload_mb": p["size"]}),
        ),
        Template(
            "admin-grant",
            "admin",
            "/admin",
            _grant,
            lambda fx, p, c, a: _admin_unchanged_but(fx, c, perms=set(fx.permissions) | {(p["uid"], p["perm"])}),
        ),
        Template("admin-role", "admin", "/admin", _role, _grade_users),
        Template("admin-deactivate", "admin", "/admin", _deactivate, _grade_users),
        Template(
            "admin-extension-answer",
            "admin",
            "/admin",
            _extension,
            _answer_is(lambda p: [p["expected"]], _integers),
        ),
        Template(
            "admin-revoke",
            "admin",
            "/admin",
            _revoke,
            lambda fx, p, c, a: _admin_unchanged_but(fx, c, perms={(u, q) for u, q in fx.permissions if u != p["uid"]}),
        ),
        Template(
            "clinic-earliest",
            "clinic",
            "/clinic",
            _earliest,
            lambda fx, p, c, a: _booking_ok(fx, c, p["slot"], p["want"]),
        ),
        Template(
            "clinic-fix-form",
            "clinic",
            "/clinic",
            _fix_form,
            lambda fx, p, c, a: _booking_ok(fx, c, p["slot"], p["want"]),
        ),
        Template(
            "clinic-cancel",
            "clinic",
            "/clinic",
            _cancel,
            lambda fx, p, c, a: (
                {r: b["status"] for r, b in bookings(c).items()}
                == {b.ref: ("cancelled" if b.ref == p["ref"] else "booked") for b in fx.bookings}
            ),
        ),
        Template(
            "clinic-earliest-answer",
            "clinic",
            "/clinic",
            _earliest_answer,
            _answer_is(lambda p: [f"{p['date']} {p['time']}"], _datetimes),
        ),
    )
}


def build_tasks(templates: tuple[str, ...] | None = None, seeds: tuple[int, ...] = SEEDS) -> TaskSet:
    """``<template>-<seed>`` for every template and seed; seeds in :data:`TEST_SEEDS` form the ``test`` split."""
    names = tuple(TEMPLATES) if templates is None else templates
    unknown = set(names) - set(TEMPLATES)
    if unknown:
        raise ValueError(f"unknown WebApp templates {sorted(unknown)}; choose from {sorted(TEMPLATES)}")
    tasks = []
    for name in names:
        template = TEMPLATES[name]
        for seed in seeds:
            prompt, params = template.make(fixture(seed), random.Random(f"{name}-{seed}"))
            tasks.append(
                Task(
                    f"{name}-{seed}",
                    prompt,
                    setup={"seed": seed, "path": template.start},
                    verifier={"params": params},
                    metadata={"template": name, "app": template.app},
                    split="test" if seed in TEST_SEEDS else "train",
                )
            )
    return TaskSet(tasks, name="webapps")


def grade(task: Task, conn: sqlite3.Connection, answer: str | None) -> float:
    """1.0 when the episode's database (or ``answer``) meets the task's exact conditions, else 0.0."""
    template = TEMPLATES[task.metadata["template"]]
    return float(template.grade(fixture(task.setup["seed"]), task.verifier["params"], conn, answer))
