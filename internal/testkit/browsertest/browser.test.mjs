// Browser tests of the demo board (web/index.html) and the game page
// (web/game.html) in headless Chromium, against a local stack.
//
// browsertest_test.go starts the stack and a control server and runs this
// with the URLs in the environment:
//   PUSHGATE_HTTP_URL     the HTTP API, which also serves web/
//   PUSHGATE_WS_URL       the WebSocket stage URL
//   PUSHGATE_CONTROL_URL  POST /kick[?room=] closes sockets server-side; GET /connections;
//                         POST /hostile?room=; POST /listen
//   PUSHGATE_LATE_WS_URL  a WebSocket stage URL that refuses connections until POST /listen
//   PUSHGATE_TOKEN        a token that joins and writes every room
//   PUSHGATE_ROOM_A_TOKEN a token for room room-a only
//   PUSHGATE_CHROMIUM     the Chromium binary (default /usr/bin/chromium)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

const HTTP = need('PUSHGATE_HTTP_URL');
const WS = need('PUSHGATE_WS_URL');
const CONTROL = need('PUSHGATE_CONTROL_URL');
const LATE_WS = need('PUSHGATE_LATE_WS_URL');
const TOKEN = need('PUSHGATE_TOKEN');
const ROOM_A_TOKEN = need('PUSHGATE_ROOM_A_TOKEN');
const CHROMIUM = process.env.PUSHGATE_CHROMIUM || '/usr/bin/chromium';

const TEST_TIMEOUT = 20_000;
const WAIT = 8_000; // for one expected change on a page

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this through go test ./internal/testkit/browsertest`);
  return v;
}

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
});

after(async () => {
  await browser?.close();
});

const uniqueRoom = (prefix) => `${prefix}-${randomBytes(4).toString('hex')}`;

// openPage opens url in a fresh browser context (a separate user) that the
// test closes when done, and records the page's uncaught errors; beforeLoad
// may add listeners before the page starts.
async function openPage(t, url, beforeLoad = () => {}) {
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.errors = [];
  page.console = [];
  page.on('pageerror', (err) => page.errors.push(err.message));
  page.on('console', (m) => page.console.push(`${m.type()}: ${m.text()}`));
  t.after(() => {
    assert.deepEqual(page.errors, [], `uncaught errors on ${url}\nconsole:\n${page.console.join('\n')}`);
  });
  beforeLoad(page);
  await page.goto(url);
  return page;
}

async function openBoard(t, room, { explicit = true } = {}) {
  const q = new URLSearchParams({ room });
  // Without api/ws the page reads them from the stack's /config.json.
  if (explicit) {
    q.set('api', HTTP);
    q.set('ws', WS);
  }
  const page = await openPage(t, `${HTTP}/?${q}`);
  await page.locator('[data-testid="conn-state"][data-state="open"]').waitFor();
  // A marker that a reload would lose: changes must arrive without one.
  await page.evaluate(() => {
    window.notReloaded = true;
  });
  return page;
}

const item = (page, id) => page.locator(`li[data-testid="item"][data-id="${id}"]`);

async function waitForItem(page, id, version, text) {
  const li = page.locator(`li[data-testid="item"][data-id="${id}"][data-version="${version}"]`);
  await li.waitFor();
  assert.equal(await li.locator('[data-testid="item-text"]').textContent(), text);
}

async function states(page) {
  return page.evaluate(() => window.demo.states.slice());
}

async function assertNotReloaded(page) {
  assert.equal(await page.evaluate(() => window.notReloaded === true), true, 'the page was reloaded');
}

async function control(method, path) {
  const r = await fetch(CONTROL + path, { method });
  const body = await r.text();
  assert.equal(r.status, 200, `${method} ${path}: ${body}`);
  return JSON.parse(body);
}

test('board: changes from one page appear live on another', { timeout: TEST_TIMEOUT }, async (t) => {
  const room = uniqueRoom('board');
  const a = await openBoard(t, room, { explicit: false });
  const b = await openBoard(t, room);
  assert.equal(await a.evaluate(() => window.demo.ws), WS, 'page A took the socket URL from /config.json');

  await a.fill('[data-testid="new-id"]', 'note-1');
  await a.fill('[data-testid="new-text"]', 'first <b>draft</b>');
  await a.click('[data-testid="add"]');
  await waitForItem(a, 'note-1', 1, 'first <b>draft</b>');
  await waitForItem(b, 'note-1', 1, 'first <b>draft</b>');

  await item(a, 'note-1').locator('[data-testid="edit"]').click();
  await item(a, 'note-1').locator('[data-testid="edit-text"]').fill('second draft');
  await item(a, 'note-1').locator('[data-testid="save"]').click();
  await waitForItem(b, 'note-1', 2, 'second draft');
  await waitForItem(a, 'note-1', 2, 'second draft');

  // A page opened now gets the item from the initial list.
  const c = await openBoard(t, room);
  await waitForItem(c, 'note-1', 2, 'second draft');

  await item(a, 'note-1').locator('[data-testid="delete"]').click();
  await item(b, 'note-1').waitFor({ state: 'detached' });
  await item(c, 'note-1').waitFor({ state: 'detached' });
  await item(a, 'note-1').waitFor({ state: 'detached' });

  // B saw everything live: never reloaded, never reconnected, and the log
  // shows the event frames.
  await assertNotReloaded(b);
  assert.deepEqual(await states(b), ['connecting', 'open']);
  const types = await b.evaluate(() =>
    [...document.querySelectorAll('[data-testid="log"] li[data-kind="in"]')]
      .map((li) => li.textContent)
      .filter((s) => s.includes('"action":"event"'))
      .map((s) => JSON.parse(s.slice(s.indexOf('{'))).type)
      .reverse(),
  );
  assert.deepEqual(types, ['item.put', 'item.put', 'item.deleted']);
});

test('board: an edit against a stale version is refused', { timeout: TEST_TIMEOUT }, async (t) => {
  const room = uniqueRoom('stale');
  const a = await openBoard(t, room);
  const b = await openBoard(t, room);
  await a.fill('[data-testid="new-id"]', 'x');
  await a.fill('[data-testid="new-text"]', 'v1');
  await a.click('[data-testid="add"]');
  await waitForItem(b, 'x', 1, 'v1');

  await item(b, 'x').locator('[data-testid="edit"]').click(); // B starts from v1
  await item(a, 'x').locator('[data-testid="edit"]').click();
  await item(a, 'x').locator('[data-testid="edit-text"]').fill('v2 by A');
  await item(a, 'x').locator('[data-testid="save"]').click();
  await item(b, 'x').locator('[data-testid="edit-note"]', { hasText: 'changed meanwhile' }).waitFor();

  await item(b, 'x').locator('[data-testid="edit-text"]').fill('v2 by B');
  await item(b, 'x').locator('[data-testid="save"]').click();
  await b.locator('[data-testid="error"]', { hasText: 'changed by someone else' }).waitFor();
  await item(b, 'x').locator('[data-testid="cancel"]').click();
  await waitForItem(b, 'x', 2, 'v2 by A');
});

test('board: survives the server closing its socket', { timeout: TEST_TIMEOUT }, async (t) => {
  const room = uniqueRoom('kick');
  const a = await openBoard(t, room);
  const b = await openBoard(t, room);

  const { kicked } = await control('POST', `/kick?room=${room}`);
  assert.equal(kicked, 2, 'both pages had a socket in the room');
  for (const page of [a, b]) {
    await page.waitForFunction(() => {
      const s = window.demo.states;
      return s.includes('reconnecting') && s.at(-1) === 'open';
    });
  }
  assert.deepEqual(await states(b), ['connecting', 'open', 'reconnecting', 'open']);
  const { ids } = await control('GET', '/connections');
  assert.equal(ids.length >= 2, true, `open sockets after the kick: ${ids}`);

  await a.fill('[data-testid="new-id"]', 'after-kick');
  await a.fill('[data-testid="new-text"]', 'still here');
  await a.click('[data-testid="add"]');
  await waitForItem(b, 'after-kick', 1, 'still here');
  await assertNotReloaded(b);
  assert.equal((await states(b)).at(-1), 'open', 'the item came over the socket, not a reconnect');
});

test('board: keeps trying a stack that is not up yet, then connects', { timeout: TEST_TIMEOUT }, async (t) => {
  const room = uniqueRoom('late');
  const page = await openPage(t, `${HTTP}/?${new URLSearchParams({ room, api: HTTP, ws: LATE_WS })}`);
  await page.waitForFunction(() => window.demo.states.includes('reconnecting'));
  await control('POST', '/listen');
  await page.locator('[data-testid="conn-state"][data-state="open"]').waitFor();
  await page.waitForFunction(() => /^[A-Za-z0-9_-]{15}=$/.test(window.demo.connectionId));
});

test('board: stays connected while another client sends invalid bytes', { timeout: TEST_TIMEOUT }, async (t) => {
  const room = uniqueRoom('hostile');
  const a = await openBoard(t, room);
  // The page shows its own connection id, which the server knows.
  await a.waitForFunction(() => /^[A-Za-z0-9_-]{15}=$/.test(document.querySelector('[data-testid="conn-id"]').textContent));
  const shown = await a.locator('[data-testid="conn-id"]').textContent();
  const { ids } = await control('GET', '/connections');
  assert.ok(ids.includes(shown), `the page shows ${JSON.stringify(shown)}, not one of ${ids}`);
  const framesBefore = await a.locator('[data-testid="log"] li[data-kind="in"]').count();

  const answers = await control('POST', `/hostile?room=${room}`);
  assert.deepEqual(
    answers.replies.map((r) => r.code),
    ['invalid_json', 'invalid_json', 'unknown_action'],
  );
  assert.ok(JSON.stringify(answers.replies[2]).length < 1024, 'the error frame echoes a short prefix only');
  assert.equal(answers.binaryClose, 1003);

  // Nothing reached the page, which is still on its first socket and
  // still gets the room's changes.
  const b = await openBoard(t, room);
  await b.fill('[data-testid="new-id"]', 'after');
  await b.fill('[data-testid="new-text"]', 'still connected');
  await b.click('[data-testid="add"]');
  await waitForItem(a, 'after', 1, 'still connected');
  assert.deepEqual(await states(a), ['connecting', 'open']);
  const inFrames = await a.evaluate(() =>
    [...document.querySelectorAll('[data-testid="log"] li[data-kind="in"]')].map((li) => li.textContent),
  );
  assert.equal(inFrames.length, framesBefore + 1, `frames after the hostile ones: ${inFrames.slice(0, 3)}`);
  assert.match(inFrames[0], /"action":"event"/);
  await assertNotReloaded(a);
});

test('game: two pages see each other through the original protocol', { timeout: TEST_TIMEOUT }, async (t) => {
  const room = uniqueRoom('game');
  // The original client's URL with ?token= appended: all it takes.
  const url = (id) => `${HTTP}/game.html?${new URLSearchParams({ room, ws: `${WS}?token=${encodeURIComponent(TOKEN)}`, id })}`;
  const sent = [];
  const received = [];
  const alice = await openPage(t, url('alice'), (page) =>
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => sent.push(JSON.parse(f.payload)));
      ws.on('framereceived', (f) => received.push(String(f.payload)));
    }),
  );
  await alice.locator('[data-testid="game-state"][data-state="open"]').waitFor();
  const bob = await openPage(t, url('bob'));
  await bob.locator('[data-testid="game-state"][data-state="open"]').waitFor();

  // Bob announces himself on open; Alice answers a newcomer with her position.
  await alice.locator('[data-testid="player"][data-id="bob"]').waitFor();
  await bob.locator('[data-testid="player"][data-id="alice"]').waitFor();

  // A frame without data.data.id must not disturb the game: an item event
  // pushed to the room.
  const put = await fetch(`${HTTP}/rooms/${room}/items/ball`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ data: { kind: 'no id here' } }),
  });
  assert.equal(put.status, 201);
  await waitUntil(() => received.some((s) => s.includes('"action":"event"')), 'the event frame reached alice');

  // Alice moves; Bob sees where she went.
  await alice.locator('[data-testid="field"]').click({ position: { x: 100, y: 60 } });
  const me = alice.locator('[data-testid="me"]');
  const [x, y] = [await me.getAttribute('data-x'), await me.getAttribute('data-y')];
  await bob.locator(`[data-testid="player"][data-id="alice"][data-x="${x}"][data-y="${y}"]`).waitFor();

  assert.deepEqual(await alice.locator('[data-testid="player"]').evaluateAll((els) => els.map((e) => e.dataset.id)), ['bob']);
  assert.deepEqual(await bob.locator('[data-testid="player"]').evaluateAll((els) => els.map((e) => e.dataset.id)), ['alice']);

  // Exactly the game protocol went out: numbered update frames to everyone.
  assert.ok(sent.length >= 2, `alice sent ${sent.length} frames`);
  sent.forEach((f, i) => {
    assert.deepEqual(Object.keys(f), ['action', 'target', 'number', 'data']);
    assert.equal(f.action, 'update');
    assert.equal(f.target, '*');
    assert.equal(f.number, i + 1);
    assert.deepEqual(Object.keys(f.data), ['type', 'data']);
    assert.equal(f.data.type, 'move');
    assert.equal(f.data.data.id, 'alice');
    assert.equal(typeof f.data.data.x, 'number');
    assert.equal(typeof f.data.data.y, 'number');
  });
  assert.deepEqual(sent.at(-1).data.data, { id: 'alice', x: Number(x), y: Number(y) });
  // What Bob's moves looked like on arrival: the relay frame.
  const relay = received.map((s) => JSON.parse(s)).find((f) => f.action === 'update');
  assert.equal(typeof relay.from, 'string');
  assert.equal(relay.data.data.id, 'bob');
});

async function waitUntil(cond, what, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('board: gets its token from config.json and uses it on the socket and the HTTP API', { timeout: TEST_TIMEOUT }, async (t) => {
  const room = uniqueRoom('tokens');
  const requests = [];
  const page = await openPage(t, `${HTTP}/?${new URLSearchParams({ room })}`, (p) =>
    p.on('request', (r) => requests.push({ url: r.url(), auth: r.headers().authorization })),
  );
  await page.locator('[data-testid="conn-state"][data-state="open"]').waitFor();
  const token = await page.evaluate(() => window.demo.token);
  assert.match(token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/, 'config.json gave the page a token');
  assert.ok(new URL(await page.evaluate(() => window.demo.client.url)).searchParams.get('token') === token, 'the socket carries it');
  await page.fill('[data-testid="new-id"]', 'with-token');
  await page.fill('[data-testid="new-text"]', 'written with the page token');
  await page.click('[data-testid="add"]');
  await waitForItem(page, 'with-token', 1, 'written with the page token');
  const put = requests.find((r) => r.url.includes('/items/with-token'));
  assert.equal(put?.auth, `Bearer ${token}`);
});

test('board: a token for another room never opens, and writes nothing', { timeout: TEST_TIMEOUT }, async (t) => {
  const room = uniqueRoom('not-mine');
  const page = await openPage(t, `${HTTP}/?${new URLSearchParams({ room, token: ROOM_A_TOKEN })}`);
  await page.waitForFunction(() => window.demo.states.includes('reconnecting'));
  assert.ok(!(await states(page)).includes('open'), 'the socket opened with a token for room-a only');
  const list = await fetch(`${HTTP}/rooms/${room}/items`, { headers: { Authorization: `Bearer ${ROOM_A_TOKEN}` } });
  assert.equal(list.status, 403);
  assert.equal((await list.json()).error.code, 'forbidden');
  // The same token opens its own room.
  const own = await openPage(t, `${HTTP}/?${new URLSearchParams({ room: 'room-a', token: ROOM_A_TOKEN })}`);
  await own.locator('[data-testid="conn-state"][data-state="open"]').waitFor();
});

test('board: a missed event is filled from the history, and the log shows it', { timeout: TEST_TIMEOUT }, async (t) => {
  const room = uniqueRoom('gap');
  const page = await openBoard(t, room, { explicit: false });
  await page.waitForFunction(() => /^[A-Za-z0-9_-]{15}=$/.test(window.demo.connectionId));
  const id = await page.evaluate(() => window.demo.connectionId);
  const put = async (item, text) => {
    const r = await fetch(`${HTTP}/rooms/${room}/items/${item}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ text }),
    });
    assert.equal(r.status, 201, await r.text());
  };
  await put('a', 'first');
  await waitForItem(page, 'a', 1, 'first');
  // The board misses b: it is out of the room's members while b is written.
  await control('POST', `/mute?${new URLSearchParams({ room, id })}`);
  await put('b', 'missed');
  await control('POST', `/unmute?${new URLSearchParams({ room, id })}`);
  await put('c', 'third');
  // c's seq says one is missing: the board reads it from the history.
  await waitForItem(page, 'b', 1, 'missed');
  await waitForItem(page, 'c', 1, 'third');
  await page.locator('#log li[data-kind="recovered"]').waitFor();
  const recovered = await page.locator('#log li[data-kind="recovered"]').first().textContent();
  assert.match(recovered, /1 missed event after seq 1/);
  await page.waitForFunction(() => window.demo.synced === true);
  await assertNotReloaded(page);
});
