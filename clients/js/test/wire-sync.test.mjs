// Against the real example server: books at /api/book/:id in the collection /api/books,
// with create (on the collection), read, update and delete, and pushes to subscribers.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../realtime.js';
import { startServer, next, tracked, within, until } from './helpers.mjs';

let server;
const clients = tracked(connect);
before(async () => (server = await startServer()));
afterEach(() => clients.closeAll());
after(() => server?.kill());

/** The outcome of an error-first call, as `[err, data]`. */
const viaCallback = (start) => within(new Promise((resolve) => start((...args) => resolve(args))), 'the callback');

test('create, read, update, delete', async () => {
  const a = await clients.open(server.url);
  const book = await a.sync.create('/api/books', { title: 'Dune' });
  assert.equal(typeof book.id, 'number');
  assert.deepEqual(book, { id: book.id, title: 'Dune' });
  const path = `/api/book/${book.id}`;
  assert.deepEqual(await a.sync.read(path), book);
  assert.deepEqual(await a.sync.update(path, { title: 'Dune Messiah', year: 1969 }), { id: book.id, title: 'Dune Messiah', year: 1969 });
  assert.deepEqual(await a.sync.read(path, { timeout: 2000 }), { id: book.id, title: 'Dune Messiah', year: 1969 });
  const list = await a.sync.read('/api/books');
  assert.ok(list.some((b) => b.id === book.id));
  assert.deepEqual(await a.sync.delete(path), { id: book.id, title: 'Dune Messiah', year: 1969 });
  await assert.rejects(a.sync.read(path), (e) => e.code === 'not_found' && e.remote && e.message === 'no such book');

  // The same, error-first.
  const [err, created] = await viaCallback((cb) => a.sync.create('/api/books', { title: 'Emma' }, cb));
  assert.equal(err, null);
  assert.equal(created.title, 'Emma');
  const [readErr, read] = await viaCallback((cb) => a.sync.read(`/api/book/${created.id}`, { timeout: 2000 }, cb));
  assert.deepEqual([readErr, read], [null, created]);
  const [deleteErr] = await viaCallback((cb) => a.sync.delete(`/api/book/${created.id}`, cb));
  assert.equal(deleteErr, null);
});

test('failures are error-first: not_found, bad_request, no_route, no_handler', async () => {
  const a = await clients.open(server.url);
  const [notFound, data] = await viaCallback((cb) => a.sync.read('/api/book/999999', cb));
  assert.equal(notFound.code, 'not_found');
  assert.equal(data, undefined);
  const [badId] = await viaCallback((cb) => a.sync.update('/api/book/abc', { title: 'x' }, cb));
  assert.equal(badId.code, 'bad_request');
  assert.equal(badId.message, 'book ids are numbers');
  await assert.rejects(a.sync.read('/api/nothing'), (e) => e.code === 'no_route');
  await assert.rejects(a.sync.create('/api/book/1', {}), (e) => e.code === 'no_handler');
  await assert.rejects(a.sync.create('/api/books', 'not an object'), (e) => e.code === 'bad_request');
  await assert.rejects(a.sync.request('update', '/api/book/1', {}), (e) => e.code === 'not_found');
});

test('a subscription receives the pushes of another client', async () => {
  const a = await clients.open(server.url);
  const b = await clients.open(server.url);
  const book = await b.sync.create('/api/books', { title: 'Kindred' });
  const path = `/api/book/${book.id}`;
  const pushes = [];
  const unsubscribe = a.sync.subscribe(path, (data, message) => pushes.push([message.op, data, message.path, message.snapshot]));
  await unsubscribe.ready;
  await b.sync.update(path, { title: 'Kindred (1979)' });
  await until(() => pushes.length === 1, 'the change push');
  assert.deepEqual(pushes[0], ['change', { id: book.id, title: 'Kindred (1979)' }, path, false]);
  await b.sync.delete(path);
  await until(() => pushes.length === 2, 'the remove push');
  assert.deepEqual(pushes[1], ['remove', { id: book.id, title: 'Kindred (1979)' }, path, false]);

  // After unsubscribing, nothing more arrives.
  const other = await b.sync.create('/api/books', { title: 'Parable' });
  const otherPushes = [];
  const stop = a.sync.subscribe(`/api/book/${other.id}`, (data) => otherPushes.push(data));
  await stop.ready;
  await stop();
  await b.sync.update(`/api/book/${other.id}`, { title: 'changed' });
  const marker = a.sync.subscribe('/api/books', () => {});
  await marker.ready; // a round trip after the update: a push would have arrived before
  assert.deepEqual(otherPushes, []);
});

test('a requester subscribed to what it changes gets its reply, then its own push', async () => {
  const a = await clients.open(server.url);
  const book = await a.sync.create('/api/books', { title: 'Beloved' });
  const order = [];
  const unsubscribe = a.sync.subscribe('/api/books', (data, { op }) => order.push(`push ${op} ${data.title}`));
  await unsubscribe.ready;
  // The error-first callback runs as the reply is read. (A promise's continuation is a
  // microtask: in a browser it runs before the next frame's event, but Node's WebSocket
  // may dispatch several frames read together before any microtask runs.)
  a.sync.update(`/api/book/${book.id}`, { title: 'Jazz' }, (err, data) => order.push(`reply ${data.title}`));
  await until(() => order.length === 2, 'the reply and the push');
  assert.deepEqual(order, ['reply Jazz', 'push change Jazz']);
});

test('a subscription the server refuses rejects ready and is reported', async () => {
  const a = await clients.open(server.url);
  const errors = [];
  a.on('error', (e) => errors.push([e.code, e.path]));
  const unsubscribe = a.sync.subscribe('/not/routed', () => {});
  await assert.rejects(unsubscribe.ready, (e) => e.code === 'no_route' && e.remote);
  assert.deepEqual(errors, [['no_route', '/not/routed']]);
});

test('the collection helper follows adds, changes and removes by id', async () => {
  const a = await clients.open(server.url);
  const b = await clients.open(server.url);
  const existing = await a.sync.create('/api/books', { title: 'Existing' });
  const books = b.sync.collection('/api/books');
  const events = [];
  books.on('add', (item, meta) => events.push(['add', item.title, meta.snapshot]));
  books.on('change', (item, previous, meta) => events.push(['change', `${previous.title} -> ${item.title}`, meta.snapshot]));
  books.on('remove', (item, meta) => events.push(['remove', item.title, meta.snapshot]));
  books.on('snapshot', (items) => events.push(['snapshot', items.length]));
  await books.ready;
  const listed = await a.sync.read('/api/books');
  assert.deepEqual(books.items, listed);
  assert.equal(books.size, listed.length);
  assert.deepEqual(books.get(existing.id), existing);
  assert.deepEqual(books.get(String(existing.id)), existing, '1 and "1" are the same id');
  assert.ok(events.some(([event, title, snapshot]) => event === 'add' && title === 'Existing' && snapshot));
  assert.deepEqual(events.at(-1), ['snapshot', listed.length]);
  events.length = 0;

  const added = await a.sync.create('/api/books', { title: 'New' });
  await until(() => events.length === 1, 'the add');
  await a.sync.update(`/api/book/${added.id}`, { title: 'Newer' });
  await until(() => events.length === 2, 'the change');
  await a.sync.update(`/api/book/${added.id}`, { title: 'Newer' }); // the same value: no event
  await a.sync.delete(`/api/book/${existing.id}`);
  await until(() => events.length === 3, 'the remove');
  assert.deepEqual(events, [
    ['add', 'New', false],
    ['change', 'New -> Newer', false],
    ['remove', 'Existing', false],
  ]);
  assert.equal(books.get(existing.id), undefined);
  assert.deepEqual(books.get(added.id), { id: added.id, title: 'Newer' });
  await books.close();
  await a.sync.update(`/api/book/${added.id}`, { title: 'after close' });
  await next(a, 'open', () => true, 200).catch(() => {}); // a moment for a stray push
  assert.deepEqual(books.get(added.id), { id: added.id, title: 'Newer' });
});

test('a collection is a versioned subscription: a snapshot and its version, then each push one more; a burst of changes while it subscribes ends in the server state', async () => {
  const received = [];
  const Recording = class extends WebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', ({ data }) => {
        const frame = JSON.parse(data);
        if (frame.$r === 'sync') received.push(frame.d);
      });
    }
  };
  const a = await clients.open(server.url, { WebSocket: Recording });
  const b = await clients.open(server.url);
  const book = await b.sync.create('/api/books', { title: 'v0' });
  // Changes race the subscription: some are in the snapshot, some pushed around its answer.
  const update = (i) => b.sync.update(`/api/book/${book.id}`, { title: `v${i}` });
  const updates = [1, 2, 3, 4, 5].map(update);
  const books = a.sync.collection('/api/books');
  for (let i = 6; i <= 30; i++) updates.push(update(i));
  await books.ready;
  await Promise.all(updates);
  await until(() => books.get(book.id)?.title === 'v30', 'the last change');
  assert.deepEqual(books.items, await a.sync.read('/api/books'));
  const subscribed = received.find((d) => d.t === 'subscribed');
  assert.equal(typeof subscribed.v, 'number', 'answered with a version');
  assert.ok(Array.isArray(subscribed.data), 'and the snapshot');
  const versions = received.filter((d) => d.t === 'data').map((d) => d.v);
  assert.ok(versions.length > 0);
  // Consecutive, from whatever the first one was (pushes may come before the answer).
  assert.deepEqual(versions, versions.map((_, i) => versions[0] + i));
  assert.ok(versions.at(-1) > subscribed.v);
  assert.equal(received.filter((d) => d.t === 'subscribed').length, 1, 'no gap, no resync');
});
