// No lost updates under chaos: pushgate.js clients (on Node's own
// WebSocket) hold the items of their rooms as an app would, applying each
// event as it comes, while writes stream to the rooms and their sockets are
// reset, closed and cut. At the end each client must hold what the store
// holds, having applied every room's events once each, in seq order.
//
// browsertest_test.go (TestNoLostUpdatesUnderChaos) runs this with:
//   PUSHGATE_HTTP_URL      the HTTP API
//   PUSHGATE_CHAOS_WS_URL  the stage behind a proxy that can reset sockets
//   PUSHGATE_CONTROL_URL   POST /reset, /kick-one, /storm?status=&ms=
//   PUSHGATE_TOKEN         a token that joins and writes every room
//   PUSHGATE_CHAOS_WRITES, PUSHGATE_CHAOS_CLIENTS, PUSHGATE_CHAOS_ROOMS
//   PUSHGATE_CHAOS_RESTART "1": halfway through the writes, POST /restart
//                          kills the stack and starts it again
// It prints one line "chaos summary {…}" with what happened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from '../../../web/pushgate.js';

const HTTP = need('PUSHGATE_HTTP_URL');
const WS = need('PUSHGATE_CHAOS_WS_URL');
const CONTROL = need('PUSHGATE_CONTROL_URL');
const TOKEN = need('PUSHGATE_TOKEN');
const WRITES = Number(need('PUSHGATE_CHAOS_WRITES'));
const CLIENTS = Number(need('PUSHGATE_CHAOS_CLIENTS'));
const ROOMS = Number(need('PUSHGATE_CHAOS_ROOMS'));
const RESTART = process.env.PUSHGATE_CHAOS_RESTART === '1';
const ROOMS_PER_CLIENT = Math.min(5, ROOMS);
const IDS_PER_ROOM = 8;
const WRITERS = 8;
// Each writer's pause between writes, so the chaos has time to act.
const PACE_MS = 40;
const SETTLE_MS = 60_000;

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this through go test ./internal/testkit/browsertest`);
  return v;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const auth = (headers = {}) => ({ ...headers, Authorization: `Bearer ${TOKEN}` });

async function control(path) {
  const r = await fetch(CONTROL + path, { method: 'POST' });
  const text = await r.text();
  assert.equal(r.status, 200, `${path}: ${text}`);
  return JSON.parse(text);
}

// Holder is what an app keeps of its rooms: the items, and the seq each
// room's state is at. Anything applied out of order is a problem.
class Holder {
  constructor(rooms) {
    this.items = new Map(rooms.map((r) => [r, new Map()]));
    this.last = new Map(rooms.map((r) => [r, 0]));
    this.problems = [];
    this.applied = 0;
    this.recovered = 0;
    this.closes = 0;
    this.idleCuts = 0;
  }

  apply(e) {
    const last = this.last.get(e.room);
    if (last === undefined) return this.problems.push(`event of ${e.room}, not one of this client's rooms`);
    if (e.seq !== last + 1) this.problems.push(`${e.room}: seq ${e.seq} applied after ${last}`);
    this.last.set(e.room, Math.max(last, e.seq));
    const items = this.items.get(e.room);
    if (e.type === 'item.put') items.set(e.id, { version: e.version, data: JSON.stringify(e.data) });
    else items.delete(e.id);
    this.applied++;
  }
}

// write sends one write, again while the stack is down (a restart): a
// request cut off may or may not have been stored, and the comparison at
// the end is with the store, so repeating it is harmless.
async function write(url, init) {
  const start = Date.now();
  for (;;) {
    try {
      const r = await fetch(url, init);
      await r.arrayBuffer();
      if (r.status < 500) return r.status;
    } catch {
      // not listening: the stack is restarting
    }
    if (Date.now() - start > 30_000) return 'no answer within 30 s';
    await sleep(100);
  }
}

// The room's items and last seq as the store has them.
async function stored(room) {
  const r = await fetch(`${HTTP}/rooms/${room}/items?limit=1000`, { headers: auth() });
  assert.equal(r.status, 200);
  const body = await r.json();
  const items = new Map(body.items.map((it) => [it.id, { version: it.version, data: JSON.stringify(it.data) }]));
  return { items, last: body.last };
}

test('every client ends with every item, each event applied once, in order', { timeout: 170_000 }, async (t) => {
  const run = randomBytes(3).toString('hex');
  const rooms = Array.from({ length: ROOMS }, (_, i) => `chaos-${run}-${i}`);
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const mine = Array.from({ length: ROOMS_PER_CLIENT }, (_, k) => rooms[(i * 3 + k) % ROOMS]);
    const holder = new Holder(mine);
    const client = connect(WS, {
      room: mine[0],
      token: TOKEN,
      api: HTTP,
      backoff: { initial: 50, max: 1000, resetAfter: 1000 },
    });
    // The rooms are empty: what this client holds is as of seq 0.
    for (const room of mine) client.track(room, 0);
    client.on('event', (e) => holder.apply(e));
    client.on('recovered', (d) => (holder.recovered += d.count));
    client.on('resync', (d) => holder.problems.push(`resync of ${d.room} at ${d.last}: the history should reach back`));
    client.on('close', (d) => {
      holder.closes++;
      if (d.code === 1001) holder.idleCuts++;
    });
    await Promise.all(mine.slice(1).map((room) => client.subscribe(room)));
    clients.push({ client, holder, mine });
  }
  t.after(() => clients.forEach(({ client }) => client.close()));

  const chaos = { resets: 0, kicks: 0, storms: 0, restartDownMs: null };
  let writing = true;
  const chaosLoop = (async () => {
    while (writing) {
      await sleep(20 + Math.random() * 60);
      const dice = Math.random();
      if (dice < 0.4) chaos.resets += (await control('/reset')).reset ? 1 : 0;
      else if (dice < 0.7) chaos.kicks += (await control('/kick-one')).kicked ? 1 : 0;
      else if (dice < 0.85) {
        await control(`/storm?status=${Math.random() < 0.5 ? 429 : 500}&ms=300`);
        chaos.storms++;
      }
    }
  })();

  const started = Date.now();
  let next = 0;
  let until = WRITES;
  const refused = [];
  async function writer() {
    while (next < until) {
      const i = next++;
      const room = rooms[i % ROOMS];
      const id = `i${(i * 7) % IDS_PER_ROOM}`;
      const del = i % 9 === 4;
      const init = del
        ? { method: 'DELETE', headers: auth() }
        : { method: 'PUT', headers: auth({ 'Content-Type': 'application/json' }), body: JSON.stringify({ i }) };
      if (RESTART && i === Math.floor(WRITES / 2)) chaos.restartDownMs = (await control('/restart')).downMs;
      const status = await write(`${HTTP}/rooms/${room}/items/${id}`, init);
      if (!(status < 300 || (del && status === 404))) refused.push(`${init.method} ${room}/${id}: ${status}`);
      await sleep(PACE_MS * Math.random() * 2);
    }
  }
  await Promise.all(Array.from({ length: WRITERS }, writer));
  const wrote = Date.now() - started;
  writing = false;
  await chaosLoop;
  assert.deepEqual(refused, [], 'every write is accepted');

  // Settle: every client reaches each of its rooms' last seq, by the
  // sockets or by recovery (a lost post closes its socket, and the client
  // reads what it missed when it reconnects).
  const want = new Map();
  const settle = async () => {
    for (const room of rooms) want.set(room, await stored(room));
    const behind = () =>
      clients.flatMap(({ client, holder, mine }, i) =>
        mine.filter((room) => holder.last.get(room) < want.get(room).last || !client.synced).map((room) => `client ${i} ${room}`),
      );
    const start = Date.now();
    while (behind().length > 0 && Date.now() - start < SETTLE_MS) await sleep(100);
    assert.deepEqual(behind(), [], `clients not caught up after ${SETTLE_MS} ms`);
    return Date.now() - start;
  };
  const settled = await settle();

  // Idle cuts: quiet for longer than the stack's idle timeout (2 s) cuts
  // every socket; a write to each room afterwards reaches every client.
  await sleep(2500);
  const idleCuts = clients.reduce((n, c) => n + c.holder.idleCuts, 0);
  assert.ok(idleCuts > 0, 'idle sockets were cut');
  until += ROOMS;
  await writer();
  assert.deepEqual(refused, [], 'every write after the idle cuts is accepted');
  await settle();

  clients.forEach(({ holder, mine }, i) => {
    assert.deepEqual(holder.problems, [], `client ${i} applied out of order`);
    for (const room of mine) {
      assert.deepEqual(holder.items.get(room), want.get(room).items, `client ${i} holds room ${room} as the store does`);
    }
  });
  const sum = (f) => clients.reduce((n, c) => n + f(c.holder), 0);
  const summary = {
    writes: until,
    rooms: ROOMS,
    clients: CLIENTS,
    roomsPerClient: ROOMS_PER_CLIENT,
    ...chaos,
    socketCloses: sum((h) => h.closes),
    idleCuts,
    eventsApplied: sum((h) => h.applied),
    recoveredFromHistory: sum((h) => h.recovered),
    writeMs: wrote,
    settleMs: settled,
  };
  console.log(`chaos summary ${JSON.stringify(summary)}`);
  assert.ok(chaos.resets > 0 && chaos.kicks > 0, 'sockets were reset and closed');
  assert.ok(summary.socketCloses > 0, 'clients saw their sockets end');
});
