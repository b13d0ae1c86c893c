/**
 * The browser client of the realtime server (`docs/PROTOCOL.md`): a WebSocket that
 * reconnects by itself with an offline queue, channels with acknowledgements
 * ({@link Client.channel}), presence ({@link Client.views}) and synced models and
 * collections ({@link Client.sync}).
 *
 * ```js
 * import { connect } from '@realtime/client';
 * const client = connect('wss://example.com/ws', { minReconnectionDelay: 500 });
 * client.on('message', (data) => console.log(data));
 * client.send('hello'); // queued while offline, sent in order once connected
 * ```
 *
 * @packageDocumentation
 */

/** Where the client connects: a URL, or a function asked before every attempt. */
export type UrlSource = string | URL | (() => string | URL | Promise<string | URL>);

/** A codec for MessagePack router frames (see `msgpack.js`). */
export interface Codec {
  /** Encodes a value as binary. */
  encode(value: unknown): Uint8Array;
  /** Decodes binary as a value. */
  decode(bytes: Uint8Array): any;
}

/**
 * How a {@link Client} connects, retries and queues. Every field is optional and states its
 * default. Times are in milliseconds.
 *
 * The reconnection fields have the names, meanings and defaults of the npm package
 * `reconnecting-websocket` and of the Rust `ws_client::ClientConfig`. They are checked
 * once, by {@link connect}, which throws a `RangeError` for an invalid value.
 */
export interface ClientOptions {
  /**
   * The delay before the first reconnection attempt. Default: 1 s plus a random 0 to 4 s,
   * drawn once per client (so that many clients restarted together do not reconnect in
   * step), and capped at `maxReconnectionDelay`. A number means exactly that.
   */
  minReconnectionDelay?: number;
  /** The longest delay between attempts. Default 10 s (10000). */
  maxReconnectionDelay?: number;
  /** How much each delay grows over the previous one. Default 1.3. Must be at least 1. */
  reconnectionDelayGrowFactor?: number;
  /**
   * A random fraction (0 to 1) by which each delay may be shortened, drawn anew for every
   * attempt: the delay becomes `delay * (1 - jitter * r)` for `r` in `0..1`. Default 0: an
   * explicit schedule is followed exactly.
   */
  jitter?: number;
  /**
   * How long a connection must stay open for the retry count to start over (so that a
   * server accepting and dropping at once still sees growing delays). Default 5 s.
   */
  minUptime?: number;
  /**
   * The longest one attempt may take: the WebSocket handshake (TCP, TLS and HTTP
   * upgrade together; a URL provider gets the same bound, separately). Default 4 s.
   */
  connectionTimeout?: number;
  /**
   * How many reconnection attempts may follow the first one before the client gives up
   * and emits `retries-exhausted`. The count starts over after `minUptime` of open
   * connection and on {@link Client.reconnect}. Default `Infinity` (also `null`):
   * unlimited.
   */
  maxRetries?: number | null;
  /**
   * The most frames waiting in the offline queue (with `resume`, together with the frames
   * sent and not acknowledged). A send past it throws (or rejects with)
   * {@link QueueFullError}. Default 1024.
   */
  maxEnqueuedMessages?: number;
  /**
   * The most payload bytes waiting to be written: in the offline queue while offline, in
   * the socket's buffer (`bufferedAmount`) while online (with `resume`, the frames sent and
   * not acknowledged count too). A send past it throws (or rejects with)
   * {@link QueueFullError}. Default 1 MiB (1048576).
   */
  maxEnqueuedBytes?: number;
  /**
   * Whether the client waits for {@link Client.reconnect} before its first connection.
   * Frames sent meanwhile are queued. Default `false`.
   */
  startClosed?: boolean;
  /**
   * After this long without any incoming frame, the client sends a heartbeat `ping`
   * (`{"$r":"hb","d":{"t":"ping","id":N}}`, PROTOCOL.md section 3.1), which the server
   * answers with a `pong`. Any frame counts as a sign of life. Default 25 s; `null` sends
   * no pings (and never declares the server gone).
   */
  pingInterval?: number | null;
  /**
   * How long after a ping the client waits for any frame before it treats the server as
   * gone: it drops the socket (a `close` event with code 1006, reason `heartbeat timeout`)
   * and reconnects. Default 10 s.
   */
  pongTimeout?: number;
  /**
   * Called with the server's close code and reason when the server closes the connection
   * (not for a connection that died, code 1006): `false` stops reconnecting (the client
   * emits `reconnect-declined` and waits for {@link Client.reconnect}), e.g. for an
   * application code meaning "banned". Default: always reconnect.
   */
  shouldReconnect?: (event: CloseInfo) => boolean;
  /**
   * How long a request waits for the server's answer by default: channel joins and
   * leaves, acknowledged emits, view opens, closes and info, subscriptions, create, read,
   * update, delete. Each call may pass its own `{timeout}`. Default 10 s (as the Rust
   * clients' `ack_timeout`, `join_timeout` and `request_timeout`).
   */
  timeout?: number;
  /**
   * Requests waiting for an answer at once, per router; past it a new one rejects with
   * code `too_many_pending`. Default 1024.
   */
  maxPendingRequests?: number;
  /**
   * Whether the sync router asks for every path subscribed before a new connection again
   * with a snapshot (a versioned subscription, PROTOCOL.md 7.3 rule 8) and hands it to the
   * path's listeners (`snapshot: true`); pushes that overtake the snapshot are held and
   * applied after it. Without it, changes made while offline are not seen until the next
   * push. A resumed session subscribes nothing again. Default `true`.
   */
  readAfterResubscribe?: boolean;
  /**
   * Session resume (PROTOCOL.md section 9; the server must support it, the example server
   * does by default): the client asks for a session (`session=new` in the query) and, when
   * its socket drops without a close frame, reconnects within the server's window as the
   * same connection. Nothing is restored (channels, views and subscriptions stayed on the
   * server, and requests waiting for an answer keep waiting), the frames the server sent
   * meanwhile arrive, each once, and the client sends again, once, the frames the server
   * had not received: `resumed` is emitted instead of `open`. If the server refuses the
   * resume, `reset` is emitted (frames may have been lost both ways), then the client does
   * what it does after any reconnect (restores the routers, emits `open`).
   *
   * The frames sent and not yet acknowledged by the server count against
   * `maxEnqueuedMessages` and `maxEnqueuedBytes`, online and offline. With this option the
   * connection opens on the server's first frame (`connectionTimeout` bounds the wait), so
   * a server that does not know sessions is never connected to. Default `false`.
   */
  resume?: boolean;
  /**
   * Sends router frames (and `send(object)`) as MessagePack with this codec
   * (`import { msgpack } from '@realtime/client/msgpack.js'`). Default: JSON text.
   */
  codec?: Codec;
  /** The WebSocket constructor. Default: the global `WebSocket`. */
  WebSocket?: new (url: string) => WebSocket;
}

/** The close code and reason of a connection. */
export interface CloseInfo {
  /** The close code (1006 when no close frame was exchanged). */
  code: number;
  /** The close reason. */
  reason: string;
}

/** An error of this library; see `code`. */
export class RealtimeError extends Error {
  constructor(code: string, message: string, remote?: boolean);
  /**
   * Machine-readable: the server's own codes (`not_found`, `forbidden`, `no_handler`,
   * `bad_request`, `limit`...) with `remote` true, or the client's: `timeout` (no answer
   * in time), `closed` (the connection closed before the answer, so the request may or
   * may not have been handled; or the client is closed), `queue_full`,
   * `too_many_pending`, `cancelled` (the channel was left, the view or subscription
   * closed while a call waited), `malformed` (a frame from the server could not be
   * read), `connect` (an attempt failed).
   */
  code: string;
  /** Whether the server sent it. */
  remote: boolean;
  /** The channel a background channels error is about. */
  channel?: string;
  /** The view a background views error is about. */
  view?: string;
  /** The path a background sync error is about. */
  path?: string;
}

/** A send past the queue's bounds; the refused frame is handed back in `data`. */
export class QueueFullError extends RealtimeError {
  constructor(data: string | ArrayBuffer | ArrayBufferView);
  /** The frame that was not sent. */
  data: string | ArrayBuffer | ArrayBufferView;
}

/** An error-first callback. */
export type Callback<T> = (err: RealtimeError | null, data?: T) => void;

/** Per-call options of requests. */
export interface CallOptions {
  /** How long to wait for the answer (ms). Default: the client's `timeout`. */
  timeout?: number;
}

/** The lifecycle events of a {@link Client} and their arguments. */
export interface ClientEvents {
  /** An attempt starts now (the URL provider is asked first). */
  connecting: [info: { attempt: number }];
  /** The socket is open, the routers restored and the offline queue written. */
  open: [];
  /** An attempt failed; a retry follows unless `maxRetries` is reached. */
  failed: [info: { attempt: number; error: unknown }];
  /**
   * An open connection closed (by the server, by the client, or died: 1006). With
   * `resume`, a socket that died may be followed by `resumed` instead of `open`.
   */
  close: [info: CloseInfo];
  /**
   * (`resume`) The session resumed after a drop: nothing was lost either way, and nothing
   * was restored, since the server kept it all. Emitted instead of `open`.
   */
  resumed: [];
  /**
   * (`resume`) The server refused to resume the session (`reason`: `expired`, `unknown`,
   * `overflow`, `closed`, `disabled`...: PROTOCOL.md 9.4). Frames may have been lost in
   * both directions: `unconfirmed` frames this client had sent were never acknowledged
   * (they may or may not have been handled, and are not sent again). `open` follows, the
   * routers restored as after any reconnect.
   */
  reset: [info: { reason: string; unconfirmed: number }];
  /** The client waits `delay` ms before attempt `attempt`. */
  reconnecting: [info: { attempt: number; delay: number }];
  /** `maxRetries` attempts failed after the first; waits for `reconnect()`. */
  'retries-exhausted': [];
  /** `shouldReconnect` returned false; waits for `reconnect()`. */
  'reconnect-declined': [];
  /** An application frame: a string (text) or an ArrayBuffer (binary). */
  message: [data: string | ArrayBuffer];
  /**
   * Every refusal of a join, a view open or a subscription (the channel, view or path is
   * forgotten; also reported when a call waits for it, since a refusal after a reconnect
   * has nobody else to tell; a snapshot whose read fails is such a refusal), an error
   * frame that answers no request, a frame from the server that could not be read.
   */
  error: [error: RealtimeError];
}

/** Typed `on`/`off`. */
export class Emitter<Events extends { [E in keyof Events]: unknown[] }> {
  /** Calls `fn` on every `event`; returns a function that removes it. */
  on<E extends keyof Events & string>(event: E, fn: (...args: Events[E]) => void): () => void;
  /** Removes a listener added with `on`. */
  off<E extends keyof Events & string>(event: E, fn: (...args: Events[E]) => void): void;
}

/**
 * Connects to a realtime server and returns the client, which reconnects by itself until
 * {@link Client.close}.
 *
 * `url` is a `ws://`/`wss://` URL (an `http(s)://` one or, in a page, a relative one is
 * converted), or a function called before every attempt (for a fresh one-time token in
 * the query; it may return a promise, bounded by `connectionTimeout`; a throw or
 * rejection counts as a failed attempt). Omitted (or `connect(options)`): the server this
 * module was loaded from, `new URL('/', import.meta.url)` with `ws:`/`wss:`.
 */
export function connect(url?: UrlSource | null, options?: ClientOptions): Client;
export function connect(options: ClientOptions): Client;

/** The server this module was loaded from, as a `ws://` or `wss://` URL. */
export function defaultUrl(): string;

/**
 * The delay before reconnection attempt `attempt` (0 for the first connection):
 * `min(max, min * grow^(attempt-1))`, 0 for attempt 0.
 */
export function reconnectDelay(attempt: number, min: number, max: number, grow: number): number;

/** `delay * (1 - jitter * random)`, never longer than `delay`; inputs clamped to 0..1. */
export function jittered(delay: number, jitter: number, random: number): number;

/**
 * What {@link Client#send} does with a frame sent while offline: ws-client's `Offline`
 * (`Buffer`, `Volatile`, `Latest(key)`, `Expire(ttl)`). Online, every frame is written.
 * The queue's bounds hold for every policy; the frames written keep the order of the sends.
 *
 * - `buffer` (the default): queued, written after the routers' restore frames.
 * - `volatile`: dropped, and `send` returns `'dropped'`. For frames worthless later: a
 *   cursor position, a "typing" signal.
 * - `latest`: at most one frame with this `key` waits in the queue; a send removes the
 *   queued one (`send` returns `'replaced'`) and queues the new frame at the end, behind
 *   every frame sent before it.
 * - `expire`: skipped at the flush once `ttl` milliseconds have passed since the send; a
 *   send that finds the queue full does not count expired frames. A `ttl` of 0 is never
 *   written.
 */
export type SendOptions =
  | { offline?: 'buffer' }
  | { offline: 'volatile' }
  | { offline: 'latest'; key: string }
  | { offline: 'expire'; ttl: number };

/**
 * What became of a frame given to {@link Client#send} (ws-client's `Sent`): `'queued'`
 * (written now, or once online), `'replaced'` (queued; the queued frame with the same
 * `latest` key will never be written), `'dropped'` (a `volatile` frame while offline).
 */
export type Sent = 'queued' | 'replaced' | 'dropped';

/**
 * A reconnecting connection to a realtime server and its routers. Made by {@link connect}.
 *
 * After every (re)connect the routers restore first (channels joined again, views opened
 * again, subscriptions renewed with a snapshot), then the frames queued while offline are
 * written in order, then `open` is emitted. When a connection closes, requests waiting
 * for an answer reject with code `closed`; with the `resume` option, a connection that
 * dropped is resumed instead when the server allows it (nothing is restored, nothing
 * rejected; see `resume`).
 */
export class Client extends Emitter<ClientEvents> {
  constructor(url?: UrlSource | null, options?: ClientOptions);
  /** Whether the socket is open (and the routers restored). */
  readonly connected: boolean;
  /** How many frames wait in the offline queue. */
  readonly queued: number;
  /** Presence: who has a view open. */
  readonly views: Views;
  /** Models and collections by path, with create, read, update and delete. */
  readonly sync: Sync;
  /** The channel `path` (`/` then up to 127 of `A-Z a-z 0-9 _ - . /`); throws a TypeError otherwise. */
  channel(path: string): Channel;
  /**
   * Sends an application frame (relayed by the example server to every other
   * connection): a string as text, an ArrayBuffer or typed array as binary, anything else
   * as JSON text (MessagePack binary with the `codec` option). Queued while offline.
   * Throws {@link QueueFullError} past the queue's bounds, a {@link RealtimeError}
   * `closed` after `close()`, and a TypeError for a value JSON has no text for
   * (`undefined`, a function, a symbol).
   *
   * `options.offline` chooses what happens to the frame while offline (see
   * {@link SendOptions}); the result says what became of it.
   */
  send(data: unknown, options?: SendOptions): Sent;
  /**
   * Closes for good: sends a close frame (`code`, default 1000; codes a browser may not
   * send become 1000; the reason is cut to 123 bytes of UTF-8), rejects every waiting
   * request with `closed`, drops the queue, and emits `close` if the socket was open.
   */
  close(code?: number, reason?: string): void;
  /**
   * Connects now: closes the current socket (1000 `reconnect`), starts the retry count
   * over and makes an attempt at once. Starts a `startClosed` client, or one whose retries
   * are exhausted or whose reconnection was declined.
   */
  reconnect(): void;
}

/** A channel of a client (a socket.io namespace). */
export class Channel {
  private constructor();
  /** The channel path. */
  readonly path: string;
  /** Whether the server confirmed the join on the current connection (`/`: always). */
  readonly joined: boolean;
  /**
   * Joins the channel and waits for the server's `joined`. From this call on the channel
   * is joined again after every reconnect, until `leave()` or a refusal. While offline the
   * join waits for the next connection. Rejects with the server's error
   * (`unknown_channel`, `forbidden`, `limit`), `timeout` (the channel stays wanted),
   * `cancelled` (left meanwhile) or `closed`.
   */
  join(options?: CallOptions): Promise<void>;
  /**
   * Leaves the channel: forgotten at once (joins still waiting reject with `cancelled`)
   * and, when online, the server is told; its `not_joined` counts as success.
   */
  leave(options?: CallOptions): Promise<void>;
  /** Emits `event` with `data`, fire and forget. Throws {@link QueueFullError} when the queue is full. */
  emit(event: string, data?: unknown): void;
  /**
   * Emits `event` with `data` and waits for the server's acknowledgement: resolves with
   * its data, rejects with its error (error-first: `no_handler`, `not_joined`,
   * `bad_request`, the handler's own code), `timeout` or `closed`.
   */
  emit<T = any>(event: string, data: unknown, options: CallOptions): Promise<T>;
  /** As the promise form, with an error-first callback instead. */
  emit<T = any>(event: string, data: unknown, callback: Callback<T>): void;
  /** As the promise form, with options and an error-first callback instead. */
  emit<T = any>(event: string, data: unknown, options: CallOptions | undefined, callback: Callback<T>): void;
  /**
   * Calls `fn(data)` for every `event` the server emits on this channel without asking
   * for an acknowledgement; returns a function that removes it.
   */
  on<T = any>(event: string, fn: (data: T) => void): () => void;
  /** Removes a listener added with `on`. */
  off(event: string, fn: (data: any) => void): void;
  /**
   * Answers the server's `event` emits that ask for an acknowledgement: the value `fn`
   * returns (or resolves with) is the ack's data; a throw or rejection its `err`
   * (`{code, message}`; code `internal` when the error has none). Without a handler the
   * client answers `no_handler`; `null` removes it.
   */
  handle<T = any>(event: string, fn: ((data: T) => unknown) | null): void;
}

/** A member of a view (PROTOCOL.md section 6.1). */
export interface Member {
  /** `u:` + user id, or `c:` + connection id. */
  key: string;
  /** The user id; absent for anonymous connections. */
  user?: string;
  /** How many of the member's connections have the view open. */
  clients: number;
  /** The identity's public metadata, when the application attached some. */
  data?: any;
  /** Only in debug answers: the connection ids. */
  connections?: number[];
}

/** What one frame from the server changed in a view (the net difference, sorted by key). */
export interface ViewChange {
  /** Members that appeared. */
  joined: Member[];
  /** Members whose entry changed (their `clients` count, their `data`). */
  changed: Member[];
  /** Members that are gone, with their last entry. */
  left: Member[];
  /** The server refused to re-open the view after a reconnect: the view is closed. */
  closed?: RealtimeError;
}

/** A handle to an open view. */
export class View extends Emitter<{ change: [change: ViewChange, view: View] }> {
  private constructor();
  /** The view's name. */
  readonly name: string;
  /** Whether this handle is open (not closed, the view not refused). */
  readonly open: boolean;
  /** The members, sorted by key; while offline the last known ones; empty once closed. */
  readonly members: Member[];
  /** This connection's own member key (`u:USER` or `c:ID`), from the server's `state`. */
  readonly you: string | undefined;
  /** Whether the members are current (the server's state arrived on this connection). */
  readonly synced: boolean;
  /**
   * Closes this handle (its listeners are removed); the view closes on the server once
   * every handle of it is closed.
   */
  close(): Promise<void>;
}

/** The counts of one view (an `info` answer). */
export interface ViewInfo {
  /** The view's name. */
  view: string;
  /** How many connections have it open. */
  clients: number;
  /** The users, with how many connections each. */
  users: { user: string; clients: number; connections?: number[] }[];
  /** How many connections without a user id. */
  anonymous: number;
}

/** Presence: views, their members and counts (`client.views`). */
export interface Views {
  /**
   * Opens view `name` and resolves with a new handle once the server's `state` arrived
   * (while offline: on the next connection). The view is opened again after every
   * reconnect until every handle is closed. Rejects with the server's `forbidden`,
   * `bad_request` or `limit`, `timeout` (the view stays wanted), `cancelled` or `closed`.
   */
  open(name: string, options?: CallOptions): Promise<View>;
  /** Closes view `name` for every handle; `not_open` and being offline count as success. */
  close(name: string, options?: CallOptions): Promise<void>;
  /** The counts of view `name`, or `null` when nobody has it open. */
  info(name: string, options?: CallOptions & { debug?: boolean }): Promise<ViewInfo | null>;
  /**
   * The counts of every view matching `pattern` (sent in Rust `regex` syntax; flag `i`
   * becomes `(?i)`), with `truncated` when the server listed only the first ones (100).
   */
  info(pattern: RegExp, options?: CallOptions & { debug?: boolean }): Promise<ViewInfo[] & { truncated: boolean }>;
}

/** How a sync message reached a listener. */
export interface SyncMessage {
  /** The subscribed path. */
  path: string;
  /** `change`, `add` or `remove` (PROTOCOL.md section 7.2). */
  op: 'change' | 'add' | 'remove';
  /**
   * Whether `data` is a snapshot: the whole value, answering a subscription that asked for
   * one (after a reconnect, a collection's start, or a resync after missed pushes).
   */
  snapshot: boolean;
}

/** The function that ends a subscription, with its readiness. */
export interface Unsubscribe {
  /** Unsubscribes this listener; the path is unsubscribed on the server once it has none. */
  (): Promise<void>;
  /**
   * Resolves once the server confirmed the subscription; rejects with its refusal
   * (`no_route`, `forbidden`, `bad_request`, `limit`), `timeout` or `closed`.
   */
  ready: Promise<void>;
}

/** The methods of the sync router's requests. */
export type SyncMethod = 'create' | 'read' | 'update' | 'delete';

/** Models and collections by path (`client.sync`). */
export interface Sync {
  /**
   * Subscribes to `path` and calls `onData(data, message)` for every push and for every
   * snapshot (`snapshot` true): after a reconnect the path is subscribed again with one,
   * and a versioned subscription that missed pushes asks for one (a resync). With
   * `snapshot` true it asks for one now (the path's current value, with no push lost or
   * applied out of order around it; every listener of the path gets it) and `ready`
   * resolves once it is delivered; a snapshot whose read fails refuses the subscription.
   * Refusals also come as the client's `error` event.
   */
  subscribe<T = any>(path: string, onData: (data: T, message: SyncMessage) => void, options?: CallOptions, snapshot?: boolean): Unsubscribe;
  /** Sends a request; resolves with the reply's data or rejects with its `err`. */
  request<T = any>(method: SyncMethod, path: string, data?: unknown, options?: CallOptions): Promise<T>;
  /** As the promise form, with an error-first callback. */
  request<T = any>(method: SyncMethod, path: string, data: unknown, callback: Callback<T>): void;
  /** As the promise form, with options and an error-first callback. */
  request<T = any>(method: SyncMethod, path: string, data: unknown, options: CallOptions | undefined, callback: Callback<T>): void;
  /** Creates an item of the collection at `path`; resolves with it as the server stored it. */
  create<T = any>(path: string, data: unknown, options?: CallOptions): Promise<T>;
  /** As the promise form, with an error-first callback. */
  create<T = any>(path: string, data: unknown, callback: Callback<T>): void;
  /** As the promise form, with options and an error-first callback. */
  create<T = any>(path: string, data: unknown, options: CallOptions | undefined, callback: Callback<T>): void;
  /** Reads the model or collection at `path`. */
  read<T = any>(path: string, options?: CallOptions): Promise<T>;
  /** As the promise form, with an error-first callback. */
  read<T = any>(path: string, callback: Callback<T>): void;
  /** As the promise form, with options and an error-first callback. */
  read<T = any>(path: string, options: CallOptions | undefined, callback: Callback<T>): void;
  /** Updates the model at `path` with `data`; resolves with its new value. */
  update<T = any>(path: string, data: unknown, options?: CallOptions): Promise<T>;
  /** As the promise form, with an error-first callback. */
  update<T = any>(path: string, data: unknown, callback: Callback<T>): void;
  /** As the promise form, with options and an error-first callback. */
  update<T = any>(path: string, data: unknown, options: CallOptions | undefined, callback: Callback<T>): void;
  /** Deletes the model at `path`; resolves with what the server removed. */
  delete<T = any>(path: string, options?: CallOptions): Promise<T>;
  /** As the promise form, with an error-first callback. */
  delete<T = any>(path: string, callback: Callback<T>): void;
  /** As the promise form, with options and an error-first callback. */
  delete<T = any>(path: string, options: CallOptions | undefined, callback: Callback<T>): void;
  /**
   * A local copy of the collection at `path`, kept by the items' `id`: subscribes with a
   * snapshot (the list; again after every reconnect) and applies every push. Pushes that
   * overtake a snapshot are held and applied after it, once (PROTOCOL.md 7.3 rule 8).
   */
  collection<T extends { id: string | number } = any>(path: string, options?: CallOptions): Collection<T>;
}

/** Whether a collection event comes from a snapshot. */
export interface CollectionMeta {
  /** True for the differences a snapshot made. */
  snapshot: boolean;
}

/** The events of a {@link Collection}. */
export interface CollectionEvents<T> {
  /** A new id. */
  add: [item: T, meta: CollectionMeta];
  /** An id now has another value. */
  change: [item: T, previous: T, meta: CollectionMeta];
  /** The id left the collection. */
  remove: [item: T, meta: CollectionMeta];
  /** A snapshot was applied (after its add, change and remove events). */
  snapshot: [items: T[]];
}

/** The items of a collection path by `id`, in insertion order. */
export class Collection<T extends { id: string | number } = any> extends Emitter<CollectionEvents<T>> {
  private constructor();
  /** The collection's path. */
  readonly path: string;
  /** The items, in insertion order. */
  readonly items: T[];
  /** How many items. */
  readonly size: number;
  /** Resolves once the subscription is active and its first snapshot applied. */
  readonly ready: Promise<void>;
  /** The item with this id (`1` and `"1"` are the same). */
  get(id: string | number): T | undefined;
  /** Stops following (unsubscribes); the items stay. */
  close(): Promise<void>;
}
