// pushgate.js on Node's own WebSocket (not a browser, no fake), against a
// local stack: a refused connection fires "error" and never "close" there,
// and the client must keep retrying until the stack is reachable.
//
// browsertest_test.go runs this with:
//   PUSHGATE_HTTP_URL     the HTTP API
//   PUSHGATE_LATE_WS_URL  a WebSocket stage URL on a port nothing listens on yet
//   PUSHGATE_CONTROL_URL  POST /listen makes that port forward to the stack
//   PUSHGATE_TOKEN        a token that joins and writes every room
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from '../../../web/pushgate.js';

const HTTP = need('PUSHGATE_HTTP_URL');
const LATE_WS = need('PUSHGATE_LATE_WS_URL');
const TOKEN = need('PUSHGATE_TOKEN');
const CONTROL = need('PUSHGATE_CONTROL_URL');

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this through go test ./internal/testkit/browsertest`);
  return v;
}

// until resolves with the first detail of type for which pred holds.
function until(client, type, pred = () => true, ms = 8000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} within ${ms} ms (state ${client.state})`));
    }, ms);
    const off = client.on(type, (detail) => {
      if (!pred(detail)) return;
      clearTimeout(timer);
      off();
      resolve(detail);
    });
  });
}

test('keeps retrying a refused connection until the server is there', { timeout: 30_000 }, async (t) => {
  assert.equal(typeof globalThis.WebSocket, 'function', 'run node with --experimental-websocket on Node 20');
  const room = `node-${randomBytes(4).toString('hex')}`;
  const client = connect(LATE_WS, { room, token: TOKEN, backoff: { initial: 100, max: 300 } });
  t.after(() => client.close());
  // Refused: each attempt fails and the next is scheduled.
  await until(client, 'retry', (r) => r.attempt >= 3);
  assert.equal(client.state, 'reconnecting');

  const res = await fetch(`${CONTROL}/listen`, { method: 'POST' });
  assert.equal(res.status, 200, await res.text());
  await until(client, 'open');
  const me = await client.whoami();
  assert.match(me.connectionId, /^[A-Za-z0-9_-]{15}=$/);
  assert.deepEqual(me.rooms, [room]);

  const event = until(client, 'event', (e) => e.id === 'n1');
  const put = await fetch(`${HTTP}/rooms/${room}/items/n1`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
    body: '{"from":"node"}',
  });
  assert.equal(put.status, 201);
  assert.deepEqual((await event).data, { from: 'node' });
});
