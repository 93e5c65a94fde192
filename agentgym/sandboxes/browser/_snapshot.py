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
