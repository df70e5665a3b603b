// The Aegis cockpit: a single page, no framework, no build step.
//
// Everything that came from alerts, logs or people is untrusted text: it only ever goes
// into the page through textContent / createTextNode (the el() helper below), never
// innerHTML, so "<script>" in a log line is shown, not run. The server's CSP forbids inline
// script and style on top of that.
"use strict";

(function () {
  const main = document.getElementById("main");
  let session = null;
  let current = null; // {render, path}: what to redraw on a live event
  let flash = null; // the last approval's outcome, kept across redraws of the page

  // -- DOM helpers (text only) -------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, String(v));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  function link(href, text, attrs) {
    return el("a", Object.assign({ href: href, text: text, "data-nav": "" }, attrs || {}));
  }

  function stateBadge(state) {
    return el("span", { class: "state state-" + String(state || "").replace(/[^a-z]+/g, "-").replace(/-$/, ""), text: state || "?" });
  }

  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toISOString().replace("T", " ").slice(0, 19) + "Z";
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.round(seconds);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }

  // -- server ------------------------------------------------------------------------------

  async function get(path) {
    const resp = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (resp.status === 401) { location.assign("/login"); throw new Error("logged out"); }
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error || ("HTTP " + resp.status));
    return body;
  }

  async function post(path, body) {
    const resp = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf },
      body: JSON.stringify(body || {}),
    });
    if (resp.status === 401) { location.assign("/login"); throw new Error("logged out"); }
    const answer = await resp.json();
    if (!resp.ok) throw new Error(answer.error || ("HTTP " + resp.status));
    return answer;
  }

  // -- a tiny, safe Markdown subset (headings, lists, code, paragraphs, `code`, **bold**) ---

  function inline(text) {
    const out = [];
    const parts = String(text).split(/(`[^`]+`|\*\*[^*]+\*\*)/);
    for (const part of parts) {
      if (!part) continue;
      if (part.startsWith("`") && part.endsWith("`") && part.length > 1) out.push(el("code", { text: part.slice(1, -1) }));
      else if (part.startsWith("**") && part.endsWith("**") && part.length > 3) out.push(el("strong", { text: part.slice(2, -2) }));
      else out.push(document.createTextNode(part));
    }
    return out;
  }

  function markdown(source) {
    const root = el("div", { class: "markdown" });
    const lines = String(source || "").replace(/^---\n[\s\S]*?\n---\n/, "").split("\n");
    let list = null, para = [], code = null;
    const flush = () => {
      if (para.length) { root.appendChild(el("p", {}, inline(para.join(" ")))); para = []; }
      list = null;
    };
    for (const line of lines) {
      if (code !== null) {
        if (line.startsWith("```")) { root.appendChild(el("pre", { text: code.join("\n") })); code = null; }
        else code.push(line);
        continue;
      }
      if (line.startsWith("```")) { flush(); code = []; continue; }
      const heading = line.match(/^(#{1,4})\s+(.*)$/);
      const item = line.match(/^\s*(?:[-*]|\d+\.)\s+(.*)$/);
      if (heading) { flush(); root.appendChild(el("h" + Math.min(6, heading[1].length + 1), {}, inline(heading[2]))); }
      else if (item) {
        if (para.length) { root.appendChild(el("p", {}, inline(para.join(" ")))); para = []; }
        if (!list) { list = el("ul"); root.appendChild(list); }
        list.appendChild(el("li", {}, inline(item[1])));
      } else if (!line.trim()) flush();
      else { list = null; para.push(line.trim()); }
    }
    if (code !== null) root.appendChild(el("pre", { text: code.join("\n") }));
    flush();
    return root;
  }

  // -- pages -------------------------------------------------------------------------------

  async function incidentsPage() {
    const params = new URLSearchParams(location.search);
    const [data, all] = await Promise.all([
      get("/api/incidents?" + new URLSearchParams({ state: params.get("state") || "", service: params.get("service") || "" })),
      get("/api/incidents"),
    ]);
    const states = [...new Set(all.incidents.map((r) => r.state))].sort();
    const services = [...new Set(all.incidents.map((r) => r.service).filter(Boolean))].sort();
    const select = (name, values) => el("select", {
      id: "filter-" + name,
      onchange: (ev) => {
        const p = new URLSearchParams(location.search);
        if (ev.target.value) p.set(name, ev.target.value); else p.delete(name);
        navigate("/incidents" + (p.toString() ? "?" + p : ""));
      },
    }, el("option", { value: "", text: "any " + name }), values.map((v) => el("option", { value: v, text: v, selected: v === (params.get(name) || "") })));
    const seen = new Set((current && current.seen) || []);
    const rows = data.incidents.map((r) => el("tr", { "data-id": r.id, class: current && current.seen && !seen.has(r.id) ? "new" : "" },
      el("td", {}, stateBadge(r.state)),
      el("td", { text: r.service || "—" }),
      el("td", {}, link("/incidents/" + r.id, r.alert || r.id, { class: "incident-link" }), r.summary ? el("div", { class: "muted", text: r.summary }) : null),
      el("td", { text: r.action || "—" }),
      el("td", { text: fmtDuration(r.mttr_seconds) }),
      el("td", { text: fmtDuration(r.age_seconds), title: fmtTime(r.opened_at) }),
    ));
    const page = el("section", {},
      el("h1", { text: "Incidents" }),
      el("div", { class: "filters" }, el("label", {}, "State ", select("state", states)), el("label", {}, "Service ", select("service", services)),
        el("span", { class: "muted", id: "incident-count", text: data.incidents.length + " shown" })),
      el("table", { id: "incidents" },
        el("thead", {}, el("tr", {}, ["State", "Service", "Alert", "Action", "MTTR", "Age"].map((h) => el("th", { text: h })))),
        el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No incidents." })))));
    return { node: page, seen: data.incidents.map((r) => r.id) };
  }

  function kv(pairs) {
    return el("dl", { class: "kv" }, pairs.filter((p) => p[1] !== undefined && p[1] !== null && p[1] !== "").map(([k, v]) => [el("dt", { text: k }), el("dd", {}, typeof v === "object" && v.nodeType ? v : String(v))]));
  }

  async function incidentPage(id) {
    const d = await get("/api/incidents/" + encodeURIComponent(id));
    const inc = d.incident;
    const bad = { refused: 1, escalated: 1, "escalated (unrouted)": 1, "approval timed out": 1 };
    const stages = el("ol", { class: "stages", id: "stages" }, d.stages.map((s) => el("li", {
      class: (s.at ? "reached" : "") + (bad[s.label] ? " bad" : ""), "data-stage": s.stage,
    }, el("span", { class: "name", text: s.label }), el("span", { class: "at muted", text: fmtTime(s.at) }),
      s.detail ? el("span", { class: "detail", text: s.detail }) : null,
      s.executions.length ? el("span", { class: "detail muted", text: "executions: " + s.executions.join(", ") }) : null)));
    const labels = Object.entries(inc.labels || {}).map(([k, v]) => k + "=" + v).join(", ");
    const ann = inc.annotations || {};
    const parts = [
      el("h1", {}, stateBadge(d.state.state), " ", el("span", { id: "incident-title", text: inc.alertname || inc.id })),
      el("div", { class: "card" }, kv([["Incident", inc.id], ["Service", d.service], ["Summary", ann.summary], ["Description", ann.description],
        ["Labels", labels], ["Opened", fmtTime(inc.opened_at)], ["Alert started", fmtTime(inc.starts_at)], ["Status", inc.status],
        ["MTTR", d.state.mttr_seconds !== null ? fmtDuration(d.state.mttr_seconds) : null], ["Repeats", inc.repeats]])),
      el("h2", { text: "Timeline" }), el("div", { class: "card" }, stages),
    ];
    if (d.diagnosis) {
      const dg = d.diagnosis;
      parts.push(el("h2", { text: "Diagnosis" }), el("div", { class: "card", id: "diagnosis" },
        kv([["Proposed", (dg.action || "") + " " + (dg.target || "")], ["Confidence", dg.confidence], ["Safety", dg.safety],
          ["Root cause", dg.root_cause], ["Reasoning", dg.reasoning]]),
        el("h3", { text: "Evidence" }),
        el("ul", {}, (dg.evidence || []).map((e) => el("li", { text: typeof e === "object" ? [e.kind, e.id, e.title || e.detail || e.summary || ""].filter(Boolean).join(" · ") : String(e) }))),
        d.runbooks.length ? el("p", {}, "Runbooks cited: ", d.runbooks.map((r) => [link("/knowledge?runbook=" + encodeURIComponent(r), r), " "])) : null));
    }
    if (d.logs && d.logs.length) {
      parts.push(el("h2", { text: "Matched log lines" }), el("pre", { class: "card", id: "logs", text: d.logs.map((l) => (l.at || "") + " " + (l.line || "")).join("\n") }));
    }
    if (d.report) {
      const r = d.report;
      parts.push(el("h2", { text: "Escalation report (as sent)" }), el("div", { class: "card", id: "report" },
        el("strong", { text: r.title }), kv([["Summary", r.summary], ["Impact", r.impact], ["Diagnosis", (r.diagnosis || {}).proposed], ["Root cause", (r.diagnosis || {}).root_cause], ["Note", r.note], ["Next steps", r.next_steps]]),
        (r.attempts || []).length ? el("ul", {}, r.attempts.map((a) => el("li", { text: "tried " + a }))) : null,
        el("ul", {}, (r.timeline || []).map((t) => el("li", { text: fmtTime(t.at) + " " + (t.event || "") })))));
    }
    if (d.silences.length || d.silence_events.length) {
      parts.push(el("h2", { text: "Silence" }), el("div", { class: "card", id: "silence" },
        el("ul", {}, d.silences.map((s) => el("li", { text: fmtTime(s.at) + " " + s.status + " " + JSON.stringify(s.result) })),
          d.silence_events.map((e) => el("li", { text: fmtTime(e.at) + " " + e.event })))));
    }
    parts.push(el("h2", { text: "Executions" }));
    if (d.api_error) parts.push(el("p", { class: "error", text: d.api_error }));
    parts.push(el("table", { id: "executions" }, el("thead", {}, el("tr", {}, ["Execution", "Task", "Action", "Status", "Started", "Ended"].map((h) => el("th", { text: h })))),
      el("tbody", {}, d.executions.map((top) => [top, ...top.tasks].map((e, i) => el("tr", { "data-execution": e.id },
        el("td", { text: (i ? "  └ " : "") + e.id }), el("td", { text: e.task || "" }), el("td", { text: e.action }), el("td", { text: e.status }),
        el("td", { text: fmtTime(e.start) }), el("td", { text: fmtTime(e.end) })))))));
    parts.push(el("h2", { text: "Every timeline entry" }), el("table", { id: "timeline" }, el("tbody", {}, d.timeline.map((e) => el("tr", {},
      el("td", { text: fmtTime(e.at) }), el("td", {}, e.state ? stateBadge(e.state) : ""), el("td", { text: e.event || "" }))))));
    return { node: el("section", {}, parts) };
  }

  async function approvalsPage() {
    const data = await get("/api/approvals");
    const message = el("p", { id: "approval-message", class: flash ? flash.cls : "", text: flash ? flash.text : "" });
    const rows = data.approvals.map((a) => {
      const reason = el("input", { placeholder: "reason (optional)", maxlength: 200, class: "reason" });
      const act = (decision) => async (ev) => {
        ev.target.disabled = true;
        try {
          const answer = await post("/api/approvals/" + encodeURIComponent(a.inquiry), { decision: decision, reason: reason.value });
          flash = { cls: "ok", text: a.inquiry + " " + answer.decision + " (incident " + (answer.incident_id || "?") + ")." };
          render();
        } catch (err) {
          flash = { cls: "error", text: err.message };
          message.className = flash.cls;
          message.textContent = flash.text;
          ev.target.disabled = false;
        }
      };
      return el("tr", { "data-inquiry": a.inquiry, "data-incident": a.incident_id || "" },
        el("td", {}, a.incident_id ? link("/incidents/" + a.incident_id, a.incident_id) : el("span", { class: "muted", text: "—" })),
        el("td", { text: a.alert || "" }), el("td", { text: a.service || "" }), el("td", { text: a.summary || "" }),
        el("td", { text: a.inquiry }), el("td", {}, reason),
        el("td", {}, el("button", { class: "approve", type: "button", onclick: act("approve"), text: "Approve" }), " ",
          el("button", { class: "deny", type: "button", onclick: act("deny"), text: "Deny" })));
    });
    return { node: el("section", {}, el("h1", { text: "Pending approvals" }),
      session.may_decide ? null : el("p", { class: "muted", text: "You are not on the approvers list (chatops.approvers): your answers will be refused." }),
      data.error ? el("p", { class: "error", text: data.error }) : null, message,
      el("table", { id: "approvals" }, el("thead", {}, el("tr", {}, ["Incident", "Alert", "Service", "Summary", "Inquiry", "Reason", ""].map((h) => el("th", { text: h })))),
        el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 7, class: "muted", text: "Nothing waits for a human." }))))) };
  }

  async function modePage() {
    const m = await get("/api/mode");
    const area = el("div", { id: "mode-confirm" });
    const message = el("p", { id: "mode-message" });
    const ask = (mode) => () => {
      const reason = el("input", { id: "mode-reason", placeholder: "why (recorded)", maxlength: 300 });
      area.replaceChildren(el("div", { class: "card confirm" },
        el("p", {}, "Switch Aegis from ", el("strong", { text: m.mode }), " to ", el("strong", { text: mode }), "? ",
          mode === "monitor" ? "No action will run until it is switched back." : mode === "auto" ? "Aegis will act on its own within the guardrails." : ""),
        reason, " ",
        el("button", { id: "mode-confirm-button", class: "primary", type: "button", text: "Confirm: switch to " + mode, onclick: async (ev) => {
          ev.target.disabled = true;
          try {
            await post("/api/mode", { mode: mode, reason: reason.value, confirm: true });
            render();
          } catch (err) { message.className = "error"; message.textContent = err.message; ev.target.disabled = false; }
        } }), " ",
        el("button", { type: "button", text: "Cancel", onclick: () => area.replaceChildren() })));
    };
    const last = m.last_change;
    return { node: el("section", {}, el("h1", {}, "Mode: ", el("span", { id: "current-mode", text: m.mode }), el("span", { class: "muted", text: " (from " + m.source + ")" })),
      el("div", { class: "modes" }, m.modes.map((mode) => el("button", { type: "button", "data-mode": mode, class: mode === m.mode ? "current" : "", disabled: mode === m.mode, text: mode, onclick: ask(mode) }))),
      area, message,
      last ? el("div", { class: "card", id: "mode-last-change" }, kv([["Last change", (last.from || "?") + " → " + (last.to || "?")], ["By", last.by], ["When", fmtTime(last.at)], ["Where", last.channel], ["Why", last.reason]])) : null) };
  }

  async function knowledgePage() {
    const params = new URLSearchParams(location.search);
    const results = el("div", { id: "knowledge-results" });
    const reader = el("div", { id: "runbook" });
    const input = el("input", { id: "knowledge-query", placeholder: "disk full, OOM, 5xx after deploy…", value: params.get("q") || "", size: 50 });
    const show = async (id) => {
      reader.replaceChildren(el("p", { class: "muted", text: "Loading " + id + "…" }));
      try {
        const rb = await get("/api/runbooks/" + encodeURIComponent(id));
        reader.replaceChildren(el("div", { class: "card" }, el("h2", { text: rb.title }), el("p", { class: "muted", text: rb.id + " · " + rb.action + " · " + rb.safety }), markdown(rb.markdown)));
      } catch (err) { reader.replaceChildren(el("p", { class: "error", text: err.message })); }
    };
    const search = async (ev) => {
      if (ev) ev.preventDefault();
      results.replaceChildren(el("p", { class: "muted", text: "Searching…" }));
      try {
        const data = await get("/api/knowledge?" + new URLSearchParams({ q: input.value }));
        results.replaceChildren(el("ul", { class: "hits" }, data.hits.map((h) => el("li", {},
          h.kind === "runbook" ? el("a", { href: "#", text: h.title, onclick: (e) => { e.preventDefault(); show(h.id); } }) : el("strong", { text: h.title }),
          el("span", { class: "muted", text: " " + h.kind + " · " + h.action + " · " + h.safety + " · score " + Number(h.score).toFixed(2) + (h.outcome ? " · outcome " + h.outcome : "") })))),
          el("p", { class: "muted", text: "searched " + data.source }));
      } catch (err) { results.replaceChildren(el("p", { class: "error", text: err.message })); }
    };
    if (params.get("runbook")) show(params.get("runbook"));
    if (params.get("q")) search();
    return { node: el("section", {}, el("h1", { text: "Knowledge" }),
      el("form", { onsubmit: search }, input, " ", el("button", { class: "primary", type: "submit", text: "Search runbooks and incidents" })),
      results, reader), live: false };
  }

  function perDayChart(perDay) {
    const ns = "http://www.w3.org/2000/svg";
    const w = 560, h = 160, pad = 24;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("role", "img"); svg.setAttribute("aria-label", "incidents per day");
    const top = Math.max(1, ...perDay.map((d) => d.count));
    const bw = (w - 2 * pad) / perDay.length - 4;
    perDay.forEach((d, i) => {
      const bh = (h - 2 * pad) * d.count / top;
      const x = pad + i * (bw + 4);
      const rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", x); rect.setAttribute("y", h - pad - bh); rect.setAttribute("width", bw); rect.setAttribute("height", bh);
      rect.setAttribute("fill", "#2f6fb3");
      const title = document.createElementNS(ns, "title"); title.textContent = d.day + ": " + d.count; rect.appendChild(title);
      svg.appendChild(rect);
      if (i % 2 === 0 || perDay.length < 8) {
        const t = document.createElementNS(ns, "text");
        t.setAttribute("x", x + bw / 2); t.setAttribute("y", h - 8); t.setAttribute("text-anchor", "middle"); t.setAttribute("font-size", "10");
        t.textContent = d.day.slice(5); svg.appendChild(t);
      }
    });
    return svg;
  }

  async function impactPage() {
    const d = await get("/api/impact");
    const stat = (label, value, id) => el("div", { class: "stat" }, el("span", { class: "value", id: id, text: value }), el("span", { class: "muted", text: label }));
    return { node: el("section", {}, el("h1", { text: "Impact" }),
      el("div", { class: "stats" },
        stat("incidents ended", String(d.ended), "impact-ended"),
        stat("resolved without a human", d.share_without_human === null ? "—" : Math.round(d.share_without_human * 100) + "%", "impact-share"),
        stat("median MTTR (by Aegis)", d.mttr_minutes_median === null ? "—" : d.mttr_minutes_median + " min", "impact-mttr"),
        stat("downtime cost avoided (vs " + d.manual_mttr_minutes + " min manual MTTR at " + d.cost_per_minute + "/min)", String(d.cost_avoided), "impact-cost")),
      el("h2", { text: "Incidents per day" }), el("div", { class: "card" }, perDayChart(d.per_day)),
      el("h2", { text: "MTTR distribution (incidents resolved by Aegis)" }),
      el("div", { class: "card" }, el("img", { src: "/api/impact/mttr.svg?" + Date.now(), alt: "MTTR distribution", id: "mttr-chart" }))) };
  }

  // -- routing and live updates ------------------------------------------------------------

  const routes = [
    [/^\/(incidents)?$/, () => incidentsPage(), "/incidents"],
    [/^\/incidents\/(inc-[0-9a-f]{16})$/, (m) => incidentPage(m[1]), "/incidents"],
    [/^\/approvals$/, () => approvalsPage(), "/approvals"],
    [/^\/mode$/, () => modePage(), "/mode"],
    [/^\/knowledge$/, () => knowledgePage(), "/knowledge"],
    [/^\/impact$/, () => impactPage(), "/impact"],
  ];

  let generation = 0; // only the latest render may draw: an older one still loading is dropped

  async function render() {
    const mine = ++generation;
    const path = location.pathname;
    for (const [pattern, page, nav] of routes) {
      const match = path.match(pattern);
      if (!match) continue;
      document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === nav));
      try {
        const result = await page(match);
        if (mine !== generation) return;
        main.replaceChildren(result.node);
        current = { path: path + location.search, seen: result.seen, live: result.live !== false };
        main.setAttribute("data-rendered", path);
      } catch (err) {
        if (mine !== generation) return;
        main.replaceChildren(el("p", { class: "error", text: err.message }));
      }
      refreshBadges();
      return;
    }
    main.replaceChildren(el("p", { text: "No such page." }));
  }

  async function refreshBadges() {
    try {
      const [approvals, mode] = await Promise.all([get("/api/approvals"), get("/api/mode")]);
      document.getElementById("approval-count").textContent = approvals.approvals.length ? String(approvals.approvals.length) : "";
      document.getElementById("mode-badge").textContent = mode.mode;
    } catch (err) { /* the page shows its own errors */ }
  }

  function navigate(href) {
    history.pushState(null, "", href);
    current = null;
    render();
  }

  document.addEventListener("click", (ev) => {
    const a = ev.target.closest && ev.target.closest("a[data-nav]");
    if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    ev.preventDefault();
    navigate(a.getAttribute("href"));
  });
  window.addEventListener("popstate", () => { current = null; render(); });

  function live() {
    const status = document.getElementById("live");
    const source = new EventSource("/events");
    source.addEventListener("open", () => { status.textContent = "live"; status.setAttribute("data-live", "1"); });
    source.addEventListener("error", () => { status.textContent = "reconnecting…"; status.removeAttribute("data-live"); });
    source.addEventListener("incidents", () => {
      if (current && current.live && current.path === location.pathname + location.search) render();
      else refreshBadges();
    });
  }

  async function start() {
    session = await get("/api/session");
    document.getElementById("user").textContent = session.user;
    document.getElementById("logout").addEventListener("click", async () => {
      try { await post("/logout", {}); } finally { location.assign("/login"); }
    });
    await render();
    live();
  }

  start();
})();
