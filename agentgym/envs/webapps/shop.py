"""The shop (``/shop``): a catalogue with search and filters, product pages, a cart with coupons, a checkout."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from agentgym.envs.webapps.fixtures import CATEGORIES, COUPONS
from agentgym.envs.webapps.server import Request, Response, Route, page, redirect

COUNTRIES = ("United States", "Canada", "United Kingdom", "Germany", "France")
SORTS = {"name": "name", "price-asc": "price_cents ASC, name", "price-desc": "price_cents DESC, name"}


def _cents(text: str) -> int | None:
    found = re.fullmatch(r"\$?([0-9]{1,7})(?:\.([0-9]{1,2}))?", text.strip())
    if not found:
        return None
    return int(found.group(1)) * 100 + int((found.group(2) or "0").ljust(2, "0"))


def catalogue(req: Request) -> Response:
    """The product list, filtered by search text, category and maximum price, sorted."""
    q, category, max_price = req.arg("q").strip(), req.arg("category"), req.arg("max_price").strip()
    sort = req.arg("sort", "name")
    where: list[str] = []
    args: list[str | int] = []
    if q:
        where.append("(name LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\')")
        like = "%" + re.sub(r"([%_\\])", r"\\\1", q) + "%"
        args += [like, like]
    if category in CATEGORIES:
        where.append("category = ?")
        args.append(category)
    error = ""
    if max_price:
        cents = _cents(max_price)
        if cents is None:
            error = "Max price must be a number, e.g. 25 or 25.50."
        else:
            where.append("price_cents <= ?")
            args.append(cents)
    sql = "SELECT id, name, category, price_cents FROM products"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY " + SORTS.get(sort, "name")
    products = req.conn.execute(sql, args).fetchall()
    return page(
        "shop/catalogue.html",
        products=products,
        q=q,
        category=category,
        categories=CATEGORIES,
        max_price=max_price,
        sort=sort,
        error=error,
        cart_count=_cart_count(req),
    )


def _cart_count(req: Request) -> int:
    row = req.conn.execute("SELECT COALESCE(SUM(qty), 0) FROM cart WHERE sid = ?", (req.sid,)).fetchone()
    return int(row[0])


def product(req: Request) -> Response:
    """A product's page: price, origin, warranty, stock and the add-to-cart form."""
    row = req.conn.execute("SELECT * FROM products WHERE id = ?", (req.params["id"],)).fetchone()
    if row is None:
        return page("error.html", 404, status=404)
    keys = ("id", "name", "category", "price_cents", "stock", "origin", "warranty_years", "description")
    return page("shop/product.html", p=dict(zip(keys, row, strict=True)), cart_count=_cart_count(req), error="")


def add_to_cart(req: Request) -> Response:
    """Add ``quantity`` of ``product_id`` to the cart (1 to the stock)."""
    row = req.conn.execute("SELECT id, stock FROM products WHERE id = ?", (req.arg("product_id"),)).fetchone()
    if row is None:
        return page("error.html", 404, status=404)
    qty_text = req.arg("quantity", "1").strip()
    have = req.conn.execute("SELECT qty FROM cart WHERE sid = ? AND product_id = ?", (req.sid, row[0])).fetchone()
    qty = int(qty_text) if re.fullmatch(r"[0-9]{1,6}", qty_text) else 0
    if qty < 1 or qty + (have[0] if have else 0) > row[1]:
        req.params["id"] = str(row[0])
        response = product(req)
        response.context["error"] = f"Quantity must be a whole number from 1 to {row[1] - (have[0] if have else 0)}."
        return response
    req.conn.execute(
        "INSERT INTO cart VALUES (?, ?, ?) ON CONFLICT (sid, product_id) DO UPDATE SET qty = qty + excluded.qty",
        (req.sid, row[0], qty),
    )
    return redirect("/shop/cart")


def _cart(conn: sqlite3.Connection, sid: str) -> dict[str, Any]:
    lines = conn.execute(
        "SELECT p.id, p.name, c.qty, p.price_cents, c.qty * p.price_cents FROM cart c JOIN products p "
        "ON p.id = c.product_id WHERE c.sid = ? ORDER BY p.name",
        (sid,),
    ).fetchall()
    coupon = conn.execute("SELECT coupon FROM sessions WHERE sid = ?", (sid,)).fetchone()[0]
    subtotal = sum(line[4] for line in lines)
    discount = subtotal * COUPONS[coupon] // 100 if coupon in COUPONS else 0
    return {"lines": lines, "coupon": coupon, "subtotal": subtotal, "discount": discount, "total": subtotal - discount}


def cart(req: Request, error: str = "") -> Response:
    """The cart: lines, coupon form, totals and the way to checkout."""
    return page("shop/cart.html", cart=_cart(req.conn, req.sid), error=error, cart_count=_cart_count(req))


def remove_from_cart(req: Request) -> Response:
    """Remove a product's line from the cart."""
    req.conn.execute("DELETE FROM cart WHERE sid = ? AND product_id = ?", (req.sid, req.arg("product_id")))
    return redirect("/shop/cart")


def apply_coupon(req: Request) -> Response:
    """Apply a coupon code (case-insensitive) to the session's cart."""
    code = req.arg("code").strip().upper()
    if code not in COUPONS:
        return cart(req, error="That coupon code is not valid.")
    req.conn.execute("UPDATE sessions SET coupon = ? WHERE sid = ?", (code, req.sid))
    return redirect("/shop/cart")


FIELDS = ("full_name", "street", "city", "postal_code", "country", "notes")


def checkout(req: Request) -> Response:
    """The address form; a valid POST places the order and empties the cart."""
    basket = _cart(req.conn, req.sid)
    values = {f: req.arg(f).strip() for f in FIELDS}
    errors: dict[str, str] = {}
    if req.method == "POST":
        if not basket["lines"]:
            errors["form"] = "Your cart is empty."
        for f, label in (("full_name", "Full name"), ("street", "Street address"), ("city", "City")):
            if not values[f]:
                errors[f] = f"{label} is required."
        if not re.fullmatch(r"[0-9]{5}", values["postal_code"]):
            errors["postal_code"] = "Postal code must be exactly 5 digits."
        if values["country"] not in COUNTRIES:
            errors["country"] = "Choose a country from the list."
        if not errors:
            cur = req.conn.execute(
                "INSERT INTO orders (sid, full_name, street, city, postal_code, country, notes, coupon, "
                "subtotal_cents, total_cents) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (req.sid, *(values[f] for f in FIELDS), basket["coupon"], basket["subtotal"], basket["total"]),
            )
            order_id = cur.lastrowid
            req.conn.executemany(
                "INSERT INTO order_items VALUES (?, ?, ?, ?)",
                [(order_id, line[0], line[2], line[3]) for line in basket["lines"]],
            )
            for line in basket["lines"]:
                req.conn.execute("UPDATE products SET stock = stock - ? WHERE id = ?", (line[2], line[0]))
            req.conn.execute("DELETE FROM cart WHERE sid = ?", (req.sid,))
            req.conn.execute("UPDATE sessions SET coupon = NULL WHERE sid = ?", (req.sid,))
            return redirect(f"/shop/orders/{order_id}")
    return page(
        "shop/checkout.html",
        cart=basket,
        values=values,
        errors=errors,
        countries=COUNTRIES,
        cart_count=_cart_count(req),
    )


def order(req: Request) -> Response:
    """An order's confirmation (only for the session that placed it)."""
    row = req.conn.execute(
        "SELECT id, full_name, total_cents, notes FROM orders WHERE id = ? AND sid = ?", (req.params["id"], req.sid)
    ).fetchone()
    if row is None:
        return page("error.html", 404, status=404)
    items = req.conn.execute(
        "SELECT p.name, i.qty FROM order_items i JOIN products p ON p.id = i.product_id WHERE i.order_id = ?",
        (row[0],),
    ).fetchall()
    return page("shop/order.html", order=row, items=items, cart_count=0)


ROUTES = [
    Route("GET", "/shop", catalogue),
    Route("GET", "/shop/product/{id}", product),
    Route("POST", "/shop/cart/add", add_to_cart),
    Route("GET", "/shop/cart", cart),
    Route("POST", "/shop/cart/remove", remove_from_cart),
    Route("POST", "/shop/cart/coupon", apply_coupon),
    Route("GET", "/shop/checkout", checkout),
    Route("POST", "/shop/checkout", checkout),
    Route("GET", "/shop/orders/{id}", order),
]
