// Hub's reference streaming client (docs/protocol.md, "Reference client").
//
// One live connection to Hub: a WebSocket (auth as the first frame), with a Server-Sent Events
// fallback when the WebSocket cannot connect. Reliable channels (`orders`) are recovered after a
// reconnect with `since` (WebSocket) or `last_event_id` (SSE); reconnects back off
// exponentially with jitter. Order events are de-duplicated by (order id, version). Before the
// access token expires, a fresh one (token source, refresh=true) is sent on the open WebSocket
// (`auth` again), so the connection and its subscriptions outlive the token.
//
//   const client = new HubClient({token: async ({refresh}) => accessToken, channels: ["orders"]});
//   client.addEventListener("order", (e) => applyOrder(e.detail.data));
//   client.connect();
//
// Events (CustomEvent, payload in `detail`):
//   state     {state, transport}  state: connecting | connected | reconnecting | sse | closed
//   quote, bar, order, portfolio, ...  the publication message {type, channel, seq, data}
//   recovery  {channel, recovered}  after a reconnect of a reliable channel
//   resync    {channel}  history did not reach back far enough: re-read the state over REST
//   servererror  the server's `error` message {code, message, channel?}
//   authfailed  no usable access token: the user must log in again

export const State = Object.freeze({
  IDLE: "idle",
  CONNECTING: "connecting",
  CONNECTED: "connected",
  RECONNECTING: "reconnecting",
  SSE: "sse",
  CLOSED: "closed",
});

// Message types an EventSource must listen for by name (it has no "any event" listener).
const SSE_TYPES = ["connected", "authenticated", "subscribed", "unsubscribed", "error", "ping", "pong",
  "quote", "bar", "order", "portfolio"];

// Close codes after which reconnecting at once would only repeat the failure.
const SLOW_DOWN = new Set([1009, 4008, 4029]);
// Close codes (and error codes) after which the next attempt needs a refreshed token:
// rejected, expired, session revoked (the refresh then fails too, and `authfailed` follows).
const NEEDS_REFRESH = new Set([4001, 4003, 4005]);
const CREDENTIALS_ENDED = new Set(["token_expired", "session_revoked"]);
// Renew this long before the token expires (or halfway, for tokens shorter than twice that).
const RENEW_LEAD_S = 30;

export class HubClient extends EventTarget {
  /**
   * @param {object} options
   * @param {(o: {refresh: boolean}) => Promise<string|null>} options.token  the access token;
   *   with refresh=true the caller should obtain a new one. null: not logged in.
   * @param {string[]} [options.channels]  channels to subscribe (more with subscribe()).
   * @param {string} [options.baseUrl]  defaults to the page's origin.
   * @param {number} [options.sseAfterFailures]  failed WebSocket attempts before SSE (2).
   * @param {number} [options.backoffBase] ms (500); [options.backoffMax] ms (15000).
   * @param {number} [options.upgradeAfter] ms between WebSocket retries while on SSE (30000).
   */
  constructor(options) {
    super();
    this.tokenSource = options.token;
    this.baseUrl = new URL(options.baseUrl ?? globalThis.location.origin);
    this.channels = new Set(options.channels ?? []);
    this.sseAfterFailures = options.sseAfterFailures ?? 2;
    this.backoffBase = options.backoffBase ?? 500;
    this.backoffMax = options.backoffMax ?? 15000;
    this.upgradeAfter = options.upgradeAfter ?? 30000;
    this.state = State.IDLE;
    this.transport = null; // "ws" | "sse" | null
    this.lastSeq = new Map(); // reliable channel -> last seq processed
    this.versions = new Map(); // order id -> highest version seen
    this.stats = {connects: 0, recoveries: 0, replayed: 0, duplicates: 0};
    this._ws = null;
    this._es = null;
    this._probe = null;
    this._timer = null;
    this._upgradeTimer = null;
    this._renewTimer = null;
    this._attempt = 0;
    this._wsFailures = 0;
    this._refreshNext = false;
    this._holdUntil = 0;
    this._stopped = true;
    this._replayTo = new Map(); // reliable channel -> last seq of the replay in progress
  }

  /** Start (or restart) the connection. */
  connect() {
    this._stopped = false;
    this._attempt = 0;
    this._open();
  }

  /** Close for good (logout). Reconnects stop; the recovery positions are forgotten. */
  close() {
    this._stopped = true;
    this._teardown(1000, "client closed");
    this.lastSeq.clear();
    this.versions.clear();
    this._setState(State.CLOSED);
  }

  /** Add channels; sent at once on a live WebSocket, or the SSE stream is reopened. */
  subscribe(channels) {
    const added = channels.filter((c) => !this.channels.has(c));
    if (!added.length) return;
    for (const c of added) this.channels.add(c);
    if (this._ws && this.transport === "ws") this._send({action: "subscribe", channels: added});
    else if (this._es) this._reopenSse();
  }

  unsubscribe(channels) {
    const removed = channels.filter((c) => this.channels.delete(c));
    if (!removed.length) return;
    for (const c of removed) this.lastSeq.delete(c);
    if (this._ws && this.transport === "ws") this._send({action: "unsubscribe", channels: removed});
    else if (this._es) this._reopenSse();
  }

  /**
   * Remember an order read over REST, so that an older event of it from the stream is ignored.
   * Returns true when this (id, version) is newer than anything seen.
   */
  noteOrder(order) {
    const known = this.versions.get(order.id);
    if (known !== undefined && known >= order.version) return false;
    this.versions.set(order.id, order.version);
    return true;
  }

  /**
   * Drop the live connection as a network failure would, then reconnect and recover as usual
   * (no sooner than `holdMs`). For tests and for trying the recovery path by hand.
   */
  dropConnection({holdMs = 0} = {}) {
    this._holdUntil = Date.now() + holdMs;
    if (this._ws) this._ws.close(3000, "dropped by the client");
    else if (this._es) this._failSse(this._es, true);
  }

  // --- connection management -------------------------------------------------------------

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    this._emit("state", {state, transport: this.transport});
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, {detail}));
  }

  async _token() {
    const refresh = this._refreshNext;
    this._refreshNext = false;
    let token = null;
    try {
      token = await this.tokenSource({refresh});
    } catch {
      // The token source could not reach the server: treat it as a failed attempt.
      return undefined;
    }
    if (!token) {
      this._stopped = true;
      this._teardown(1000, "no token");
      this._setState(State.CLOSED);
      this._emit("authfailed", {});
    }
    return token;
  }

  _open() {
    clearTimeout(this._timer);
    this._timer = null;
    if (this._stopped) return;
    const useSse = this._wsFailures >= this.sseAfterFailures && "EventSource" in globalThis;
    this._setState(this._attempt === 0 ? State.CONNECTING : State.RECONNECTING);
    if (useSse) this._openSse();
    else this._openWs(false);
  }

  _teardown(code, reason) {
    clearTimeout(this._timer);
    clearTimeout(this._upgradeTimer);
    clearTimeout(this._renewTimer);
    this._timer = this._upgradeTimer = this._renewTimer = null;
    for (const ws of [this._ws, this._probe]) if (ws) ws.close(code, reason);
    this._ws = this._probe = null;
    if (this._es) this._es.close();
    this._es = null;
    this.transport = null;
  }

  _scheduleReconnect(code) {
    if (this._stopped || this._timer) return;
    this.transport = null;
    this._attempt += 1;
    const ceiling = Math.min(this.backoffMax, this.backoffBase * 2 ** (this._attempt - 1));
    let delay = ceiling / 2 + Math.random() * (ceiling / 2); // "equal jitter"
    if (SLOW_DOWN.has(code)) delay = Math.max(delay, 5000);
    delay = Math.max(delay, this._holdUntil - Date.now());
    this._setState(State.RECONNECTING);
    this._timer = setTimeout(() => {
      this._timer = null;
      this._open();
    }, delay);
  }

  _wsUrl() {
    const url = new URL("/ws", this.baseUrl);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  async _openWs(probe) {
    const token = await this._token();
    if (this._stopped || (probe && this.transport !== "sse")) return;
    if (token === undefined) {
      if (!probe) this._scheduleReconnect(0);
      return;
    }
    if (token === null) return;
    let ws;
    try {
      ws = new WebSocket(this._wsUrl());
    } catch {
      this._wsFailures += 1;
      if (!probe) this._scheduleReconnect(0);
      return;
    }
    let ready = false;
    if (probe) this._probe = ws;
    else this._ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({action: "auth", token}));
    ws.onerror = () => {}; // a close event always follows
    ws.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      for (const msg of Array.isArray(frame) ? frame : [frame]) {
        if (msg.type === "connected" && !ready) {
          ready = true;
          if (probe && (ws !== this._probe || this.transport !== "sse")) {
            ws.close(1000, "not needed"); // SSE failed meanwhile and a reconnect is under way
            return;
          }
          if (probe) this._adoptProbe(ws);
          this._onConnected("ws");
          this._scheduleRenewal(ws, msg.expires_in);
          this._sendSubscribe();
        }
        this._handle(msg, ws);
      }
    };
    ws.onclose = (event) => {
      if (probe && !ready) {
        if (ws === this._probe) this._probe = null;
        this._scheduleUpgrade();
        return;
      }
      if (ws !== this._ws) return;
      this._ws = null;
      if (!ready) this._wsFailures += 1;
      clearTimeout(this._renewTimer);
      this._renewTimer = null;
      if (NEEDS_REFRESH.has(event.code)) this._refreshNext = true;
      this._scheduleReconnect(event.code);
    };
  }

  // --- in-band renewal (WebSocket) ------------------------------------------------------------

  _scheduleRenewal(ws, expiresIn) {
    clearTimeout(this._renewTimer);
    this._renewTimer = null;
    if (typeof expiresIn !== "number") return; // a token that does not expire
    const lead = Math.min(RENEW_LEAD_S, expiresIn / 2);
    this._renewTimer = setTimeout(() => this._renew(ws), Math.max(expiresIn - lead, 0) * 1000);
  }

  async _renew(ws) {
    this._renewTimer = null;
    if (ws !== this._ws) return;
    this._refreshNext = true;
    const token = await this._token(); // null: logged out (authfailed); undefined: offline
    // On failure the server closes with 4003 at expiry, and the reconnect refreshes first.
    if (!token || ws !== this._ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({action: "auth", token})); // answered by `authenticated`
  }

  _adoptProbe(ws) {
    // The WebSocket works again: leave SSE. Duplicates of the overlap are skipped by seq.
    this._probe = null;
    if (this._es) this._es.close();
    this._es = null;
    this._ws = ws;
  }

  _onConnected(transport) {
    this.transport = transport;
    this._attempt = 0;
    this.stats.connects += 1;
    if (transport === "ws") this._wsFailures = 0;
    this._setState(transport === "ws" ? State.CONNECTED : State.SSE);
    if (transport === "sse") this._scheduleUpgrade();
  }

  _since() {
    const since = {};
    for (const c of this.channels) if (this.lastSeq.has(c)) since[c] = this.lastSeq.get(c);
    return since;
  }

  _sendSubscribe() {
    if (!this.channels.size) return;
    const msg = {action: "subscribe", channels: [...this.channels]};
    const since = this._since();
    if (Object.keys(since).length) msg.since = since;
    this._send(msg);
  }

  _send(msg) {
    if (this._ws && this._ws.readyState === WebSocket.OPEN) this._ws.send(JSON.stringify(msg));
  }

  // --- SSE fallback ----------------------------------------------------------------------

  async _openSse() {
    const token = await this._token();
    if (this._stopped) return;
    if (token === undefined) {
      this._scheduleReconnect(0);
      return;
    }
    if (token === null) return;
    const url = new URL("/sse", this.baseUrl);
    url.searchParams.set("channels", [...this.channels].join(","));
    url.searchParams.set("access_token", token);
    const since = this._since();
    if (Object.keys(since).length) url.searchParams.set("last_event_id", JSON.stringify(since));
    // Query strings are logged by proxies: the access token is short-lived, and only SSE needs it.
    const es = new EventSource(url.href);
    this._es = es;
    es.hubReady = false;
    for (const type of SSE_TYPES) {
      es.addEventListener(type, (event) => {
        if (es !== this._es) return;
        if (type === "error" && !(event instanceof MessageEvent)) {
          this._failSse(es, false);
          return;
        }
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch {
          return;
        }
        if (msg.type === "connected" && !es.hubReady) {
          es.hubReady = true;
          this._onConnected("sse");
        }
        this._handle(msg, null);
      });
    }
  }

  _failSse(es, dropped) {
    // Our own reconnects (not EventSource's) so that the token and the positions are fresh.
    if (es !== this._es) return;
    es.close();
    this._es = null;
    // Never connected: perhaps an expired token in the URL (EventSource cannot show the 401).
    if (!es.hubReady) this._refreshNext = true;
    // Give the WebSocket another chance now and then.
    if (!es.hubReady && !dropped && this._attempt % 4 === 3) this._wsFailures = 0;
    this._scheduleReconnect(0);
  }

  _reopenSse() {
    if (this._es) this._es.close();
    this._es = null;
    this._openSse();
  }

  _scheduleUpgrade() {
    clearTimeout(this._upgradeTimer);
    if (this._stopped || this.transport !== "sse") return;
    const delay = this.upgradeAfter * (0.75 + Math.random() / 2);
    this._upgradeTimer = setTimeout(() => {
      this._upgradeTimer = null;
      if (this.transport === "sse" && !this._probe) this._openWs(true);
    }, delay);
  }

  // --- messages --------------------------------------------------------------------------

  _handle(msg, ws) {
    switch (msg.type) {
      case "connected":
      case "pong":
      case "unsubscribed":
        return;
      case "ping":
        if (ws) ws.send('{"action":"pong"}');
        return;
      case "authenticated":
        if (ws) this._scheduleRenewal(ws, msg.expires_in);
        return;
      case "error":
        // The stream is about to end (SSE cannot renew in band): refresh before reconnecting.
        if (CREDENTIALS_ENDED.has(msg.code)) this._refreshNext = true;
        this._emit("servererror", msg);
        return;
      case "subscribed":
        this._subscribed(msg);
        return;
      default:
        if (msg.channel !== undefined && "data" in msg) this._publication(msg);
    }
  }

  _subscribed(msg) {
    if (msg.kind !== "reliable") return;
    if (msg.recovered === undefined) {
      // No `since`: where the channel is now, so a drop before the first event still recovers.
      this.lastSeq.set(msg.channel, msg.seq);
      return;
    }
    this.stats.recoveries += 1;
    this._emit("recovery", {channel: msg.channel, recovered: msg.recovered});
    if (msg.recovered) {
      // The replayed publications follow and advance lastSeq.
      this._replayTo.set(msg.channel, msg.seq);
      return;
    }
    this.lastSeq.set(msg.channel, msg.seq);
    this._emit("resync", {channel: msg.channel});
  }

  _publication(msg) {
    if (this.lastSeq.has(msg.channel)) {
      const last = this.lastSeq.get(msg.channel);
      if (msg.seq <= last) {
        this.stats.duplicates += 1;
        return;
      }
      this.lastSeq.set(msg.channel, msg.seq);
      if (msg.seq <= (this._replayTo.get(msg.channel) ?? -1)) this.stats.replayed += 1;
    }
    if (msg.type === "order" && msg.data && msg.data.id !== undefined) {
      if (!this.noteOrder(msg.data)) {
        this.stats.duplicates += 1;
        return;
      }
    }
    this._emit(msg.type, msg);
  }
}
