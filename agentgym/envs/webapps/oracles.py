"""Reference solutions of the ``WebApp-v0`` templates: iterators of turns that drive the real UI.

Each oracle is a generator: the oracle policy takes its next turn only after the previous one
was stepped, so every ``env.find(...)`` below reads the live page the previous turn produced.
A turn holds one or more tool calls on the same page (ids stay valid within one document); a
turn whose last call submits a form or follows a link ends that page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from agentgym.parsing import format_tool_call

if TYPE_CHECKING:
    from agentgym.envs.webapps.env import WebAppEnv

Oracle = Callable[["WebAppEnv", dict[str, Any]], Iterator[str]]


def call(name: str, **args: Any) -> str:
    """One tool call, as the text a model would write."""
    return format_tool_call(name, args)


def turn(*calls: str) -> str:
    """Several tool calls in one assistant turn."""
    return "\n".join(calls)


def _fill(env: WebAppEnv, label: str, text: str, role: str = "textbox") -> str:
    return call("fill", element_id=env.find(role, label), text=text)


def _select(env: WebAppEnv, label: str, option: str) -> str:
    return call("select", element_id=env.find("combobox", label), option=option)


def _click(env: WebAppEnv, role: str, name: str, *, contains: bool = False) -> str:
    return call("click", element_id=env.find(role, name, contains=contains))


def _done() -> str:
    return call("answer", text="Done.")


# ----- shop -------------------------------------------------------------------------------


def _add(env: WebAppEnv, product: str, qty: int) -> Iterator[str]:
    yield _click(env, "link", product)
    yield turn(_fill(env, "Quantity", str(qty)), _click(env, "button", "Add to cart"))


def _checkout(env: WebAppEnv, address: dict[str, str], coupon: str | None = None) -> Iterator[str]:
    if coupon:
        yield turn(_fill(env, "Coupon code", coupon), _click(env, "button", "Apply coupon"))
    yield _click(env, "link", "Proceed to checkout")
    yield turn(
        _fill(env, "Full name", address["full_name"]),
        _fill(env, "Street address", address["street"]),
        _fill(env, "City", address["city"]),
        _fill(env, "Postal code", address["postal_code"]),
        _select(env, "Country", address["country"]),
        _click(env, "button", "Place order"),
    )
    yield _done()


def _filtered(env: WebAppEnv, p: dict[str, Any]) -> Iterator[str]:
    if "category" in p:
        yield turn(
            _select(env, "Category", p["category"]),
            _select(env, "Sort by", "Price: low to high"),
            _click(env, "button", "Apply filters"),
        )
    else:
        yield turn(
            _fill(env, "Search", p["word"], role="searchbox"),
            _select(env, "Sort by", "Price: high to low"),
            _click(env, "button", "Apply filters"),
        )
    # The first product listed is the one to buy: read it from the page.
    first = next(
        n for _, r, n, a in env.elements() if r == "link" and str(a.get("url", "")).startswith("/shop/product/")
    )
    yield from _add(env, first, 2 if "category" in p else 1)
    yield from _checkout(env, p["address"])


def _one(env: WebAppEnv, p: dict[str, Any]) -> Iterator[str]:
    yield from _add(env, p["product"], 1)
    yield from _checkout(env, p["address"], p.get("coupon"))


def _two(env: WebAppEnv, p: dict[str, Any]) -> Iterator[str]:
    (a, _, qa), (b, _, qb) = p["products"]
    yield from _add(env, a, qa)
    yield _click(env, "link", "Catalogue")
    yield from _add(env, b, qb)
    yield from _checkout(env, p["address"])


def _warranty(env: WebAppEnv, p: dict[str, Any]) -> Iterator[str]:
    yield _click(env, "link", p["product"])
    text = env.browser.text("main")
    years = re.search(r"Warranty\s*(\d+) year", text)
    assert years, f"no warranty on the page of {p['product']!r}"
    yield call("answer", text=years.group(1))


# ----- admin ------------------------------------------------------------------------------


def _login(env: WebAppEnv) -> Iterator[str]:
    from agentgym.envs.webapps.fixtures import fixture

    fx = fixture(env.task.setup["seed"])
    yield turn(
        _fill(env, "Username", fx.admin_username),
        _fill(env, "Password", fx.admin_password),
        _click(env, "button", "Log in"),
    )


def _open_user(env: WebAppEnv, name: str) -> Iterator[str]:
    yield _click(env, "link", "Users")
    yield _click(env, "link", name)


def _settings(env: WebAppEnv, p: dict[str, Any]) -> Iterator[str]:
    yield from _login(env)
    yield _click(env, "link", "Settings")
    if "email" in p:
        yield turn(_fill(env, "Support email", p["email"]), _click(env, "button", "Save settings"))
    else:
        calls = []
        box = env.find("checkbox", "Maintenance mode")
        if not _attrs(env, box).get("checked"):
            calls.append(call("click", element_id=box))
        calls += [_fill(env, "Max upload size (MB)", p["size"]), _click(env, "button", "Save settings")]
        yield turn(*calls)
    yield _done()


def _attrs(env: WebAppEnv, element_id: int) -> dict[str, Any]:
    return next(a for i, _, _, a in env.elements() if i == element_id)


def _user_edit(env: WebAppEnv, p: dict[str, Any]) -> Iterator[str]:
    yield from _login(env)
    yield from _open_user(env, p["user"])
    calls = []
    if "perm" in p:
        calls.append(_click(env, "checkbox", p["perm"]))
    if "perms" in p:
        calls += [_click(env, "checkbox", perm) for perm in p["perms"]]
    if "role" in p:
        calls.append(_select(env, "Role", p["role"]))
    yield turn(*calls, _click(env, "button", "Save changes"))
    yield _done()


def _deactivate(env: WebAppEnv, p: dict[str, Any]) -> Iterator[str]:
    yield from _login(env)
    yield _click(env, "link", "Users")
    yield turn(
        _select(env, "Department", p["department"]), _select(env, "Status", "Active"), _click(env, "button", "Filter")
    )
    # Read the matching users from the table: name links whose row shows a last login before the cutoff.
    rows = re.findall(r"^(.+?)\t\S+\t\S+\t\S+\tActive\t(\d{4}-\d{2}-\d{2})$", env.browser.text("tbody"), re.M)
    names = [name for name, login in rows if login < p["cutoff"]]
    for name in names:
        yield _click(env, "link", name)
        yield turn(_click(env, "checkbox", "Active"), _click(env, "button", "Save changes"))
        yield _click(env, "link", "Back to users")
    yield _done()


def _extension(env: WebAppEnv, p: dict[str, Any]) -> Iterator[str]:
    yield from _login(env)
    yield from _open_user(env, p["user"])
    found = re.search(r"Phone extension\s*(\d+)", env.browser.text("main"))
    assert found, f"no extension on the page of {p['user']!r}"
    yield call("answer", text=found.group(1))


# ----- clinic -----------------------------------------------------------------------------

_BOOK = re.compile(r"Book (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}) with (.+)")


def _free(env: WebAppEnv) -> list[tuple[str, str, str]]:
    """(date, time, doctor) of the booking links on the page, in page order."""
    return [m.groups() for _, r, n, _ in env.elements() if r == "link" and (m := _BOOK.fullmatch(n))]  # type: ignore[misc]


def _patient(env: WebAppEnv, values: dict[str, str]) -> str:
    return turn(
        _fill(env, "Full name", values["name"]),
        _fill(env, "Email", values["email"]),
        _fill(env, "Phone (10 digits)", values["phone"]),
        _fill(env, "Date of birth (YYYY-MM-DD)", values["dob"]),
        _click(env, "button", "Continue"),
    )


def _visit(env: WebAppEnv, reason: str, insurer: str, member: str) -> str:
    return turn(
        _fill(env, "Reason for visit", reason),
        _select(env, "Insurance provider", insurer),
        _fill(env, "Member ID", member),
        _click(env, "button", "Continue"),
    )


def _earliest(env: WebAppEnv, p: dict[str, Any]) -> Iterator[str]:
    yield turn(_select(env, "Doctor", p["doctor"]), _click(env, "button", "Show free times"))
    date, time, doctor = next(
        (d, t, doc) for d, t, doc in _free(env) if d >= p["start"] and (t >= "13:00") == p["afternoon"]
    )
    yield _click(env, "link", f"Book {date} {time} with {doctor}")
    want = p["want"]
    yield _patient(env, want)
    yield _visit(env, want["reason"], want["insurer"], "")
    yield _click(env, "button", "Confirm booking")
    yield _done()


def _fix_form(env: WebAppEnv, p: dict[str, Any]) -> Iterator[str]:
    want = p["want"]
    typed = _typed(env.task.prompt)
    yield turn(
        _select(env, "Doctor", p["doctor"]), _select(env, "Date", p["date"]), _click(env, "button", "Show free times")
    )
    yield _click(env, "link", f"Book {p['date']} {p['time']} with {p['doctor']}")
    yield _patient(env, {**want, "phone": typed["phone"], "dob": typed["dob"]})  # as the prompt writes them
    errors = env.browser.text("main")
    assert "Phone must be exactly 10 digits" in errors and "Date of birth must be" in errors, errors
    yield _patient(env, want)  # in the formats the form asked for
    yield _visit(env, want["reason"], want["insurer"], typed["member_id"])
    assert "Member ID must be 2 capital letters" in env.browser.text("main")
    yield turn(_fill(env, "Member ID", want["member_id"]), _click(env, "button", "Continue"))
    yield _click(env, "button", "Confirm booking")
    yield _done()


def _typed(prompt: str) -> dict[str, str]:
    found = re.search(r"phone (.+?), date of birth (.+?)\. .*member ID (.+?)\. ", prompt)
    assert found, prompt
    return {"phone": found.group(1), "dob": found.group(2), "member_id": found.group(3)}


def _cancel(env: WebAppEnv, p: dict[str, Any]) -> Iterator[str]:
    yield _click(env, "link", "Manage a booking")
    yield turn(
        _fill(env, "Booking reference", p["ref"]),
        _fill(env, "Email", p["email"]),
        _click(env, "button", "Find booking"),
    )
    yield _click(env, "button", "Cancel this booking")
    yield _done()


def _earliest_answer(env: WebAppEnv, p: dict[str, Any]) -> Iterator[str]:
    yield turn(_select(env, "Doctor", p["doctor"]), _click(env, "button", "Show free times"))
    date, time, _ = _free(env)[0]
    yield call("answer", text=f"{date} {time}")


ORACLES: dict[str, Oracle] = {
    "shop-cheapest-two": _filtered,
    "shop-made-in": _one,
    "shop-coupon": _one,
    "shop-warranty-answer": _warranty,
    "shop-priciest-search": _filtered,
    "shop-two-items": _two,
    "admin-support-email": _settings,
    "admin-maintenance": _settings,
    "admin-grant": _user_edit,
    "admin-role": _user_edit,
    "admin-deactivate": _deactivate,
    "admin-extension-answer": _extension,
    "admin-revoke": _user_edit,
    "clinic-earliest": _earliest,
    "clinic-fix-form": _fix_form,
    "clinic-cancel": _cancel,
    "clinic-earliest-answer": _earliest_answer,
}
