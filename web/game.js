// A client of the original game protocol, on a raw WebSocket (deliberately
// not pushgate.js): each move is sent as
//   {"action":"update","target":"*","number":n,"data":{"type":"move","data":{"id":ID,"x":X,"y":Y}}}
// and every frame received is read for data.data.id. Frames without one
// (pong, ack, error, event, anything not JSON) are ignored.
//
// Query parameters: ws (WebSocket stage URL, with ?token= when the stage
// wants one; else config.json's URL and development token, else
// ws://<host>:3001/prod), room (sent as ?room= when given), id (player id;
// random by default).

const params = new URLSearchParams(location.search);
const myId = params.get('id') || 'p-' + Math.random().toString(36).slice(2, 8);
const STEP = 12;

const field = document.getElementById('field');
const stateEl = document.getElementById('game-state');
const playersEl = document.getElementById('players');
document.getElementById('my-id').textContent = myId;

const me = { x: 20 + Math.floor(Math.random() * 440), y: 20 + Math.floor(Math.random() * 280) };
const others = new Map(); // id → {x, y, el, li}
let number = 0;
let socket = null;
let retries = 0;

// For tests.
window.game = { id: myId, others, sent: () => number };

const meEl = dot(myId, true);
meEl.dataset.testid = 'me';
field.append(meEl);
place(meEl, me.x, me.y);

start().catch((err) => setState(`failed: ${err.message}`));

async function start() {
  let ws = params.get('ws');
  if (!ws) {
    try {
      const r = await fetch(new URL('config.json', location.href), { cache: 'no-store' });
      if (r.ok) {
        const c = await r.json();
        ws = c.webSocket;
        if (ws && c.token) ws += (ws.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(c.token);
      }
    } catch {
      // not served by the local stack
    }
  }
  ws ||= `ws://${location.hostname || '127.0.0.1'}:3001/prod`;
  const url = new URL(ws);
  if (params.get('room')) url.searchParams.set('room', params.get('room'));
  document.getElementById('ws-url').textContent = url.toString();
  open(url.toString());
}

function open(url) {
  setState('connecting');
  const ws = new WebSocket(url);
  socket = ws;
  ws.onopen = () => {
    retries = 0;
    setState('open');
    sendMove(); // let the room know where we are
  };
  ws.onmessage = (e) => received(e.data);
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    setState('closed');
    // A plain doubling retry, capped at 10 s.
    const delay = Math.min(10_000, 1000 * 2 ** retries++);
    setTimeout(() => open(url), delay);
  };
}

function received(text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    return;
  }
  const inner = msg?.data?.data;
  const id = inner?.id;
  if (typeof id !== 'string' && typeof id !== 'number') return;
  const key = String(id);
  if (key === myId) return;
  if (msg.action === 'delete') {
    forget(key);
    return;
  }
  let p = others.get(key);
  const first = !p;
  if (first) {
    p = { x: 0, y: 0, el: dot(key, false), li: document.createElement('li') };
    p.el.dataset.testid = 'player';
    p.li.dataset.testid = 'seen';
    p.li.dataset.id = key;
    field.append(p.el);
    playersEl.append(p.li);
    others.set(key, p);
  }
  if (Number.isFinite(inner.x)) p.x = inner.x;
  if (Number.isFinite(inner.y)) p.y = inner.y;
  place(p.el, p.x, p.y);
  p.li.textContent = `${key} at ${p.x}, ${p.y}`;
  // A newcomer has not seen us yet: answer its first move with ours.
  if (first) sendMove();
}

function forget(id) {
  const p = others.get(id);
  if (!p) return;
  p.el.remove();
  p.li.remove();
  others.delete(id);
}

function sendMove() {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify({
    action: 'update',
    target: '*',
    number: ++number,
    data: { type: 'move', data: { id: myId, x: me.x, y: me.y } },
  }));
}

function moveTo(x, y) {
  me.x = Math.round(Math.max(0, Math.min(field.clientWidth, x)));
  me.y = Math.round(Math.max(0, Math.min(field.clientHeight, y)));
  place(meEl, me.x, me.y);
  sendMove();
}

field.addEventListener('click', (e) => {
  const r = field.getBoundingClientRect();
  moveTo(e.clientX - r.left - field.clientLeft, e.clientY - r.top - field.clientTop);
});

field.addEventListener('keydown', (e) => {
  const d = { ArrowLeft: [-STEP, 0], ArrowRight: [STEP, 0], ArrowUp: [0, -STEP], ArrowDown: [0, STEP] }[e.key];
  if (!d) return;
  e.preventDefault();
  moveTo(me.x + d[0], me.y + d[1]);
});

function dot(id, mine) {
  const el = document.createElement('div');
  el.className = mine ? 'player me' : 'player';
  el.dataset.id = id;
  const label = document.createElement('span');
  label.textContent = mine ? `${id} (you)` : id;
  el.append(label);
  return el;
}

function place(el, x, y) {
  el.style.left = `${x}px`;
  el.style.top = `${y}px`;
  el.dataset.x = String(x);
  el.dataset.y = String(y);
}

function setState(s) {
  stateEl.textContent = s;
  stateEl.dataset.state = s;
}
