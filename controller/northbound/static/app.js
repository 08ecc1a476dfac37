// The live view: follows the controller's event stream (GET /v1/events) and reads the JSON API
// again when something changed (same origin, same auth as any GET), then redraws. No polling.
// Hand-written, no libraries; every value from the API goes into the DOM as text, never as markup.
"use strict";

const MIN_GAP_MS = 500; // at most two reads a second, however many events come
const COALESCE_MS = 100; // an event's read waits this much for the rest of its burst
const RETRY_MS = 1000; // a broken stream is resumed (Last-Event-ID) after this
const TOKEN_KEY = "overlay-api-token"; // sessionStorage: this tab only, gone when it closes
const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#2f7de1", "#e0483e", "#2a9d5c", "#b55fd6", "#e08a1e", "#1fa3a8", "#c2457f", "#6b7a8f"];
const W = 640, H = 460, BOX_W = 176, BOX_H = 92;

const state = { tenant: null, host: null, last: null, timer: null, busy: false, again: false, readAt: 0,
  following: false, lastEventId: null, streamOk: false };

class AuthNeeded extends Error {}

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, text = null, ns = null) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  }
  if (text !== null) e.textContent = String(text);
  return e;
}
const svg = (tag, attrs = {}, text = null) => el(tag, attrs, text, SVG);

function authHeaders(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: "Bearer " + token } : extra;
}

async function api(path) {
  const resp = await fetch(path, { headers: authHeaders(), cache: "no-store" });
  if (resp.status === 401) throw new AuthNeeded();
  if (!resp.ok) {
    let msg = resp.statusText;
    try { msg = (await resp.json()).error || msg; } catch (_) { /* not JSON */ }
    throw new Error(`${path}: HTTP ${resp.status} ${msg}`);
  }
  return resp.json();
}

function tenantColour(topo, name) {
  const i = topo.tenants.findIndex((t) => t.name === name);
  return PALETTE[(i < 0 ? 0 : i) % PALETTE.length];
}

// ---- the drawing ------------------------------------------------------------------------

// Hosts on an ellipse (clockwise from the top); the view box is fitted around them.
function layout(hosts) {
  const n = hosts.length, pos = {};
  const rx = 110 + 45 * Math.min(n, 6), ry = n <= 2 ? 0 : 80 + 35 * Math.min(n, 6);
  hosts.forEach((h, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(n, 1) + (n === 2 ? Math.PI / 2 : 0);
    pos[h.id] = { x: n === 1 ? 0 : rx * Math.cos(a), y: n === 1 ? 0 : ry * Math.sin(a) };
  });
  return pos;
}

function fitViewBox(root, pos) {
  const pts = Object.values(pos), m = 24;
  if (!pts.length) { root.setAttribute("viewBox", `0 0 ${W} ${H / 3}`); return; }
  const x0 = Math.min(...pts.map((p) => p.x)) - BOX_W / 2 - m, x1 = Math.max(...pts.map((p) => p.x)) + BOX_W / 2 + m;
  const y0 = Math.min(...pts.map((p) => p.y)) - BOX_H / 2 - m, y1 = Math.max(...pts.map((p) => p.y)) + BOX_H / 2 + m;
  const w = Math.max(x1 - x0, W * 0.6), h = Math.max(y1 - y0, H / 3);
  root.setAttribute("viewBox", `${(x0 + x1 - w) / 2} ${(y0 + y1 - h) / 2} ${w} ${h}`);
}

// picked: the picked tenant's flood document (/v1/tenants/{name}/flood) with its placement
// (`hosts`, null = every host) and `endpoints`; null when no tenant is picked. detail: the picked
// host's tunnel toward each peer (/v1/topology/hosts/{id}); null when no host is picked.
function drawTopology(topo, picked, detail) {
  const root = $("#topology");
  root.replaceChildren();
  root.toggleAttribute("hidden", !topo.hosts.length); // an empty box says nothing: say how a host joins
  $("#no-hosts").hidden = topo.hosts.length > 0;
  const pos = layout(topo.hosts);
  fitViewBox(root, pos);
  const sel = picked;
  const colour = sel ? tenantColour(topo, sel.name) : null;

  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
    markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: colour || "#888" }));
  defs.append(marker);
  root.append(defs);

  // The picked host's tunnels only: per pair, a thousand hosts would be a million lines.
  const links = svg("g", { id: "tunnels" });
  for (const t of detail ? detail.tunnels : []) {
    const a = pos[detail.host], b = pos[t.peer];
    if (!a || !b) continue;
    const line = svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: `tunnel ${t.state}`,
      "data-host": detail.host, "data-peer": t.peer, "data-state": t.state });
    line.append(svg("title", {}, `${detail.host} → ${t.peer}: ${t.port || "no port"} (${t.state})`));
    links.append(line);
  }
  root.append(links);

  if (sel) { // the flood set: one arrow per copy, offset beside the tunnel it uses
    const flood = svg("g", { id: "flood-arrows" });
    for (const [from, peers] of Object.entries(sel.flood)) {
      for (const to of peers) {
        const a = pos[from], b = pos[to];
        if (!a || !b) continue;
        const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
        const ox = (-dy / len) * 10, oy = (dx / len) * 10; // to the right of the direction of travel
        // from box edge to box edge: the fraction of the centre line inside one box, plus a gap
        const inBox = Math.min(BOX_W / 2 / (Math.abs(dx) || 1e-9), BOX_H / 2 / (Math.abs(dy) || 1e-9));
        const start = inBox + 14 / len, end = 1 - inBox - 14 / len;
        flood.append(svg("line", { x1: a.x + dx * start + ox, y1: a.y + dy * start + oy,
          x2: a.x + dx * end + ox, y2: a.y + dy * end + oy, class: "flood-arrow", stroke: colour,
          "marker-end": "url(#arrow)", "data-host": from, "data-peer": to }));
      }
    }
    root.append(flood);
  }

  const perHost = {};
  for (const ep of sel ? sel.endpoints : []) perHost[ep.host] = (perHost[ep.host] || 0) + 1;
  const nodes = svg("g", { id: "hosts" });
  for (const h of topo.hosts) {
    const p = pos[h.id];
    const member = sel && sel.members.includes(h.id);
    const absent = sel && sel.hosts !== null && !sel.hosts.includes(h.id);
    const up = (ok) => (ok ? "up" : "down");
    const tn = h.tunnels || { peers: 0, created: 0, adopted: 0, missing: 0 };
    const picked = h.id === state.host;
    const g = svg("g", { class: `host${member ? " member" : ""}${absent ? " absent" : ""}${picked ? " picked" : ""}`,
      "data-host": h.id, "data-ovsdb": up(h.connected.ovsdb), "data-openflow": up(h.connected.openflow),
      "data-created": tn.created, "data-adopted": tn.adopted, "data-missing": tn.missing,
      transform: `translate(${p.x - BOX_W / 2},${p.y - BOX_H / 2})` });
    g.addEventListener("click", () => pickHost(h.id));
    const box = svg("rect", { width: BOX_W, height: BOX_H, rx: 10, class: "box" });
    if (member) box.style.stroke = colour; // CSSOM, not a style attribute: the CSP allows it
    g.append(box);
    g.append(svg("text", { x: 12, y: 22, class: "name" }, h.id));
    g.append(svg("text", { x: BOX_W - 12, y: 22, class: "ip", "text-anchor": "end" }, h.overlay_ip || "no overlay IP"));
    [["OVSDB", h.connected.ovsdb], ["OpenFlow", h.connected.openflow]].forEach(([label, ok], i) => {
      const x = 12 + i * 74;
      g.append(svg("circle", { cx: x + 5, cy: 42, r: 5, class: `dot ${up(ok)}` }));
      g.append(svg("text", { x: x + 14, y: 46, class: "chan" }, label));
    });
    const counts = [["created", tn.created], ["adopted", tn.adopted], ["missing", tn.missing]]
      .filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(" · ");
    g.append(svg("text", { x: 12, y: 66, class: `tunnels-line${tn.missing ? " missing" : ""}` },
      `tunnels: ${counts || "none"}`));
    if (sel) {
      const n = perHost[h.id] || 0;
      const what = absent ? `${sel.name}: not placed here` : `${sel.name}: ${n} endpoint${n === 1 ? "" : "s"}`;
      const line = svg("text", { x: 12, y: 84, class: "tenant-line" }, what);
      if (member) line.style.fill = colour;
      g.append(line);
    }
    g.append(svg("title", {}, `${h.id} ${h.overlay_ip || ""}\nOVSDB ${up(h.connected.ovsdb)}, ` +
      `OpenFlow ${up(h.connected.openflow)}${h.datapath_id ? "\ndpid " + h.datapath_id : ""}` +
      `\ntunnels toward ${tn.peers} peers\n(click: ${picked ? "hide" : "draw"} them)`));
    nodes.append(g);
  }
  root.append(nodes);
  let usable = 0, total = 0;
  for (const h of topo.hosts) {
    if (h.tunnels) { usable += h.tunnels.created + h.tunnels.adopted; total += h.tunnels.peers; }
  }
  $("#tunnel-type").textContent =
    `(${topo.tunnel_type} · ${topo.hosts.length} hosts · ${usable} of ${total} tunnels usable)`;
}

// ---- the side panels --------------------------------------------------------------------

function drawTenants(topo) {
  const box = $("#tenants");
  box.replaceChildren();
  if (!topo.tenants.length) box.append(el("p", { class: "muted" }, "no tenants yet"));
  for (const t of topo.tenants) {
    const b = el("button", { type: "button", class: "tenant" + (t.name === state.tenant ? " selected" : ""),
      "data-tenant": t.name, "aria-pressed": t.name === state.tenant });
    const sw = el("i", { class: "swatch" });
    sw.style.background = tenantColour(topo, t.name);
    const where = t.hosts === null ? "every host" : `${t.hosts.length} host${t.hosts.length === 1 ? "" : "s"}`;
    b.append(sw, el("b", {}, t.name), el("span", { class: "muted" }, ` VNI ${t.vni} · on ${where}`));
    b.addEventListener("click", () => select(t.name));
    box.append(b);
  }
}

function fmt(n) { return Number(n || 0).toLocaleString("en"); }

function drawCounters(c) {
  const answered = (c.arp_proxied || 0) + (c.arp_local || 0) + (c.nd_proxied || 0) + (c.nd_local || 0);
  const sent = c.floods_sent || 0;
  const share = answered + sent ? Math.round((100 * answered) / (answered + sent)) : 0;
  const box = $("#counters");
  box.replaceChildren();
  const rows = [
    ["arp", "ARP answered in switch", (c.arp_proxied || 0) + (c.arp_local || 0)],
    ["nd", "ND answered in switch", (c.nd_proxied || 0) + (c.nd_local || 0)],
    ["floods", "floods sent", sent],
    ["unknown", "of them for unknown IPs", c.floods_unknown_ip || 0],
  ];
  for (const [key, label, value] of rows) {
    const r = el("div", { class: `counter ${key}`, "data-counter": key });
    r.append(el("span", { class: "value" }, fmt(value)), el("span", { class: "label" }, label));
    box.append(r);
  }
  const bar = el("div", { class: "bar", title: `${share} % of broadcasts answered without a flood` });
  const fill = el("div", { class: "fill" });
  fill.style.width = share + "%";
  bar.append(fill);
  const what = answered + sent ? `${share} % of broadcasts answered without a flood` : "no broadcasts counted yet";
  box.append(bar, el("p", { class: "muted" },
    `${what} · ${fmt(c.packet_in)} packet-ins · ${fmt(c.endpoints_learned)} endpoints learned`));
}

function idle(s) {
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function drawEndpoints(topo, picked) {
  const sel = picked, endpoints = sel ? sel.endpoints : [];
  $("#ep-tenant").textContent = sel ? `of ${sel.name} (${endpoints.length})` : "";
  const body = $("#endpoints tbody");
  body.replaceChildren();
  for (const ep of endpoints) {
    const tr = el("tr", { "data-mac": ep.mac, "data-host": ep.host });
    tr.append(el("td", { class: "mono" }, ep.mac), el("td", { class: "mono" }, ep.ips.join(", ") || "–"),
      // behind a VTEP a BGP EVPN peer advertised: say so, and which peer
      el("td", ep.external ? { class: "external", title: `external VTEP ${ep.external.vtep}` } : {},
        ep.external ? `${ep.host} (external, via BGP peer ${ep.external.peer})` : ep.host),
      el("td", {}, ep.port || "–"), el("td", {}, ep.external ? "–" : ep.vlan), el("td", {}, idle(ep.idle_s)));
    body.append(tr);
  }
  if (!endpoints.length) {
    const tr = el("tr", { class: "empty" });
    tr.append(el("td", { colspan: 6, class: "muted" },
      sel ? "nothing learned yet: endpoints appear once their VMs send" : "pick a tenant"));
    body.append(tr);
  }
  const flood = $("#flood tbody");
  flood.replaceChildren();
  const programmed = new Set(topo.hosts.filter((h) => h.connected.openflow).map((h) => h.id));
  for (const [from, peers] of Object.entries(sel ? sel.flood : {})) {
    const tr = el("tr", { "data-host": from });
    const none = programmed.has(from) ? "nobody (no other member)" : "unknown: OpenFlow down";
    tr.append(el("td", {}, from),
      el("td", { class: peers.length ? null : "muted" }, peers.length ? peers.join(", ") : none));
    flood.append(tr);
  }
}

// ---- reading, when the event stream says something changed ----------------------------------

function setStatus(text, bad = false) {
  const s = $("#status");
  s.textContent = text;
  s.classList.toggle("bad", bad);
}

// A read now, or as soon as the one running is done; never two at once, at most one per MIN_GAP_MS.
function scheduleRefresh(delay = COALESCE_MS) {
  if (state.busy) { state.again = true; return; }
  if (state.timer !== null) return;
  const wait = Math.max(delay, state.readAt + MIN_GAP_MS - Date.now());
  state.timer = setTimeout(() => { state.timer = null; refresh(); }, wait);
}

async function refresh() {
  if (state.busy) { state.again = true; return; }
  state.busy = true;
  state.readAt = Date.now();
  try {
    const [topo, counters] = await Promise.all([api("/v1/topology"), api("/v1/counters")]);
    let tenant = topo.tenants.find((t) => t.name === state.tenant);
    if (!tenant) tenant = topo.tenants[0]; // the first, until one is picked
    state.tenant = tenant ? tenant.name : null;
    if (state.host && !topo.hosts.some((h) => h.id === state.host)) state.host = null;
    let picked = null, detail = null;
    const reads = [];
    if (tenant) {
      const path = `/v1/tenants/${encodeURIComponent(tenant.name)}`;
      reads.push(Promise.all([api(path + "/flood"), api(path + "/endpoints")])
        .then(([flood, endpoints]) => { picked = { ...flood, hosts: tenant.hosts, endpoints }; }));
    }
    if (state.host) {
      reads.push(api(`/v1/topology/hosts/${encodeURIComponent(state.host)}`).then((d) => { detail = d; }));
    }
    await Promise.all(reads);
    state.last = topo;
    drawTopology(topo, picked, detail);
    drawTenants(topo);
    drawCounters(counters);
    drawEndpoints(topo, picked);
    $("#logout").hidden = !sessionStorage.getItem(TOKEN_KEY);
    showLive();
    follow();
  } catch (e) {
    if (e instanceof AuthNeeded) { state.busy = false; return askForToken(); }
    setStatus(`cannot read the API: ${e.message}`, true);
  }
  state.busy = false;
  if (state.again) { state.again = false; scheduleRefresh(); }
}

function showLive() {
  const when = new Date(state.readAt || Date.now()).toLocaleTimeString("en-GB");
  if (state.streamOk) setStatus(`live · updated ${when} · following events`);
  else setStatus(`updated ${when} · connecting to the event stream…`, !state.following);
}

// ---- the event stream (Server-Sent Events read with fetch: it can carry the token header) -----

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function onEventBlock(block) {
  let data = false;
  for (const line of block.split("\n")) {
    if (line.startsWith("id:")) state.lastEventId = line.slice(3).trim();
    else if (line.startsWith("data:")) data = true;
  }
  if (data) scheduleRefresh();
}

async function follow() {
  if (state.following) return;
  state.following = true;
  while (state.following) {
    try {
      const headers = authHeaders({ Accept: "text/event-stream" });
      const resumed = Boolean(state.lastEventId);
      if (resumed) headers["Last-Event-ID"] = state.lastEventId; // resume: nothing is missed
      const resp = await fetch("/v1/events", { headers, cache: "no-store" });
      if (resp.status === 401) throw new AuthNeeded();
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      state.streamOk = true;
      showLive();
      // A first stream starts now, not where the page's read did: read again what may have changed
      // in between (a resumed one replays it: Last-Event-ID).
      if (!resumed) scheduleRefresh(0);
      const reader = resp.body.getReader(), text = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += text.decode(value, { stream: true });
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          onEventBlock(buf.slice(0, end));
          buf = buf.slice(end + 2);
        }
      }
      throw new Error("the controller closed it");
    } catch (e) {
      state.streamOk = false;
      if (e instanceof AuthNeeded) { state.following = false; return askForToken(); }
      setStatus(`event stream lost (${e.message}); resuming…`, true);
    }
    await sleep(RETRY_MS);
    scheduleRefresh(0); // what changed while it was down (a reset aside, the resume replays it)
  }
}

function pickHost(id) {
  state.host = state.host === id ? null : id;
  refresh();
}

function select(name) {
  state.tenant = name;
  history.replaceState(null, "", "#tenant=" + encodeURIComponent(name));
  if (state.last) drawTenants(state.last); // the button at once, the rest when it has been read
  refresh();
}

function askForToken() {
  const had = sessionStorage.getItem(TOKEN_KEY);
  sessionStorage.removeItem(TOKEN_KEY);
  $("#login").hidden = false;
  $("#login-error").textContent = had ? "that token was refused" : "";
  setStatus("waiting for the API token", true);
  $("#token").focus();
}

function tenantFromHash() {
  const m = /^#tenant=(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

function init() {
  state.tenant = tenantFromHash();
  for (const e of document.querySelectorAll("#no-hosts .ctl")) e.textContent = location.hostname || "CONTROLLER";
  window.addEventListener("hashchange", () => { const t = tenantFromHash(); if (t && t !== state.tenant) select(t); });
  $("#login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("#token").value.trim();
    if (!/^[\x21-\x7e]+$/.test(token)) { // a header can carry only these
      $("#login-error").textContent = "a token is printable ASCII without spaces";
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $("#token").value = "";
    $("#login").hidden = true;
    refresh();
  });
  $("#logout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); location.reload(); });
  refresh();
}

document.addEventListener("DOMContentLoaded", init);
