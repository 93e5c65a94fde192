"""agentgym/WebApp-v0: the three local web apps (routes and graders over HTTP), then the env in real Chromium."""

from __future__ import annotations

import http.cookiejar
import importlib.util
import json
import os
import socket
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from gymnasium.utils.env_checker import check_env

from agentgym.envs.webapps.env import DISPLAY_ORIGIN, WebAppEnv
from agentgym.envs.webapps.fixtures import fixture
from agentgym.envs.webapps.server import AppServer
from agentgym.envs.webapps.tasks import TEMPLATES, TEST_SEEDS, bookings, build_tasks, grade, orders, settings
from agentgym.parsing import format_tool_call
from agentgym.tasks import Task
from agentgym.testing import require
from agentgym.validate import validate

XSS = ("<script>window.__xss=1</script>", '<img src=x onerror="window.__xss=2">', '"><svg onload="window.__xss=3">')
TASKS = build_tasks()
T = TypeVar("T")


# ----- the apps over HTTP, no browser ---------------------------------------------------------


class Client:
    """A browser-like HTTP client of one session (cookies kept, redirects followed)."""

    def __init__(self, server: AppServer):
        self.server = server
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str, **query: Any) -> tuple[int, str]:
        url = self.server.origin + path + ("?" + urllib.parse.urlencode(query) if query else "")
        return self._open(urllib.request.Request(url))

    def post(self, path: str, form: dict[str, Any] | list[tuple[str, str]]) -> tuple[int, str]:
        data = urllib.parse.urlencode(form, doseq=True).encode()
        return self._open(urllib.request.Request(self.server.origin + path, data=data))

    def _open(self, request: urllib.request.Request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


@pytest.fixture(scope="module")
def server() -> Iterator[AppServer]:
    with AppServer() as s:
        yield s


def _fresh(server: AppServer, seed: int) -> Client:
    server.reset(seed)
    return Client(server)


def _grade(server: AppServer, task_id: str, answer: str | None = None) -> float:
    conn = server.connect()
    try:
        return grade(TASKS[task_id], conn, answer)
    finally:
        conn.close()


def _read(server: AppServer, query: Callable[[sqlite3.Connection], T]) -> T:
    """``query`` on the current episode's database."""
    conn = server.connect()
    try:
        return query(conn)
    finally:
        conn.close()


def _params(task_id: str) -> dict[str, Any]:
    params: dict[str, Any] = TASKS[task_id].verifier["params"]
    return params


def test_templates_seeds_and_splits() -> None:
    assert len(TEMPLATES) >= 15 and {t.app for t in TEMPLATES.values()} == {"shop", "admin", "clinic"}
    assert len(TASKS) == 8 * len(TEMPLATES)
    test_ids = set(TASKS.split("test").ids)
    assert test_ids == {t.id for t in TASKS if t.setup["seed"] in TEST_SEEDS} and len(test_ids) == 2 * len(TEMPLATES)
    assert build_tasks().ids == TASKS.ids and [t.prompt for t in build_tasks()] == [t.prompt for t in TASKS]
    admin = TASKS["admin-grant-3"]
    assert fixture(3).admin_password in admin.prompt and '"admin"' in admin.prompt
    assert fixture(3) != fixture(4) and fixture(3).products != fixture(4).products


def test_construction_is_cheap_and_the_tools_are_the_browser_envs() -> None:
    env = WebAppEnv(templates=["clinic-cancel"], seeds=[0, 6])
    try:
        assert env._server is None and env._browser is None  # no server, no Chromium until the first reset
        assert env.task_set.ids == ["clinic-cancel-0", "clinic-cancel-6"] and env.tasks.ids == ["clinic-cancel-0"]
        names = ["click", "fill", "select", "press", "scroll", "hover", "go_back", "goto", "switch_tab", "answer"]
        assert [t.name for t in env.tools] == names
    finally:
        env.close()
    with pytest.raises(ValueError, match="unknown WebApp templates"):
        WebAppEnv(templates=["shop-everything"])


def test_a_fresh_database_scores_zero_on_every_task(server: AppServer) -> None:
    for seed in range(8):
        server.reset(seed)
        for task in TASKS:
            if task.setup["seed"] == seed:
                assert _grade(server, task.id) == 0.0, task.id
                assert _grade(server, task.id, "I do not know") == 0.0, task.id


def test_each_reset_is_a_new_database_and_the_old_one_is_gone(server: AppServer) -> None:
    first = server.reset(2)
    Client(server).post("/shop/cart/add", {"product_id": 1, "quantity": 1})
    second = server.reset(2)
    assert first != second and not first.exists() and second.exists()
    assert Client(server).get("/shop/cart")[1].count("Remove ") == 0


def test_catalogue_search_filters_and_sort(server: AppServer) -> None:
    client, fx = _fresh(server, 1), fixture(1)
    kitchen = sorted((p for p in fx.products if p.category == "Kitchen"), key=lambda p: p.price_cents)
    _, body = client.get("/shop", category="Kitchen", sort="price-asc")
    positions = [body.index(f">{p.name}</a>") for p in kitchen]
    assert positions == sorted(positions) and f"{len(kitchen)} products" in body
    cheap = kitchen[1].price_cents / 100
    _, body = client.get("/shop", category="Kitchen", max_price=f"{cheap:.2f}")
    assert "2 products" in body and kitchen[2].name not in body
    word = kitchen[0].name.split()[0]
    _, body = client.get("/shop", q=word.lower())
    assert all(p.name in body for p in fx.products if p.name.startswith(word))
    _, body = client.get("/shop", max_price="cheap")
    assert "Max price must be a number" in body
    _, body = client.get("/shop", q="%")
    assert "0 products" in body  # LIKE wildcards are literal


def test_product_page_add_to_cart_coupon_checkout(server: AppServer) -> None:
    task_id = "shop-coupon-3"
    p = _params(task_id)
    client = _fresh(server, 3)
    status, body = client.get(f"/shop/product/{p['pid']}")
    product = fixture(3).product(p["product"])
    assert status == 200 and f"Made in</dt><dd>{product.origin}" in body
    assert client.get("/shop/product/999")[0] == 404
    status, body = client.post("/shop/cart/add", {"product_id": p["pid"], "quantity": "0"})
    assert "Quantity must be a whole number" in body
    client.post("/shop/cart/add", {"product_id": p["pid"], "quantity": "1"})
    _, body = client.post("/shop/cart/coupon", {"code": "FREE100"})
    assert "That coupon code is not valid." in body
    client.post("/shop/cart/coupon", {"code": p["coupon"].lower()})
    address = p["address"]
    _, body = client.post("/shop/checkout", {**address, "postal_code": "12"})
    assert "Postal code must be exactly 5 digits." in body and not _read(server, orders)
    assert _grade(server, task_id) == 0.0
    _, body = client.post("/shop/checkout", address)
    assert "confirmed" in body
    assert _grade(server, task_id) == 1.0
    (order, items), *_ = _read(server, orders)
    assert items == {p["pid"]: 1} and order["coupon"] == p["coupon"] and order["total_cents"] < order["subtotal_cents"]


def _buy(client: Client, items: dict[int, int], address: dict[str, str], notes: str = "") -> None:
    for pid, qty in items.items():
        client.post("/shop/cart/add", {"product_id": pid, "quantity": qty})
    status, body = client.post("/shop/checkout", {**address, "notes": notes})
    assert status == 200 and "confirmed" in body, body


def test_shop_graders_are_exact(server: AppServer) -> None:
    task_id = "shop-cheapest-two-2"
    p = _params(task_id)
    fx = fixture(2)
    second = sorted((q for q in fx.products if q.category == p["category"]), key=lambda q: q.price_cents)[1]
    cases = [
        ({p["pid"]: 2}, p["address"], 1.0),
        ({p["pid"]: 1}, p["address"], 0.0),  # one, not two
        ({p["pid"]: 3}, p["address"], 0.0),
        ({second.id: 2}, p["address"], 0.0),  # the second cheapest
        ({p["pid"]: 2, second.id: 1}, p["address"], 0.0),  # something else too
        ({p["pid"]: 2}, {**p["address"], "city": "Elsewhere"}, 0.0),
    ]
    for items, address, want in cases:
        _buy(_fresh(server, 2), items, address)
        assert _grade(server, task_id) == want, (items, address)
    client = _fresh(server, 2)  # two orders of the right thing: not what was asked
    _buy(client, {p["pid"]: 2}, p["address"])
    _buy(client, {p["pid"]: 2}, p["address"])
    assert _grade(server, task_id) == 0.0


def _login(client: Client, seed: int) -> None:
    _, body = client.post("/admin/login", {"username": "admin", "password": fixture(seed).admin_password})
    assert "Dashboard" in body, body


def test_admin_needs_a_login(server: AppServer) -> None:
    client = _fresh(server, 4)
    for path in ("/admin", "/admin/users", "/admin/users/2", "/admin/settings", "/admin/audit"):
        _, body = client.get(path)
        assert "Admin console: log in" in body, path
    _, body = client.post("/admin/settings", {"support_email": "x@example.test"})
    assert "Admin console: log in" in body and _read(server, settings) == fixture(4).settings
    _, body = client.post("/admin/login", {"username": "admin", "password": "wrong"})
    assert "Invalid username or password." in body
    ordinary = fixture(4).users[1].username
    _, body = client.post("/admin/login", {"username": ordinary, "password": fixture(4).admin_password})
    assert "Invalid username or password." in body
    _login(client, 4)
    client.post("/admin/logout", {})
    assert "Admin console: log in" in client.get("/admin/users")[1]


def test_admin_settings_validation_grants_and_audit(server: AppServer) -> None:
    client = _fresh(server, 5)
    _login(client, 5)
    p = _params("admin-support-email-5")
    values = {**fixture(5).settings, "support_email": "not-an-email"}
    if values["maintenance_mode"] == "off":
        del values["maintenance_mode"]
    _, body = client.post("/admin/settings", values)
    assert "Enter a valid email address" in body and _read(server, settings) == fixture(5).settings
    _, body = client.post("/admin/settings", {**values, "support_email": p["email"]})
    assert "Settings saved." in body
    assert _grade(server, "admin-support-email-5") == 1.0
    client.post("/admin/settings", {**values, "support_email": p["email"], "max_upload_mb": "999"})
    assert _grade(server, "admin-support-email-5") == 0.0  # another setting changed too
    _, body = client.get("/admin/audit")
    assert "setting support_email: help@example.test -&gt; " + p["email"] in body
    client = _fresh(server, 5)  # the grant on a fresh database (the grader wants no other change)
    _login(client, 5)
    g = _params("admin-grant-5")
    held = [perm for uid, perm in fixture(5).permissions if uid == g["uid"]]
    user = next(u for u in fixture(5).users if u.id == g["uid"])
    form = [("role", user.role), *[("perm", x) for x in [*held, g["perm"]]]] + (
        [("active", "on")] if user.active else []
    )
    _, body = client.post(f"/admin/users/{g['uid']}", form)
    assert "Changes saved." in body and _grade(server, "admin-grant-5") == 1.0
    _, body = client.get("/admin/audit")
    assert f"{user.username}: granted {g['perm']}" in body
    _, body = client.post(f"/admin/users/{g['uid']}", [("role", "owner")])
    assert "Choose a role from the list." in body and _grade(server, "admin-grant-5") == 1.0


def test_clinic_booking_validates_each_page(server: AppServer) -> None:
    task_id = "clinic-fix-form-1"
    p = _params(task_id)
    want = p["want"]
    client = _fresh(server, 1)
    _, body = client.get("/clinic", doctor=p["doctor"], date=p["date"])
    assert f"Book {p['date']} {p['time']} with {p['doctor']}" in body
    slot = f"/clinic/book/{p['slot']}"
    assert "Step 1 of 3" in client.get(f"{slot}/confirm")[1]  # no skipping ahead
    form = {"name": want["name"], "email": want["email"], "phone": "(555) 123-4567", "dob": "March 4, 1990"}
    _, body = client.post(slot, form)
    assert "Phone must be exactly 10 digits" in body and "Date of birth must be a past date" in body
    _, body = client.post(slot, {**form, "phone": want["phone"], "dob": want["dob"]})
    assert "Step 2 of 3" in body
    visit = {"reason": want["reason"], "insurer": want["insurer"], "member_id": want["member_id"].lower()}
    _, body = client.post(f"{slot}/visit", visit)
    assert "Member ID must be 2 capital letters" in body
    _, body = client.post(f"{slot}/visit", {**visit, "member_id": want["member_id"]})
    assert "Step 3 of 3" in body and _grade(server, task_id) == 0.0
    _, body = client.post(f"{slot}/confirm", {})
    assert "Booking confirmed" in body and _grade(server, task_id) == 1.0
    assert client.get(slot)[0] == 404  # the slot is taken now
    assert _grade(server, "clinic-earliest-1") == 0.0


def test_clinic_cancel_needs_the_matching_email(server: AppServer) -> None:
    task_id = "clinic-cancel-2"
    p = _params(task_id)
    client = _fresh(server, 2)
    _, body = client.post("/clinic/manage", {"ref": p["ref"], "email": "someone@example.test", "cancel": "yes"})
    assert "No booking matches" in body and _grade(server, task_id) == 0.0
    _, body = client.post("/clinic/manage", {"ref": p["ref"].lower(), "email": p["email"], "cancel": "yes"})
    assert "The booking was cancelled." in body and _grade(server, task_id) == 1.0
    assert _read(server, bookings)[p["ref"]]["status"] == "cancelled"


def test_answers_are_normalised_but_exact(server: AppServer) -> None:
    server.reset(0)
    w = _params("shop-warranty-answer-0")["expected"]
    for answer, want in ((str(w), 1.0), (f" {w} years.", 1.0), (f"{w + 1}", 0.0), ("1, 2, 3, 4, 5", 0.0), (None, 0.0)):
        assert _grade(server, "shop-warranty-answer-0", answer) == want, answer
    p = _params("clinic-earliest-answer-0")
    good = f"{p['date']} {p['time']}"
    assert _grade(server, "clinic-earliest-answer-0", good) == 1.0
    assert _grade(server, "clinic-earliest-answer-0", f"{p['date']} at {p['time']}") == 1.0
    assert _grade(server, "clinic-earliest-answer-0", f"{good} or {p['date']} 16:00") == 0.0


def test_the_database_is_not_served(server: AppServer) -> None:
    client = _fresh(server, 0)
    db = server.db_path
    for path in (str(db), f"/{db.name}", f"/../{db.name}", f"/shop/../../{db.name}", f"/%2e%2e/{db.name}", "/static/x"):
        status, body = client.get(urllib.parse.quote(path, safe="/%"))
        assert status == 404 and "SQLite" not in body, path
    assert server.origin.startswith("http://127.0.0.1:")
    assert not str(db).startswith(os.getcwd())


def test_oversized_and_odd_requests_are_refused(server: AppServer) -> None:
    _fresh(server, 0)
    port = int(server.origin.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /shop/checkout HTTP/1.0\r\nContent-Length: 99999999\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.0 413")
    assert Client(server).post("/shop", {})[0] == 405


def test_odd_input_is_a_page_not_a_crash(server: AppServer) -> None:
    client = _fresh(server, 0)
    odd = ["1e308", "inf", "nan", "-5", "\u00b2", "\u0663", "9" * 40, "", " ", "\x00", "'; DROP TABLE products; --"]
    for value in odd:
        for path, form in (
            ("/shop/cart/add", {"product_id": value, "quantity": value}),
            ("/shop/cart/add", {"product_id": 1, "quantity": value}),
            ("/shop/cart/coupon", {"code": value}),
            ("/shop/checkout", {"full_name": value, "postal_code": value, "country": value}),
            ("/admin/login", {"username": value, "password": value}),
            ("/clinic/manage", {"ref": value, "email": value, "cancel": "yes"}),
        ):
            assert client.post(path, form)[0] in (200, 404), (path, value)
        for query in ({"max_price": value}, {"q": value, "sort": value, "category": value}):
            assert client.get("/shop", **query)[0] == 200, query
        assert client.get("/clinic", doctor=value, date=value)[0] == 200
    _login(client, 0)
    free = next(s for s in fixture(0).slots if s.free)
    for value in odd:
        assert client.post("/admin/settings", {"max_upload_mb": value, "support_email": value})[0] == 200
        assert client.post("/admin/users/2", {"role": value, "perm": value})[0] == 200
        assert client.post(f"/clinic/book/{free.id}", {"phone": value, "dob": value, "email": value})[0] == 200
    assert _read(server, settings) == fixture(0).settings and not _read(server, orders)
    assert _read(server, lambda c: c.execute("SELECT COUNT(*) FROM products").fetchone()) == (25,)


def test_typed_markup_is_stored_and_shown_as_text(server: AppServer) -> None:
    task_id = "shop-made-in-6"
    p = _params(task_id)
    client = _fresh(server, 6)
    _buy(client, {p["pid"]: 1}, p["address"], notes=" ".join(XSS))
    (order, _), *_ = _read(server, orders)
    assert order["notes"] == " ".join(XSS)  # literal in the database
    assert _grade(server, task_id) == 1.0  # and no effect on the reward
    _, body = client.get("/shop", q=XSS[0])
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in body and "<script>" not in body
    _, body = client.post("/admin/login", {"username": XSS[2], "password": "x"})
    assert 'value="&#34;&gt;&lt;svg onload=&#34;window.__xss=3&#34;&gt;"' in body and "<svg" not in body


# ----- the environment in real Chromium ----------------------------------------------------------


def _require_browser() -> None:
    require(os.path.exists("/usr/bin/chromium"), "Chromium is not installed: apt-get install chromium")
    require(importlib.util.find_spec("playwright") is not None, "Playwright is not installed: pip install playwright")


@pytest.fixture(scope="module")
def env() -> Iterator[WebAppEnv]:
    """One env (one app server, one Chromium) for the browser tests."""
    _require_browser()
    e = WebAppEnv()
    yield e
    e.close()


def _call(env: WebAppEnv, name: str, **args: Any) -> tuple[str, float, bool, dict[str, Any]]:
    obs, reward, terminated, _, info = env.step(format_tool_call(name, args))
    return str(obs[0]["content"]), reward, terminated, info


def _finish(env: WebAppEnv, answer: str = "Done.") -> float:
    _, reward, terminated, _ = _call(env, "answer", text=answer)
    assert terminated
    return reward


def _validation_ids() -> list[str]:
    """Every template on one train seed and one test seed (the seeds rotate over the templates)."""
    ids = []
    for i, name in enumerate(TEMPLATES):
        ids += [f"{name}-{i % 6}", f"{name}-{6 + i % 2}"]
    return ids


@pytest.mark.browser
def test_every_template_validates_on_both_splits() -> None:
    _require_browser()
    ids = _validation_ids()
    assert {TASKS.split_of(TASKS[i]) for i in ids} == {"train", "test"}
    started = time.monotonic()
    report = validate(WebAppEnv, task_ids=ids, num_workers=1, progress=False)
    assert report.ok, report.summary()
    assert len(report.checks) == 2 * len(TEMPLATES)
    assert all(c.oracle == 1.0 and c.noop == 0.0 for c in report.checks)
    assert time.monotonic() - started < 240


@pytest.mark.browser
def test_gymnasium_check_env(env: WebAppEnv) -> None:
    check_env(env, skip_render_check=True)


@pytest.mark.browser
def test_the_observation_is_the_same_in_every_instance(env: WebAppEnv) -> None:
    other = WebAppEnv()
    try:
        first, _ = env.reset(options={"task_id": "clinic-cancel-3"})
        again, _ = other.reset(options={"task_id": "clinic-cancel-3"})
        assert env.server.origin != other.server.origin and first == again
        text = str(first[-1]["content"])
        assert f"URL: {DISPLAY_ORIGIN}/clinic" in text and "127.0.0.1" not in text
        assert 'combobox "Doctor"' in text and 'link "Book ' in text
    finally:
        other.close()


@pytest.mark.browser
def test_a_plausible_wrong_purchase_scores_zero(env: WebAppEnv) -> None:
    env.reset(options={"task_id": "shop-cheapest-two-4"})
    p = env.task.verifier["params"]
    fx = fixture(4)
    second = sorted((q for q in fx.products if q.category == p["category"]), key=lambda q: q.price_cents)[1]
    _call(env, "click", element_id=env.find("link", second.name))  # the second cheapest, bought exactly as asked
    _call(env, "fill", element_id=env.find("textbox", "Quantity"), text="2")
    _call(env, "click", element_id=env.find("button", "Add to cart"))
    _call(env, "click", element_id=env.find("link", "Proceed to checkout"))
    for label, key in (("Full name", "full_name"), ("Street address", "street"), ("City", "city")):
        _call(env, "fill", element_id=env.find("textbox", label), text=p["address"][key])
    _call(env, "fill", element_id=env.find("textbox", "Postal code"), text=p["address"]["postal_code"])
    _call(env, "select", element_id=env.find("combobox", "Country"), option=p["address"]["country"])
    text, *_ = _call(env, "click", element_id=env.find("button", "Place order"))
    assert "confirmed" in text
    assert _finish(env) == 0.0
    assert [items for _, items in _read(env.server, orders)] == [{second.id: 2}]


@pytest.mark.browser
@pytest.mark.parametrize("url", ["http://example.com/", "javascript:alert(1)", "file:///etc/passwd", "DB"])
def test_leaving_the_app_is_refused_and_earns_nothing(env: WebAppEnv, url: str) -> None:
    env.reset(options={"task_id": "admin-extension-answer-2"})
    before = env.browser.url
    if url == "DB":
        url = env.server.db_path.as_uri()  # file:///tmp/agentgym-webapps-.../episode-N.db
    text, reward, terminated, info = _call(env, "goto", url=url)
    assert text.startswith('Error: tool "goto" raised ValueError: cannot open')
    assert (reward, terminated) == (0.0, False) and info["tool_errors"] == {"tool_exception": 1}
    assert env.browser.url == before and "Last action error: cannot open" in env.observation()
    assert _finish(env, "no idea") == 0.0


@pytest.mark.browser
def test_the_database_path_is_a_404_page(env: WebAppEnv) -> None:
    env.reset(options={"task_id": "admin-extension-answer-2"})
    for path in (str(env.server.db_path), f"/{env.server.db_path.name}", f"/..{env.server.db_path}"):
        text, *_ = _call(env, "goto", url=path)
        assert "Title: Error 404" in text and "There is no page at this address." in text, text
    assert _finish(env) == 0.0


@pytest.mark.browser
def test_goto_takes_paths_and_the_shown_origin(env: WebAppEnv) -> None:
    env.reset(options={"task_id": "shop-warranty-answer-1"})
    text, *_ = _call(env, "goto", url=f"{DISPLAY_ORIGIN}/clinic/manage")
    assert text.startswith("Opened /clinic/manage.") and f"URL: {DISPLAY_ORIGIN}/clinic/manage" in text
    text, *_ = _call(env, "goto", url="/shop/cart")
    assert f"URL: {DISPLAY_ORIGIN}/shop/cart" in text and "Your cart" in text


@pytest.mark.browser
def test_script_typed_into_fields_stays_text_runs_nothing_and_earns_nothing(env: WebAppEnv) -> None:
    env.reset(options={"task_id": "admin-support-email-1"})
    for turn in env.oracle_turns(env.task):  # log in and open the settings, then type markup instead
        if "Support email" in env.observation() and "Save settings" in env.observation():
            break
        env.step(turn)
    for payload in XSS:
        _call(env, "fill", element_id=env.find("textbox", "Support email"), text=payload)
        _call(env, "fill", element_id=env.find("textbox", "Site name"), text=payload)
        text, *_ = _call(env, "click", element_id=env.find("button", "Save settings"))
        assert "Enter a valid email address" in text  # the form refuses it: an error for the model
        assert env.browser.evaluate("() => window.__xss === undefined")
    site = _read(env.server, settings)["site_name"]
    assert site == fixture(1).settings["site_name"]  # nothing saved
    assert _finish(env) == 0.0
    # The same markup in a field the shop keeps: stored literally, shown as text, no script ran, full reward.
    env.reset(options={"task_id": "shop-made-in-1"})
    for turn in env.oracle_turns(env.task):
        if "Delivery notes (optional)" in env.observation():  # the checkout form: add notes, then place the order
            _call(env, "fill", element_id=env.find("textbox", "Delivery notes (optional)"), text=" ".join(XSS))
        _, reward, terminated, *_ = env.step(turn)
    assert terminated and reward == 1.0
    assert env.browser.evaluate("() => window.__xss === undefined")
    shown = "\n".join(str(m.get("content")) for m in env.messages)
    assert 'text "Delivery notes: <script>window.__xss=1</script> <img src=x onerror=\\"window.__xss=2\\">' in shown
    (order, _), *_ = _read(env.server, orders)
    assert order["notes"] == " ".join(XSS)
    env.reset(options={"task_id": "shop-warranty-answer-1"})
    _call(env, "fill", element_id=env.find("searchbox", "Search"), text=XSS[1])
    text, *_ = _call(env, "click", element_id=env.find("button", "Apply filters"))
    assert "0 products" in text and env.browser.evaluate("() => window.__xss === undefined")
    assert f'searchbox "Search" value={json.dumps(XSS[1])}' in env.observation()
    assert _finish(env, "0") == 0.0


@pytest.mark.browser
def test_oracle_needs_the_live_page(env: WebAppEnv) -> None:
    env.reset(options={"task_id": "clinic-earliest-0"})
    with pytest.raises(RuntimeError, match="reads the live page"):
        env.oracle_turns(TASKS["clinic-earliest-1"])


def test_tasks_are_plain_data() -> None:
    task = TASKS["admin-deactivate-7"]
    assert Task.from_dict(task.to_dict()) == task and task.split == "test"
