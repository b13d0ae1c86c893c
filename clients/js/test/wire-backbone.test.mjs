// Against the real example server: Backbone models and collections (backbone@1.6.1, a
// dev dependency only) through realtimeSync and syncCollection.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import Backbone from 'backbone';
import { connect } from '../realtime.js';
import { realtimeSync, syncCollection } from '../backbone.js';
import { startServer, tracked, until, within } from './helpers.mjs';

let server;
const clients = tracked(connect);
before(async () => (server = await startServer()));
afterEach(() => clients.closeAll());
after(() => server?.kill());

/** Book models and collections bound to one client's socket. */
function backboneFor(client) {
  const sync = realtimeSync(client);
  const Book = Backbone.Model.extend({
    sync,
    // The server's routes: a new book is created on the collection, a book lives at /api/book/:id.
    url() {
      return this.isNew() ? '/api/books' : `/api/book/${this.id}`;
    },
  });
  const Books = Backbone.Collection.extend({ model: Book, url: '/api/books', sync });
  return { Book, Books, sync };
}

test('Backbone.sync over the socket: save, fetch, patch, destroy, with success and error callbacks', async () => {
  const client = await clients.open(server.url);
  const { Book } = backboneFor(client);
  const book = new Book({ title: 'Dune' });
  const requests = [];
  book.on('request', (model, xhr) => requests.push(typeof xhr.then));
  const saved = await book.save();
  assert.equal(typeof book.id, 'number', 'the id from the reply');
  assert.deepEqual(saved, { id: book.id, title: 'Dune' });
  assert.deepEqual(requests, ['function'], 'request triggered with a thenable xhr');

  const copy = new Book({ id: book.id });
  await copy.fetch();
  assert.equal(copy.get('title'), 'Dune');

  await book.save({ year: 1965 }, { patch: true });
  await copy.fetch();
  assert.deepEqual(copy.toJSON(), { id: book.id, title: 'Dune', year: 1965 });

  await book.save({ title: 'Dune (1965)' }); // update: every attribute
  assert.equal((await copy.fetch()).title, 'Dune (1965)');

  await book.destroy();
  const failure = await within(
    new Promise((resolve) => copy.fetch({ error: (model, err) => resolve(err) })),
    'the error callback',
  );
  assert.equal(failure.code, 'not_found');
  const errorEvent = await within(
    new Promise((resolve) => {
      copy.once('error', (model, err) => resolve(err));
      copy.fetch().catch(() => {});
    }),
    'the error event',
  );
  assert.equal(errorEvent.code, 'not_found');
  const viaPromise = await copy.fetch().then(
    () => null,
    (err) => err,
  );
  assert.equal(viaPromise.code, 'not_found');
});

test('syncCollection keeps a Backbone collection in step with another client\'s changes', async () => {
  const a = await clients.open(server.url);
  const b = await clients.open(server.url);
  const { Books: BooksA } = backboneFor(a);
  const { Books: BooksB } = backboneFor(b);
  const mine = new BooksA();
  const theirs = new BooksB();
  const stop = syncCollection(b, theirs); // the path defaults to the collection's url
  await stop.ready;
  const before = theirs.length;

  const created = await new Promise((resolve, reject) => mine.create({ title: 'Emma' }, { success: resolve, error: (m, e) => reject(e) }));
  await until(() => theirs.get(created.id), 'the add in the other collection');
  assert.equal(theirs.get(created.id).get('title'), 'Emma');
  assert.equal(theirs.length, before + 1);
  assert.equal(mine.length, 1, 'the creator holds its model once');

  await created.save({ title: 'Emma (1815)' }, { patch: true });
  await until(() => theirs.get(created.id).get('title') === 'Emma (1815)', 'the merge');

  await created.destroy();
  await until(() => !theirs.get(created.id), 'the remove');
  assert.equal(theirs.length, before);

  // The creator's own collection, following the same path, holds the model once.
  const followed = new BooksA();
  const stopMine = syncCollection(a, followed, '/api/books');
  await stopMine.ready;
  const model = followed.create({ title: 'Persuasion' });
  await until(() => !model.isNew(), 'the reply');
  await until(() => followed.where({ title: 'Persuasion' }).length === 1 && followed.length === theirs.length, 'one copy').catch((e) => { console.log('DBG', JSON.stringify(followed.toJSON()), JSON.stringify(theirs.toJSON())); throw e; });
  assert.equal(followed.get(model.id), model, 'the push merged into the created model');
  await stopMine();
  await stop();
});

test('a collection fetch reads the list over the socket', async () => {
  const client = await clients.open(server.url);
  const { Books } = backboneFor(client);
  await client.sync.create('/api/books', { title: 'Fetched' });
  const books = new Books();
  await books.fetch();
  assert.ok(books.findWhere({ title: 'Fetched' }));
});
