"""The admin console (``/admin``): a login, users with roles and permissions, site settings, an audit log."""

from __future__ import annotations

import re
import sqlite3

from agentgym.envs.webapps.fixtures import DEPARTMENTS, LANGUAGES, PERMISSIONS, ROLES, check_password
from agentgym.envs.webapps.server import Request, Response, Route, page, redirect

USER_KEYS = ("id", "username", "name", "email", "department", "role", "active", "last_login", "extension")
SETTING_LABELS = {
    "site_name": "Site name",
    "support_email": "Support email",
    "maintenance_mode": "Maintenance mode",
    "max_upload_mb": "Max upload size (MB)",
    "default_language": "Default language",
}


def _actor(req: Request) -> str | None:
    uid = req.user_id
    if uid is None:
        return None
    row = req.conn.execute("SELECT username FROM users WHERE id = ? AND active = 1", (uid,)).fetchone()
    return str(row[0]) if row else None


def _audit(conn: sqlite3.Connection, actor: str, action: str) -> None:
    conn.execute("INSERT INTO audit (actor, action) VALUES (?, ?)", (actor, action))


def login(req: Request) -> Response:
    """The login form; valid admin credentials start a logged-in session."""
    error = ""
    if req.method == "POST":
        uid = check_password(req.conn, req.arg("username").strip(), req.arg("password"))
        if uid is not None:
            req.conn.execute("UPDATE sessions SET user_id = ? WHERE sid = ?", (uid, req.sid))
            return redirect("/admin")
        error = "Invalid username or password."
    return page("admin/login.html", error=error, username=req.arg("username"), actor=None)


def logout(req: Request) -> Response:
    """End the admin session."""
    req.conn.execute("UPDATE sessions SET user_id = NULL WHERE sid = ?", (req.sid,))
    return redirect("/admin/login")


def dashboard(req: Request) -> Response:
    """Links to the console's pages (or the login form)."""
    actor = _actor(req)
    if actor is None:
        return redirect("/admin/login")
    counts = req.conn.execute("SELECT COUNT(*), COALESCE(SUM(active), 0) FROM users").fetchone()
    return page("admin/dashboard.html", actor=actor, total=counts[0], active=counts[1])


def users(req: Request) -> Response:
    """The users table, filtered by department and status."""
    actor = _actor(req)
    if actor is None:
        return redirect("/admin/login")
    department, status = req.arg("department"), req.arg("status")
    where: list[str] = []
    args: list[str | int] = []
    if department in DEPARTMENTS:
        where.append("department = ?")
        args.append(department)
    if status in ("active", "inactive"):
        where.append("active = ?")
        args.append(int(status == "active"))
    sql = "SELECT id, username, name, department, role, active, last_login FROM users"
    rows = req.conn.execute(sql + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY name", args)
    return page(
        "admin/users.html",
        actor=actor,
        users=rows.fetchall(),
        departments=DEPARTMENTS,
        department=department,
        status=status,
    )


def user_detail(req: Request) -> Response:
    """A user's details; the POST saves role, status and permissions and audits each change."""
    actor = _actor(req)
    if actor is None:
        return redirect("/admin/login")
    row = req.conn.execute(f"SELECT {', '.join(USER_KEYS)} FROM users WHERE id = ?", (req.params["id"],)).fetchone()
    if row is None:
        return page("error.html", 404, status=404)
    user = dict(zip(USER_KEYS, row, strict=True))
    perms = {p for (p,) in req.conn.execute("SELECT perm FROM permissions WHERE user_id = ?", (user["id"],))}
    errors: dict[str, str] = {}
    saved = False
    if req.method == "POST":
        role, active = req.arg("role"), req.arg("active") == "on"
        wanted = set(req.args("perm"))
        if role not in ROLES:
            errors["role"] = "Choose a role from the list."
        elif not wanted <= set(PERMISSIONS):
            errors["perm"] = "Unknown permission."
        elif user["username"] == actor and (role != "admin" or not active):
            errors["role"] = "You cannot remove your own admin access."
        else:
            if role != user["role"]:
                req.conn.execute("UPDATE users SET role = ? WHERE id = ?", (role, user["id"]))
                _audit(req.conn, actor, f"{user['username']}: role {user['role']} -> {role}")
            if active != bool(user["active"]):
                req.conn.execute("UPDATE users SET active = ? WHERE id = ?", (int(active), user["id"]))
                _audit(req.conn, actor, f"{user['username']}: {'activated' if active else 'deactivated'}")
            for p in sorted(wanted - perms):
                req.conn.execute("INSERT INTO permissions VALUES (?, ?)", (user["id"], p))
                _audit(req.conn, actor, f"{user['username']}: granted {p}")
            for p in sorted(perms - wanted):
                req.conn.execute("DELETE FROM permissions WHERE user_id = ? AND perm = ?", (user["id"], p))
                _audit(req.conn, actor, f"{user['username']}: revoked {p}")
            user.update(role=role, active=int(active))
            perms, saved = wanted, True
    return page(
        "admin/user.html",
        actor=actor,
        user=user,
        perms=perms,
        roles=ROLES,
        permissions=PERMISSIONS,
        errors=errors,
        saved=saved,
    )


def settings(req: Request) -> Response:
    """The site settings form; the POST validates, saves and audits the changed values."""
    actor = _actor(req)
    if actor is None:
        return redirect("/admin/login")
    current = dict(req.conn.execute("SELECT key, value FROM settings").fetchall())
    errors: dict[str, str] = {}
    saved = False
    values = dict(current)
    if req.method == "POST":
        values = {
            "site_name": req.arg("site_name").strip(),
            "support_email": req.arg("support_email").strip(),
            "maintenance_mode": "on" if req.arg("maintenance_mode") == "on" else "off",
            "max_upload_mb": req.arg("max_upload_mb").strip(),
            "default_language": req.arg("default_language"),
        }
        if not values["site_name"]:
            errors["site_name"] = "Site name is required."
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", values["support_email"]):
            errors["support_email"] = "Enter a valid email address, like name@example.com."
        if not (re.fullmatch(r"[0-9]{1,4}", values["max_upload_mb"]) and 1 <= int(values["max_upload_mb"]) <= 1000):
            errors["max_upload_mb"] = "Max upload size must be a whole number from 1 to 1000."
        if values["default_language"] not in LANGUAGES:
            errors["default_language"] = "Choose a language from the list."
        if not errors:
            for key, value in values.items():
                if value != current.get(key):
                    req.conn.execute("UPDATE settings SET value = ? WHERE key = ?", (value, key))
                    _audit(req.conn, actor, f"setting {key}: {current.get(key)} -> {value}")
            saved = True
    return page(
        "admin/settings.html",
        actor=actor,
        values=values,
        errors=errors,
        saved=saved,
        languages=LANGUAGES,
        labels=SETTING_LABELS,
    )


def audit(req: Request) -> Response:
    """The audit log, newest first."""
    actor = _actor(req)
    if actor is None:
        return redirect("/admin/login")
    rows = req.conn.execute("SELECT id, actor, action FROM audit ORDER BY id DESC").fetchall()
    return page("admin/audit.html", actor=actor, rows=rows)


ROUTES = [
    Route("GET", "/admin", dashboard),
    Route("GET", "/admin/login", login),
    Route("POST", "/admin/login", login),
    Route("POST", "/admin/logout", logout),
    Route("GET", "/admin/users", users),
    Route("GET", "/admin/users/{id}", user_detail),
    Route("POST", "/admin/users/{id}", user_detail),
    Route("GET", "/admin/settings", settings),
    Route("POST", "/admin/settings", settings),
    Route("GET", "/admin/audit", audit),
]
