// The platform dashboard: polls this service's read-only API with the key entered once (kept in
// sessionStorage) and renders chains, the licenses-per-chain chart, recent licenses and replication.
/* global document, window, sessionStorage, fetch, Chart */
"use strict";

const KEY_ITEM = "lp.dashboard.key";
const POLL_MS = 2000;
const REPLICATION_POLL_MS = 5000;
const HISTORY = 150; // points kept in the chart (5 minutes at 2 s)
const COLORS = ["#2f6fde", "#e2711d", "#2a9d54", "#b5179e", "#6c757d", "#d62828"];

const $ = (id) => document.getElementById(id);
const verified = new Map(); // license id -> verify result, kept across re-renders
const series = { labels: [], byChain: new Map() };
let chart;
let timers = [];

class HttpError extends Error {
  constructor(status, body) {
    super(body && body.message ? `${status} ${body.code}: ${body.message}` : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path) {
  const res = await fetch(path, {
    headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY_ITEM) ?? ""}` },
    cache: "no-store",
  });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new HttpError(res.status, body);
  return body;
}

/** A table cell or element with text (never HTML: every value comes from the API). */
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.append(cell instanceof window.Node ? cell : el("td", cell));
  return tr;
}

function ago(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms < 1000 ? `${ms} ms ago` : `${(ms / 1000).toFixed(1)} s ago`;
}

// ---- chains, readiness, chart ---------------------------------------------------------------

/** Whether the policy may choose the chain now, and what it weighs (see server/policies.ts). */
function selectionOf(chain, report) {
  if (!chain.enabled) return "not eligible: disabled";
  if (!chain.healthy) return "not eligible: down";
  const eligible = report.items.filter((c) => c.enabled && c.healthy);
  switch (report.policy) {
    case "weighted": {
      if (chain.weight === 0) return "never chosen: weight 0";
      const total = eligible.reduce((a, c) => a + c.weight, 0);
      return `eligible, weight ${chain.weight}/${total}`;
    }
    case "least-loaded":
      return `eligible, queue depth ${chain.queueDepth}`;
    case "lowest-cost":
      return chain.feePerGasWei === null
        ? "eligible, fee unknown"
        : `eligible, ${(Number(chain.feePerGasWei) / 1e9).toFixed(2)} gwei/gas`;
    case "round-robin":
      return `eligible, 1 of ${eligible.length} in turn`;
    default:
      return "eligible"; // product-pinned, client-preference: decided per request
  }
}

function renderChains(report) {
  $("policy").textContent = report.policy;
  const body = $("chains").querySelector("tbody");
  body.replaceChildren(
    ...report.items.map((c) => {
      const health = el("td", c.healthy ? "healthy" : `down${c.error ? ` (${c.error})` : ""}`);
      health.className = c.healthy ? "ok" : "bad";
      health.dataset.health = c.healthy ? "healthy" : "down";
      const tr = row([
        `${c.name} (${c.chainId})`,
        health,
        c.headBlock ?? "–",
        c.latencyMs === null ? "–" : `${c.latencyMs} ms`,
        el("td", c.queueDepth, "queue"),
        el("td", c.issued, "issued"),
        c.weight,
        selectionOf(c, report),
      ]);
      tr.dataset.chainId = String(c.chainId);
      return tr;
    }),
  );
  $("total-queue").textContent = String(report.items.reduce((a, c) => a + c.queueDepth, 0));
  $("total-issued").textContent = String(report.items.reduce((a, c) => a + c.issued, 0));
  addPoint(report.items);
}

function addPoint(chains) {
  series.labels.push(new Date().toLocaleTimeString());
  for (const c of chains) {
    const name = `${c.name} (${c.chainId})`;
    if (!series.byChain.has(name)) series.byChain.set(name, new Array(series.labels.length - 1).fill(null));
    series.byChain.get(name).push(c.issued);
  }
  if (series.labels.length > HISTORY) {
    series.labels.shift();
    for (const data of series.byChain.values()) data.shift();
  }
  const datasets = [...series.byChain].map(([label, data], i) => ({
    label,
    data,
    borderColor: COLORS[i % COLORS.length],
    backgroundColor: COLORS[i % COLORS.length],
    pointRadius: 0,
    tension: 0.2,
  }));
  if (!chart) {
    chart = new Chart($("chart"), {
      type: "line",
      data: { labels: series.labels, datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, title: { display: true, text: "licenses issued" } } },
      },
    });
  } else {
    chart.data.labels = series.labels;
    chart.data.datasets = datasets;
    chart.update();
  }
}

async function renderReady() {
  const res = await fetch("/readyz", { cache: "no-store" });
  const body = await res.json().catch(() => ({}));
  const badge = $("ready");
  badge.textContent = res.ok ? "ready" : (body.status ?? "not ready");
  badge.className = `badge ${res.ok ? "ok" : "bad"}`;
}

// ---- recent licenses and the policy's reasons -----------------------------------------------

function verifyCell(license) {
  const td = el("td");
  const result = verified.get(license.id);
  if (result) {
    td.append(el("span", result.code, result.valid ? "ok" : "bad"));
    td.dataset.verify = result.code;
  }
  const button = el("button", result ? "again" : "verify");
  button.type = "button";
  button.addEventListener("click", () => {
    button.disabled = true;
    api(`/v1/licenses/${encodeURIComponent(license.id)}/verify`)
      .then((r) => verified.set(license.id, r))
      .catch((e) => verified.set(license.id, { code: e.message, valid: false }))
      .finally(() => void refreshLicenses().catch(showError));
  });
  td.append(" ", button);
  return td;
}

function renderLicenses(page) {
  const body = $("licenses").querySelector("tbody");
  body.replaceChildren(
    ...page.items.map((l) => {
      const tr = row([
        new Date(l.createdAt).toLocaleTimeString(),
        el("td", l.id, "mono"),
        el("td", l.status, `status-${l.status}`),
        l.chainId,
        l.tokenId ?? "–",
        el("td", l.licensee, "mono"),
        verifyCell(l),
      ]);
      tr.dataset.licenseId = l.id;
      tr.title = l.reason;
      return tr;
    }),
  );
  const counts = new Map();
  for (const l of page.items) counts.set(l.reason, (counts.get(l.reason) ?? 0) + 1);
  const reasons = [...counts].sort((a, b) => b[1] - a[1]);
  $("reasons").replaceChildren(
    ...(reasons.length === 0
      ? [el("li", "no licenses yet", "muted")]
      : reasons.map(([reason, n]) => el("li", `${n} × ${reason}`))),
  );
}

function refreshLicenses() {
  return api("/v1/licenses?order=desc&limit=20").then(renderLicenses);
}

// ---- replication -------------------------------------------------------------------------------

function table(headers, rows) {
  const t = el("table");
  const head = document.createElement("thead");
  head.append(row(headers.map((h) => el("th", h))));
  const body = document.createElement("tbody");
  body.append(...rows.map(row));
  t.append(head, body);
  return t;
}

function renderReplication(report) {
  const box = $("replication");
  if (report.configured === 0) {
    box.replaceChildren(
      el(
        "p",
        "No replicator is configured for the dashboard (dashboard.replicators in the config).",
        "muted",
      ),
    );
    box.dataset.state = "none";
    return;
  }
  box.dataset.state = "configured";
  box.replaceChildren(
    ...report.replicators.map((r) => {
      const card = el("div", undefined, "replicator");
      card.dataset.datacenter = r.datacenter;
      const title = el("h3", `${r.datacenter}${r.id ? ` — ${r.id}` : ""} `);
      title.append(
        el("span", r.reachable ? "reachable" : `unreachable: ${r.error}`, r.reachable ? "ok" : "bad"),
      );
      card.append(title);
      if (!r.reachable) return card;
      card.append(
        el(
          "p",
          `${r.running ? "running" : "stopped"}, ${r.leader ? "leader" : "standby"}, last discovery ${ago(r.lastRoundAgeMs)}; ` +
            `datacenters: ${r.datacenters.map((d) => `${d.name} ${d.reachable ? "up" : "DOWN"}`).join(", ")}`,
        ),
      );
      card.append(
        r.pipelines.length === 0
          ? el("p", "no pipelines yet", "muted")
          : table(
              ["pipeline", "from", "to", "state", "records", "lag"],
              r.pipelines.map((p) => [
                p.id,
                p.source,
                p.destination,
                el("td", p.error ? `${p.state}: ${p.error}` : p.state, p.state === "running" ? "ok" : "bad"),
                p.records,
                el("td", p.lag ?? "–", "lag"),
              ]),
            ),
      );
      if (r.latency.length > 0)
        card.append(
          table(
            ["replication latency to", "records timed", "mean", "p95 ≤"],
            r.latency.map((l) => [
              l.destination,
              l.count,
              l.meanSeconds === null ? "–" : `${(l.meanSeconds * 1000).toFixed(0)} ms`,
              l.p95Seconds === null ? "–" : `${l.p95Seconds * 1000} ms`,
            ]),
          ),
        );
      return card;
    }),
  );
}

// ---- polling and the key -----------------------------------------------------------------------

function showError(error) {
  if (error instanceof HttpError && error.status === 401) {
    stop();
    sessionStorage.removeItem(KEY_ITEM);
    showKeyForm(`The key was refused: ${error.message}`);
    return;
  }
  $("error").textContent = `last refresh failed: ${error.message}`;
}

async function refresh() {
  await Promise.all([api("/v1/chains").then(renderChains), refreshLicenses(), renderReady()]);
  $("error").textContent = "";
  $("updated").textContent = new Date().toLocaleTimeString();
}

function every(ms, work) {
  const tick = () => void work().catch(showError);
  tick();
  timers.push(window.setInterval(tick, ms));
}

function stop() {
  for (const t of timers) window.clearInterval(t);
  timers = [];
}

function start() {
  $("key-form").hidden = true;
  $("board").hidden = false;
  $("forget").hidden = false;
  every(POLL_MS, refresh);
  every(REPLICATION_POLL_MS, () =>
    api("/v1/replication")
      .then(renderReplication)
      .catch((error) => {
        // a licenses:read key sees the rest of the page, not the replication
        if (!(error instanceof HttpError) || error.status !== 403) throw error;
        $("replication").replaceChildren(el("p", `Not shown: ${error.message}`, "muted"));
        $("replication").dataset.state = "forbidden";
      }),
  );
}

function showKeyForm(message) {
  $("board").hidden = true;
  $("forget").hidden = true;
  $("key-form").hidden = false;
  $("key-error").textContent = message ?? "";
  $("key").focus();
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_ITEM, $("key").value.trim());
  $("key").value = "";
  start();
});
$("forget").addEventListener("click", () => {
  stop();
  sessionStorage.removeItem(KEY_ITEM);
  showKeyForm();
});

if (sessionStorage.getItem(KEY_ITEM)) start();
else showKeyForm();
