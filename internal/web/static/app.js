// Updraft UI: confirm dialogs that preview an action (dry run) before doing it, and live
// fragments that poll with If-None-Match while something is unfinished. Nothing else.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const pollMs = parseInt(document.querySelector('meta[name="poll-ms"]')?.content || "2000", 10);

  // ---- Actions: <form class="action" data-api="/api/v1/..." data-title="..."> ----

  // body turns a form's fields into the JSON the API takes: checkboxes are booleans,
  // data-type="json" is parsed, data-type="int" a number, data-type="list" a one-item list,
  // and data-value on the form adds fixed fields.
  function body(form) {
    const out = form.dataset.body ? JSON.parse(form.dataset.body) : {};
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      const t = el.dataset.type;
      if (el.type === "checkbox") { out[el.name] = el.checked; continue; }
      const v = el.value;
      if (t === "json") {
        if (v.trim() === "") continue;
        try { out[el.name] = JSON.parse(v); } catch (e) { throw new Error(el.dataset.label + " is not valid JSON: " + e.message); }
      } else if (t === "int") {
        if (v !== "") out[el.name] = parseInt(v, 10);
      } else if (t === "list") {
        out[el.name] = v === "" ? [] : [v];
      } else if (v !== "") {
        out[el.name] = v;
      }
    }
    return out;
  }

  // target is the action's URL and body: a {field} in data-api takes that field's value
  // (and the field leaves the body).
  function target(form) {
    const b = body(form);
    const url = form.dataset.api.replace(/\{(\w+)\}/g, (_, k) => { const v = b[k] || ""; delete b[k]; return encodeURIComponent(v); });
    return { url, b };
  }

  async function call(form, dryRun) {
    const t = target(form);
    const url = t.url + (dryRun ? (t.url.includes("?") ? "&" : "?") + "dry_run=true" : "");
    const res = await fetch(url, {
      method: form.dataset.method || "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(t.b),
    });
    let data = null;
    try { data = await res.json(); } catch (_) { /* no body */ }
    if (!res.ok) {
      const msg = (data && (data.message || (data.error && (data.error.message || data.error)))) || res.statusText;
      const err = new Error(res.status === 403 ? "Refused: " + msg : msg);
      err.status = res.status;
      throw err;
    }
    return data || {};
  }

  const dialog = document.getElementById("confirm");
  let pending = null;

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function list(title, items) {
    const frag = document.createDocumentFragment();
    if (!items || !items.length) return frag;
    frag.append(el("p", title + " (" + items.length + "):"));
    const ul = el("ul");
    ul.className = "affected";
    for (const it of items) ul.append(el("li", it));
    frag.append(ul);
    return frag;
  }

  function showPreview(form, p) {
    const box = dialog.querySelector(".body");
    box.replaceChildren();
    box.append(el("p", p.summary || "This will change state."));
    box.append(list("Tasks", p.task_ids));
    box.append(list("Runs", p.logical_dates && p.logical_dates.length ? p.logical_dates : p.run_ids));
    for (const w of p.warnings || []) box.append(el("p", w, "warn"));
    box.append(el("p", "This is recorded in the audit log.", "muted"));
  }

  async function open(form) {
    pending = form;
    dialog.querySelector("header").textContent = form.dataset.title || "Confirm";
    const ok = dialog.querySelector("button[value=confirm]");
    ok.textContent = form.dataset.confirm || "Confirm";
    ok.disabled = true;
    const box = dialog.querySelector(".body");
    box.replaceChildren(el("p", "Checking what this will affect…", "muted"));
    if (!dialog.open) dialog.showModal();
    try {
      // Actions without a dry run in the API (setting a variable) say what they do themselves.
      const preview = form.dataset.preview === "local" ? { summary: form.dataset.summary } : await call(form, true);
      showPreview(form, preview);
      ok.disabled = false;
      ok.focus();
    } catch (e) {
      box.replaceChildren(el("p", e.message, "err"));
      dialog.querySelector("button[value=cancel]").focus();
    }
  }

  async function confirm() {
    const form = pending;
    const ok = dialog.querySelector("button[value=confirm]");
    ok.disabled = true;
    try {
      const res = await call(form, false);
      dialog.close();
      after(form, res);
    } catch (e) {
      dialog.querySelector(".body").append(el("p", e.message, "err"));
    }
  }

  function after(form, res) {
    const next = form.dataset.after || "reload";
    if (next === "live") {
      flash(res.summary || "Done.");
      form.closest("details")?.removeAttribute("open");
      refreshLive();
    } else if (next.startsWith("goto:")) {
      location.assign(next.slice(5));
    } else {
      location.reload();
    }
  }

  function flash(text, bad) {
    const f = el("div", text, "flash" + (bad ? " bad" : ""));
    f.setAttribute("role", "status");
    document.body.append(f);
    setTimeout(() => f.remove(), 5000);
  }

  if (dialog) {
    dialog.addEventListener("close", () => { pending = null; });
    dialog.querySelector("button[value=cancel]").addEventListener("click", (e) => { e.preventDefault(); dialog.close(); });
    dialog.querySelector("button[value=confirm]").addEventListener("click", (e) => { e.preventDefault(); confirm(); });
  }
  document.addEventListener("submit", (e) => {
    const form = e.target.closest("form.action");
    if (!form) return;
    e.preventDefault();
    try { body(form); } catch (err) { flash(err.message, true); return; }
    open(form);
  });

  // ---- Live fragments: <div data-live-src="URL" data-live="true|false"> ----

  const etags = new Map();
  let timer = null;

  async function poll(node, force) {
    const src = node.dataset.liveSrc;
    const headers = {};
    if (etags.has(src) && !force) headers["If-None-Match"] = etags.get(src);
    const res = await fetch(src, { headers, credentials: "same-origin", cache: "no-cache" });
    if (res.status === 304 || !res.ok) return node;
    etags.set(src, res.headers.get("ETag"));
    const html = await res.text();
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    const fresh = tpl.content.querySelector("[data-live-src]");
    if (!fresh) return node;
    // Keep the reader's place: a log scrolled to the end stays at the end, focus stays put.
    const log = node.querySelector("pre.log");
    const atEnd = log && log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    const focused = node.contains(document.activeElement) ? document.activeElement.getAttribute("href") || document.activeElement.id : null;
    node.replaceWith(fresh);
    const newLog = fresh.querySelector("pre.log");
    if (newLog && (atEnd || !log)) newLog.scrollTop = newLog.scrollHeight;
    if (focused) {
      const again = fresh.querySelector('[href="' + CSS.escape(focused) + '"]') || document.getElementById(focused);
      if (again) again.focus();
    }
    return fresh;
  }

  // A fragment with data-live="true" polls every pollMs; one with data-idle-ms (the grid:
  // a scheduled run may start) polls that slowly while nothing is unfinished.
  function delay() {
    let ms = 0;
    for (const node of document.querySelectorAll("[data-live-src]")) {
      const d = node.dataset.live === "true" ? pollMs : parseInt(node.dataset.idleMs || "0", 10);
      if (d > 0 && (ms === 0 || d < ms)) ms = d;
    }
    return ms;
  }

  let last = 0;
  async function tick(force) {
    timer = null;
    const now = Date.now();
    for (const node of document.querySelectorAll("[data-live-src]")) {
      const idle = parseInt(node.dataset.idleMs || "0", 10);
      const due = node.dataset.live === "true" || (idle > 0 && now - last >= idle - 50);
      if (!force && !due) continue;
      try { await poll(node, force); } catch (_) { /* a network hiccup: try again next time */ }
    }
    last = now;
    schedule();
  }

  function schedule() {
    const ms = delay();
    if (!timer && ms > 0 && !document.hidden) timer = setTimeout(() => tick(false), ms);
  }
  function refreshLive() { if (timer) { clearTimeout(timer); timer = null; } tick(true); }

  document.addEventListener("visibilitychange", () => { if (!document.hidden) schedule(); });
  last = Date.now();
  schedule();
  for (const log of document.querySelectorAll("pre.log")) log.scrollTop = log.scrollHeight;
})();
