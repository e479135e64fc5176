// Unit tests of web/pushgate.js without a browser: a scripted fake WebSocket
// and node:test's fake timers drive reconnects, backoff, pings and rotation.
// Run: node --test internal/testkit/browsertest/pushgate.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../../web/pushgate.js';

// fakeSockets returns a WebSocket constructor whose instances the test
// opens, feeds and closes by hand, and the list of every instance made.
function fakeSockets() {
  const made = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      made.push(this);
    }
    send(text) {
      if (this.readyState !== 1) throw new Error('InvalidStateError: not open');
      this.sent.push(JSON.parse(text));
    }
    close(code, reason) {
      this.closedWith = { code, reason };
      this.readyState = 2;
    }
    // Test side.
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }
    receive(frame) {
      this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
    }
    serverClose(code = 1006, reason = '') {
      this.readyState = 3;
      this.onclose?.({ code, reason, wasClean: code !== 1006 });
    }
    // An error event and nothing after it, as Node 20's WebSocket does
    // for a refused connection.
    error() {
      this.onerror?.({});
    }
    actions() {
      return this.sent.map((f) => f.action);
    }
  }
  return { FakeSocket, made };
}

// setup enables fake timers and a fixed Math.random, and returns a client
// with a recorder of its events.
function setup(t, opts = {}, random = 0.5) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  t.mock.method(Math, 'random', () => random);
  const { FakeSocket, made } = fakeSockets();
  // connectTimeout 0: the tests that want it set it; node:test's mock
  // timers do not run timers set during a tick, so long ticks would
  // otherwise depend on that.
  const client = connect('ws://127.0.0.1:3001/prod', { WebSocket: FakeSocket, connectTimeout: 0, ...opts });
  const seen = [];
  for (const type of ['state', 'open', 'close', 'retry', 'frame', 'event', 'message', 'error', 'pong', 'ack', 'whoami', 'recovered', 'resync', 'synced']) {
    client.on(type, (detail) => seen.push({ type, detail }));
  }
  t.after(() => client.close());
  const of = (type) => seen.filter((e) => e.type === type).map((e) => e.detail);
  return { client, made, seen, of, tick: (ms) => t.mock.timers.tick(ms) };
}

test('dials the stage URL with room and token', (t) => {
  const { client, made } = setup(t, { room: 'game-1', token: 'a b&c' });
  assert.equal(made.length, 1);
  const u = new URL(made[0].url);
  assert.equal(u.origin + u.pathname, 'ws://127.0.0.1:3001/prod');
  assert.equal(u.searchParams.get('room'), 'game-1');
  assert.equal(u.searchParams.get('token'), 'a b&c');
  assert.equal(client.url, made[0].url);
  assert.deepEqual(client.rooms, ['game-1']);
});

test('a token function is asked before every connection', (t) => {
  let n = 0;
  const { client, made, tick } = setup(t, { room: 'r', token: () => `t${++n}`, backoff: { initial: 10, max: 10 } }, 0.999);
  assert.equal(new URL(made[0].url).searchParams.get('token'), 't1');
  made[0].serverClose(1006);
  tick(10);
  assert.equal(made.length, 2);
  assert.equal(new URL(made[1].url).searchParams.get('token'), 't2');
  assert.equal(client.url, made[1].url);
});

test('an empty token sends no token parameter', (t) => {
  const { made } = setup(t, { token: () => '' });
  assert.equal(new URL(made[0].url).searchParams.has('token'), false);
});

test('rejects an invalid room at once', () => {
  const { FakeSocket } = fakeSockets();
  assert.throws(() => connect('ws://127.0.0.1:3001/prod', { WebSocket: FakeSocket, room: 'no spaces' }), TypeError);
});

test('send throws not_open until the socket opens, then sends JSON', (t) => {
  const { client, made, of } = setup(t);
  assert.equal(client.state, 'connecting');
  assert.throws(() => client.send({ action: 'ping' }), (err) => err.code === 'not_open');
  made[0].open();
  assert.equal(client.state, 'open');
  assert.deepEqual(of('open'), [{ reconnect: false, rotated: false }]);
  client.send({ action: 'update', target: '*', number: 1, data: { x: 1 } });
  assert.deepEqual(made[0].sent, [{ action: 'update', target: '*', number: 1, data: { x: 1 } }]);
});

test('routes frames by action and ignores what is not a JSON object', (t) => {
  const { made, of } = setup(t);
  made[0].open();
  const ws = made[0];
  ws.receive('not json');
  ws.receive('[1,2]');
  ws.receive('null');
  ws.onmessage({ data: new Uint8Array([0xff, 0xfe]).buffer });
  ws.onmessage({ data: new TextEncoder().encode('{"action":"pong","time":5}').buffer });
  ws.receive({ from: 'abc', action: 'update', number: 3, data: { type: 'move' } });
  const ev = { action: 'event', eventId: 'e1', type: 'item.put', room: 'lobby', id: 'a', version: 1, data: { t: 1 } };
  ws.receive(ev);
  ws.receive(ev); // at-least-once delivery: the duplicate is dropped
  ws.receive({ ...ev, eventId: 'e2', version: 2 });
  ws.receive({ action: 'error', code: 'bad_request', message: 'nope' });
  assert.equal(of('frame').length, 6);
  assert.deepEqual(of('pong'), [{ action: 'pong', time: 5 }]);
  assert.deepEqual(of('message'), [{ from: 'abc', action: 'update', number: 3, data: { type: 'move' } }]);
  assert.deepEqual(of('event').map((e) => e.eventId), ['e1', 'e2']);
  assert.deepEqual(of('error').map((e) => e.code), ['bad_request']);
  assert.equal(made.length, 1, 'a bad_request error must not reconnect');
});

test('reconnects with full-jitter exponential backoff', (t) => {
  const backoff = { initial: 100, max: 1000, factor: 2, resetAfter: 5000 };
  const { client, made, of, tick } = setup(t, { backoff }, 0.999);
  // Never opens: caps 100, 200, 400, 800, 1000, 1000 (random just under 1).
  const want = [99, 199, 399, 799, 999, 999];
  for (let i = 0; i < want.length; i++) {
    made.at(-1).serverClose(1006);
    assert.equal(client.state, 'reconnecting');
    assert.equal(of('retry').at(-1).delay, want[i]);
    const before = made.length;
    tick(want[i] - 1);
    assert.equal(made.length, before, `attempt ${i + 1} dialled early`);
    tick(1);
    assert.equal(made.length, before + 1, `attempt ${i + 1} not dialled`);
  }
  assert.equal(of('close').length, 0, 'no socket opened, so no close event');
  // A connection that stays open resetAfter restarts the sequence.
  made.at(-1).open();
  tick(5000);
  made.at(-1).serverClose(1001, 'Going away');
  assert.equal(of('retry').at(-1).delay, 99);
  assert.deepEqual(of('close').at(-1), { code: 1001, reason: 'Going away', wasClean: true, willReconnect: true, rotated: false });
  assert.deepEqual(
    of('state').map((s) => s.state),
    ['reconnecting', 'open', 'reconnecting'],
  );
});

test('a short-lived connection does not reset the backoff', (t) => {
  const backoff = { initial: 100, max: 10000, factor: 10, resetAfter: 5000 };
  const { made, of, tick } = setup(t, { backoff }, 0.999);
  made[0].serverClose();
  tick(99);
  made[1].open();
  tick(10);
  made[1].serverClose();
  assert.equal(of('retry').at(-1).delay, 999);
});

test('pings, and treats a missing pong as a dead socket', (t) => {
  const { client, made, of, tick } = setup(t, { pingInterval: 1000, pongTimeout: 200 });
  made[0].open();
  tick(999);
  assert.deepEqual(made[0].actions(), []);
  tick(1);
  assert.deepEqual(made[0].actions(), ['ping']);
  made[0].receive({ action: 'pong', time: 1 });
  tick(1000);
  assert.deepEqual(made[0].actions(), ['ping', 'ping']);
  tick(199);
  assert.equal(client.state, 'open');
  tick(1);
  assert.deepEqual(made[0].closedWith, { code: 4000, reason: 'pong timeout' });
  assert.equal(client.state, 'reconnecting');
  assert.equal(of('close').at(-1).reason, 'pong timeout');
  tick(1000);
  assert.equal(made.length, 2);
  made[1].open();
  assert.equal(client.state, 'open');
  assert.deepEqual(of('open').at(-1), { reconnect: true, rotated: false });
});

test('re-subscribes its rooms after every reconnect', async (t) => {
  const { client, made, tick } = setup(t, { room: 'home' });
  made[0].open();
  const sub = client.subscribe('extra');
  assert.deepEqual(made[0].sent.at(-1), { action: 'subscribe', room: 'extra' });
  made[0].receive({ action: 'ack', of: 'subscribe', room: 'extra' });
  assert.deepEqual(await sub, { action: 'ack', of: 'subscribe', room: 'extra' });
  const unsub = client.unsubscribe('home');
  made[0].receive({ action: 'ack', of: 'unsubscribe', room: 'home' });
  assert.equal((await unsub).of, 'unsubscribe');
  assert.deepEqual(client.rooms, ['extra']);

  made[0].serverClose();
  // Subscribed while down: sent once the new socket opens.
  const later = client.subscribe('later');
  tick(30_000);
  made[1].open();
  assert.deepEqual(made[1].sent, [
    { action: 'unsubscribe', room: 'home' },
    { action: 'subscribe', room: 'extra' },
    { action: 'subscribe', room: 'later' },
  ]);
  made[1].receive({ action: 'ack', of: 'subscribe', room: 'later' });
  assert.equal((await later).room, 'later');
  assert.equal(new URL(made[1].url).searchParams.get('room'), 'home');
});

test('unsubscribe while not open resolves with null', async (t) => {
  const { client } = setup(t);
  assert.equal(await client.unsubscribe('x'), null);
});

test('a refused subscribe rejects and is not retried', async (t) => {
  const { client, made, tick } = setup(t);
  made[0].open();
  const sub = client.subscribe('r21');
  made[0].receive({ action: 'error', code: 'too_many_rooms', message: 'at most 20 rooms' });
  await assert.rejects(sub, (err) => err.code === 'too_many_rooms');
  made[0].serverClose();
  tick(30_000);
  made[1].open();
  assert.deepEqual(made[1].sent, []);
});

test('an unregistered connection reconnects', (t) => {
  const { client, made, of, tick } = setup(t);
  made[0].open();
  made[0].receive({ action: 'error', code: 'not_found', message: 'this connection is no longer registered; reconnect' });
  assert.equal(of('error').length, 1);
  assert.equal(made[0].closedWith.code, 4001);
  assert.equal(client.state, 'reconnecting');
  tick(30_000);
  assert.equal(made.length, 2);
});

test('replaces the connection before maxLifetime, make-before-break', (t) => {
  const { client, made, of, tick } = setup(t, { maxLifetime: 10_000, pingInterval: 0 });
  made[0].open();
  client.subscribe('extra').catch(() => {});
  made[0].receive({ action: 'ack', of: 'subscribe', room: 'extra' });
  tick(10_000);
  assert.equal(made.length, 2, 'rotation dials a second socket');
  assert.equal(client.state, 'open');
  const [old, next] = made;
  next.open();
  assert.deepEqual(next.sent, [{ action: 'subscribe', room: 'extra' }]);
  // Until the new socket is subscribed, the old one is current.
  client.send({ action: 'update', target: '*', data: 1 });
  assert.equal(old.sent.at(-1).data, 1);
  const ev = { action: 'event', eventId: 'e9', type: 'item.put', room: 'extra', id: 'a', version: 1 };
  next.receive(ev);
  old.receive(ev);
  next.receive({ from: 'x', action: 'update', data: 'echo' });
  assert.equal(of('event').length, 1);
  assert.equal(of('message').length, 0, 'relays count only from the current socket');
  next.receive({ action: 'ack', of: 'subscribe', room: 'extra' });
  assert.deepEqual(old.closedWith, { code: 1000, reason: 'rotated' });
  assert.deepEqual(of('open').at(-1), { reconnect: true, rotated: true });
  assert.equal(of('close').at(-1).rotated, true);
  assert.deepEqual(of('state').map((s) => s.state), ['open'], 'a rotation is invisible in the state');
  client.send({ action: 'update', target: '*', data: 2 });
  assert.equal(next.sent.at(-1).data, 2);
  next.receive({ from: 'x', action: 'update', data: 'now' });
  assert.equal(of('message').length, 1);
  // The old socket's late close is not a loss.
  old.serverClose(1000);
  assert.equal(client.state, 'open');
  assert.equal(made.length, 2);
});

test('a failed rotation keeps the old socket and tries again', (t) => {
  const { client, made, tick } = setup(t, { maxLifetime: 10_000, pingInterval: 0, backoff: { initial: 100 } });
  made[0].open();
  tick(10_000);
  made[1].serverClose(1006);
  assert.equal(client.state, 'open');
  tick(100);
  assert.equal(made.length, 3);
  made[2].open(); // nothing to re-subscribe: promoted at once
  assert.deepEqual(made[0].closedWith, { code: 1000, reason: 'rotated' });
});

test('close stops everything', async (t) => {
  const { client, made, of, tick } = setup(t, { pingInterval: 100 });
  made[0].open();
  const sub = client.subscribe('x');
  client.close();
  await assert.rejects(sub, (err) => err.code === 'closed');
  assert.equal(client.state, 'closed');
  assert.deepEqual(made[0].closedWith, { code: 1000, reason: 'client closed' });
  assert.equal(of('close').at(-1).willReconnect, false);
  made[0].serverClose(1000);
  tick(60_000);
  assert.equal(made.length, 1);
  assert.deepEqual(made[0].actions(), ['subscribe']);
  assert.throws(() => client.send({}), (err) => err.code === 'not_open');
});

test('a lost socket ends the waits it leaves behind', async (t) => {
  const { client, made, tick } = setup(t);
  assert.deepEqual(client.rooms, ['lobby'], 'without options.room the server joins lobby');
  made[0].open();
  const left = client.unsubscribe('lobby');
  const dropped = client.subscribe('brief');
  client.unsubscribe('brief').catch(() => {});
  const kept = client.subscribe('kept');
  made[0].serverClose();
  assert.equal(await left, null);
  await assert.rejects(dropped, (err) => err.code === 'unsubscribed');
  tick(30_000);
  made[1].open();
  assert.equal(new URL(made[1].url).searchParams.has('room'), false);
  assert.deepEqual(made[1].sent, [
    { action: 'unsubscribe', room: 'lobby' },
    { action: 'subscribe', room: 'kept' },
  ]);
  made[1].receive({ action: 'ack', of: 'subscribe', room: 'kept' });
  assert.equal((await kept).room, 'kept');
});

test('an error without a close while connecting is a failed attempt', (t) => {
  const { client, made, of, tick } = setup(t, {}, 0.5);
  made[0].error();
  assert.equal(client.state, 'reconnecting');
  assert.equal(of('retry').length, 1);
  assert.equal(of('close').length, 0, 'no socket opened, so no close event');
  assert.ok(made[0].closedWith, 'the failed socket is closed');
  tick(of('retry')[0].delay);
  assert.equal(made.length, 2);
  made[1].error();
  tick(of('retry')[1].delay);
  assert.equal(made.length, 3);
  made[2].open();
  assert.equal(client.state, 'open');
});

test('an error on an open socket without a close is a loss after a second', (t) => {
  const { client, made, of, tick } = setup(t);
  made[0].open();
  made[0].error();
  tick(999);
  assert.equal(client.state, 'open');
  tick(1);
  assert.equal(client.state, 'reconnecting');
  assert.deepEqual(of('close').map((c) => c.code), [1006]);
  // A close that does follow the error counts once.
  tick(of('retry')[0].delay);
  made[1].open();
  made[1].error();
  made[1].serverClose(1006);
  tick(1000);
  assert.equal(of('close').length, 2);
  assert.equal(of('retry').length, 2);
});

test('a socket that stays connecting is given up after connectTimeout', (t) => {
  const { client, made, of, tick } = setup(t, { connectTimeout: 3000 });
  tick(2999);
  assert.equal(client.state, 'connecting');
  tick(1);
  assert.deepEqual(made[0].closedWith, { code: 4002, reason: 'connect timeout' });
  assert.equal(client.state, 'reconnecting');
  tick(of('retry')[0].delay);
  assert.equal(made.length, 2);
  made[1].open();
  tick(10_000);
  assert.equal(client.state, 'open', 'an open socket has no connect timeout');
});

test('whoami resolves with the answer, and rejects when not open', async (t) => {
  const { client, made, of } = setup(t);
  await assert.rejects(client.whoami(), (err) => err.code === 'not_open');
  made[0].open();
  const who = client.whoami();
  assert.deepEqual(made[0].sent.at(-1), { action: 'whoami' });
  const answer = { action: 'whoami', connectionId: 'abc=', rooms: ['lobby'] };
  made[0].receive(answer);
  assert.deepEqual(await who, answer);
  assert.deepEqual(of('whoami'), [answer]);
  const lost = client.whoami();
  made[0].serverClose();
  await assert.rejects(lost, (err) => err.code === 'not_open');
});

// --- recovery of missed events (options.api) ---

// fakeHistory is a fetch answering GET …/rooms/{room}/events?after=n from
// a list of event frames, recording each call; fail makes the next calls
// fail, expired answers 410.
function fakeHistory() {
  const events = [];
  const calls = [];
  const h = { events, calls, fail: 0, expired: null };
  h.fetch = async (url, init) => {
    const u = new URL(url);
    calls.push({ path: u.pathname, after: Number(u.searchParams.get('after')), auth: init?.headers?.Authorization });
    if (h.fail > 0) {
      h.fail--;
      throw new TypeError('fetch failed');
    }
    if (h.expired !== null) {
      return { ok: false, status: 410, json: async () => ({ error: { code: 'history_expired' }, last: h.expired }) };
    }
    const after = Number(u.searchParams.get('after'));
    const page = events.filter((e) => e.seq > after);
    return { ok: true, status: 200, json: async () => ({ events: page, last: events.at(-1)?.seq ?? 0 }) };
  };
  return h;
}

const ev = (seq, room = 'r') => ({ action: 'event', eventId: `e${seq}`, seq, type: 'item.put', room, id: `i${seq}`, version: 1, time: 'x', data: { seq } });
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('a gap in seq is filled from the history, in order', async (t) => {
  const h = fakeHistory();
  h.events.push(ev(1), ev(2), ev(3));
  const { client, made, of } = setup(t, { room: 'r', api: 'http://api.test/', token: 'tok', fetch: h.fetch });
  made[0].open();
  made[0].receive(ev(1));
  made[0].receive(ev(3)); // 2 was missed
  assert.equal(client.synced, false);
  await settle();
  await settle();
  assert.deepEqual(of('event').map((e) => e.seq), [1, 2, 3]);
  assert.deepEqual(h.calls, [{ path: '/rooms/r/events', after: 1, auth: 'Bearer tok' }]);
  assert.deepEqual(of('recovered'), [{ room: 'r', after: 1, last: 3, count: 1 }]);
  assert.equal(client.synced, true);
  // Repeats of what was applied are dropped.
  made[0].receive(ev(2));
  made[0].receive(ev(3));
  assert.deepEqual(of('event').map((e) => e.seq), [1, 2, 3]);
});

test('after a reconnect the missed events come first', async (t) => {
  const h = fakeHistory();
  h.events.push(ev(1), ev(2));
  const { made, of, tick } = setup(t, { room: 'r', api: 'http://api.test', fetch: h.fetch, backoff: { initial: 10, max: 10 } });
  made[0].open();
  made[0].receive(ev(1));
  made[0].serverClose(1006);
  tick(10);
  h.events.push(ev(3));
  made[1].open();
  made[1].receive(ev(4)); // new, while the catch-up reads
  h.events.push(ev(4));
  await settle();
  await settle();
  assert.deepEqual(of('event').map((e) => e.seq), [1, 2, 3, 4]);
  assert.equal(h.calls[0].after, 1);
});

test('history that no longer reaches back asks the app to reload', async (t) => {
  const h = fakeHistory();
  h.expired = 9;
  const { client, made, of } = setup(t, { room: 'r', api: 'http://api.test', fetch: h.fetch });
  made[0].open();
  client.track('r', 2);
  made[0].receive(ev(5)); // 3 and 4 are long gone
  await settle();
  await settle();
  assert.deepEqual(of('resync'), [{ room: 'r', last: 9 }]);
  assert.deepEqual(of('event').map((e) => e.seq), [], 'seq 5 is part of the reload');
  made[0].receive(ev(10));
  assert.deepEqual(of('event').map((e) => e.seq), [10]);
  assert.equal(client.synced, true);
});

test('a history that cannot be read is tried again; events wait', async (t) => {
  const h = fakeHistory();
  h.events.push(ev(1), ev(2), ev(3));
  h.fail = 2;
  const { client, made, of, tick } = setup(t, { room: 'r', api: 'http://api.test', fetch: h.fetch, backoff: { initial: 20, max: 20 } }, 0.999);
  made[0].open();
  client.track('r', 1);
  made[0].receive(ev(3));
  for (let i = 0; i < 4; i++) {
    await settle();
    tick(20);
  }
  await settle();
  await settle();
  assert.equal(h.calls.length, 3);
  assert.deepEqual(of('event').map((e) => e.seq), [2, 3]);
  assert.equal(client.synced, true);
});

test('without options.api events pass as before', (t) => {
  const { made, of } = setup(t, { room: 'r' });
  made[0].open();
  made[0].receive(ev(1));
  made[0].receive(ev(5));
  made[0].receive(ev(5));
  assert.deepEqual(of('event').map((e) => e.seq), [1, 5]);
});
