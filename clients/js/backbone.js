/**
 * Backbone over the socket: `Backbone.sync` replaced by the sync router's create, read,
 * update and delete, and Backbone collections kept in step with the server's pushes.
 *
 * ```js
 * import { connect } from './realtime.js';
 * import { realtimeSync, syncCollection } from './backbone.js';
 * const client = connect();
 * Backbone.sync = realtimeSync(client);
 * const books = new Books();           // url: '/api/books'
 * const stop = syncCollection(client, books, '/api/books');
 * ```
 *
 * This module imports nothing: it works with the Backbone the page has.
 *
 * @module backbone
 */

/** @typedef {import('./backbone.js').BackboneLike} BackboneLike */
/** @typedef {import('./backbone.js').BackboneCollectionLike} BackboneCollectionLike */
/** @typedef {import('./backbone.js').SyncOptions} SyncOptions */

/**
 * `object[name]`, called when it is a function (Underscore's `_.result`).
 * @param {{url?: string | (() => string)}} object
 * @param {'url'} name
 * @returns {string | undefined}
 */
function result(object, name) {
  const value = object && object[name];
  return typeof value === 'function' ? value.call(object) : value;
}

/**
 * A drop-in `Backbone.sync` that talks to the sync router over `client`'s socket:
 * `create` → `create` on the model's URL (a collection's URL for a new model), `read` →
 * `read`, `update` → `update` with `model.toJSON()`, `patch` → `update` with
 * `options.attrs` (the changed attributes), `delete` → `delete`.
 *
 * The URL is `options.url`, else `model.url` (Backbone's rules: `urlRoot` or the
 * collection's `url`, plus the id). It calls `options.success(data)` or
 * `options.error(err)` (a `RealtimeError`: `err.code` is the server's code, such as
 * `not_found`, or `timeout`/`closed`), triggers `request` on the model as Backbone does,
 * and returns a promise of the reply's data in place of the `jqXHR`. `options.timeout`
 * (ms) bounds the wait (default: the client's `timeout`).
 *
 * @param {import('./realtime.js').Client} client
 * @returns {(method: string, model: BackboneLike, options?: SyncOptions) => Promise<any>}
 */
export function realtimeSync(client) {
  return function sync(method, model, options = {}) {
    if (!['create', 'read', 'update', 'patch', 'delete'].includes(method)) throw new TypeError(`unknown Backbone.sync method ${method}`);
    const url = options.url || result(model, 'url');
    if (!url) throw new Error('A "url" property or function must be specified');
    const limits = options.timeout ? { timeout: options.timeout } : undefined;
    const xhr = new Promise((resolve, reject) => {
      // The error-first form runs `success` as soon as the reply is read, before the
      // server's push of the same change: a created model has its id when the push comes.
      /** @type {import('./realtime.js').Callback<any>} */
      const done = (err, data) => {
        if (err) {
          reject(err);
          options.error?.call(options.context, err);
        } else {
          resolve(data);
          options.success?.call(options.context, data);
        }
      };
      // `patch` sends the changed attributes (`options.attrs`) as an `update`.
      const verb = /** @type {import('./realtime.js').SyncMethod} */ (method === 'patch' ? 'update' : method);
      const body = verb === 'create' || verb === 'update' ? (options.attrs !== undefined ? options.attrs : model.toJSON(options)) : undefined;
      client.sync.request(verb, url, body, limits, done);
    });
    // Backbone ignores what `sync` returns in `save` and `destroy`: a failure reported
    // through `options.error` must not also be an unhandled rejection.
    xhr.catch(() => {});
    model.trigger?.('request', model, xhr, options);
    return xhr;
  };
}

/**
 * Keeps the Backbone `collection` in step with the server's collection at `path`
 * (default: the collection's `url`): subscribes with a snapshot of the list, and applies
 * every push and every snapshot (after a reconnect, or a resync): new ids are added,
 * changed ones merged (`collection.add(item, {merge: true})`), removed ones removed.
 * Models the server never knew (new, without an id) are left alone.
 *
 * Returns a function that stops following (unsubscribes); its `ready` promise resolves
 * once the first list was applied. Throws, as `realtimeSync` does, when there is neither
 * a `path` nor a `url`.
 *
 * @param {import('./realtime.js').Client} client
 * @param {BackboneCollectionLike} collection a Backbone.Collection
 * @param {string} [path]
 * @returns {(() => Promise<void>) & {ready: Promise<void>}}
 */
export function syncCollection(client, collection, path = result(collection, 'url')) {
  if (!path) throw new Error('A "url" property or function must be specified');
  const mirror = client.sync.collection(path);
  const offs = [
    mirror.on('add', (item) => collection.add(item, { merge: true })),
    mirror.on('change', (item) => collection.add(item, { merge: true })),
    mirror.on('remove', (item) => collection.remove(item.id)),
  ];
  const stop = () => {
    for (const off of offs) off();
    return mirror.close();
  };
  stop.ready = mirror.ready.then(() => {});
  stop.ready.catch(() => {});
  return stop;
}
