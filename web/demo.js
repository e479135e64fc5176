// The live board: a room's items, written through the HTTP API and kept
// current by the event frames pushgate pushes to every page in the room.
//
// Query parameters: room (default "lobby"), api (HTTP API base URL), ws
// (WebSocket stage URL), token (sent as ?token= on the socket and as the
// HTTP API's bearer token). What is missing the page asks config.json for
// (the local stack serves one, with a development token), then falls back
// to this origin and ws://<host>:3001/prod.
import { connect } from './pushgate.js';

// 1-128 of A-Z a-z 0-9 _ . : -, but not the dot segments . and .., which URLs resolve away.
const NAME_RE = /^(?!\.\.?$)[A-Za-z0-9_.:-]{1,128}$/;
const LOG_LIMIT = 200;
const params = new URLSearchParams(location.search);
const room = params.get('room') || 'lobby';

const $ = (id) => document.getElementById(id);
const el = {
  state: $('conn-state'),
  detail: $('conn-detail'),
  connID: $('conn-id'),
  roomName: $('room-name'),
  roomForm: $('room-form'),
  roomInput: $('room-input'),
  addForm: $('add-form'),
  newId: $('new-id'),
  newText: $('new-text'),
  error: $('error'),
  items: $('items'),
  empty: $('empty'),
  template: $('item-template'),
  log: $('log'),
  clearLog: $('clear-log'),
  apiURL: $('api-url'),
  wsURL: $('ws-url'),
  gameLink: $('game-link'),
};

// The board's state. Versions only grow, so every change (event, HTTP
// response, list) is applied only when newer than what the page knows;
// `gone` remembers deleted versions so a late put cannot resurrect an item.
const items = new Map(); // id → {id, version, data, updatedAt}
const gone = new Map(); // id → version of the delete
const rows = new Map(); // id → <li>
const reload = { generation: 0, touched: null };

// For tests and the curious.
const demo = { room, items, states: [], client: null, api: '', ws: '', connectionId: '', synced: false };
window.demo = demo;

main().catch((err) => showError(`startup failed: ${err.message}`));

async function main() {
  el.roomName.textContent = room;
  el.roomInput.value = room;
  document.title = `${room} — pushgate live board`;
  if (!NAME_RE.test(room)) {
    setState('closed', 'invalid room name: use 1-128 of A-Z a-z 0-9 _ . : -, not . or ..');
    return;
  }
  const { api, ws, token } = await endpoints();
  demo.api = api;
  demo.ws = ws;
  demo.token = token;
  el.apiURL.textContent = api;
  el.wsURL.textContent = ws;
  // The game page takes the token in its WebSocket URL, as the original
  // game client does.
  const gameWS = new URL(ws);
  if (token) gameWS.searchParams.set('token', token);
  el.gameLink.href = `game.html?${new URLSearchParams({ room, ws: gameWS.toString() })}`;
  wireForms(api);

  // With api, the client recovers events it missed (after a reconnect, or
  // on a gap in seq) from the room's history before applying newer ones.
  const client = connect(ws, { room, token, api });
  demo.client = client;
  setState(client.state);
  client.on('state', ({ state }) => setState(state));
  client.on('retry', ({ attempt, delay }) => {
    el.detail.textContent = `retry ${attempt} in ${(delay / 1000).toFixed(1)} s`;
  });
  client.on('open', ({ reconnect, rotated }) => {
    el.detail.textContent = '';
    // The id a backend posts to through the Management API; a new socket
    // has a new one.
    el.connID.textContent = '';
    client
      .whoami()
      .then(({ connectionId }) => {
        demo.connectionId = connectionId;
        el.connID.textContent = connectionId;
      })
      .catch(() => {}); // lost before the answer: the next open asks again
    logLine('open', rotated ? 'connection replaced' : reconnect ? 'reconnected' : 'connected');
    // The first time, read the room: the socket is in it already, so no
    // change falls between. After that the client fills what the socket
    // missed from the history ("recovered" below), or says it cannot
    // ("resync").
    if (!reconnect) loadAll(api).catch((err) => showError(`loading the room failed: ${err.message}`));
  });
  client.on('recovered', ({ after, last, count }) => {
    logLine('recovered', `${count} missed event${count === 1 ? '' : 's'} after seq ${after} read from the history, now at seq ${last}`);
  });
  client.on('resync', ({ last }) => {
    logLine('resync', `the history no longer reaches back; reloading the room (seq ${last})`);
    loadAll(api).catch((err) => showError(`loading the room failed: ${err.message}`));
  });
  client.on('synced', ({ synced }) => {
    demo.synced = synced;
    el.state.dataset.synced = String(synced);
  });
  client.on('close', ({ code, reason, willReconnect }) => {
    logLine('close', `${code}${reason ? ' ' + reason : ''}${willReconnect ? ', reconnecting' : ''}`);
  });
  client.on('frame', (f) => logLine('in', JSON.stringify(f)));
  client.on('event', (e) => {
    if (e.room !== room) return;
    if (e.type === 'item.put') applyPut({ id: e.id, version: e.version, data: e.data, updatedAt: e.time });
    else if (e.type === 'item.deleted') applyDelete(e.id, e.version);
  });
  addEventListener('pagehide', () => client.close());
}

async function endpoints() {
  let api = params.get('api');
  let ws = params.get('ws');
  let token = params.get('token');
  if (!api || !ws || !token) {
    try {
      const r = await fetch(new URL('config.json', location.href), {
        cache: 'no-store',
        signal: AbortSignal.timeout(3000),
      });
      if (r.ok) {
        const c = await r.json();
        api ||= c.httpApi;
        ws ||= c.webSocket;
        token ||= c.token;
      }
    } catch {
      // Not served by the local stack: fall back below.
    }
  }
  api ||= location.protocol.startsWith('http') ? location.origin : 'http://127.0.0.1:3000';
  ws ||= `ws://${location.hostname || '127.0.0.1'}:3001/prod`;
  return { api: api.replace(/\/+$/, ''), ws, token: token || undefined };
}

// --- HTTP API ---

function itemURL(api, id) {
  return `${api}/rooms/${encodeURIComponent(room)}/items/${encodeURIComponent(id)}`;
}

// request performs one API call and returns the parsed body, throwing an
// Error carrying the API's error code and message.
async function request(method, url, { body, headers = {} } = {}) {
  const init = { method, headers: { ...headers }, cache: 'no-store' };
  if (demo.token) init.headers.Authorization = `Bearer ${demo.token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  logLine('http', `${method} ${url}${headers['If-Match'] ? ' If-Match: ' + headers['If-Match'] : ''}`);
  const r = await fetch(url, init);
  const text = await r.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below if the status is an error
  }
  if (!r.ok) {
    const e = parsed?.error;
    const err = new Error(e?.message || `${r.status} ${r.statusText}`);
    err.status = r.status;
    err.code = e?.code || String(r.status);
    err.body = parsed;
    throw err;
  }
  return parsed;
}

async function loadAll(api) {
  const generation = ++reload.generation;
  reload.touched = new Set();
  // Tombstones only guard against late events; after a reconnect the list is
  // the truth (and a local stack restarted on an empty store counts
  // versions from 1 again).
  gone.clear();
  const listed = new Map();
  let cursor = '';
  do {
    const q = new URLSearchParams({ limit: '100' });
    if (cursor) q.set('cursor', cursor);
    const page = await request('GET', `${api}/rooms/${encodeURIComponent(room)}/items?${q}`);
    if (generation !== reload.generation) return; // a newer reload took over
    // The room as of seq last: events after it are the ones to follow.
    if (!cursor && Number.isInteger(page.last)) demo.client?.track(room, page.last);
    for (const it of page.items) listed.set(it.id, it);
    cursor = page.next || '';
  } while (cursor);
  const touched = reload.touched;
  reload.touched = null;
  // The list is the truth, except about items that changed while it was
  // read: those keep whichever version is newer.
  for (const it of listed.values()) {
    if (touched.has(it.id)) applyPut(it);
    else if (items.get(it.id)?.version !== it.version) setItem(it);
  }
  for (const id of [...items.keys()]) {
    if (!listed.has(id) && !touched.has(id)) {
      items.delete(id);
      render(id);
    }
  }
}

function wireForms(api) {
  el.roomForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = el.roomInput.value.trim();
    if (!NAME_RE.test(next)) return showError('room names are 1-128 of A-Z a-z 0-9 _ . : -, not . or ..');
    const q = new URLSearchParams(location.search);
    q.set('room', next);
    location.search = q.toString();
  });

  el.addForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const id = el.newId.value.trim() || newID();
    if (!NAME_RE.test(id)) return showError('ids are 1-128 of A-Z a-z 0-9 _ . : -, not . or ..');
    clearError();
    try {
      // If-None-Match: * makes Add a create; an existing id is edited instead.
      const it = await request('PUT', itemURL(api, id), {
        body: { text: el.newText.value },
        headers: { 'If-None-Match': '*' },
      });
      applyPut(it);
      el.newId.value = '';
      el.newText.value = '';
      el.newText.focus();
    } catch (err) {
      showError(err.code === 'conflict' ? `"${id}" already exists: edit it instead` : `add failed: ${err.message}`);
    }
  });

  el.items.addEventListener('click', async (e) => {
    const button = e.target.closest('button');
    const li = e.target.closest('li.item');
    if (!button || !li) return;
    const id = li.dataset.id;
    const it = items.get(id);
    switch (button.dataset.testid) {
      case 'edit':
        if (it) startEdit(li, it);
        break;
      case 'cancel':
        stopEdit(li);
        break;
      case 'delete':
        if (!it) return;
        clearError();
        try {
          const res = await request('DELETE', itemURL(api, id), { headers: { 'If-Match': `"${it.version}"` } });
          applyDelete(id, res.version);
        } catch (err) {
          showError(err.code === 'precondition_failed'
            ? `"${id}" changed meanwhile (now v${items.get(id)?.version ?? '?'}); not deleted`
            : `delete failed: ${err.message}`);
        }
        break;
    }
  });

  el.items.addEventListener('submit', async (e) => {
    e.preventDefault();
    const li = e.target.closest('li.item');
    const id = li.dataset.id;
    const base = Number(li.dataset.editVersion);
    const it = items.get(id);
    const input = li.querySelector('[data-testid="edit-text"]');
    clearError();
    try {
      // Other fields of the item's data are kept as they were.
      const data = { ...(isObject(it?.data) ? it.data : {}), text: input.value };
      const res = await request('PUT', itemURL(api, id), { body: data, headers: { 'If-Match': `"${base}"` } });
      stopEdit(li);
      applyPut(res);
    } catch (err) {
      showError(err.code === 'precondition_failed'
        ? `"${id}" was changed by someone else (now v${items.get(id)?.version ?? '?'}); your edit was not saved`
        : `save failed: ${err.message}`);
    }
  });

  el.clearLog.addEventListener('click', () => el.log.replaceChildren());
}

// --- board state ---

function applyPut(it) {
  reload.touched?.add(it.id);
  const known = Math.max(items.get(it.id)?.version ?? 0, gone.get(it.id) ?? 0);
  if (it.version <= known) return;
  setItem(it);
}

function setItem(it) {
  gone.delete(it.id);
  items.set(it.id, { id: it.id, version: it.version, data: it.data, updatedAt: it.updatedAt });
  render(it.id);
}

function applyDelete(id, version) {
  reload.touched?.add(id);
  const current = items.get(id);
  if (current && current.version > version) return;
  gone.set(id, Math.max(version, gone.get(id) ?? 0));
  items.delete(id);
  render(id);
}

function render(id) {
  const it = items.get(id);
  let li = rows.get(id);
  if (!it) {
    li?.remove();
    rows.delete(id);
  } else {
    if (!li) {
      li = el.template.content.firstElementChild.cloneNode(true);
      li.dataset.id = id;
      li.querySelector('.item-id').textContent = id;
      rows.set(id, li);
      // Keep the list ordered by id, as the API lists it.
      const after = [...rows.keys()].filter((k) => k > id).sort()[0];
      el.items.insertBefore(li, after ? rows.get(after) : null);
    }
    li.dataset.version = String(it.version);
    li.querySelector('.item-text').textContent = textOf(it.data);
    li.querySelector('.item-version').textContent = `v${it.version}`;
    li.title = it.updatedAt ? `updated ${it.updatedAt}` : '';
    const editing = li.dataset.editVersion;
    if (editing && Number(editing) !== it.version) {
      li.querySelector('.edit-note').textContent = `changed meanwhile (v${it.version}): saving will be refused`;
    }
    li.classList.remove('flash');
    void li.offsetWidth; // restart the highlight animation
    li.classList.add('flash');
  }
  el.empty.hidden = items.size > 0;
}

function startEdit(li, it) {
  li.dataset.editVersion = String(it.version);
  const form = li.querySelector('.item-edit');
  const input = form.querySelector('input');
  input.value = textOf(it.data);
  form.querySelector('.edit-note').textContent = '';
  form.hidden = false;
  li.querySelector('.item-view').hidden = true;
  input.focus();
  input.select();
}

function stopEdit(li) {
  delete li.dataset.editVersion;
  li.querySelector('.item-edit').hidden = true;
  li.querySelector('.item-view').hidden = false;
}

function textOf(data) {
  if (isObject(data) && typeof data.text === 'string') return data.text;
  return data === undefined ? '' : JSON.stringify(data);
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function newID() {
  const b = new Uint8Array(6);
  crypto.getRandomValues(b);
  return 'note-' + [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

// --- status and log ---

function setState(state, detail) {
  demo.states.push(state);
  el.state.textContent = state;
  el.state.dataset.state = state;
  if (detail !== undefined) el.detail.textContent = detail;
  logLine('state', state);
}

function logLine(kind, text) {
  const li = document.createElement('li');
  li.className = `log-${kind}`;
  li.dataset.kind = kind;
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  const tag = document.createElement('b');
  tag.textContent = kind;
  const body = document.createElement('span');
  body.textContent = text;
  li.append(time, ' ', tag, ' ', body);
  el.log.prepend(li);
  while (el.log.childElementCount > LOG_LIMIT) el.log.lastElementChild.remove();
}

function showError(message) {
  el.error.textContent = message;
  el.error.hidden = false;
}

function clearError() {
  el.error.hidden = true;
  el.error.textContent = '';
}
