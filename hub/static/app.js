// The trading dashboard: REST for state, the streaming client for live updates.

import {Api, ApiError} from "./api.js";
import {PriceChart, HISTORY} from "./chart.js";
import {HubClient} from "./hubclient.js";
import {sparkline} from "./sparkline.js";

const $ = (id) => document.getElementById(id);
const WORKING = new Set(["pending_new", "new", "partially_filled", "pending_cancel"]);
const STATE_TEXT = {
  idle: "Offline",
  connecting: "Connecting…",
  connected: "Live",
  reconnecting: "Reconnecting…",
  sse: "Live (SSE fallback)",
  closed: "Offline",
};
const SPARK_POINTS = 90; // one-minute closes
const LIVE = new Set(["connected", "sse"]);

const money = new Intl.NumberFormat("en-US", {style: "currency", currency: "USD"});
const fmtMoney = (v) => (v === null || v === undefined ? "—" : money.format(Number(v)));
const fmtPct = (v) => (v === null || v === undefined ? "—" : `${Number(v) >= 0 ? "+" : ""}${v}%`);
const sign = (v) => (Number(v) > 0 ? "up" : Number(v) < 0 ? "down" : "flat");

const app = {
  api: null,
  client: null,
  orders: new Map(), // id -> order (highest version)
  quotes: new Map(), // symbol -> {quote, points, minute, row}: points are one-minute closes
  chart: null, // PriceChart: the selected symbol
  watchlist: null,
  lastSubmitted: null,
  portfolioTimer: null,
};
window.hubApp = app;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function report(id, error) {
  $(id).textContent = error instanceof ApiError ? error.message : String(error?.message ?? error);
}

// --- login -------------------------------------------------------------------------------

async function boot() {
  app.api = new Api({onLoggedOut: () => showLogin("Your session has ended: please log in again.")});
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", onLogout);
  setupTicket();
  setupWatchlistForm();
  setupChart();
  try {
    const response = await fetch("/dashboard/config.json");
    const config = response.ok ? await response.json() : {};
    if (config.mode) {
      $("mode").textContent = config.mode === "embedded" ? "embedded · in memory" : config.mode;
      $("mode").hidden = false;
    }
    if (config.demo_email) {
      $("login-email").value = config.demo_email;
      $("login-password").value = config.demo_password;
      $("login-hint").hidden = false;
    }
  } catch {
    // The config only pre-fills the form.
  }
  if (app.api.loggedIn) start();
  else showLogin("");
}

function showLogin(message) {
  stopLive();
  $("app-view").hidden = true;
  $("logout").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = message;
  $("login-email").focus();
}

async function onLogin(event) {
  event.preventDefault();
  const button = event.submitter ?? $("login-form").querySelector("button");
  button.disabled = true;
  $("login-error").textContent = "";
  try {
    await app.api.login($("login-email").value.trim(), $("login-password").value);
    $("login-password").value = "";
    await start();
  } catch (error) {
    report("login-error", error);
  } finally {
    button.disabled = false;
  }
}

async function onLogout() {
  stopLive();
  await app.api.logout();
  showLogin("You are logged out.");
}

function stopLive() {
  if (app.client) app.client.close();
  app.client = null;
  window.hubClient = null;
  clearTimeout(app.portfolioTimer);
  app.chart?.clear();
  $("chart-symbol").textContent = "";
  app.orders.clear();
  for (const entry of app.quotes.values()) entry.row.remove();
  app.quotes.clear();
  setConnection("closed");
}

// --- start: REST snapshot, then the live stream ------------------------------------------

async function start() {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("logout").hidden = false;
  try {
    const [lists] = await Promise.all([
      app.api.get("/api/v1/watchlists"),
      loadOrders(),
      loadPortfolio(),
      loadInstruments(),
    ]);
    app.watchlist = lists[0] ?? (await app.api.request("POST", "/api/v1/watchlists",
      {name: "My watchlist", symbols: ["AAPL", "MSFT"]}));
    await addQuoteRows(app.watchlist.symbols);
  } catch (error) {
    if (!app.api.loggedIn) return;
    report("wl-error", error);
  }
  const ticket = $("t-symbol").value.trim().toUpperCase();
  const first = app.quotes.has(ticket) ? ticket : app.quotes.keys().next().value;
  if (first) selectChart(first);
  startLive();
}

function startLive() {
  const channels = ["orders", "portfolio", ...[...app.quotes.keys()].map((s) => `quotes:${s}`)];
  if (app.chart.symbol) channels.push(`bars:${app.chart.symbol}`);
  const client = new HubClient({token: (o) => app.api.token(o), channels});
  for (const order of app.orders.values()) client.noteOrder(order);
  client.addEventListener("state", (e) => {
    setConnection(e.detail.state);
    // Back after a drop: minutes may have formed unseen, so the chart reads its history again.
    if (LIVE.has(e.detail.state) && client.stats.connects > 1) showChart();
  });
  client.addEventListener("quote", (e) => onQuote(e.detail.data));
  client.addEventListener("bar", (e) => app.chart.onBar(e.detail.data));
  client.addEventListener("order", (e) => upsertOrder(e.detail.data));
  client.addEventListener("portfolio", (e) => onPortfolioEvent(e.detail.data));
  client.addEventListener("resync", () => loadOrders().catch(() => {}));
  client.addEventListener("authfailed", () => showLogin("Your session has ended: please log in again."));
  app.client = client;
  window.hubClient = client; // for tests and the curious: dropConnection(), stats, state
  client.connect();
}

function setConnection(state) {
  $("conn").dataset.state = state;
  $("conn-text").textContent = STATE_TEXT[state] ?? state;
}

// --- watchlist and quotes ----------------------------------------------------------------

async function loadInstruments() {
  const list = await app.api.get("/api/v1/instruments?limit=500");
  $("instruments").replaceChildren(...list.map((i) => el("option", {value: i.symbol, label: i.name})));
}

function barsPath(symbol, timeframe, limit) {
  return `/api/v1/instruments/${encodeURIComponent(symbol)}/bars?timeframe=${timeframe}&limit=${limit}`;
}

async function addQuoteRows(symbols) {
  const fresh = symbols.filter((s) => !app.quotes.has(s));
  if (!fresh.length) return;
  const [snapshot, ...closes] = await Promise.all([
    app.api.get(`/api/v1/market-data?symbols=${encodeURIComponent(fresh.join(","))}`),
    ...fresh.map((s) => app.api.get(barsPath(s, "1Min", SPARK_POINTS)).catch(() => ({bars: []}))),
  ]);
  const names = new Map(snapshot.data.map((d) => [d.symbol, d]));
  for (const [i, symbol] of fresh.entries()) {
    const md = names.get(symbol);
    const bars = closes[i].bars;
    const entry = {quote: null, points: bars.map((b) => Number(b.c)),
      minute: bars.length ? minuteOf(bars.at(-1).t) : null, row: quoteRow(symbol, md?.name ?? symbol)};
    app.quotes.set(symbol, entry);
    entry.row.classList.toggle("selected", symbol === app.chart.symbol);
    $("wl-rows").append(entry.row);
    if (md?.quote) onQuote({symbol, ...md.quote});
  }
}

const minuteOf = (time) => Math.floor(Date.parse(time) / 60_000);

function quoteRow(symbol, name) {
  const cell = (cls) => el("td", {class: cls, text: "—"});
  const row = el("tr", {"data-symbol": symbol},
    el("th", {scope: "row"},
      el("button", {type: "button", class: "link", text: symbol, title: `${name}: trade ${symbol}`,
        onclick: () => pickSymbol(symbol)})),
    cell("num opt bid"), cell("num opt ask"), cell("num last"), cell("num chg"),
    el("td", {class: "spark-col"}),
    el("td", {class: "actions"},
      el("button", {type: "button", class: "icon", text: "×", "aria-label": `Remove ${symbol}`,
        onclick: () => removeSymbol(symbol)})));
  return row;
}

function onQuote(quote) {
  const entry = app.quotes.get(quote.symbol);
  if (!entry) return;
  const previous = entry.quote;
  entry.quote = quote;
  // The forming minute's close is the last price: move it, or start the next minute.
  const minute = minuteOf(quote.timestamp);
  if (minute === entry.minute) entry.points[entry.points.length - 1] = Number(quote.last);
  else if (!(minute < entry.minute)) {
    entry.points.push(Number(quote.last));
    entry.minute = minute;
    if (entry.points.length > SPARK_POINTS) entry.points.shift();
  }
  const row = entry.row;
  row.querySelector(".bid").textContent = quote.bid;
  row.querySelector(".ask").textContent = quote.ask;
  const last = row.querySelector(".last");
  last.textContent = quote.last;
  const chg = row.querySelector(".chg");
  chg.textContent = fmtPct(quote.change_percent);
  chg.dataset.sign = sign(quote.change_percent);
  if (previous && previous.last !== quote.last) {
    const dir = Number(quote.last) > Number(previous.last) ? "up" : "down";
    last.classList.remove("flash-up", "flash-down");
    void last.offsetWidth; // restart the animation
    last.classList.add(`flash-${dir}`);
  }
  row.querySelector(".spark-col").replaceChildren(
    sparkline(entry.points, {label: `${quote.symbol}, last ${SPARK_POINTS} minutes`,
      trend: sign(quote.change)}));
  if ($("t-symbol").value.trim().toUpperCase() === quote.symbol) showTicketQuote();
}

function setupWatchlistForm() {
  $("wl-add").addEventListener("submit", async (event) => {
    event.preventDefault();
    const symbol = $("wl-symbol").value.trim().toUpperCase();
    $("wl-error").textContent = "";
    if (!symbol || !app.watchlist) return;
    try {
      app.watchlist = await app.api.request("PUT",
        `/api/v1/watchlists/${app.watchlist.id}/symbols/${encodeURIComponent(symbol)}`);
      await addQuoteRows([symbol]);
      app.client?.subscribe([`quotes:${symbol}`]);
      $("wl-symbol").value = "";
    } catch (error) {
      report("wl-error", error);
    }
  });
}

async function removeSymbol(symbol) {
  $("wl-error").textContent = "";
  try {
    app.watchlist = await app.api.request("DELETE",
      `/api/v1/watchlists/${app.watchlist.id}/symbols/${encodeURIComponent(symbol)}`);
    app.client?.unsubscribe([`quotes:${symbol}`]);
    app.quotes.get(symbol)?.row.remove();
    app.quotes.delete(symbol);
    $("wl-symbol").focus();
  } catch (error) {
    report("wl-error", error);
  }
}

// --- chart -------------------------------------------------------------------------------

function setupChart() {
  app.chart = new PriceChart($("chart"), $("chart-legend"), (symbol, timeframe) => {
    $("chart-error").textContent = "";
    return app.api.get(barsPath(symbol, timeframe, HISTORY));
  });
  for (const button of document.querySelectorAll(".timeframes button")) {
    button.addEventListener("click", () => showChart(app.chart.symbol, button.dataset.timeframe));
  }
}

/** Chart `symbol`: its bars channel replaces the previous symbol's. */
function selectChart(symbol) {
  const previous = app.chart.symbol;
  if (symbol === previous) return;
  if (previous) app.client?.unsubscribe([`bars:${previous}`]);
  app.client?.subscribe([`bars:${symbol}`]);
  for (const [s, entry] of app.quotes) entry.row.classList.toggle("selected", s === symbol);
  $("chart-symbol").textContent = symbol;
  showChart(symbol);
}

function showChart(symbol = app.chart.symbol, timeframe = app.chart.timeframe) {
  for (const button of document.querySelectorAll(".timeframes button")) {
    button.setAttribute("aria-pressed", String(button.dataset.timeframe === timeframe));
  }
  app.chart.timeframe = timeframe;
  if (!symbol) return;
  app.chart.show(symbol, timeframe).catch((error) => {
    if (app.chart.symbol === symbol && app.chart.timeframe === timeframe) report("chart-error", error);
  });
}

// --- order ticket ------------------------------------------------------------------------

function pickSymbol(symbol) {
  selectChart(symbol);
  $("t-symbol").value = symbol;
  showTicketQuote();
  updateTicket();
  $("t-qty").focus();
}

function ticketQuote() {
  return app.quotes.get($("t-symbol").value.trim().toUpperCase())?.quote ?? null;
}

function showTicketQuote() {
  const q = ticketQuote();
  $("t-quote").textContent = q ? `${q.symbol}  bid ${q.bid} · ask ${q.ask} · last ${q.last}` : "";
}

function updateTicket() {
  const type = $("t-type").value;
  const needsLimit = type === "limit" || type === "stop_limit";
  const needsStop = type === "stop" || type === "stop_limit";
  $("f-limit").hidden = !needsLimit;
  $("f-stop").hidden = !needsStop;
  $("t-limit").required = needsLimit;
  $("t-stop").required = needsStop;
  const q = ticketQuote();
  if (q && needsLimit && !$("t-limit").value) $("t-limit").value = q.last;
  if (q && needsStop && !$("t-stop").value) $("t-stop").value = q.last;
  const side = document.querySelector('input[name="side"]:checked').value;
  const symbol = $("t-symbol").value.trim().toUpperCase() || "…";
  $("t-submit").textContent = `${side === "buy" ? "Buy" : "Sell"} ${$("t-qty").value || ""} ${symbol}`;
  $("t-submit").dataset.side = side;
}

function setupTicket() {
  const form = $("ticket");
  for (const id of ["t-type", "t-symbol", "t-qty", "side-buy", "side-sell"]) {
    $(id).addEventListener("input", updateTicket);
    $(id).addEventListener("change", updateTicket);
  }
  $("t-symbol").addEventListener("change", showTicketQuote);
  updateTicket();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    $("t-error").textContent = "";
    $("t-result").textContent = "";
    const type = $("t-type").value;
    const order = {
      symbol: $("t-symbol").value.trim().toUpperCase(),
      side: document.querySelector('input[name="side"]:checked').value,
      type,
      qty: $("t-qty").value.trim(),
      time_in_force: $("t-tif").value,
    };
    if (type === "limit" || type === "stop_limit") order.limit_price = $("t-limit").value.trim();
    if (type === "stop" || type === "stop_limit") order.stop_price = $("t-stop").value.trim();
    const missing = Object.entries(order).filter(([, v]) => v === "").map(([k]) => k);
    if (missing.length) {
      $("t-error").textContent = `Please fill in: ${missing.join(", ").replaceAll("_", " ")}.`;
      return;
    }
    $("t-submit").disabled = true;
    try {
      const placed = await app.api.request("POST", "/api/v1/orders", order,
        {"Idempotency-Key": uuid()});
      app.lastSubmitted = placed.id;
      upsertOrder(placed);
      // Its events may have outrun this response: show the newest state known.
      $("t-result").textContent = describe(app.orders.get(placed.id) ?? placed);
    } catch (error) {
      report("t-error", error);
    } finally {
      $("t-submit").disabled = false;
    }
  });
}

function describe(order) {
  const price = order.filled_avg_price ? ` @ ${order.filled_avg_price}` : "";
  return `${order.side.toUpperCase()} ${order.qty} ${order.symbol} ${order.type.replace("_", " ")}: ` +
    `${order.status.replace("_", " ")}${price}`;
}

// --- orders ------------------------------------------------------------------------------

async function loadOrders() {
  const page = await app.api.get("/api/v1/orders?status=all&limit=200");
  for (const order of page.orders) upsertOrder(order, false);
  renderOrders();
}

/** Keep the highest version of each order: events may arrive twice or after a REST read. */
function upsertOrder(order, render = true) {
  const known = app.orders.get(order.id);
  if (known && known.version >= order.version) return;
  app.orders.set(order.id, order);
  app.client?.noteOrder(order);
  if (order.id === app.lastSubmitted) $("t-result").textContent = describe(order);
  if (render) renderOrders();
}

function priceOf(order) {
  if (order.type === "market") return "MKT";
  if (order.type === "limit") return order.limit_price;
  if (order.type === "stop") return `stop ${order.stop_price}`;
  return `${order.stop_price} / ${order.limit_price}`;
}

function statusCell(order) {
  return el("td", {class: "status", "data-status": order.status, text: order.status.replace("_", " ")});
}

function renderOrders() {
  const all = [...app.orders.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  const open = all.filter((o) => WORKING.has(o.status));
  const closed = all.filter((o) => !WORKING.has(o.status)).slice(0, 50);
  $("open-rows").replaceChildren(...open.map((o) => el("tr", {"data-order-id": o.id},
    el("td", {text: o.symbol}),
    el("td", {class: `side-${o.side}`, text: o.side}),
    el("td", {class: "opt", text: o.type.replace("_", " ")}),
    el("td", {class: "num", text: o.filled_qty !== "0" ? `${o.filled_qty}/${o.qty}` : o.qty}),
    el("td", {class: "num", text: priceOf(o)}),
    statusCell(o),
    el("td", {class: "actions"},
      el("button", {type: "button", class: "danger", text: "Cancel",
        disabled: o.status === "pending_cancel",
        "aria-label": `Cancel ${o.side} ${o.qty} ${o.symbol}`,
        onclick: (e) => cancelOrder(o, e.currentTarget)})))));
  $("open-empty").hidden = open.length > 0;
  $("hist-rows").replaceChildren(...closed.map((o) => el("tr", {"data-order-id": o.id},
    el("td", {text: o.symbol}),
    el("td", {class: `side-${o.side}`, text: o.side}),
    el("td", {class: "opt", text: o.type.replace("_", " ")}),
    el("td", {class: "num", text: `${o.filled_qty}/${o.qty}`}),
    el("td", {class: "num", text: o.filled_avg_price ?? "—"}),
    statusCell(o),
    el("td", {class: "opt", text: new Date(o.updated_at).toLocaleTimeString()}))));
  $("hist-empty").hidden = closed.length > 0;
}

async function cancelOrder(order, button) {
  $("open-error").textContent = "";
  button.disabled = true;
  try {
    upsertOrder(await app.api.request("DELETE", `/api/v1/orders/${order.id}`));
  } catch (error) {
    button.disabled = false;
    report("open-error", error);
  }
}

// --- portfolio ---------------------------------------------------------------------------

function onPortfolioEvent(data) {
  // The event carries cash at once; the full valuation is re-read (debounced).
  if (data?.cash !== undefined) {
    $("pf-cash").textContent = fmtMoney(data.cash);
    $("pf-bp").textContent = fmtMoney(data.buying_power);
  }
  clearTimeout(app.portfolioTimer);
  app.portfolioTimer = setTimeout(() => loadPortfolio().catch(() => {}), 250);
}

async function loadPortfolio() {
  const p = await app.api.get("/api/v1/portfolio");
  $("pf-equity").textContent = fmtMoney(p.equity);
  $("pf-cash").textContent = fmtMoney(p.cash);
  $("pf-bp").textContent = fmtMoney(p.buying_power);
  $("pf-mv").textContent = fmtMoney(p.market_value);
  const pnl = $("pf-pnl");
  pnl.textContent = `${fmtMoney(p.total_pnl)} (${fmtPct(p.total_pnl_percentage)})`;
  pnl.dataset.sign = sign(p.total_pnl);
  $("pos-rows").replaceChildren(...p.positions.map((pos) => el("tr", {"data-symbol": pos.symbol},
    el("th", {scope: "row"}, el("button", {type: "button", class: "link", text: pos.symbol,
      title: `Trade ${pos.symbol}`, onclick: () => pickSymbol(pos.symbol)})),
    el("td", {class: "num qty", text: pos.qty}),
    el("td", {class: "num opt", text: pos.avg_entry_price}),
    el("td", {class: "num", text: pos.current_price ?? "—"}),
    el("td", {class: "num opt", text: fmtMoney(pos.market_value)}),
    el("td", {class: "num", "data-sign": sign(pos.unrealized_pl), text: fmtMoney(pos.unrealized_pl)}))));
  $("pos-empty").hidden = p.positions.length > 0;
}

boot();
