/**
 * The browser client of the realtime server: one WebSocket that reconnects by itself,
 * an offline queue, and the three routers of `docs/PROTOCOL.md` (channels `ch`, presence
 * `views`, models and collections `sync`) plus the `hb` heartbeat.
 *
 * One file, no imports, no build step: a page may load it straight from the server
 * (`<script type="module">import { connect } from '/realtime.js'</script>`). The types
 * and the full documentation of every option are in `realtime.d.ts`.
 *
 * How it works, in one paragraph: `connect()` makes a {@link Client}. The client opens a
 * socket (asking the URL provider first, if `url` is a function), and when the socket
 * opens it lets every router send its restore frames (channel joins, view opens, sync
 * subscriptions, with a snapshot for the paths subscribed before) straight to the
 * socket, then writes the frames queued while it was offline, in order, then emits
 * `open`. When the socket closes, requests waiting for an answer fail with code `closed`
 * (the server forgets a connection's requests), wanted channels, views and subscriptions
 * stay wanted, and the client waits
 * `min(maxReconnectionDelay, minReconnectionDelay * grow^(attempt-1))` before the next
 * attempt, as `ws-client` and npm's `reconnecting-websocket` do. With the
 * `resume` option the connection is a session (PROTOCOL.md section 9): it opens on the
 * server's first frame, and a socket that drops without a close frame changes nothing for
 * the routers until the next socket says `resumed` (nothing to restore) or `refused` (they
 * end, then restore as above).
 *
 * @module realtime
 */

// The types of the package's contract (realtime.d.ts), then the implementation's own.
/** @typedef {import('./realtime.js').UrlSource} UrlSource */
/** @typedef {import('./realtime.js').ClientOptions} ClientOptions */
/** @typedef {import('./realtime.js').ClientEvents} ClientEvents */
/** @typedef {import('./realtime.js').CloseInfo} CloseInfo */
/** @typedef {import('./realtime.js').CallOptions} CallOptions */
/** @typedef {import('./realtime.js').SendOptions} SendOptions */
/** @typedef {import('./realtime.js').Sent} Sent */
/** @typedef {import('./realtime.js').Member} Member */
/** @typedef {import('./realtime.js').ViewChange} ViewChange */
/** @typedef {import('./realtime.js').ViewInfo} ViewInfo */
/** @typedef {import('./realtime.js').SyncMessage} SyncMessage */
/** @typedef {import('./realtime.js').SyncMethod} SyncMethod */
/**
 * @template T
 * @typedef {import('./realtime.js').Callback<T>} Callback
 */

/** @typedef {string | ArrayBuffer | ArrayBufferView} Data a frame as written to the socket: text, or binary */
/** @typedef {Record<string, unknown>} Body the body (`d`) of a router frame to send */
/** @typedef {{d: Data, n: number}} Kept a frame sent on a session and not acknowledged: its bytes, their size */
/** @typedef {Kept & {k: string | undefined, t: number}} Queued a queued frame: its bytes, their size, latest key, expiry */
/**
 * The body (`d`) of a router frame from the server: JSON, read without validation (a frame
 * of the wrong shape throws, and the client reports it as `malformed`).
 * @typedef {Record<string, any>} Frame
 */

const PREFIX = '{"$r":"';

/**
 * An error of this library. `code` is machine-readable: the server's own codes
 * (`not_found`, `forbidden`, `no_handler`...) with `remote` true, or one of the client's:
 * `timeout` (no answer in time), `closed` (the connection closed before the answer, or
 * the client is closed; the request may or may not have been handled), `queue_full`
 * ({@link QueueFullError}), `too_many_pending`, `cancelled` (the channel was left, the
 * view or subscription closed while a call waited), `malformed` (the server sent a frame
 * this client cannot read), `connect` (an attempt failed).
 */
export class RealtimeError extends Error {
  /**
   * @param {string} code machine-readable reason
   * @param {string} message human-readable explanation
   * @param {boolean} [remote] whether the server sent it
   */
  constructor(code, message, remote = false) {
    super(message);
    this.name = 'RealtimeError';
    /** @type {string} */
    this.code = code;
    /** @type {boolean} */
    this.remote = remote;
  }
}

/**
 * A send failed because `maxEnqueuedMessages` or `maxEnqueuedBytes` was reached (offline),
 * or the socket's own buffer holds `maxEnqueuedBytes` already (online). The frame is not
 * sent; it is handed back in `data`, as ws-client's `SendError::Full` hands the message
 * back.
 */
export class QueueFullError extends RealtimeError {
  /** @param {string | ArrayBuffer | ArrayBufferView} data the frame that was refused */
  constructor(data) {
    super('queue_full', 'the queue is full');
    this.name = 'QueueFullError';
    /** @type {string | ArrayBuffer | ArrayBufferView} */
    this.data = data;
  }
}

/** @param {string} code @param {string} message */
const error = (code, message) => new RealtimeError(code, message);
/** @type {(e: any) => RealtimeError & {channel?: string, view?: string, path?: string}} */
const remoteError = (e) =>
  new RealtimeError(String(e?.code || 'internal'), String(e?.message || ''), true);
const closed = () => error('closed', 'the connection closed before the answer');
const noop = () => {};
/**
 * Marks a promise as handled (its rejection is still seen by whoever awaits it).
 * @template T
 * @param {Promise<T>} p
 * @returns {Promise<T>}
 */
const quiet = (p) => (p.catch(noop), p);

// ---- the reconnection schedule -------------------------------------------------------

/**
 * The delay in milliseconds before reconnection attempt `attempt`, as ws-client's
 * `Backoff::delay`: 0 for attempt 0 (the first connection), else
 * `min(max, min * grow^(attempt-1))`.
 *
 * @param {number} attempt 0 for the first connection, n for the n-th retry
 * @param {number} min the first delay (ms)
 * @param {number} max the longest delay (ms)
 * @param {number} grow the factor between two delays (at least 1)
 * @returns {number}
 */
export function reconnectDelay(attempt, min, max, grow) {
  if (!(attempt >= 1)) return 0;
  const delay = min * grow ** (attempt - 1);
  // Whole nanoseconds, as the Rust client computes: 1000 * 1.3^2 is 1690, not 1690.0000000000002.
  return delay < max ? Math.round(delay * 1e6) / 1e6 : max;
}

/**
 * Shortens `delay` by up to the fraction `jitter` (0 to 1) using `random` (0 to 1):
 * `delay * (1 - jitter * random)`, as ws-client's `Backoff::jittered`. Never longer than
 * `delay`; out-of-range inputs are clamped.
 *
 * @param {number} delay ms
 * @param {number} jitter 0 to 1
 * @param {number} random 0 to 1
 * @returns {number}
 */
export function jittered(delay, jitter, random) {
  const clamp = (/** @type {number} */ x) => Math.min(1, Math.max(0, x));
  const cut = clamp(jitter) * clamp(random);
  return cut > 0 ? delay * (1 - cut) : delay;
}

// ---- events --------------------------------------------------------------------------

const LISTENERS = Symbol('listeners');

/**
 * The listeners of an emitter, by event. `events` is never set: it carries the type of the
 * emitter's events, so that `fire` checks its arguments against them.
 * @template Events
 * @typedef {Map<string, Set<Function>> & {events?: Events}} Listeners
 */

/**
 * Calls the listeners of `event` on `target`. A listener that throws does not stop the
 * others nor the client: its exception is rethrown in a microtask (the browser reports it).
 * @template {{[E in keyof Events]: unknown[]}} Events
 * @template {keyof Events & string} E
 * @param {Emitter<Events>} target
 * @param {E} event
 * @param {Events[E]} args
 */
function fire(target, event, ...args) {
  for (const fn of [...(target[LISTENERS].get(event) ?? [])]) call(/** @type {(...args: Events[E]) => void} */ (fn), ...args);
}

/**
 * The event methods shared by the client, channels, views and collections.
 * @template {{[E in keyof Events]: unknown[]}} Events the arguments of each event
 */
export class Emitter {
  constructor() {
    /** @type {Listeners<Events>} */
    this[LISTENERS] = new Map();
  }

  /**
   * Calls `fn` on every `event`; returns a function that removes it.
   * @template {keyof Events & string} E
   * @param {E} event
   * @param {(...args: Events[E]) => void} fn
   * @returns {() => void}
   */
  on(event, fn) {
    const map = this[LISTENERS];
    map.get(event)?.add(fn) ?? map.set(event, new Set([fn]));
    return () => this.off(event, fn);
  }

  /**
   * Removes a listener added with {@link Emitter#on}.
   * @template {keyof Events & string} E
   * @param {E} event
   * @param {(...args: Events[E]) => void} fn
   */
  off(event, fn) {
    this[LISTENERS].get(event)?.delete(fn);
  }
}

// ---- sizes and URLs ------------------------------------------------------------------

/**
 * UTF-8 length of a string, or byte length of binary data.
 * @param {Data} data
 * @returns {number}
 */
function byteLength(data) {
  // A lone surrogate counts 3 bytes, as the socket writes it (U+FFFD).
  return typeof data === 'string' ? new TextEncoder().encode(data).length : data.byteLength;
}

/**
 * Cuts a close reason to 123 bytes of UTF-8 at a character boundary.
 * @param {string} reason
 * @returns {string}
 */
function cutReason(reason) {
  let out = '';
  for (const ch of String(reason)) {
    if (byteLength(out + ch) > 123) break;
    out += ch;
  }
  return out;
}

/**
 * The WebSocket URL for `url`: http(s) becomes ws(s), a relative URL resolves against the page.
 * @param {string | URL} url
 * @param {string} [query] parameters to add to the query (`a=1&b=2`, encoded)
 * @returns {string}
 */
function wsUrl(url, query = '') {
  const u = new URL(String(url), globalThis.location?.href);
  u.protocol = u.protocol.replace(/^http(s?):$/, 'ws$1:');
  // Appended as it is: the page's own parameters keep their encoding.
  if (query) u.search += (u.search ? '&' : '') + query;
  return u.href;
}

/**
 * The server this module was loaded from, as a WebSocket URL: `wss://host/` for a module
 * served over https, `ws://host/` over http.
 * @returns {string}
 */
export function defaultUrl() {
  return wsUrl(new URL('/', import.meta.url));
}

/**
 * Splits `(options?, callback?)` trailing arguments.
 * @param {CallOptions | Callback<any> | undefined} a
 * @param {Callback<any> | undefined} b
 * @returns {[CallOptions | undefined, Callback<any> | undefined]}
 */
function tail(a, b) {
  return typeof a === 'function' ? [undefined, a] : [a || undefined, typeof b === 'function' ? b : undefined];
}

// ---- the client ----------------------------------------------------------------------

const DEFAULTS = {
  maxReconnectionDelay: 10000,
  reconnectionDelayGrowFactor: 1.3,
  jitter: 0,
  minUptime: 5000,
  connectionTimeout: 4000,
  maxRetries: Infinity,
  maxEnqueuedMessages: 1024,
  maxEnqueuedBytes: 1 << 20,
  startClosed: false,
  pingInterval: 25000,
  pongTimeout: 10000,
  timeout: 10000,
  maxPendingRequests: 1024,
  readAfterResubscribe: true,
  resume: false,
};

/**
 * The options once checked, every default filled in.
 * @typedef {Required<Omit<ClientOptions, 'maxRetries' | 'pingInterval' | 'shouldReconnect' | 'codec' | 'WebSocket'>>
 *   & Pick<ClientOptions, 'shouldReconnect' | 'codec' | 'WebSocket'>
 *   & {maxRetries: number, pingInterval: number | null}} Options
 */

/**
 * Checks the options as ws-client's `ClientConfig::validate` does; throws a RangeError.
 * @template {ClientOptions} T
 * @param {T} options as the application passed them (plain JavaScript may pass anything)
 * @returns {Options}
 */
function validate(options) {
  /** @type {any} the defaults and the options given, unchecked until the end */
  const o = { ...DEFAULTS };
  for (const key in options) if (options[key] !== undefined) o[key] = options[key];
  o.maxRetries ??= Infinity;
  /** @param {boolean} ok @param {string} key */
  const check = (ok, key) => {
    if (!ok) throw new RangeError(`invalid option ${key}: ${o[key]}`);
  };
  // 1 s plus a random 0 to 4 s, drawn once per client, capped at the maximum.
  o.minReconnectionDelay ??= Math.min(1000 + Math.floor(Math.random() * 4000), o.maxReconnectionDelay);
  check(o.minReconnectionDelay >= 0 && o.minReconnectionDelay <= o.maxReconnectionDelay, 'minReconnectionDelay');
  check(o.reconnectionDelayGrowFactor >= 1 && o.reconnectionDelayGrowFactor < Infinity, 'reconnectionDelayGrowFactor');
  check(o.jitter >= 0 && o.jitter <= 1, 'jitter');
  for (const key of ['connectionTimeout', 'pongTimeout', 'timeout', 'maxEnqueuedMessages', 'maxEnqueuedBytes', 'maxPendingRequests']) {
    check(o[key] > 0, key);
  }
  check(o.pingInterval == null || o.pingInterval > 0, 'pingInterval');
  check(o.maxRetries >= 0, 'maxRetries');
  return o;
}

/**
 * Connects to a realtime server and returns the {@link Client}, which reconnects by itself
 * until {@link Client#close}. See `realtime.d.ts` for every option.
 *
 * @param {UrlSource | ClientOptions | null} [url] the server's WebSocket URL, or a function
 *   called before every attempt (a fresh one-time token in the query); omitted: the server
 *   this module was loaded from; the options in its place: `connect(options)`
 * @param {ClientOptions} [options]
 * @returns {Client}
 */
export function connect(url, options) {
  if (url && typeof url === 'object' && !(url instanceof URL)) return new Client(undefined, url);
  return new Client(url, options);
}

/**
 * A reconnecting connection to a realtime server, with its routers: {@link Client#channel},
 * {@link Client#views}, {@link Client#sync}. Made by {@link connect}.
 *
 * Events (`client.on(event, fn)`): `connecting` `{attempt}`, `open`, `failed`
 * `{attempt, error}`, `close` `{code, reason}`, `reconnecting` `{attempt, delay}`,
 * `retries-exhausted`, `reconnect-declined`, `message` (an application frame: a string,
 * or an ArrayBuffer for binary), `error` (a {@link RealtimeError}: every refusal of a
 * join, view open or subscription (a failed snapshot read included), an error frame
 * answering no request, a frame that could not be read).
 *
 * @extends {Emitter<ClientEvents>}
 */
export class Client extends Emitter {
  /** @type {Options} */
  #options;
  /** @type {UrlSource} */
  #url;
  /** @type {WebSocket | null} */
  #ws = null;
  /** The socket is open and restored: sends go straight to it. */
  #open = false;
  /** Routers are restoring: their frames go straight to the socket, ahead of the queue. */
  #restoring = false;
  /** @type {Queued[]} */
  #queue = [];
  #attempt = 0;
  /** Counts attempts and detaches: callbacks of an older socket compare and give up. */
  #generation = 0;
  /** @type {number | undefined} */
  #retryTimer;
  /** @type {number | undefined} */
  #connectTimer;
  /** @type {number | undefined} */
  #heartbeat;
  #pingId = 0;
  #openedAt = 0;
  #closed = false;
  /** @type {Map<string, RouterLike>} the routers by their name in the envelope */
  #routers = new Map();
  // The session (PROTOCOL.md section 9), with the `resume` option.
  /** @type {string | undefined} the session's token: while set, a dropped socket may be resumed */
  #token;
  /** Data frames received on the session. */
  #received = 0;
  /** The count last acknowledged to the server. */
  #acked = 0;
  #ackTimer = 0;
  /** Data frames sent on the session: the last `#replay.length` of them are not acknowledged. */
  #sent = 0;
  /** @type {Kept[]} sent and not acknowledged: sent again after a resume */
  #replay = [];
  /** @type {Channels} */
  #channelsRouter;
  /** @type {Link} */
  #link;

  /**
   * @param {UrlSource | null} [url]
   * @param {ClientOptions} [options]
   */
  constructor(url, options = {}) {
    super();
    this.#options = validate(options);
    this.#url = url ?? defaultUrl();
    const o = this.#options;
    // What the routers see of the client.
    this.#link = {
      options: o,
      // An envelope is sent as any object is: JSON, or the codec's.
      send: (router, body) => this.send({ $r: router, d: body }),
      online: () => this.#open || this.#restoring,
      report: (e) => fire(this, 'error', e),
      attach: (name, router) => this.#routers.set(name, router),
    };
    // Pongs need no handling (any frame is a sign of life) but must not reach `message`;
    // a ping from the peer is answered, as the server and the Rust client do.
    const heartbeat = (/** @type {Frame} */ d) => d.t === 'ping' && d.id != null && this.#put(JSON.stringify({ $r: 'hb', d: { t: 'pong', id: d.id } }));
    this.#routers.set('hb', { frame: heartbeat });
    // Its frames are not counted (`#receive`), nor seen by the application.
    this.#routers.set('session', { frame: (d) => this.#session(d) });
    this.#channelsRouter = new Channels(this.#link);
    /** Presence: who has a view open. */
    this.views = new Views(this.#link);
    /** Models and collections by path, with create, read, update and delete. */
    this.sync = new Sync(this.#link);
    // Deferred, so that listeners added right after connect() see the first events.
    if (!o.startClosed) queueMicrotask(() => this.#connect());
  }

  /** Whether the socket is open (and the routers restored). */
  get connected() {
    return this.#open;
  }

  /** How many frames wait in the offline queue. */
  get queued() {
    return this.#queue.length;
  }

  /**
   * The channel `path` (`/` then up to 127 of `A-Z a-z 0-9 _ - . /`); the same object for
   * the same path.
   * @param {string} path
   * @returns {Channel}
   */
  channel(path) {
    return this.#channelsRouter.channel(path);
  }

  /**
   * Sends an application frame: a string as text, an ArrayBuffer or typed array as binary,
   * anything else as JSON text (or MessagePack with the `codec` option). Queued while
   * offline, unless `options.offline` says otherwise (see `SendOptions` in realtime.d.ts).
   * Throws {@link QueueFullError} past the queue's bounds, a
   * {@link RealtimeError} `closed` after {@link Client#close}, and a `TypeError` for a
   * value JSON has no text for (`undefined`, a function, a symbol).
   * @param {unknown} data
   * @param {SendOptions} [options]
   * @returns {Sent}
   */
  send(data, options) {
    if (typeof data !== 'string' && !(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) {
      // `JSON.stringify` answers `undefined` (not a string) for these.
      const text = this.#options.codec ? this.#options.codec.encode(data) : /** @type {string | undefined} */ (JSON.stringify(data));
      if (text === undefined) throw new TypeError(`cannot send ${typeof data}: JSON has no text for it`);
      data = text;
    }
    return this.#write(/** @type {Data} */ (data), options); // text or binary now
  }

  /**
   * Closes for good: sends a close frame (`code`, default 1000; a code a browser may not
   * send becomes 1000; the reason is cut to 123 bytes), fails every waiting request with
   * `closed`, drops the queue, and emits `close` if the socket was open.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = '') {
    if (this.#closed) return;
    this.#closed = true;
    const wasOpen = this.#detach(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, cutReason(reason));
    this.#queue = [];
    for (const router of this.#routers.values()) router.shutdown?.();
    if (wasOpen) fire(this, 'close', { code, reason });
  }

  /**
   * Connects now: closes the current socket (1000 `reconnect`) if there is one, starts the
   * retry count over, and makes an attempt at once. Also what starts a client made with
   * `startClosed`, or one whose retries are exhausted. Does nothing after `close()`.
   */
  reconnect() {
    if (this.#closed) return;
    if (this.#detach(1000, 'reconnect')) this.#end(), fire(this, 'close', { code: 1000, reason: 'reconnect' });
    this.#attempt = 0;
    this.#connect();
  }

  // ---- sending ---------------------------------------------------------------------

  /**
   * Writes `data` to the socket, or queues it while offline as `p.offline` says.
   * @param {Data} data
   * @param {SendOptions} [p]
   * @returns {Sent}
   */
  #write(data, p = {}) {
    if (this.#closed) throw error('closed', 'the client is closed');
    const o = this.#options;
    const size = byteLength(data);
    const open = this.#open;
    if (this.#restoring) return this.#put(data, size), 'queued';
    if (!open && p.offline == 'volatile') return 'dropped';
    const now = Date.now();
    // Online the queue is empty: it was written when the socket opened.
    const k = p.offline == 'latest' ? p.key : undefined;
    /** The queue without the frame this one replaces. @param {Queued[]} q */
    const rest = (q) => (k === undefined ? q : q.filter((e) => e.k !== k));
    // Frames sent on a session and not acknowledged count against the queue's bounds.
    /** @param {Kept[]} q */
    const fits = (q) => ((q = [...this.#replay, ...rest(/** @type {Queued[]} */ (q))]), q.length < o.maxEnqueuedMessages && q.reduce((n, e) => n + e.n, size) <= o.maxEnqueuedBytes);
    let q = this.#queue;
    if (!fits(q)) q = q.filter((e) => e.t > now); // expired frames make room
    // Open, there is a socket; its own buffer is bounded too.
    if (!fits(q) || (open && /** @type {WebSocket} */ (this.#ws).bufferedAmount + size > o.maxEnqueuedBytes)) throw new QueueFullError(data);
    if (open) return this.#put(data, size), 'queued';
    const kept = rest(q);
    // At the end, behind every frame sent before it: what is written keeps the order of the sends.
    this.#queue = [...kept, { d: data, n: size, k, t: p.offline == 'expire' ? now + p.ttl : Infinity }];
    return kept.length < q.length ? 'replaced' : 'queued';
  }

  /**
   * Writes `data` to the socket; on a session, counts it and keeps it until acknowledged.
   * @param {Data} data
   * @param {number} [n] its size
   */
  #put(data, n = byteLength(data)) {
    /** @type {WebSocket} */ (this.#ws).send(data);
    if (this.#token) this.#sent++, this.#replay.push({ d: data, n });
  }

  // ---- the connection --------------------------------------------------------------

  async #connect() {
    if (this.#closed) return;
    const generation = ++this.#generation;
    const o = this.#options;
    const attempt = this.#attempt;
    fire(this, 'connecting', { attempt });
    let ws;
    try {
      let url = this.#url;
      if (typeof url === 'function') {
        const provide = url;
        // Bounded by `connectionTimeout`; a throw fails the attempt.
        url = await /** @type {Promise<string | URL>} */ (
          new Promise((resolve, reject) => {
            Promise.resolve(provide())
              .then(resolve, reject)
              .finally(() => clearTimeout(timer));
            const timer = setTimeout(() => reject(error('timeout', `the URL provider took more than ${o.connectionTimeout} ms`)), o.connectionTimeout);
          })
        );
      }
      if (generation !== this.#generation) return;
      // A resume says how many frames arrived: as good as an acknowledgement.
      this.#acked = this.#received;
      ws = new (o.WebSocket || WebSocket)(wsUrl(url, o.resume ? (this.#token ? `session=${this.#token}&seen=${this.#received}` : 'session=new') : ''));
    } catch (e) {
      if (generation === this.#generation) this.#failed(e);
      return;
    }
    this.#ws = ws;
    ws.binaryType = 'arraybuffer';
    this.#connectTimer = setTimeout(() => {
      this.#detach();
      this.#failed(error('timeout', `no connection within ${o.connectionTimeout} ms`));
    }, o.connectionTimeout);
    // With sessions, the connection is made once the server's first frame says which (section 9.3).
    ws.onopen = () => o.resume || this.#opened();
    ws.onclose = (event) => {
      if (this.#detach()) this.#lost(event.code, event.reason, event.code !== 1006);
      else this.#failed(error('connect', `the connection failed (${event.code}${event.reason ? ' ' + event.reason : ''})`));
    };
    ws.onmessage = (event) => this.#receive(event.data);
    ws.onerror = noop; // a close event follows
  }

  /**
   * Forgets the current socket: its callbacks are removed, the timers cleared, and it is
   * closed (with `code` and `reason` if given; a socket closed already is left as it is).
   * Returns whether it was open.
   * @param {number} [code]
   * @param {string} [reason]
   */
  #detach(code, reason) {
    const ws = this.#ws;
    const open = this.#open;
    if (ws) {
      ws.onopen = ws.onclose = ws.onmessage = ws.onerror = null;
      try {
        ws.close(code, reason);
      } catch {
        ws.close();
      }
    }
    this.#ws = null;
    this.#open = false;
    this.#generation++;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#heartbeat);
    return open;
  }

  /**
   * The socket is ready: the routers restore (or, resumed, send what was wanted or given up
   * while away), then the queue is written.
   * @param {boolean} [resumed]
   */
  #opened(resumed) {
    clearTimeout(this.#connectTimer);
    const now = (this.#openedAt = Date.now());
    this.#restoring = true;
    try {
      for (const router of this.#routers.values()) router.restore?.(resumed);
    } finally {
      this.#restoring = false;
    }
    this.#open = true;
    const queue = this.#queue;
    this.#queue = [];
    for (const e of queue) if (e.t > now) this.#put(e.d, e.n); // expired frames are skipped
    this.#alive();
    fire(this, resumed ? 'resumed' : 'open');
  }

  /**
   * A frame of router `session` (PROTOCOL.md 9.1).
   * @param {Frame} d
   */
  #session(d) {
    const t = d.t;
    // `ack` and `resumed`: the server has our first `n` (`seen`) frames, they need not be kept.
    this.#replay = this.#replay.slice(Math.max(0, (d.n ?? d.seen) - this.#sent + this.#replay.length));
    if (this.#open) return; // the rest answer the upgrade only
    if (t == 'resumed') {
      // The frames it missed first (counted already), then what waited.
      for (const e of this.#replay) /** @type {WebSocket} */ (this.#ws).send(e.d);
      this.#opened(true);
    } else if (t == 'welcome') {
      // Nothing is kept from an earlier session: `#end` forgot it.
      this.#token = d.token;
      this.#received = this.#acked = this.#sent = 0;
      this.#opened();
    } else if (t == 'refused') {
      const unconfirmed = this.#replay.length;
      if (this.#token) this.#end(), fire(this, 'reset', { reason: d.reason, unconfirmed });
      if (d.reason == 'disabled') this.#opened(); // a plain connection; else a `welcome` follows
    }
  }

  /**
   * Acknowledges the frames received (section 9.2). Offline there is no need: a resume
   * says how many arrived.
   */
  #ack() {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = 0;
    this.#acked = this.#received;
    if (this.#open) /** @type {WebSocket} */ (this.#ws).send(JSON.stringify({ $r: 'session', d: { t: 'ack', n: this.#received } }));
  }

  /**
   * An attempt failed: the next one after the backoff delay.
   * @param {unknown} e
   */
  #failed(e) {
    fire(this, 'failed', { attempt: this.#attempt, error: e });
    this.#attempt++;
    this.#schedule();
  }

  /**
   * The socket was open and closed (or died).
   * @param {number} code
   * @param {string} reason
   * @param {boolean} remote whether a close frame came from the server
   */
  #lost(code, reason, remote) {
    const uptime = Date.now() - this.#openedAt;
    // Without a close frame, a session may be resumed.
    this.#end(!remote && !!this.#token);
    fire(this, 'close', { code, reason });
    this.#attempt = uptime >= this.#options.minUptime ? 1 : this.#attempt + 1;
    const decide = this.#options.shouldReconnect;
    if (remote && decide && !decide({ code, reason })) return fire(this, 'reconnect-declined');
    this.#schedule();
  }

  /**
   * The socket closed: the server forgot this connection, unless `paused` (its session
   * may be resumed: the routers keep everything, and what waits now is settled if not).
   * @param {boolean} [paused]
   */
  #end(paused) {
    if (!paused) (this.#token = undefined), (this.#replay = []);
    for (const router of this.#routers.values()) router.end?.(paused);
  }

  #schedule() {
    if (this.#closed) return;
    const o = this.#options;
    const attempt = this.#attempt;
    if (attempt > o.maxRetries) return fire(this, 'retries-exhausted');
    const delay = jittered(
      reconnectDelay(attempt, o.minReconnectionDelay, o.maxReconnectionDelay, o.reconnectionDelayGrowFactor),
      o.jitter,
      Math.random(),
    );
    fire(this, 'reconnecting', { attempt, delay });
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  // ---- receiving and the heartbeat -------------------------------------------------

  /** @param {string | ArrayBuffer} data */
  #receive(data) {
    this.#alive();
    const codec = this.#options.codec;
    const text = typeof data === 'string';
    let router;
    let body;
    // Every data frame but the session's own counts (9.2); acknowledged after 64 or 1 s.
    if (this.#token && !(text && data.startsWith(PREFIX + 'session"'))) {
      if (++this.#received - this.#acked >= 64) this.#ack();
      else this.#ackTimer ||= setTimeout(() => this.#ack(), 1000);
    }
    if (text) {
      if (data.startsWith(PREFIX)) {
        router = this.#routers.get(data.slice(7, data.indexOf('"', 7)));
        if (router) {
          try {
            body = JSON.parse(data).d;
          } catch {
            return fire(this, 'error', error('malformed', 'a router frame is not JSON'));
          }
        }
      }
    } else if (codec && isPackedEnvelope(data)) {
      try {
        const envelope = codec.decode(new Uint8Array(data));
        router = this.#routers.get(envelope.$r);
        body = envelope.d;
      } catch {
        router = undefined;
      }
    }
    if (!router) return fire(this, 'message', data);
    if (!body || typeof body !== 'object') return;
    try {
      router.frame(body);
    } catch (e) {
      fire(this, 'error', error('malformed', `a frame could not be applied: ${e && /** @type {Error} */ (e).message}`));
    }
  }

  /** Any frame is a sign of life: ping after `pingInterval` of silence, give up `pongTimeout` later. */
  #alive() {
    clearTimeout(this.#heartbeat);
    const o = this.#options;
    const ws = this.#ws;
    if (o.pingInterval == null || !ws) return;
    this.#heartbeat = setTimeout(() => {
      try {
        // The id stays below 2^53 for 7 billion years of pings.
        this.#put(JSON.stringify({ $r: 'hb', d: { t: 'ping', id: ++this.#pingId } }));
      } catch {}
      this.#heartbeat = setTimeout(() => {
        // Silent: the server, or the path to it, is gone. A close handshake would wait
        // for the same silence, so the socket is dropped and reported as 1006.
        this.#detach();
        this.#lost(1006, 'heartbeat timeout', false);
      }, o.pongTimeout);
    }, o.pingInterval);
  }
}

/**
 * Whether binary `data` begins like a MessagePack router envelope (PROTOCOL.md 2.1).
 * @param {ArrayBuffer} data
 */
function isPackedEnvelope(data) {
  const b = new Uint8Array(data, 0, Math.min(data.byteLength, 8));
  const skip = b[0] >= 0x81 && b[0] <= 0x8f ? 1 : b[0] === 0xde ? 3 : b[0] === 0xdf ? 5 : 0;
  return skip > 0 && b[skip] === 0xa2 && b[skip + 1] === 0x24 && b[skip + 2] === 0x72;
}

// ---- what the routers share --------------------------------------------------------

/**
 * What the routers see of the client.
 * @typedef {object} Link
 * @property {Options} options the client's options
 * @property {(router: string, body: Body) => void} send writes a frame of `router` (throws as `send` does)
 * @property {() => boolean} online whether frames go to a socket now (open, or restoring)
 * @property {(e: RealtimeError) => void} report an error nobody waits for: the client's `error` event
 * @property {(name: string, router: RouterLike) => void} attach registers a router by name
 */

/**
 * A router as the client drives it.
 * @typedef {object} RouterLike
 * @property {(d: Frame) => void} frame handles a frame's body
 * @property {(resumed?: boolean) => void} [restore] the socket opened (or the session resumed): sends the restore frames
 * @property {(paused?: boolean) => void} [end] the socket closed (`paused`: the session may be resumed), or the session could not be resumed
 * @property {() => void} [shutdown] the client closed for good
 */

/**
 * Something the application wants from the server that outlives connections (a joined
 * channel, an open view, a subscription): `active` once the server confirmed it on this
 * connection, `request` the id in flight, `waiters` the calls waiting for the confirmation.
 */
class Wanted {
  constructor() {
    this.active = false;
    this.request = 0;
    /** @type {Set<{resolve: () => void, reject: (e: RealtimeError) => void, timer: number}>} */
    this.waiters = new Set();
  }

  /**
   * A promise settled by `grant` or `fail`, or rejected with `timeout` after `ms`.
   * @param {number} ms
   * @returns {Promise<void>}
   */
  wait(ms) {
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject, timer: 0 };
      waiter.timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(timedOut(ms));
      }, ms);
      this.waiters.add(waiter);
    });
  }

  grant() {
    this.active = true;
    this.request = 0;
    this.settle();
  }

  /**
   * Settles every waiter: fails it with `e`, or resolves it without.
   * @param {RealtimeError} [e]
   */
  settle(e) {
    for (const waiter of this.waiters) clearTimeout(waiter.timer), e ? waiter.reject(e) : waiter.resolve();
    this.waiters.clear();
  }
}

const timedOut = (/** @type {number} */ ms) => error('timeout', `no answer within ${ms} ms`);

/** @typedef {{kind: 'want', key: string, timer?: undefined}} WantRequest a want frame's: its answer is about `wanted.get(key)` */
/**
 * A request whose answer settles it (`kind`: `undo`, or what the router waits for).
 * @typedef {object} AskRequest
 * @property {'undo' | 'info' | 'call'} kind
 * @property {(data?: any) => void} resolve called with the answer's data
 * @property {(e: RealtimeError) => void} reject
 * @property {number} timer its timeout
 */
/** @typedef {WantRequest | AskRequest} Pending a request waiting for its answer */

/**
 * What every router shares: requests by id with their timers (`pending`), and the keys
 * wanted across reconnects (`wanted`: channel paths, view names, sync paths), made on the
 * server by a "want" frame (`join`, `open`, `sub`) and given up with an "undo" frame
 * (`leave`, `close`, `unsub`). A pending request's `kind` is `want`, `undo`, or what the
 * router waits for otherwise.
 *
 * @template {Wanted} W what the router keeps of a wanted key
 */
class Router {
  /**
   * @param {Link} link what the routers see of the client
   * @param {string} name the router's name in the envelope
   * @param {string} wantT the `t` of the want frame
   * @param {string} undoT the `t` of the undo frame
   * @param {string} field the key's field in frames (`ch`, `view`, `path`)
   * @param {'channel' | 'view' | 'path'} label the key's property on errors
   * @param {string} gone the error code meaning that an undo had nothing to undo
   */
  constructor(link, name, wantT, undoT, field, label, gone) {
    this.link = link;
    this.name = name;
    this.wantT = wantT;
    this.undoT = undoT;
    this.field = field;
    this.label = label;
    this.gone = gone;
    /** @type {Map<number, Pending>} */
    this.pending = new Map();
    this.nextId = 0;
    /** @type {Map<string, W>} */
    this.wanted = new Map();
    /** @type {Set<string>} keys given up while offline: a resumed session still has them */
    this.away = new Set();
    /** The last id sent before a drop: `end` settles those only (later ones wait in the queue). */
    this.mark = Infinity;
    // Every subclass defines its `frame`.
    link.attach(name, /** @type {RouterLike} */ (/** @type {unknown} */ (this)));
  }

  /** @param {Body} body */
  send(body) {
    this.link.send(this.name, body);
  }

  id() {
    // Below 2^53 (PROTOCOL.md 2.3) for 285 years at a million requests a second.
    return ++this.nextId;
  }

  /**
   * Sends `body` with a new id and waits for its answer, at most `timeout` ms. Returns a
   * promise; or, given an error-first `callback`, calls it instead, synchronously when
   * the answer is read (so that it runs before the next frame is handled: a sync reply
   * before the push of the same change) and in a microtask for an immediate failure.
   * `entry` becomes the pending request, given its `resolve`, `reject` and `timer` here.
   * @overload
   * @param {Body} body
   * @param {number | undefined} timeout
   * @param {Pick<AskRequest, 'kind'>} entry
   * @returns {Promise<any>}
   */
  /**
   * @overload
   * @param {Body} body
   * @param {number | undefined} timeout
   * @param {Pick<AskRequest, 'kind'>} entry
   * @param {Callback<any>} callback
   * @returns {void}
   */
  /**
   * @overload
   * @param {Body} body
   * @param {number | undefined} timeout
   * @param {Pick<AskRequest, 'kind'>} entry
   * @param {Callback<any> | undefined} callback
   * @returns {Promise<any> | void}
   */
  /**
   * @param {Body} body
   * @param {number | undefined} timeout
   * @param {Pick<AskRequest, 'kind'>} entry
   * @param {Callback<any>} [callback]
   * @returns {Promise<any> | void}
   */
  ask(body, timeout, entry, callback) {
    const promise = new Promise((resolve, reject) => {
      /** @param {RealtimeError} e */
      const fail = (e) => (callback ? queueMicrotask(() => callback(e)) : reject(e));
      if (this.pending.size >= this.link.options.maxPendingRequests) {
        return fail(error('too_many_pending', 'too many requests pending'));
      }
      const id = (body.id = this.id());
      const ms = timeout ?? this.link.options.timeout;
      Object.assign(
        entry,
        /** @type {Pick<AskRequest, 'resolve' | 'reject'>} */ (callback ? { resolve: (v) => call(callback, null, v), reject: (e) => call(callback, e) } : { resolve, reject }),
      );
      // `entry` is a whole AskRequest from here on.
      /** @type {AskRequest} */ (entry).timer = setTimeout(() => {
        this.pending.delete(id);
        /** @type {AskRequest} */ (entry).reject(timedOut(ms));
      }, ms);
      this.pending.set(id, /** @type {AskRequest} */ (entry));
      try {
        this.send(body);
      } catch (e) {
        this.take(id);
        fail(/** @type {RealtimeError} */ (e)); // what the client's send throws
      }
    });
    if (!callback) return promise;
  }

  /**
   * Takes the request `id` (and stops its timer).
   * @param {number} id
   * @returns {Pending | undefined}
   */
  take(id) {
    const entry = this.pending.get(id);
    clearTimeout(entry?.timer);
    this.pending.delete(id);
    return entry;
  }

  /**
   * The error-first answer (`err` or `data`) to a `call` (a sync request, an acknowledged
   * emit): a want or an undo with its id (no `resolve` until its own answer) is not its to take.
   * @param {Frame} d
   */
  reply(d) {
    const entry = this.pending.get(d.id);
    if (entry?.kind !== 'call') return;
    this.take(d.id);
    d.err != null ? entry.reject(remoteError(d.err)) : entry.resolve(d.data ?? null);
  }

  /**
   * Wants `key` (its `entry` is in `wanted`) and waits for the server's confirmation: the
   * want frame goes out now when online, else on the next connection.
   * @param {string} key
   * @param {W} entry
   * @param {number} [timeout]
   * @returns {Promise<void>}
   */
  ensure(key, entry, timeout) {
    if (entry.active) return Promise.resolve();
    const waiting = entry.wait(timeout ?? this.link.options.timeout);
    if (this.link.online() && !entry.request) {
      try {
        this.want(key, entry);
      } catch (e) {
        this.forget(key, /** @type {RealtimeError} */ (e)); // what the client's send throws
      }
    }
    return waiting;
  }

  /**
   * Sends the want frame of `key`.
   * @param {string} key
   * @param {W} entry
   */
  want(key, entry) {
    const id = this.id();
    // A subscription that wants a snapshot asks for it (sync: PROTOCOL.md 7.3 rule 8).
    this.send({ t: this.wantT, [this.field]: key, id, ...(/** @type {Partial<Subscription>} */ (entry).held && { snapshot: true }) });
    entry.request = id;
    this.pending.set(id, { kind: 'want', key });
  }

  /**
   * Forgets `key`: its waiters fail with `e`.
   * @param {string} key
   * @param {RealtimeError} e
   */
  forget(key, e) {
    const entry = this.wanted.get(key);
    if (!entry) return;
    this.wanted.delete(key);
    this.take(entry.request); // 0 is no request: ids start at 1
    entry.active = false;
    entry.settle(e);
  }

  /**
   * Forgets `key` and, when online, tells the server; its "nothing to undo" is a success.
   * @param {string} key
   * @param {number} [timeout]
   * @returns {Promise<void>}
   */
  undo(key, timeout) {
    this.forget(key, error('cancelled', `${key} was given up`));
    if (!this.link.online()) return this.away.add(key), Promise.resolve();
    return this.ask({ t: this.undoT, [this.field]: key }, timeout, { kind: 'undo' }).then(noop);
  }

  /**
   * The wanted entry a confirmation (`joined`, `state`, `subscribed`) is about, unless superseded.
   * @param {Frame} d
   * @returns {W | undefined}
   */
  answered(d) {
    const entry = this.pending.get(d.id); // none for a frame without id
    const key = entry?.kind === 'want' ? (this.pending.delete(d.id), entry.key) : d[this.field];
    const wanted = this.wanted.get(key);
    if (wanted && !(d.id != null && wanted.request && wanted.request !== d.id)) return wanted;
  }

  /**
   * An undo's answer (`left`, `closed`, `unsubscribed`), or the server's own: then the key is no longer active.
   * @param {Frame} d
   * @returns {true | undefined} true for the answer to an undo of ours
   */
  undone(d) {
    const entry = this.pending.get(d.id); // none for a frame without id
    if (entry?.kind === 'undo') return /** @type {AskRequest} */ (this.take(d.id)).resolve(), true;
    const wanted = this.wanted.get(d[this.field]);
    if (wanted) wanted.active = false; // still wanted: renewed on the next connection
  }

  /**
   * An `error` frame: it fails the request with its `id`, or goes to the client's `error` event.
   * @param {Frame} d
   */
  error(d) {
    const e = remoteError(d);
    // `unknown_ack` is about an id of the server's (older servers put it in `id`).
    const entry = d.code !== 'unknown_ack' ? this.take(d.id) : undefined;
    if (entry?.kind === 'want') {
      const wanted = this.wanted.get(entry.key);
      if (wanted?.request !== d.id) return;
      e[this.label] = entry.key;
      this.forget(entry.key, e);
      this.refused(/** @type {W} */ (wanted), e); // there is one: `d.id` is not null
      return this.link.report(e);
    }
    if (entry?.kind === 'undo') return d.code === this.gone ? entry.resolve() : entry.reject(e);
    if (entry) return entry.reject(e);
    if (d[this.field] != null) e[this.label] = d[this.field];
    this.link.report(e);
  }

  /**
   * A want was refused (the entry is forgotten already).
   * @param {W} entry
   * @param {RealtimeError} e
   */
  refused(entry, e) {}

  /**
   * The socket opened: every wanted key is wanted again, in key order. Or, `resumed`, the
   * server still has what it had: it is told only what changed while away.
   * @param {boolean} [resumed]
   */
  restore(resumed) {
    // A new connection has nothing to undo; a key wanted again meanwhile is kept as it is.
    for (const key of resumed ? this.away : []) if (!this.wanted.has(key)) quiet(this.undo(key));
    this.away.clear();
    this.mark = Infinity;
    for (const key of [...this.wanted.keys()].sort()) {
      const entry = /** @type {W} */ (this.wanted.get(key));
      try {
        if (!resumed || !(entry.active || entry.request)) this.want(key, entry);
      } catch {
        // Tried again on the next connection.
      }
    }
  }

  /**
   * The socket closed: the server forgot this connection's requests and keys. Or,
   * `paused`, it may resume the session: nothing is forgotten until then.
   * @param {boolean} [paused]
   */
  end(paused) {
    const mark = this.mark;
    this.mark = paused ? this.nextId : Infinity;
    if (paused) return;
    for (const entry of this.wanted.values()) (entry.active = false), (entry.request = 0);
    for (const [id, entry] of this.pending) {
      if (id > mark) continue; // made while away: its frame is still queued
      if (entry.kind === 'want') this.pending.delete(id); // sent again on the next connection
      else if (entry.kind === 'undo') /** @type {AskRequest} */ (this.take(id)).resolve(); // a new connection has nothing to undo
      else this.take(id), entry.reject(closed());
    }
  }

  /** The client closed for good. */
  shutdown() {
    this.mark = Infinity;
    for (const key of [...this.wanted.keys()]) this.forget(key, error('closed', 'the client is closed'));
    this.end();
  }
}

/**
 * Calls a user callback; its exception is rethrown in a microtask.
 * @template {unknown[]} A
 * @param {(...args: A) => void} fn
 * @param {A} args
 */
function call(fn, ...args) {
  try {
    fn(...args);
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}

// ---- channels (router `ch`, PROTOCOL.md section 5) -----------------------------------

/** @extends {Router<Wanted>} */
class Channels extends Router {
  /** @param {Link} link */
  constructor(link) {
    super(link, 'ch', 'join', 'leave', 'ch', 'channel', 'not_joined');
    /** @type {Map<string, Channel>} */
    this.channels = new Map();
    /** @type {Map<string, (data: any) => unknown>} handlers of the server's acknowledged emits, by `path event` */
    this.handlers = new Map();
    /** Counts sessions: a handler's answer is sent only on the connection its request came on. */
    this.session = 0;
  }

  /**
   * @param {string} path
   * @returns {Channel}
   */
  channel(path) {
    if (!/^\/[\w\-./]{0,127}$/.test(path)) throw new TypeError(`invalid channel path ${path}`);
    let channel = this.channels.get(path);
    if (!channel) this.channels.set(path, (channel = new Channel(this, path)));
    return channel;
  }

  /**
   * @param {string} path
   * @param {number} [timeout]
   * @returns {Promise<void>}
   */
  join(path, timeout) {
    if (path === '/') return Promise.resolve();
    let entry = this.wanted.get(path);
    if (!entry) this.wanted.set(path, (entry = new Wanted()));
    return this.ensure(path, entry, timeout);
  }

  /** @param {boolean} [resumed] */
  restore(resumed) {
    if (!resumed) this.session++;
    super.restore(resumed);
  }

  /** @param {boolean} [paused] */
  end(paused) {
    if (!paused) this.session++;
    super.end(paused);
  }

  /** @param {Frame} d */
  frame(d) {
    if (d.t === 'joined') this.answered(d)?.grant();
    else if (d.t === 'left') this.undone(d);
    else if (d.t === 'error') this.error(d);
    else if (d.t === 'ack') this.reply(d);
    else if (d.t === 'emit') {
      if (d.id == null) {
        const channel = this.channels.get(d.ch);
        return channel && fire(channel, d.ev, d.data ?? null);
      }
      const handler = this.handlers.get(`${d.ch} ${d.ev}`);
      const session = this.session;
      const answer = (/** @type {Body} */ body) => {
        if (session !== this.session) return; // the server no longer waits on a new connection
        try {
          this.send({ t: 'ack', id: d.id, ...body });
        } catch {}
      };
      new Promise((resolve) => {
        if (!handler) throw { code: 'no_handler', message: `no handler for ${d.ev} on ${d.ch}` };
        resolve(handler(d.data ?? null));
      }).then(
        (data) => answer({ data: data ?? null }),
        (e) => answer({ err: { code: String(e?.code || 'internal'), message: String(e?.message ?? e) } }),
      );
    }
  }
}

/**
 * One channel of a client (socket.io's namespace): made by {@link Client#channel}.
 * `on(event, fn)` and `off` listen to the events the server emits on it.
 *
 * @extends {Emitter<{[event: string]: [data: any]}>}
 */
export class Channel extends Emitter {
  /** @type {Channels} */
  #router;

  /**
   * @param {Channels} router
   * @param {string} path
   */
  constructor(router, path) {
    super();
    this.#router = router;
    /** The channel path. */
    this.path = path;
  }

  /** Whether the server confirmed the join on the current connection (for `/`: always). */
  get joined() {
    return this.path === '/' || !!this.#router.wanted.get(this.path)?.active;
  }

  /**
   * Joins the channel and waits for the server's `joined`. From this call on the channel is
   * joined again after every reconnect, until {@link Channel#leave} or a refusal. Rejects
   * with the server's error (`unknown_channel`, `forbidden`, `limit`), or `timeout`.
   * @param {CallOptions} [options]
   * @returns {Promise<void>}
   */
  join(options) {
    return this.#router.join(this.path, options?.timeout);
  }

  /**
   * Leaves the channel: it is forgotten at once (not joined after reconnects; joins still
   * waiting fail with `cancelled`) and, when online, the server is told.
   * @param {CallOptions} [options]
   * @returns {Promise<void>}
   */
  leave(options) {
    return this.#router.undo(this.path, options?.timeout);
  }

  /**
   * Emits `event` with `data`. Without a third argument: fire and forget (throws
   * {@link QueueFullError} when the queue is full). With `{timeout}` and/or an error-first
   * callback: waits for the server's acknowledgement; returns its promise, or calls
   * `callback(err, data)` instead.
   * @param {string} event
   * @param {unknown} [data]
   * @param {CallOptions | Callback<any>} [options]
   * @param {Callback<any>} [callback]
   * @returns {Promise<any> | void}
   */
  emit(event, data, options, callback) {
    const body = { t: 'emit', ch: this.path, ev: event, data: data ?? null };
    if (options === undefined && callback === undefined) return this.#router.send(body);
    const [opts, cb] = tail(options, callback);
    return this.#router.ask(body, opts?.timeout, { kind: 'call' }, cb);
  }

  /**
   * Answers the server's `event` emits that ask for an acknowledgement: `fn(data)`'s value
   * (or its promise's) goes back as the ack's data; a throw or rejection as its `err`
   * (`{code, message}`, code `internal` when the error has none). Without a handler the
   * client answers `no_handler`. Passing `null` removes the handler.
   * @param {string} event
   * @param {((data: any) => unknown) | null} fn
   */
  handle(event, fn) {
    const key = `${this.path} ${event}`;
    fn ? this.#router.handlers.set(key, fn) : this.#router.handlers.delete(key);
  }
}

// ---- views (router `views`, PROTOCOL.md section 6) -----------------------------------

/** One view the application wants open, shared by its {@link View} handles. */
class ViewEntry extends Wanted {
  constructor() {
    super();
    /** @type {Map<string, Member>} members by key */
    this.members = new Map();
    /** @type {Member[] | null} the sorted list, made on demand */
    this.sorted = null;
    /** @type {string | undefined} */
    this.you = undefined;
    /** @type {Set<View>} handles not closed */
    this.handles = new Set();
  }

  /** @returns {Member[]} */
  list() {
    return (this.sorted ??= [...this.members.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)));
  }

  /**
   * Replaces the members (`next` given: a `state`) or applies a diff's `joins` and
   * `leaves`, and hands the net difference to the handles' listeners unless it is empty.
   * @param {Member[]} joins
   * @param {string[]} leaves keys
   * @param {boolean} [next]
   */
  apply(joins, leaves, next) {
    /** @type {Map<string, Member | undefined>} the entries before, of the keys that may have changed */
    const before = new Map(next ? this.members : []);
    const old = this.members;
    if (next) this.members = new Map(joins.map((member) => [member.key, member]));
    else {
      for (const member of joins) {
        if (!before.has(member.key)) before.set(member.key, old.get(member.key));
        old.set(member.key, member);
      }
      for (const key of leaves) {
        if (!old.has(key)) continue;
        if (!before.has(key)) before.set(key, old.get(key));
        old.delete(key);
      }
    }
    if (next) for (const key of this.members.keys()) if (!before.has(key)) before.set(key, undefined);
    /** @type {ViewChange} */
    const change = { joined: [], changed: [], left: [] };
    for (const [key, was] of before) {
      const now = this.members.get(key);
      if (!was && now) change.joined.push(now);
      else if (was && !now) change.left.push(was);
      else if (was && now && JSON.stringify(was) !== JSON.stringify(now)) change.changed.push(now);
    }
    this.deliver(change);
  }

  /** @param {ViewChange} change */
  deliver(change) {
    this.sorted = null;
    if (change.joined.length || change.changed.length || change.left.length || change.closed) {
      for (const view of this.handles) fire(view, 'change', change, view);
    }
  }
}

/** @extends {Router<ViewEntry>} */
class Views extends Router {
  /** @param {Link} link */
  constructor(link) {
    super(link, 'views', 'open', 'close', 'view', 'view', 'not_open');
  }

  /**
   * Opens view `name` (1 to 128 bytes, no control characters) and resolves with a new
   * handle once the server's `state` arrived. The view closes on the server when every
   * handle is closed ({@link View#close}), or on {@link Views#close}. Rejects with the
   * server's `forbidden`, `bad_request` or `limit`, or with `timeout` (the view stays
   * wanted and opens when the server answers).
   * @param {string} name
   * @param {CallOptions} [options]
   * @returns {Promise<View>}
   */
  open(name, options) {
    let entry = this.wanted.get(name);
    if (!entry) this.wanted.set(name, (entry = new ViewEntry()));
    const view = new View(this, entry, name);
    entry.handles.add(view);
    return this.ensure(name, entry, options?.timeout).then(() => view);
  }

  /**
   * Closes view `name` for every handle: it is forgotten at once (not re-opened after
   * reconnects; opens still waiting fail with `cancelled`) and, when online, the server
   * is told. A view that is not open, or a server answering `not_open`, is a success.
   * @param {string} name
   * @param {CallOptions} [options]
   * @returns {Promise<void>}
   */
  close(name, options) {
    return this.wanted.has(name) ? this.undo(name, options?.timeout) : Promise.resolve();
  }

  /**
   * Asks the server for counts: of view `name` (resolves with its info, or `null` when
   * nobody has it open), or of every view matching a RegExp (resolves with an array, whose
   * `truncated` is true when the server listed only its first ones). The RegExp's source
   * is sent in Rust `regex` syntax (flag `i` becomes `(?i)`). With `{debug: true}` the
   * server adds connection ids, if it allows this connection debug answers.
   * @param {string | RegExp} nameOrPattern
   * @param {CallOptions & {debug?: boolean}} [options]
   * @returns {Promise<ViewInfo | null | (ViewInfo[] & {truncated: boolean})>}
   */
  info(nameOrPattern, options) {
    const byName = !(nameOrPattern instanceof RegExp);
    /** @type {{t: 'info', view?: string, pattern?: string, debug?: boolean}} */
    const body = byName
      ? { t: 'info', view: String(nameOrPattern) }
      : { t: 'info', pattern: (nameOrPattern.flags.includes('i') ? '(?i)' : '') + nameOrPattern.source };
    if (options?.debug) body.debug = true;
    return this.ask(body, options?.timeout, { kind: 'info' }).then((d) => {
      /** @type {ViewInfo[]} */
      const views = Array.isArray(d.views) ? d.views : [];
      return byName ? (views.find((v) => v.view === body.view) ?? null) : Object.assign(views, { truncated: d.truncated === true });
    });
  }

  /** @param {Frame} d */
  frame(d) {
    if (d.t === 'state') {
      const entry = this.answered(d);
      if (!entry) return; // closed meanwhile, or answering a superseded open
      entry.you = d.you ?? undefined;
      entry.grant();
      entry.apply(d.members || [], [], true);
    } else if (d.t === 'diff') {
      const entry = this.wanted.get(d.view);
      // Before the state answering the (re-)open, which replaces everything: ignored.
      if (entry?.active) entry.apply(d.joins || [], d.leaves || []);
    } else if (d.t === 'closed') {
      const entry = this.wanted.get(d.view);
      // Not an answer of ours: a view still wanted and not being opened opens again.
      if (!this.undone(d) && entry && !entry.request && this.link.online()) {
        try {
          this.want(d.view, entry);
        } catch {}
      }
    } else if (d.t === 'info') {
      if (this.pending.get(d.id)?.kind === 'info') /** @type {AskRequest} */ (this.take(d.id)).resolve(d);
    } else if (d.t === 'error') this.error(d);
  }

  /**
   * A re-open refused after a reconnect: the handles' last change.
   * @param {ViewEntry} entry
   * @param {RealtimeError} e
   */
  refused(entry, e) {
    entry.deliver({ joined: [], changed: [], left: [], closed: e });
  }
}

/**
 * A handle to an open view: its members (sorted by key), `you` (the member key of this
 * connection, from the server's `state`), and `change` events. Made by `views.open()`.
 *
 * @extends {Emitter<{change: [change: ViewChange, view: View]}>}
 */
export class View extends Emitter {
  /** @type {Views} */
  #router;
  /** @type {ViewEntry} */
  #entry;

  /**
   * @param {Views} router
   * @param {ViewEntry} entry
   * @param {string} name
   */
  constructor(router, entry, name) {
    super();
    this.#router = router;
    this.#entry = entry;
    /** The view's name. */
    this.name = name;
  }

  /** Whether this handle is open (not closed, the view not refused nor closed by name). */
  get open() {
    return this.#router.wanted.get(this.name) === this.#entry && this.#entry.handles.has(this);
  }

  /** The members, sorted by key; empty once closed. While offline: the last known ones. */
  get members() {
    return this.open ? this.#entry.list() : [];
  }

  /** This connection's own member key (`u:USER` or `c:ID`), once the server sent it. */
  get you() {
    return this.open ? this.#entry.you : undefined;
  }

  /** Whether the members are current: the server's state arrived on this connection. */
  get synced() {
    return this.open && this.#entry.active;
  }

  /**
   * Closes this handle: its listeners are removed, and the view closes on the server once
   * no handle of it is open.
   * @returns {Promise<void>}
   */
  close() {
    const open = this.open;
    this[LISTENERS].clear();
    this.#entry.handles.delete(this);
    return open && !this.#entry.handles.size ? this.#router.close(this.name) : Promise.resolve();
  }
}

// ---- sync (router `sync`, PROTOCOL.md section 7) -------------------------------------

/** A path the application wants to be subscribed to. */
class Subscription extends Wanted {
  constructor() {
    super();
    /** Subscribed on some connection before: subscribed again with a snapshot on a new one. */
    this.reread = false;
    /** @type {Set<(data: any, message: SyncMessage) => void>} */
    this.listeners = new Set();
    /** @type {number} a versioned subscription's last version applied (the snapshot's, then each push's; not a number on a plain one) */
    this.v;
    /** @type {Frame[] | undefined} set: a snapshot is wanted, and the versioned pushes that precede it are held */
    this.held;
  }
}

/** @extends {Router<Subscription>} */
class Sync extends Router {
  /** @param {Link} link */
  constructor(link) {
    super(link, 'sync', 'sub', 'unsub', 'path', 'path', 'not_subscribed');
  }

  /**
   * Subscribes to `path` and calls `onData(data, {path, op, snapshot})` for every push
   * (`op` `change`, `add` or `remove`) and for every snapshot, which a re-subscription
   * after a reconnect asks for (`op` `change`, `snapshot` true, `data` the current value).
   * Returns a function that unsubscribes; its `ready` promise resolves once the server
   * confirmed the subscription (or rejects with its refusal: `no_route`, `forbidden`,
   * `bad_request`, `limit`, which also come as the client's `error` event).
   * @param {string} path
   * @param {(data: any, message: SyncMessage) => void} onData
   * @param {CallOptions} [options]
   * @param {boolean} [snapshot] ask for a snapshot now, for every listener of the path
   *   (`ready` resolves once it is delivered)
   * @returns {(() => Promise<void>) & {ready: Promise<void>}}
   */
  subscribe(path, onData, options, snapshot) {
    let sub = this.wanted.get(path);
    if (!sub) this.wanted.set(path, (sub = new Subscription()));
    /** @type {(data: any, message: SyncMessage) => void} a listener of its own: the same `onData` may subscribe twice */
    const listener = (data, message) => onData(data, message);
    sub.listeners.add(listener);
    const unsubscribe = () =>
      sub.listeners.delete(listener) && !sub.listeners.size && this.wanted.get(path) === sub
        ? this.undo(path)
        : Promise.resolve();
    if (snapshot) this.resync(sub);
    unsubscribe.ready = quiet(this.ensure(path, sub, options?.timeout));
    return unsubscribe;
  }

  /**
   * Wants a snapshot of `sub` (a versioned subscription, PROTOCOL.md 7.3 rule 8): the
   * next `sub` asks for one, and it is not active until the snapshot arrives.
   * @param {Subscription} sub
   */
  resync(sub) {
    sub.held = [];
    sub.active = false;
    sub.request = 0; // an answer to an earlier `sub` is superseded
  }

  /**
   * Sends a `request` (`create`, `read`, `update` or `delete`) and resolves with the
   * reply's data, or rejects with the server's `err` (error-first with a callback).
   * @param {SyncMethod} method
   * @param {string} path
   * @param {unknown} [data]
   * @param {CallOptions | Callback<any>} [options]
   * @param {Callback<any>} [callback]
   * @returns {Promise<any> | void}
   */
  request(method, path, data, options, callback) {
    const [opts, cb] = tail(options, callback);
    return this.ask({ t: 'request', method, path, data }, opts?.timeout, { kind: 'call' }, cb);
  }

  /**
   * Creates an item in the collection at `path`.
   * @param {string} path
   * @param {unknown} data
   * @param {CallOptions | Callback<any>} [options]
   * @param {Callback<any>} [callback]
   * @returns {Promise<any> | void}
   */
  create(path, data, options, callback) {
    return this.request('create', path, data, options, callback);
  }

  /**
   * Reads the model or collection at `path`.
   * @param {string} path
   * @param {CallOptions | Callback<any>} [options]
   * @param {Callback<any>} [callback]
   * @returns {Promise<any> | void}
   */
  read(path, options, callback) {
    return this.request('read', path, undefined, options, callback);
  }

  /**
   * Updates the model at `path` with `data`.
   * @param {string} path
   * @param {unknown} data
   * @param {CallOptions | Callback<any>} [options]
   * @param {Callback<any>} [callback]
   * @returns {Promise<any> | void}
   */
  update(path, data, options, callback) {
    return this.request('update', path, data, options, callback);
  }

  /**
   * Deletes the model at `path`.
   * @param {string} path
   * @param {CallOptions | Callback<any>} [options]
   * @param {Callback<any>} [callback]
   * @returns {Promise<any> | void}
   */
  delete(path, options, callback) {
    return this.request('delete', path, undefined, options, callback);
  }

  /**
   * A local copy of the collection at `path`, kept by the items' `id`: subscribes with a
   * snapshot (again after every reconnect) and applies every push.
   * @param {string} path
   * @param {CallOptions} [options]
   * @returns {Collection}
   */
  collection(path, options) {
    return new Collection(this, path, options);
  }

  /**
   * Hands `data` to the listeners of `path`.
   * @param {string} path
   * @param {unknown} data
   * @param {SyncMessage['op']} op
   * @param {boolean} snapshot
   */
  deliver(path, data, op, snapshot) {
    const sub = this.wanted.get(path);
    if (sub) for (const listener of [...sub.listeners]) call(listener, data ?? null, { path, op, snapshot });
  }

  /** @param {boolean} [resumed] */
  restore(resumed) {
    // Resumed, nothing was missed. On a new connection, a path subscribed before asks for
    // a snapshot: it catches up on what changed meanwhile, and no push can overtake it.
    if (!resumed) {
      for (const sub of this.wanted.values()) if (sub.held || (sub.reread && this.link.options.readAfterResubscribe)) sub.held = [];
    }
    super.restore(resumed);
  }

  /** @param {Frame} d */
  frame(d) {
    const sub = this.wanted.get(d.path);
    if (d.t === 'subscribed') {
      const sub = this.answered(d);
      if (!sub) return;
      const held = sub.held || [];
      sub.reread = true;
      sub.held = undefined;
      sub.v = d.v;
      sub.grant();
      // The snapshot, then the pushes held meanwhile that it does not contain (rule 8).
      if (d.v != null) this.deliver(d.path, d.data, 'change', true);
      for (const push of held) this.frame(push);
    } else if (d.t === 'unsubscribed') this.undone(d);
    else if (d.t === 'data') {
      if (sub && d.v != null) {
        // Held until the snapshot, at most 256 (past them the last one is replaced: a gap).
        if (sub.held) return void (sub.held[Math.min(sub.held.length, 255)] = d);
        if (d.v <= sub.v) return; // the snapshot has it
        // A push was missed: a new snapshot (the subscription is kept).
        if (d.v != ++sub.v) return this.resync(sub), this.want(d.path, sub);
      }
      this.deliver(d.path, d.data, d.op, false);
    } else if (d.t === 'error') this.error(d);
    else if (d.t === 'reply') this.reply(d);
  }
}

/**
 * The key of a collection item (from the server's JSON): its `id` as a string.
 * @param {any} item
 * @returns {string | undefined}
 */
const keyOf = (item) =>
  item && (typeof item.id === 'string' || typeof item.id === 'number') ? String(item.id) : undefined;

/**
 * The items of a collection path by `id` (a string or a number; `1` and `"1"` are the
 * same item), in insertion order. Events: `add` `(item, {snapshot})`, `change`
 * `(item, previous, {snapshot})`, `remove` `(item, {snapshot})` for every push and for
 * every difference a snapshot makes (`snapshot` true), then `snapshot` `(items)` after
 * each snapshot (the first one, the one after every reconnect, and any resync).
 *
 * @extends {Emitter<import('./realtime.js').CollectionEvents<any>>}
 */
export class Collection extends Emitter {
  /** @type {(() => Promise<void>) & {ready: Promise<void>}} */
  #unsubscribe;
  /** @type {Map<string, any>} */
  #items = new Map();

  /**
   * @param {Sync} sync
   * @param {string} path
   * @param {CallOptions} [options]
   */
  constructor(sync, path, options) {
    super();
    /** The collection's path. */
    this.path = path;
    this.#unsubscribe = sync.subscribe(path, (data, message) => this.#apply(data, message), options, true);
    /** Resolves once the subscription is active and its snapshot applied. */
    this.ready = this.#unsubscribe.ready;
  }

  /** The items, in insertion order. */
  get items() {
    return [...this.#items.values()];
  }

  /** How many items. */
  get size() {
    return this.#items.size;
  }

  /**
   * The item with this id, if any.
   * @param {string | number} id
   */
  get(id) {
    return this.#items.get(String(id));
  }

  /**
   * Stops following the collection (unsubscribes); the items stay as they are.
   * @returns {Promise<void>}
   */
  close() {
    return this.#unsubscribe();
  }

  /**
   * @param {any} data the server's JSON
   * @param {SyncMessage} message
   */
  #apply(data, { op, snapshot }) {
    const meta = { snapshot };
    const old = this.#items;
    if (snapshot) {
      if (!Array.isArray(data)) return;
      const items = (this.#items = new Map());
      // The last one of a repeated id counts.
      for (const item of data) {
        const id = keyOf(item);
        if (id !== undefined) items.delete(id), items.set(id, item);
      }
      // The events, once all applied.
      for (const [id, item] of old) if (!items.has(id)) fire(this, 'remove', item, meta);
      for (const [id, item] of items) this.#changed(old.get(id), item, meta);
      return fire(this, 'snapshot', this.items);
    }
    const id = keyOf(data);
    if (id === undefined) return;
    const before = old.get(id);
    if (op !== 'remove') return old.set(id, data), this.#changed(before, data, meta);
    if (before) old.delete(id), fire(this, 'remove', before, meta);
  }

  /**
   * Fires `add`, or `change` when the item is not as `before` was.
   * @param {any} before
   * @param {any} item
   * @param {import('./realtime.js').CollectionMeta} meta
   */
  #changed(before, item, meta) {
    if (!before) fire(this, 'add', item, meta);
    else if (JSON.stringify(before) !== JSON.stringify(item)) fire(this, 'change', item, before, meta);
  }
}
