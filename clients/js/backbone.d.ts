/**
 * Backbone over the socket: `Backbone.sync` replaced by the sync router's create, read,
 * update and delete, and Backbone collections kept in step with the server's pushes. The
 * module imports nothing: it works with the Backbone the page has.
 *
 * ```js
 * Backbone.sync = realtimeSync(client);
 * const stop = syncCollection(client, books, '/api/books');
 * ```
 *
 * @packageDocumentation
 */

import type { Client, RealtimeError } from './realtime.js';

/** What the adapter needs of a Backbone model or collection. */
export interface BackboneLike {
  /** The URL (Backbone's `url` property or method). */
  url?: string | (() => string);
  /** The attributes to send. */
  toJSON(options?: any): any;
  /** Backbone's event trigger (`request` is triggered as Backbone.sync does). */
  trigger?(event: string, ...args: any[]): any;
}

/** The options Backbone passes to `sync`. */
export interface SyncOptions {
  /** Overrides the model's URL. */
  url?: string;
  /** The attributes to send for a `patch` (Backbone sets them). */
  attrs?: any;
  /** How long to wait for the reply (ms). Default: the client's `timeout`. */
  timeout?: number;
  /** Called with the reply's data. */
  success?: (data: any) => void;
  /** Called with the error (`err.code`: the server's code, or `timeout`/`closed`). */
  error?: (error: RealtimeError) => void;
  /** `this` of the callbacks. */
  context?: any;
  [option: string]: any;
}

/**
 * A drop-in `Backbone.sync` over `client`'s socket: `create`, `read`, `update` (with
 * `model.toJSON()`), `patch` (`update` with `options.attrs`) and `delete` on the model's
 * URL. Calls `options.success(data)` or `options.error(err)`, triggers `request` on the
 * model, and returns a promise of the reply's data in place of the `jqXHR`.
 */
export function realtimeSync(client: Client): (method: 'create' | 'read' | 'update' | 'patch' | 'delete', model: BackboneLike, options?: SyncOptions) => Promise<any>;

/** What `syncCollection` needs of a Backbone collection. */
export interface BackboneCollectionLike {
  /** The collection's URL, the default path. */
  url?: string | (() => string);
  /** Backbone's `add` (called with `{merge: true}`). */
  add(item: any, options?: any): any;
  /** Backbone's `remove` (called with an id). */
  remove(id: any, options?: any): any;
}

/**
 * Keeps `collection` in step with the server's collection at `path` (default: the
 * collection's `url`): new ids added, changed ones merged, removed ones removed, after
 * every push and every snapshot (the first, and after reconnects). Returns a function that stops following; `ready`
 * resolves once the first list was applied. Throws an Error (Backbone's "A \"url\"
 * property or function must be specified") when there is neither a `path` nor a `url`.
 */
export function syncCollection(client: Client, collection: BackboneCollectionLike, path?: string): (() => Promise<void>) & { ready: Promise<void> };
