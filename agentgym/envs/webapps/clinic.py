"""The clinic (``/clinic``): find a free slot, book it over three validated pages, cancel a booking."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from agentgym.envs.webapps.fixtures import DOCTORS, INSURERS
from agentgym.envs.webapps.server import Request, Response, Route, page, redirect

NO_INSURANCE = "None (self-pay)"


def slots(req: Request) -> Response:
    """Free slots, filtered by doctor and date."""
    doctor, date = req.arg("doctor"), req.arg("date")
    dates = [d for (d,) in req.conn.execute("SELECT DISTINCT date FROM slots ORDER BY date")]
    where, args = ["free = 1"], []
    if doctor in DOCTORS:
        where.append("doctor = ?")
        args.append(doctor)
    if date in dates:
        where.append("date = ?")
        args.append(date)
    rows = req.conn.execute(
        f"SELECT id, doctor, date, time FROM slots WHERE {' AND '.join(where)} ORDER BY date, time, doctor", args
    ).fetchall()
    return page("clinic/slots.html", rows=rows, doctors=DOCTORS, dates=dates, doctor=doctor, date=date)


def _slot(req: Request) -> tuple[int, str, str, str] | None:
    row = req.conn.execute(
        "SELECT id, doctor, date, time FROM slots WHERE id = ? AND free = 1", (req.params["slot"],)
    ).fetchone()
    return (int(row[0]), row[1], row[2], row[3]) if row else None


def _draft(req: Request, slot_id: int) -> dict[str, str]:
    keys = ("name", "email", "phone", "dob", "reason", "insurer", "member_id")
    row = req.conn.execute(
        f"SELECT {', '.join(keys)} FROM drafts WHERE sid = ? AND slot_id = ?", (req.sid, slot_id)
    ).fetchone()
    return dict(zip(keys, row, strict=True)) if row else dict.fromkeys(keys, "")


def patient(req: Request) -> Response:
    """Step 1 of 3: the patient's details."""
    slot = _slot(req)
    if slot is None:
        return page("clinic/gone.html", 404)
    values = _draft(req, slot[0])
    errors: dict[str, str] = {}
    if req.method == "POST":
        values.update({k: req.arg(k).strip() for k in ("name", "email", "phone", "dob")})
        if len(values["name"]) < 2:
            errors["name"] = "Full name is required."
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", values["email"]):
            errors["email"] = "Enter a valid email address, like name@example.com."
        if not re.fullmatch(r"[0-9]{10}", values["phone"]):
            errors["phone"] = "Phone must be exactly 10 digits, numbers only (no spaces, dashes or brackets)."
        born = None
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", values["dob"]):
            try:
                born = dt.date.fromisoformat(values["dob"])
            except ValueError:
                pass  # 2001-02-30: the same message as any other bad date
        if born is None or born.year < 1900 or born.isoformat() >= slot[2]:
            errors["dob"] = "Date of birth must be a past date written as YYYY-MM-DD, e.g. 1980-07-31."
        if not errors:
            req.conn.execute(
                "INSERT INTO drafts (sid, slot_id, name, email, phone, dob) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (sid, slot_id) DO UPDATE SET name = excluded.name, email = excluded.email, "
                "phone = excluded.phone, dob = excluded.dob",
                (req.sid, slot[0], values["name"], values["email"], values["phone"], values["dob"]),
            )
            return redirect(f"/clinic/book/{slot[0]}/visit")
    return page("clinic/patient.html", slot=slot, values=values, errors=errors)


def visit(req: Request) -> Response:
    """Step 2 of 3: the reason for the visit and the insurance."""
    slot = _slot(req)
    if slot is None:
        return page("clinic/gone.html", 404)
    values = _draft(req, slot[0])
    if not values["name"]:
        return redirect(f"/clinic/book/{slot[0]}")
    errors: dict[str, str] = {}
    if req.method == "POST":
        values.update({k: req.arg(k).strip() for k in ("reason", "insurer", "member_id")})
        if len(values["reason"]) < 5:
            errors["reason"] = "Describe the reason for the visit (at least 5 characters)."
        if values["insurer"] not in (NO_INSURANCE, *INSURERS):
            errors["insurer"] = "Choose an insurance provider from the list."
        elif values["insurer"] != NO_INSURANCE and not re.fullmatch(r"[A-Z]{2}[0-9]{6}", values["member_id"]):
            errors["member_id"] = "Member ID must be 2 capital letters followed by 6 digits, e.g. AB123456."
        elif values["insurer"] == NO_INSURANCE and values["member_id"]:
            errors["member_id"] = "Leave Member ID empty when paying yourself."
        if not errors:
            req.conn.execute(
                "UPDATE drafts SET reason = ?, insurer = ?, member_id = ? WHERE sid = ? AND slot_id = ?",
                (values["reason"], values["insurer"], values["member_id"], req.sid, slot[0]),
            )
            return redirect(f"/clinic/book/{slot[0]}/confirm")
    return page("clinic/visit.html", slot=slot, values=values, errors=errors, insurers=(NO_INSURANCE, *INSURERS))


def confirm(req: Request) -> Response:
    """Step 3 of 3: review, then book (the slot stops being free)."""
    slot = _slot(req)
    if slot is None:
        return page("clinic/gone.html", 404)
    values = _draft(req, slot[0])
    if not values["name"]:
        return redirect(f"/clinic/book/{slot[0]}")
    if not values["insurer"]:
        return redirect(f"/clinic/book/{slot[0]}/visit")
    if req.method == "POST":
        # Deterministic (the same actions give the same page): a hash of the booking's content.
        (count,) = req.conn.execute("SELECT COUNT(*) FROM bookings").fetchone()
        digest = hashlib.sha256(f"{count}:{slot[0]}:{sorted(values.items())}".encode()).hexdigest()
        ref = "R" + digest[:6].upper()
        req.conn.execute(
            "INSERT INTO bookings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'booked')",
            (ref, slot[0], *(values[k] for k in ("name", "email", "phone", "dob", "reason", "insurer", "member_id"))),
        )
        req.conn.execute("UPDATE slots SET free = 0 WHERE id = ?", (slot[0],))
        req.conn.execute("DELETE FROM drafts WHERE sid = ?", (req.sid,))
        return page("clinic/done.html", slot=slot, ref=ref, values=values)
    return page("clinic/confirm.html", slot=slot, values=values)


def manage(req: Request) -> Response:
    """Look up a booking by reference and email; the POST with ``cancel`` cancels it."""
    ref, email = req.arg("ref").strip().upper(), req.arg("email").strip()
    booking = None
    error = ""
    cancelled = False
    if ref or email:
        booking = req.conn.execute(
            "SELECT b.ref, b.name, b.status, s.doctor, s.date, s.time, s.id FROM bookings b JOIN slots s "
            "ON s.id = b.slot_id WHERE b.ref = ? AND lower(b.email) = lower(?)",
            (ref, email),
        ).fetchone()
        if booking is None:
            error = "No booking matches that reference and email."
        elif req.method == "POST" and req.arg("cancel") == "yes" and booking[2] == "booked":
            req.conn.execute("UPDATE bookings SET status = 'cancelled' WHERE ref = ?", (ref,))
            req.conn.execute("UPDATE slots SET free = 1 WHERE id = ?", (booking[6],))
            booking = (*booking[:2], "cancelled", *booking[3:])
            cancelled = True
    return page("clinic/manage.html", booking=booking, ref=ref, email=email, error=error, cancelled=cancelled)


ROUTES = [
    Route("GET", "/clinic", slots),
    Route("GET", "/clinic/book/{slot}", patient),
    Route("POST", "/clinic/book/{slot}", patient),
    Route("GET", "/clinic/book/{slot}/visit", visit),
    Route("POST", "/clinic/book/{slot}/visit", visit),
    Route("GET", "/clinic/book/{slot}/confirm", confirm),
    Route("POST", "/clinic/book/{slot}/confirm", confirm),
    Route("GET", "/clinic/manage", manage),
    Route("POST", "/clinic/manage", manage),
]
