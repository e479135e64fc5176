/**
 * pushgate.js — browser client for pushgate's WebSocket API.
 *
 * An ES module with no dependencies and no build step. It runs in browsers
 * and in any runtime with WebSocket (or the `WebSocket` option), EventTarget,
 * CustomEvent and URL.
 *
 *   import { connect } from './pushgate.js';
 *   const client = connect('wss://abc.execute-api.eu-west-1.amazonaws.com/prod', { room: 'lobby' });
 *   client.addEventListener('event', (e) => console.log(e.detail.type, e.detail.id, e.detail.data));
 *   client.on('state', ({ state }) => console.log(state));   // on() passes the detail, returns an off()
 *   await client.subscribe('game-1');
 *   client.send({ action: 'update', target: '*', number: 1, data: { hello: 'world' } });
 *   client.close();
 *
 * connect(url, options) → PushgateClient
 *   url                 ws:// or wss:// URL of the WebSocket API stage (ws://127.0.0.1:3001/prod locally).
 *   options.room        the room joined when connecting, sent as ?room= (without it the server joins
 *                       "lobby").
 *   options.token       sent as &token= (pushgate's $connect authorizer wants one): a string, or a
 *                       function returning one, called before every connection (reconnects and
 *                       rotations included), so a page can hand over a fresh token each time.
 *   options.pingInterval  ms between {"action":"ping"} frames while open; default 5 min (API Gateway
 *                       closes a socket idle for 10 min). 0 disables pings.
 *   options.pongTimeout ms to wait for the pong; no pong in time → the socket is presumed dead:
 *                       it is dropped and the client reconnects. Default 10 s.
 *   options.connectTimeout ms a socket may stay connecting before it is given up and retried;
 *                       default 10 s. Some runtimes (Node 20's WebSocket) fire "error" for a
 *                       refused connection and never "close": an error before "open" counts as
 *                       a failed attempt at once.
 *   options.maxLifetime ms after which an open connection is replaced by a fresh one, before API
 *                       Gateway's 2-hour cut; default 1 h 55 min. 0 or Infinity disables it.
 *                       Make-before-break: the new socket opens and re-subscribes while the old one
 *                       still delivers; event frames from both are de-duplicated by eventId.
 *   options.backoff     { initial = 500, max = 30000, factor = 2, resetAfter = 10000 } (ms): the n-th
 *                       retry after an unexpected close waits a random time in
 *                       [0, min(max, initial·factorⁿ)] ("full jitter"); n restarts at 0 once a
 *                       connection has stayed open resetAfter ms.
 *   options.api         the HTTP API's base URL (https://….execute-api.….amazonaws.com, or
 *                       http://127.0.0.1:3000 locally). With it the client RECOVERS missed events: it
 *                       tracks each room's last seq, and after a reconnect, a rotation, or on seeing a
 *                       gap (seq n+2 after n) it fetches the missing ones from
 *                       GET {api}/rooms/{room}/events?after=n (with the token as a bearer token)
 *                       before applying newer ones; duplicates are dropped and events are applied in
 *                       seq order. When the history no longer reaches back, it emits "resync" so the
 *                       app reads the room's items again. Without it: duplicates dropped, no recovery.
 *   options.fetch       fetch to use (tests); default globalThis.fetch.
 *   options.dedupe      how many recent eventIds to remember to drop repeated event frames (delivery
 *                       is at least once); default 1000, 0 disables.
 *   options.WebSocket   WebSocket constructor to use (tests); default globalThis.WebSocket.
 *
 * connect() throws a TypeError for an invalid room name (1-128 of A-Z a-z 0-9 _ . : -, not . or ..) or URL,
 * since retrying could never succeed.
 *
 * client.state          "connecting" (first attempt) | "open" | "reconnecting" (waiting to retry or
 *                       retrying after a failure or an unexpected close) | "closed" (after close()).
 * client.rooms          the rooms this client is in: options.room (or "lobby") unless unsubscribed,
 *                       plus the subscribe()d ones.
 * client.url            the URL actually dialled (with ?room= and &token=).
 * client.synced         true while open with nothing missed: no history being read, no event held
 *                       back behind a gap (always true without options.api, once open).
 * client.track(room, seq) tells the client the room's state it holds is as of seq (the "last" of a
 *                       GET …/items answer), so events after it are recovered even before one arrives.
 *
 * Events (EventTarget; each is a CustomEvent whose `detail` is shown):
 *   "state"    { state, previous }                  every state change.
 *   "open"     { reconnect, rotated }               a socket opened (reconnect: not the first one;
 *                                                   rotated: planned replacement, see maxLifetime).
 *   "close"    { code, reason, wasClean, willReconnect, rotated }
 *                                                   the open socket ended; every "open" gets one "close".
 *   "retry"    { attempt, delay }                   a reconnect attempt is scheduled in `delay` ms.
 *   "frame"    the parsed JSON object               every frame that is a JSON object (others ignored).
 *   "event"    { action:"event", eventId, seq, type, room, id, version, time, data }
 *                                                   item.put / item.deleted events, duplicates dropped;
 *                                                   with options.api, per room in seq order with no gap.
 *   "recovered" { room, after, last, count }        missed events were read from the history and
 *                                                   applied: count the socket never brought, after seq
 *                                                   `after`, up to seq `last`.
 *   "resync"   { room, last }                       the history no longer holds what was missed: read
 *                                                   the room's items again; events after `last` follow.
 *   "synced"   { synced }                           client.synced changed.
 *   "message"  { from, action, number, data }       update/delete frames relayed from other clients.
 *   "error"    { action:"error", code, message }    error frames. Code "not_found" means the server
 *                                                   no longer knows this connection: the client
 *                                                   reconnects by itself.
 *   "pong"     { action:"pong", time }
 *   "ack"      { action:"ack", of, room }
 *   "whoami"   { action:"whoami", connectionId, rooms }   the answer to whoami().
 *
 * client.send(obj)      JSON-encodes obj and sends it. While the client is not "open" it THROWS an
 *                       Error with code "not_open" instead of queueing: stale relays (positions,
 *                       moves) are worse than none, and the caller knows best what to resend.
 *                       Subscriptions need no resending: see subscribe().
 * client.subscribe(room)   joins room now if open, and again after every reconnect. Returns a
 *                       Promise resolved with the ack frame (possibly only after a reconnect);
 *                       rejected for an invalid name, more than 20 rooms, an invalid_room /
 *                       too_many_rooms error frame, or close().
 * client.unsubscribe(room) leaves room (also options.room: it stays left across reconnects). Resolves
 *                       with the ack, or with null when not open or the socket is lost before the ack
 *                       (the next connection does not join the room).
 * client.whoami()       asks the server who this connection is. Resolves with
 *                       { action:"whoami", connectionId, rooms }: the id a backend posts to through the
 *                       Management API, and the rooms the server has for it. Rejects with code
 *                       "not_open" while not open or when the socket is lost before the answer.
 * client.on(type, fn)   addEventListener that calls fn(detail); returns a function removing it.
 * client.close()        closes for good: no more reconnects, timers cleared, pending promises rejected.
 */

const OPEN = 1; // WebSocket.OPEN, constant so fake constructors need not define it
const MAX_ROOMS = 20;
// 1-128 of A-Z a-z 0-9 _ . : -, not . or .., but not the dot segments . and .., which URLs resolve away.
const NAME_RE = /^(?!\.\.?$)[A-Za-z0-9_.:-]{1,128}$/;
const DEFAULT_ROOM = 'lobby'; // what the server joins when the URL names no room

const DEFAULTS = {
  pingInterval: 5 * 60e3,
  pongTimeout: 10e3,
  connectTimeout: 10e3,
  maxLifetime: (2 * 60 - 5) * 60e3,
  dedupe: 1000,
};
const BACKOFF = { initial: 500, max: 30e3, factor: 2, resetAfter: 10e3 };

/** Returns a new client already dialling url; see the module comment. */
export function connect(url, options = {}) {
  return new PushgateClient(url, options);
}

/** A self-healing connection to a pushgate WebSocket API. */
export class PushgateClient extends EventTarget {
  #opts;
  #Socket;
  #base; // the stage URL with ?room=; the token is added at each dial
  #home; // the room joined on connect: options.room or the server's default
  #homeLeft = false;
  #subscribed = new Set();
  #pending = []; // {of, room, resolve, reject}
  #state = 'connecting';
  #ws = null; // the current socket
  #next = null; // rotation in progress: {ws, waiting: Set<room>, timer}
  #openedAt = 0;
  #everOpened = false;
  #attempt = 0;
  #rotationAttempt = 0;
  #timers = { retry: null, ping: null, pong: null, lifetime: null, rotation: null, connect: null, error: null };
  #seen = new Set();
  #seenOrder = [];
  // Recovery (options.api): per room, the last seq applied, the events held
  // back behind a gap, and whether the history is being read.
  #last = new Map();
  #held = new Map();
  #recovering = new Set();
  #wasSynced = false;
  #onOnline = () => this.#retryNow();

  constructor(url, options = {}) {
    super();
    const o = { ...DEFAULTS, ...options, backoff: { ...BACKOFF, ...(options.backoff || {}) } };
    if (o.room != null && !NAME_RE.test(o.room)) {
      throw new TypeError(`pushgate: invalid room ${JSON.stringify(o.room)}: use 1-128 of A-Z a-z 0-9 _ . : -, not . or ..`);
    }
    this.#Socket = o.WebSocket || globalThis.WebSocket;
    if (typeof this.#Socket !== 'function') {
      throw new TypeError('pushgate: no WebSocket implementation; pass options.WebSocket');
    }
    const u = new URL(url); // throws TypeError for a relative or malformed URL
    if (o.room != null) u.searchParams.set('room', o.room);
    this.#base = u;
    this.#opts = o;
    this.url = u.toString(); // #dial adds the token
    this.#home = o.room ?? DEFAULT_ROOM;
    if (typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('online', this.#onOnline);
    }
    this.#dial();
  }

  get state() {
    return this.#state;
  }

  // The URL to dial now: the base with the current token.
  #urlWithToken() {
    const t = typeof this.#opts.token === 'function' ? this.#opts.token() : this.#opts.token;
    const u = new URL(this.#base);
    if (t != null && t !== '') u.searchParams.set('token', String(t));
    return u.toString();
  }

  get rooms() {
    const rooms = [];
    if (!this.#homeLeft) rooms.push(this.#home);
    for (const r of this.#subscribed) if (r !== this.#home) rooms.push(r);
    return rooms;
  }

  get synced() {
    return this.#state === 'open' && this.#recovering.size === 0 && [...this.#held.values()].every((h) => h.size === 0);
  }

  track(room, seq) {
    if (!Number.isInteger(seq) || seq < 0) return;
    if (!this.#last.has(room) || this.#last.get(room) < seq) this.#last.set(room, seq);
    this.#releaseHeld(room);
  }

  on(type, fn) {
    const listener = (e) => fn(e.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  send(obj) {
    if (this.#state !== 'open' || !this.#ws || this.#ws.readyState !== OPEN) throw notOpen(this.#state);
    this.#ws.send(JSON.stringify(obj)); // the current socket only: a relay sent twice arrives twice
  }

  whoami() {
    if (this.#state !== 'open' || !this.#ws || this.#ws.readyState !== OPEN) {
      return Promise.reject(notOpen(this.#state));
    }
    const p = this.#expectAck('whoami', null);
    this.#ws.send(JSON.stringify({ action: 'whoami' }));
    return p;
  }

  subscribe(room) {
    if (!NAME_RE.test(room ?? '')) {
      return Promise.reject(new TypeError(`pushgate: invalid room ${JSON.stringify(room)}`));
    }
    if (this.#state === 'closed') return Promise.reject(closedError());
    const isHome = room === this.#home;
    if (!isHome && !this.#subscribed.has(room) && this.rooms.length >= MAX_ROOMS) {
      return Promise.reject(new RangeError(`pushgate: at most ${MAX_ROOMS} rooms per connection`));
    }
    if (isHome) this.#homeLeft = false;
    else this.#subscribed.add(room);
    const p = this.#expectAck('subscribe', room);
    this.#trySend({ action: 'subscribe', room });
    return p;
  }

  unsubscribe(room) {
    if (this.#state === 'closed') return Promise.reject(closedError());
    if (room === this.#home) this.#homeLeft = true;
    this.#subscribed.delete(room);
    this.#last.delete(room);
    this.#held.delete(room);
    if (!this.#trySend({ action: 'unsubscribe', room })) return Promise.resolve(null);
    return this.#expectAck('unsubscribe', room);
  }

  close() {
    if (this.#state === 'closed') return;
    for (const k of Object.keys(this.#timers)) this.#clear(k);
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('online', this.#onOnline);
    }
    this.#abandonRotation();
    const ws = this.#ws;
    const wasOpen = this.#openedAt > 0;
    this.#ws = null;
    this.#openedAt = 0;
    this.#setState('closed');
    if (ws) {
      detach(ws);
      try {
        ws.close(1000, 'client closed');
      } catch {
        // already closing
      }
    }
    if (wasOpen) this.#emitClose({ code: 1000, reason: 'client closed', wasClean: true, willReconnect: false });
    const pending = this.#pending.splice(0);
    for (const p of pending) p.reject(closedError());
  }

  // --- connection life cycle ---

  #dial() {
    this.#openedAt = 0;
    let ws;
    try {
      this.url = this.#urlWithToken();
      ws = new this.#Socket(this.url);
    } catch (err) {
      // A constructor throwing (bad URL in some runtimes, CSP) is retried
      // like a failed handshake; the URL was checked in the constructor.
      this.#scheduleRetry();
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    ws.onopen = () => this.#opened(ws);
    ws.onmessage = (e) => this.#received(ws, e.data);
    ws.onclose = (e) => this.#lost(ws, e.code, e.reason, e.wasClean);
    ws.onerror = () => this.#failed(ws);
    this.#clear('connect');
    const limit = this.#opts.connectTimeout;
    if (limit > 0 && Number.isFinite(limit)) {
      this.#timers.connect = setTimeout(() => {
        this.#timers.connect = null;
        this.#drop(ws, 4002, 'connect timeout');
      }, limit);
    }
  }

  // An error event. Browsers follow it with "close"; Node 20's WebSocket
  // leaves a refused socket "connecting" for ever. So an error before
  // "open" is a failed attempt now, and after it a close that does not come
  // within a second is taken as given.
  #failed(ws) {
    if (ws !== this.#ws) return;
    const give = () => {
      this.#lost(ws, 1006, 'connection failed', false); // detaches first: Node's close() fires error at once
      try {
        ws.close(); // close() takes no 1006; without a code it always may
      } catch {
        // already closing
      }
    };
    if (this.#openedAt === 0) {
      give();
      return;
    }
    this.#clear('error');
    this.#timers.error = setTimeout(() => {
      this.#timers.error = null;
      give();
    }, 1000);
  }

  #opened(ws) {
    if (ws !== this.#ws) return;
    this.#clear('connect');
    const reconnect = this.#everOpened;
    this.#everOpened = true;
    this.#openedAt = Date.now();
    this.#setState('open');
    this.#resubscribe(ws);
    this.#startTimers();
    this.#emit('open', { reconnect, rotated: false });
    if (reconnect) this.#catchUp();
    this.#updateSynced();
  }

  // An unexpected end of the current socket: report it and reconnect.
  #lost(ws, code = 1006, reason = '', wasClean = false) {
    if (ws !== this.#ws || this.#state === 'closed') return;
    detach(ws);
    this.#ws = null;
    this.#stopTimers();
    this.#clear('connect');
    this.#clear('error');
    this.#abandonRotation();
    const wasOpen = this.#openedAt > 0;
    if (wasOpen && Date.now() - this.#openedAt >= this.#opts.backoff.resetAfter) this.#attempt = 0;
    this.#openedAt = 0;
    this.#settleLost();
    this.#setState('reconnecting');
    if (wasOpen) this.#emitClose({ code, reason, wasClean, willReconnect: true });
    this.#scheduleRetry();
  }

  // Drop a socket we no longer trust (no pong, unregistered) without
  // waiting for a closing handshake that may never come.
  #drop(ws, code, reason) {
    if (ws !== this.#ws) return;
    this.#lost(ws, code, reason, false); // detaches first: some close() fire events at once
    try {
      ws.close(code, reason);
    } catch {
      // already closing
    }
  }

  #scheduleRetry() {
    const b = this.#opts.backoff;
    const cap = Math.min(b.max, b.initial * Math.pow(b.factor, this.#attempt));
    const delay = Math.floor(Math.random() * cap);
    this.#attempt++;
    this.#clear('retry');
    if (this.#state !== 'reconnecting') this.#setState('reconnecting');
    this.#timers.retry = setTimeout(() => {
      this.#timers.retry = null;
      this.#dial();
    }, delay);
    this.#emit('retry', { attempt: this.#attempt, delay });
  }

  #retryNow() {
    if (this.#state !== 'reconnecting' || this.#timers.retry === null) return;
    this.#clear('retry');
    this.#dial();
  }

  #startTimers() {
    this.#stopTimers();
    this.#schedulePing();
    const life = this.#opts.maxLifetime;
    if (life > 0 && Number.isFinite(life)) {
      this.#timers.lifetime = setTimeout(() => {
        this.#timers.lifetime = null;
        this.#rotate();
      }, life);
    }
  }

  #stopTimers() {
    for (const k of ['ping', 'pong', 'lifetime', 'rotation']) this.#clear(k);
  }

  #schedulePing() {
    const every = this.#opts.pingInterval;
    if (!(every > 0) || !Number.isFinite(every)) return;
    this.#clear('ping');
    this.#timers.ping = setTimeout(() => {
      this.#timers.ping = null;
      const ws = this.#ws;
      if (!ws || ws.readyState !== OPEN) return;
      ws.send(JSON.stringify({ action: 'ping' }));
      this.#clear('pong');
      this.#timers.pong = setTimeout(() => {
        this.#timers.pong = null;
        this.#drop(ws, 4000, 'pong timeout');
      }, this.#opts.pongTimeout);
    }, every);
  }

  // --- planned replacement before API Gateway's 2-hour limit ---

  #rotate() {
    if (this.#state !== 'open' || this.#next) return;
    let ws;
    try {
      this.url = this.#urlWithToken();
      ws = new this.#Socket(this.url);
    } catch {
      this.#retryRotation();
      return;
    }
    ws.binaryType = 'arraybuffer';
    const next = { ws, opened: false, waiting: new Set(), timer: null };
    this.#next = next;
    ws.onopen = () => {
      if (this.#next !== next) return;
      next.opened = true;
      next.waiting = new Set(this.#resubscribe(ws));
      if (next.waiting.size === 0) this.#promote();
      else next.timer = setTimeout(() => this.#promote(), this.#opts.pongTimeout);
    };
    ws.onmessage = (e) => {
      if (this.#next !== next) return;
      const f = parse(e.data);
      if (!f) return;
      if (f.action === 'event') {
        this.#deliverEvent(f);
      } else if (f.action === 'ack' && f.of === 'subscribe') {
        next.waiting.delete(f.room);
        if (next.waiting.size === 0) this.#promote();
      } else if (f.action === 'error' && f.code === 'not_found') {
        this.#abandonRotation();
        this.#retryRotation();
      }
      // Relays and pongs count only from the current socket: the old one
      // still gets every relay, so taking them here would double them.
    };
    ws.onclose = ws.onerror = () => {
      if (this.#next !== next) return;
      this.#abandonRotation();
      this.#retryRotation();
    };
  }

  #retryRotation() {
    if (this.#state !== 'open') return;
    const b = this.#opts.backoff;
    const cap = Math.min(b.max, b.initial * Math.pow(b.factor, this.#rotationAttempt++));
    this.#clear('rotation');
    this.#timers.rotation = setTimeout(() => {
      this.#timers.rotation = null;
      this.#rotate();
    }, Math.floor(Math.random() * cap));
  }

  #promote() {
    const next = this.#next;
    if (!next) return;
    clearTimeout(next.timer);
    this.#next = null;
    const old = this.#ws;
    detach(old);
    try {
      old.close(1000, 'rotated');
    } catch {
      // already closing
    }
    const ws = next.ws;
    this.#ws = ws;
    ws.onmessage = (e) => this.#received(ws, e.data);
    ws.onclose = (e) => this.#lost(ws, e.code, e.reason, e.wasClean);
    this.#rotationAttempt = 0;
    this.#emitClose({ code: 1000, reason: 'rotated', wasClean: true, willReconnect: true, rotated: true });
    this.#openedAt = Date.now();
    this.#startTimers();
    this.#emit('open', { reconnect: true, rotated: true });
    this.#catchUp();
  }

  #abandonRotation() {
    const next = this.#next;
    if (!next) return;
    this.#next = null;
    clearTimeout(next.timer);
    detach(next.ws);
    try {
      next.ws.close(1000, 'rotation abandoned');
    } catch {
      // already closing
    }
  }

  // --- frames ---

  // Sends the frames that restore this client's rooms on a fresh socket
  // (its URL joined only the home room) and returns the rooms subscribed.
  #resubscribe(ws) {
    if (this.#homeLeft) {
      ws.send(JSON.stringify({ action: 'unsubscribe', room: this.#home }));
    }
    const rooms = [...this.#subscribed].filter((r) => r !== this.#home);
    for (const room of rooms) ws.send(JSON.stringify({ action: 'subscribe', room }));
    return rooms;
  }

  #received(ws, data) {
    if (ws !== this.#ws) return;
    const f = parse(data);
    if (!f) return;
    this.#emit('frame', f);
    switch (f.action) {
      case 'event':
        this.#deliverEvent(f);
        return;
      case 'pong':
        this.#clear('pong');
        this.#schedulePing();
        this.#emit('pong', f);
        return;
      case 'ack':
        this.#settle(f.of, f.room, (p) => p.resolve(f));
        this.#emit('ack', f);
        return;
      case 'whoami':
        this.#settle('whoami', null, (p) => p.resolve(f));
        this.#emit('whoami', f);
        return;
      case 'error':
        this.#emit('error', f);
        if (f.code === 'invalid_room' || f.code === 'too_many_rooms' || (f.code === 'forbidden' && /join/.test(f.message ?? ''))) {
          // Error frames carry no request id: the oldest pending subscribe
          // is the best guess, and it must not be retried on every reconnect.
          const i = this.#pending.findIndex((p) => p.of === 'subscribe');
          if (i >= 0) {
            const [p] = this.#pending.splice(i, 1);
            this.#subscribed.delete(p.room);
            const err = new Error(`pushgate: subscribe ${p.room}: ${f.message}`);
            err.code = f.code;
            p.reject(err);
          }
        } else if (f.code === 'not_found') {
          this.#drop(ws, 4001, 'connection no longer registered');
        }
        return;
      default:
        if ('from' in f) this.#emit('message', f);
    }
  }

  #deliverEvent(f) {
    if (this.#wasSeen(f)) return;
    if (!this.#opts.api || !Number.isInteger(f.seq) || typeof f.room !== 'string') {
      this.#apply(f);
      return;
    }
    const last = this.#last.get(f.room);
    if (last === undefined) {
      // The first event of a room not tracked: it sets the baseline.
      this.#apply(f);
      return;
    }
    if (f.seq <= last) return; // applied already
    if (f.seq === last + 1 && !this.#recovering.has(f.room)) {
      this.#apply(f);
      return;
    }
    // A gap, or the history being read: hold it until what comes before it
    // has been applied.
    if (!this.#held.has(f.room)) this.#held.set(f.room, new Map());
    this.#held.get(f.room).set(f.seq, f);
    this.#updateSynced();
    this.#recover(f.room);
  }

  #wasSeen(f) {
    const limit = this.#opts.dedupe;
    return limit > 0 && typeof f.eventId === 'string' && this.#seen.has(f.eventId);
  }

  #apply(f) {
    const limit = this.#opts.dedupe;
    if (limit > 0 && typeof f.eventId === 'string') {
      if (this.#seen.has(f.eventId)) return;
      this.#seen.add(f.eventId);
      this.#seenOrder.push(f.eventId);
      if (this.#seenOrder.length > limit) this.#seen.delete(this.#seenOrder.shift());
    }
    if (Number.isInteger(f.seq) && typeof f.room === 'string') {
      const last = this.#last.get(f.room);
      if (last !== undefined && f.seq <= last) return;
      this.#last.set(f.room, f.seq);
    }
    this.#emit('event', f);
  }

  // --- recovery of missed events (options.api) ---

  // #catchUp reads, for every tracked room, what a new socket may have
  // missed while there was none (or while the old one was replaced).
  #catchUp() {
    if (!this.#opts.api) return;
    for (const room of this.#last.keys()) this.#recover(room);
  }

  async #recover(room) {
    if (!this.#opts.api || this.#recovering.has(room) || this.#state === 'closed') return;
    this.#recovering.add(room);
    this.#updateSynced();
    const b = this.#opts.backoff;
    for (let attempt = 0; this.#state !== 'closed' && this.#last.has(room); attempt++) {
      try {
        await this.#readHistory(room);
        break;
      } catch {
        // Unreachable or refusing for now: the events stay held; try again.
        const cap = Math.min(b.max, b.initial * Math.pow(b.factor, attempt));
        await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * cap)));
      }
    }
    this.#recovering.delete(room);
    this.#releaseHeld(room);
    const held = this.#held.get(room);
    if (held && held.size > 0 && this.#state !== 'closed') this.#recover(room); // another gap
    this.#updateSynced();
  }

  async #readHistory(room) {
    const fetchFn = this.#opts.fetch || globalThis.fetch;
    const base = String(this.#opts.api).replace(/\/+$/, '');
    const token = typeof this.#opts.token === 'function' ? this.#opts.token() : this.#opts.token;
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const start = this.#last.get(room) ?? 0;
    let after = start;
    let count = 0;
    for (;;) {
      const url = `${base}/rooms/${encodeURIComponent(room)}/events?after=${after}`;
      const r = await fetchFn(url, { headers, cache: 'no-store' });
      const body = await r.json().catch(() => ({}));
      if (r.status === 410 && Number.isInteger(body.last)) {
        // Too far back: the app reloads the room; events after last follow.
        this.#last.set(room, body.last);
        this.#emit('resync', { room, last: body.last });
        return;
      }
      if (!r.ok || !Array.isArray(body.events)) throw new Error(`pushgate: history of ${room}: ${r.status}`);
      for (const e of body.events) {
        const before = this.#last.get(room);
        const wasHeld = this.#held.get(room)?.has(e.seq);
        this.#apply(e);
        // Counted: the ones the socket never brought.
        if (this.#last.get(room) !== before && !wasHeld) count++;
      }
      if (!body.next) break;
      after = Number(body.next);
    }
    if (count > 0) this.#emit('recovered', { room, after: start, last: this.#last.get(room), count });
  }

  // #releaseHeld applies the held events that follow on from the last one
  // applied, and forgets those already covered.
  #releaseHeld(room) {
    const held = this.#held.get(room);
    if (!held || this.#recovering.has(room)) return;
    for (const seq of [...held.keys()].sort((a, b) => a - b)) {
      const last = this.#last.get(room) ?? 0;
      if (seq <= last) held.delete(seq);
      else if (seq === last + 1) {
        this.#apply(held.get(seq));
        held.delete(seq);
      } else break;
    }
    this.#updateSynced();
  }

  #updateSynced() {
    const synced = this.synced;
    if (synced === this.#wasSynced) return;
    this.#wasSynced = synced;
    this.#emit('synced', { synced });
  }

  // #trySend sends obj if open. A replacement socket that is already open
  // gets it too: it re-subscribed from the room set as it was then.
  #trySend(obj) {
    if (this.#state !== 'open' || !this.#ws || this.#ws.readyState !== OPEN) return false;
    const text = JSON.stringify(obj);
    this.#ws.send(text);
    const next = this.#next;
    if (next?.opened && next.ws.readyState === OPEN) next.ws.send(text);
    return true;
  }

  #expectAck(of, room) {
    return new Promise((resolve, reject) => this.#pending.push({ of, room, resolve, reject }));
  }

  // #settleLost ends the waits a lost socket leaves behind: an unsubscribe
  // is done (the next connection will not join the room), and a subscribe
  // to a room left since will never be acked.
  #settleLost() {
    const rooms = new Set(this.rooms);
    const keep = [];
    for (const p of this.#pending) {
      if (p.of === 'unsubscribe') {
        p.resolve(null);
      } else if (p.of === 'whoami') {
        p.reject(notOpen('reconnecting'));
      } else if (!rooms.has(p.room)) {
        const err = new Error(`pushgate: subscribe ${p.room}: unsubscribed before the ack`);
        err.code = 'unsubscribed';
        p.reject(err);
      } else {
        keep.push(p);
      }
    }
    this.#pending = keep;
  }

  #settle(of, room, fn) {
    const keep = [];
    for (const p of this.#pending) {
      if (p.of === of && p.room === room) fn(p);
      else keep.push(p);
    }
    this.#pending = keep;
  }

  // --- helpers ---

  #setState(state) {
    if (state === this.#state) return;
    const previous = this.#state;
    this.#state = state;
    this.#emit('state', { state, previous });
    this.#updateSynced();
  }

  #emitClose(detail) {
    this.#emit('close', { rotated: false, ...detail });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #clear(name) {
    if (this.#timers[name] !== null) {
      clearTimeout(this.#timers[name]);
      this.#timers[name] = null;
    }
  }
}

function detach(ws) {
  ws.onopen = ws.onmessage = ws.onclose = null;
  ws.onerror = () => {};
}

function notOpen(state) {
  const err = new Error(`pushgate: cannot send while ${state}`);
  err.code = 'not_open';
  return err;
}

function closedError() {
  const err = new Error('pushgate: client closed');
  err.code = 'closed';
  return err;
}

// parse returns the frame as an object, or null for anything that is not a
// JSON object (text the server did not mean as a frame, binary noise).
function parse(data) {
  let text = data;
  if (typeof text !== 'string') {
    if (!(text instanceof ArrayBuffer)) return null;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(text);
    } catch {
      return null;
    }
  }
  let f;
  try {
    f = JSON.parse(text);
  } catch {
    return null;
  }
  return f !== null && typeof f === 'object' && !Array.isArray(f) ? f : null;
}
