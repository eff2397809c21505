"""Node.js peers: their server scripts, installed with their npm packages into a temp dir at run
time (nothing committed), skipped where `node` or `npm` are missing.

- RATE_SERVER (fanout.py's node-ws): `ws`, publishing seeded quotes itself at the rate set by
  `rate R` lines on stdin, like harness.rate_servers' Python servers.
- REDIS_SERVER (fanout_real_*'s node-ws): `ws` fed by node-redis from the Hub broker's quote
  channels, sending each publication as one frame to the sockets subscribed to its channel."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path


def install_node(
    script: str, packages: list[str], prefix: str
) -> tuple[Path | None, dict[str, str]]:
    """A temp dir holding server.js and node_modules with `packages` (npm specs, e.g. "ws@8"),
    and the versions installed ({"node": ..., "ws": ..., ...}); (None, {}) without node/npm."""
    if not (shutil.which("node") and shutil.which("npm")):
        return None, {}
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    (directory / "server.js").write_text(script)
    subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", *packages],
        cwd=directory,
        check=True,
        capture_output=True,
        timeout=300,
    )
    versions = {}
    for spec in packages:
        name = spec.rsplit("@", 1)[0]
        found = json.loads((directory / "node_modules" / name / "package.json").read_text())
        versions[name] = str(found["version"])
    versions["node"] = subprocess.run(
        ["node", "--version"], capture_output=True, text=True
    ).stdout.strip()
    return directory, versions


RATE_SERVER = r"""
const { WebSocketServer } = require("ws");
const readline = require("readline");
const port = Number(process.argv[2]);
let seed = Number(process.argv[3]) >>> 0;
function rand() {  // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0; let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
let price = 189.0;
function quote() {
  price = Math.max(1, price + (rand() * 0.1 - 0.05));
  return JSON.stringify({symbol: "AAPL", bid: price.toFixed(2), ask: (price + 0.02).toFixed(2),
                         size: 1 + Math.floor(rand() * 500), t: Date.now() / 1000});
}
const wss = new WebSocketServer(
  { host: "127.0.0.1", port, perMessageDeflate: false, backlog: 4096 });
let rate = 0, start = 0, sent = 0;
function now() { return performance.now() / 1000; }
function tick() {
  if (rate > 0) {
    const due = Math.floor((now() - start) * rate) - sent;
    for (let i = 0; i < due; i++) {
      const msg = quote();
      for (const c of wss.clients) if (c.readyState === 1) c.send(msg);
    }
    if (due > 0) sent += due;
  }
  setTimeout(tick, 1);
}
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const [cmd, value] = line.trim().split(/\s+/);
  if (cmd === "rate") { rate = Number(value); start = now(); sent = 0; }
}).on("close", () => process.exit(0));
wss.on("listening", () => { console.log("ready"); tick(); });
"""

REDIS_SERVER = r"""
// The peer: ws + node-redis. Subscribes (pattern) to the Hub broker's quote channels and sends
// each publication as one frame to every socket subscribed to its channel.
const { WebSocketServer } = require('ws');
const { createClient } = require('redis');
const [port, prefix, redisUrl] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const subscribers = new Map();
const wss = new WebSocketServer({ host: '127.0.0.1', port });
wss.on('connection', (ws) => {
  const mine = [];
  ws.on('message', (raw) => {
    let m; try { m = JSON.parse(raw); } catch { return; }
    if (m.action !== 'subscribe') return;
    const acks = [];
    for (const ch of m.channels) {
      let set = subscribers.get(ch);
      if (!set) subscribers.set(ch, set = new Set());
      set.add(ws); mine.push(set);
      acks.push(JSON.stringify({ type: 'subscribed', channel: ch, kind: 'latest', seq: 0 }));
    }
    ws.send('[' + acks.join(',') + ']');
  });
  ws.on('close', () => { for (const set of mine) set.delete(ws); });
});
(async () => {
  const sub = createClient({ url: redisUrl });
  await sub.connect();
  const head = prefix + 'ch:';
  await sub.pSubscribe(head + 'quotes:*', (message, channel) => {
    const name = channel.slice(head.length);
    const a = message.indexOf('\n'), b = message.indexOf('\n', a + 1);
    const frame = '[{"type":"' + message.slice(a + 1, b) + '","channel":"' + name + '","seq":' +
      message.slice(0, a) + ',"data":' + message.slice(b + 1) + '}]';
    const set = subscribers.get(name);
    if (set) for (const ws of set) ws.send(frame);
  });
  console.log('ready');
})();
"""
