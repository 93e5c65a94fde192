"""The JavaScript that lists a page's elements for ``ChromiumBrowser.snapshot``.

It walks the visible elements under a root and lists the interactive ones (and, optionally,
text), giving each a stable id kept in the :data:`ID_ATTR` attribute: an element keeps its
id for the life of the page, so ids seen in one snapshot still work after the page changed.
"""

ID_ATTR = "data-agentgym-id"
"""The attribute that holds an element's snapshot id."""

SNAPSHOT_JS = r"""
([rootSel, includeText, maxItems, clickableSel, ATTR]) => {
  const root = document.querySelector(rootSel);
  if (!root) return null;
  if (window.__agentgymNext === undefined) window.__agentgymNext = 1;
  const visible = (el) => {
    if (!el.getClientRects().length) return false;
    const s = getComputedStyle(el);
    return s.visibility !== "hidden" && s.display !== "none";
  };
  const clean = (t) => (t || "").replace(/\s+/g, " ").trim().slice(0, 80);
  const roleOf = (el) => {
    const r = el.getAttribute("role");
    if (r) return r;
    if (clickableSel && el.matches(clickableSel)) return "clickable";
    const tag = el.tagName.toLowerCase();
    const type = (el.getAttribute("type") || "text").toLowerCase();
    if (tag === "a" && el.hasAttribute("href")) return "link";
    if (tag === "button") return "button";
    if (tag === "select") return "combobox";
    if (tag === "textarea") return "textbox";
    if (tag === "input") {
      if (["button", "submit", "reset", "image"].includes(type)) return "button";
      if (type === "checkbox" || type === "radio") return type;
      if (type === "hidden") return null;
      return "textbox";
    }
    if (el.hasAttribute("onclick") || tag === "summary") return "clickable";
    return null;
  };
  const nameOf = (el) => {
    const aria = el.getAttribute("aria-label");
    if (aria) return clean(aria);
    if (el.id) {
      const lab = document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
      if (lab) return clean(lab.innerText);
    }
    const tag = el.tagName.toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") {
      const lab = el.closest("label");
      if (lab) return clean(lab.innerText);
      const type = (el.type || "").toLowerCase();
      if (tag === "input" && ["button", "submit", "reset"].includes(type)) return clean(el.value);
      return clean(el.getAttribute("placeholder") || el.getAttribute("title") || el.getAttribute("name") || "");
    }
    return clean(el.innerText || el.getAttribute("title") || "");
  };
  const lines = [];
  const walk = (node) => {
    if (lines.length >= maxItems) return;
    if (node.nodeType === Node.TEXT_NODE) {
      const t = clean(node.textContent);
      const p = node.parentElement;
      const lab = p && p.closest("label");
      const named = lab && lab.querySelector("input, select, textarea");  // already the control's name
      if (includeText && t && p && !named && visible(p)) lines.push("text " + JSON.stringify(t));
      return;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) return;
    const tag = node.tagName.toLowerCase();
    if (["script", "style", "noscript", "template", "head"].includes(tag)) return;
    if (!visible(node) && tag !== "option") {
      // a hidden parent may still hold visible children (display: contents is rare); skip it
      return;
    }
    const role = roleOf(node);
    if (role) {
      let id = node.getAttribute(ATTR);
      if (!id) { id = String(window.__agentgymNext++); node.setAttribute(ATTR, id); }
      let line = "[" + id + "] " + role + " " + JSON.stringify(nameOf(node));
      if (role === "textbox") line += " value=" + JSON.stringify(String(node.value || "").slice(0, 80));
      if (role === "combobox") {
        const options = Array.from(node.options).map((o) => clean(o.text));
        const chosen = node.selectedOptions[0] ? node.selectedOptions[0].text : "";
        line += " options=" + JSON.stringify(options) + " value=" + JSON.stringify(clean(chosen));
      }
      if ((role === "checkbox" || role === "radio") && node.checked) line += " checked";
      if (node.disabled) line += " disabled";
      if (document.activeElement === node) line += " focused";
      lines.push(line);
      // the name already carries the text of links and buttons
      if (["link", "button", "clickable"].includes(role) || tag === "select") return;
    }
    for (const child of node.childNodes) walk(child);
  };
  walk(root);
  if (lines.length >= maxItems) lines.push("... (more elements not shown)");
  return lines.join("\n");
}
"""
"""Called with ``[rootSelector, includeText, maxItems, clickableSelector, ID_ATTR]``; returns
the lines joined by newlines, or null when nothing matches ``rootSelector``."""

EVALUATE_JS = (
    "async ([js, arg, ms]) => { const f = (0, eval)('(' + js + ')');"
    " const v = typeof f === 'function' ? f(arg) : f;"
    " return await Promise.race([Promise.resolve(v), new Promise((_, rej) =>"
    " setTimeout(() => rej(new Error('evaluate timed out after ' + ms + ' ms')), ms))]); }"
)
"""Evaluates ``js`` (called with ``arg`` when it is a function) with a deadline of ``ms``
milliseconds: Playwright's ``Page.evaluate`` has no timeout of its own."""

A11Y_JS = r"""
([rootSel, maxChars, ATTR, MAXNAME, MAXTEXT]) => {
  const root = document.querySelector(rootSel);
  if (!root) return null;
  if (window.__agentgymNext === undefined) window.__agentgymNext = 1;
  if (!window.__agentgymById) window.__agentgymById = new Map();
  const byId = window.__agentgymById;
  const clean = (t, n) => {
    const s = String(t || "").replace(/\s+/g, " ").trim();
    return s.length > n ? s.slice(0, n - 1) + "\u2026" : s;
  };
  // An element keeps its id for the life of the document; a clone of a stamped element
  // (same attribute, the original still attached) gets a new one.
  const stamp = (el) => {
    let id = el.getAttribute(ATTR);
    if (id) {
      const owner = byId.get(id);
      if (owner === el) return id;
      if (!owner || !owner.isConnected) { byId.set(id, el); return id; }
    }
    id = String(window.__agentgymNext++);
    el.setAttribute(ATTR, id);
    byId.set(id, el);
    return id;
  };
  const INTERACTIVE = new Set(["button", "link", "textbox", "searchbox", "checkbox", "radio", "combobox",
    "listbox", "option", "tab", "menuitem", "menuitemcheckbox", "menuitemradio", "switch", "slider",
    "spinbutton", "treeitem", "clickable"]);
  const FROM_CONTENT = new Set(["button", "link", "heading", "cell", "columnheader", "rowheader", "listitem",
    "option", "tab", "menuitem", "menuitemcheckbox", "menuitemradio", "treeitem", "clickable", "switch",
    "checkbox", "radio", "tooltip", "gridcell", "legend", "caption", "label", "paragraph", "status", "alert"]);
  const SKIP = new Set(["script", "style", "noscript", "template", "head", "meta", "link", "iframe", "object",
    "embed"]);
  const VALUED = new Set(["textbox", "searchbox", "combobox", "spinbutton", "slider"]);
  const inputType = (el) => (el.getAttribute("type") || "text").toLowerCase();
  const implicitRole = (el, tag) => {
    switch (tag) {
      case "a": case "area": return el.hasAttribute("href") ? "link" : null;
      case "button": case "summary": return "button";
      case "select": return el.multiple || el.size > 1 ? "listbox" : "combobox";
      case "textarea": return "textbox";
      case "input": {
        const t = inputType(el);
        if (["button", "submit", "reset", "image", "file", "color"].includes(t)) return "button";
        if (t === "checkbox" || t === "radio") return t;
        if (t === "range") return "slider";
        if (t === "number") return "spinbutton";
        if (t === "search") return "searchbox";
        if (t === "hidden") return null;
        return "textbox";
      }
      case "h1": case "h2": case "h3": case "h4": case "h5": case "h6": return "heading";
      case "img": return el.getAttribute("alt") ? "img" : null;
      case "table": return "table";
      case "tr": return "row";
      case "td": return "cell";
      case "th": return el.getAttribute("scope") === "row" ? "rowheader" : "columnheader";
      case "ul": case "ol": return "list";
      case "li": return "listitem";
      case "dialog": return "dialog";
      case "nav": return "navigation";
      case "fieldset": return "group";
      case "progress": return "progressbar";
      case "option": return "option";
    }
    if (el.isContentEditable && el.hasAttribute("contenteditable")) return "textbox";
    return null;
  };
  const roleOf = (el, tag, style, parentPointer) => {
    const explicit = (el.getAttribute("role") || "").trim().split(/\s+/)[0].toLowerCase();
    if (explicit === "none" || explicit === "presentation" || explicit === "generic") return null;
    if (explicit) return explicit;
    const r = implicitRole(el, tag);
    if (r) return r;
    if (el.hasAttribute("onclick")) return "clickable";
    if (el.hasAttribute("tabindex") && el.tabIndex >= 0 && tag !== "body") return "clickable";
    if (style.cursor === "pointer" && !parentPointer && tag !== "label" && tag !== "body") return "clickable";
    return null;
  };
  const textOfIds = (ids) => ids.split(/\s+/).map((i) => document.getElementById(i))
    .filter(Boolean).map((e) => e.innerText || e.textContent).join(" ");
  // Text of a label without the controls it wraps (a <select>'s options are not the name).
  const labelText = (lab) => {
    let s = "";
    const go = (n) => {
      if (n.nodeType === Node.TEXT_NODE) { s += n.textContent + " "; return; }
      if (n.nodeType !== Node.ELEMENT_NODE) return;
      if (["input", "select", "textarea", "button", "script", "style"].includes(n.tagName.toLowerCase())) return;
      for (const c of n.childNodes) go(c);
    };
    go(lab);
    return s;
  };
  const contentName = (el) => {
    const t = clean(el.innerText, MAXNAME);
    if (t) return t;
    const img = el.querySelector("img[alt], [aria-label]");
    return img ? clean(img.getAttribute("alt") || img.getAttribute("aria-label"), MAXNAME) : "";
  };
  const nameOf = (el, tag, role, fromContent) => {
    const by = el.getAttribute("aria-labelledby");
    if (by) { const t = clean(textOfIds(by), MAXNAME); if (t) return t; }
    const aria = el.getAttribute("aria-label");
    if (aria && aria.trim()) return clean(aria, MAXNAME);
    if (el.labels && el.labels.length) {
      const t = clean(Array.from(el.labels).map(labelText).join(" "), MAXNAME);
      if (t) return t;
    }
    if (tag === "input") {
      const t = inputType(el);
      if (t === "image") return clean(el.getAttribute("alt") || el.value || "Submit", MAXNAME);
      if (["button", "submit", "reset"].includes(t)) {
        return clean(el.value || (t === "submit" ? "Submit" : t === "reset" ? "Reset" : ""), MAXNAME);
      }
    }
    if (tag === "img") return clean(el.getAttribute("alt"), MAXNAME);
    if (tag === "fieldset") { const lg = el.querySelector("legend"); if (lg) return clean(lg.innerText, MAXNAME); }
    if (tag === "table") { const c = el.querySelector("caption"); if (c) return clean(c.innerText, MAXNAME); }
    if (fromContent && FROM_CONTENT.has(role) && !["input", "select", "textarea"].includes(tag)) {
      const t = contentName(el);
      if (t) return t;
    }
    return clean(el.getAttribute("title") || el.getAttribute("placeholder") || "", MAXNAME);
  };
  const linkUrl = (el) => {
    if (!el.href) return null;
    let u;
    try { u = new URL(el.href); } catch (e) { return null; }
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    return u.origin === location.origin ? u.pathname + u.search + u.hash : u.href;
  };
  const details = (el, tag, role) => {
    let s = "";
    if (role === "link") { const u = linkUrl(el); if (u !== null) s += " url=" + JSON.stringify(u); }
    if (role === "heading") {
      const lvl = el.getAttribute("aria-level") || (/^h[1-6]$/.test(tag) ? tag.slice(1) : "2");
      s += " level=" + parseInt(lvl, 10);
    }
    if (tag === "select") {
      s += " options=" + JSON.stringify(Array.from(el.options).map((o) => clean(o.label || o.text, MAXNAME)));
      const chosen = Array.from(el.selectedOptions).map((o) => clean(o.label || o.text, MAXNAME));
      s += " value=" + JSON.stringify(el.multiple ? chosen : (chosen[0] || ""));
    } else if (VALUED.has(role)) {
      let v;
      if (tag === "input" || tag === "textarea") v = el.value;
      else if (el.hasAttribute("aria-valuenow")) v = el.getAttribute("aria-valuenow");
      else if (el.isContentEditable) v = el.innerText;
      else v = "";
      s += " value=" + JSON.stringify(clean(v, MAXTEXT));
    }
    const checked = (tag === "input" && (el.type === "checkbox" || el.type === "radio")) ? el.checked
      : el.getAttribute("aria-checked") === "true" || el.getAttribute("aria-pressed") === "true";
    if (checked) s += " checked";
    if (el.getAttribute("aria-selected") === "true" || (tag === "option" && el.selected)) s += " selected";
    if (el.getAttribute("aria-expanded") === "true" || (tag === "summary" && el.parentElement
        && el.parentElement.tagName === "DETAILS" && el.parentElement.open)) s += " expanded";
    if (el.getAttribute("aria-disabled") === "true" || (typeof el.matches === "function" && el.matches(":disabled"))) {
      s += " disabled";
    }
    return s;
  };
  // Items: {d: depth, text: bool, line: string}; text items carry their text in `t`.
  const textItem = (d, t) => ({ d, text: true, t, line: "text " + JSON.stringify(t) });
  const labelsControl = (el) => el.tagName === "LABEL" && el.control;
  const walk = (el, d, parentPointer, inLabel) => {
    const tag = el.tagName.toLowerCase();
    if (SKIP.has(tag)) return [];
    if (el.getAttribute("aria-hidden") === "true") return [];
    const style = getComputedStyle(el);
    if (style.display === "none") return [];
    const rects = el.getClientRects();
    const rect = el.getBoundingClientRect();
    const boxed = style.display === "contents" || (rects.length > 0 && (rect.width > 0 || rect.height > 0));
    const shown = style.visibility === "visible" && boxed;
    const pointer = style.cursor === "pointer";
    if (tag === "svg") {
      const lab = el.getAttribute("aria-label");
      return shown && lab ? [{ d, text: false, line: "img " + JSON.stringify(clean(lab, MAXNAME)) }] : [];
    }
    const role = shown ? roleOf(el, tag, style, parentPointer) : null;
    const quiet = inLabel || !!labelsControl(el);
    const leaf = role && (["input", "select", "textarea", "img"].includes(tag) || role === "textbox");
    const interactive = !!role && INTERACTIVE.has(role);
    const id = interactive ? stamp(el) : null;  // before the children: ids follow reading order
    const kids = [];
    if (!leaf) {
      const cd = role ? d + 1 : d;
      for (const c of el.childNodes) {
        if (c.nodeType === Node.TEXT_NODE) {
          const t = clean(c.textContent, MAXTEXT);
          if (t && shown && !quiet) kids.push(textItem(cd, t));
        } else if (c.nodeType === Node.ELEMENT_NODE) {
          for (const it of walk(c, cd, pointer, quiet)) kids.push(it);
        }
      }
    }
    if (!role) {
      // A plain element holding only text: one text line per rendered line of it.
      if (kids.length > 1 && kids.every((k) => k.text) && shown) {
        const parts = (el.innerText || "").split(/\n+/).map((p) => clean(p, MAXTEXT)).filter(Boolean);
        if (parts.length) return parts.map((p) => textItem(d, p));
      }
      return kids;
    }
    // A node named from its content drops the children that only repeat that content; a
    // non-interactive one (list item, cell) that keeps its children takes no name from them.
    const pure = kids.every((k) => k.text || k.line.startsWith("img "));
    const name = nameOf(el, tag, role, pure || interactive || role === "heading");
    let line = role + " " + JSON.stringify(name) + details(el, tag, role);
    if (id !== null) line = "[" + id + "] " + line;
    const me = { d, text: false, line };
    if (FROM_CONTENT.has(role) && name && pure) return [me];
    if (role === "heading") return [me, ...kids.filter((k) => !k.text)];
    return [me, ...kids];
  };
  const items = [];
  for (const c of root.childNodes) {
    if (c.nodeType === Node.TEXT_NODE) {
      const t = clean(c.textContent, MAXTEXT);
      if (t) items.push(textItem(0, t));
    } else if (c.nodeType === Node.ELEMENT_NODE) {
      for (const it of walk(c, 0, false, false)) items.push(it);
    }
  }
  const lines = items.map((it) => "  ".repeat(it.d) + it.line);
  const total = lines.reduce((n, l) => n + l.length + 1, 0);
  if (total - 1 <= maxChars) return lines.join("\n");
  const out = [];
  let used = 0;
  const budget = Math.max(0, maxChars - 64);
  for (const l of lines) {
    if (used + l.length + 1 > budget) break;
    out.push(l);
    used += l.length + 1;
  }
  out.push("... (" + (lines.length - out.length) + " more nodes; scroll, or act on what is listed)");
  return out.join("\n");
}
"""
"""Called with ``[rootSelector, maxChars, ID_ATTR, maxNameChars, maxTextChars]``; returns the
accessibility tree as text (see :meth:`~agentgym.sandboxes.browser.Browser.a11y_tree`), or null
when nothing matches ``rootSelector``."""

EXISTS_JS = "([sel]) => document.querySelector(sel) !== null"

OPENER_JS = r"""
(() => {
  const mark = () => { window.__agentgymOpening = (window.__agentgymOpening || 0) + 1; };
  const open = window.open;
  window.open = function (...args) { mark(); return open.apply(this, args); };
  const opens = (t) => !["", "_self", "_top", "_parent"].includes((t || "").toLowerCase());
  document.addEventListener("click", (e) => {
    const a = e.target && e.target.closest ? e.target.closest("a[href], area[href]") : null;
    if (a && opens(a.target)) mark();
  }, true);
  document.addEventListener("submit", (e) => { if (e.target && opens(e.target.target)) mark(); }, true);
})();
"""
"""Init script of every document: counts the pages it may open (``window.open``, links and forms
with a ``target``), so an action that opened a tab can wait for it (Playwright reports a new
page a few round trips after the click that opened it)."""

OPENED_JS = "() => { const n = window.__agentgymOpening || 0; window.__agentgymOpening = 0; return n; }"
