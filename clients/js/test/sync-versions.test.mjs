// Versioned sync subscriptions (PROTOCOL.md 7.3, rule 8) against a scripted server (fake
// socket): a collection and a re-subscription ask for a snapshot, pushes that overtake it
// are held and applied once after it, a gap asks for a new snapshot (a resync), the hold
// is bounded, and a resumed session subscribes nothing again.
import test from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../realtime.js';
import { fakeSockets, flush } from './fake-socket.mjs';

/** Every test fails rather than hangs when a promise is never settled. */
const LIMIT = { timeout: 5000 };
const sync = (d) => JSON.stringify({ $r: 'sync', d });
const push = (path, v, op, data) => sync({ t: 'data', path, op, v, data });
/** The sync frames the client wrote on `ws`. */
const subs = (ws) => ws.frames().filter(([router, d]) => router === 'sync' && d.t === 'sub').map(([, d]) => d);

/** A client whose sockets open at once, and its first socket. */
async function client(options = {}) {
  const Fake = fakeSockets((ws) => ws.open());
  const c = connect('ws://fake/', { WebSocket: Fake, pingInterval: null, ...options });
  const errors = [];
  c.on('error', (e) => errors.push(e.code));
  await flush();
  return { client: c, Fake, errors, ws: Fake.sockets[0] };
}

/** The collection's events, as `[event, title, snapshot]` (`snapshot` events: the count). */
function record(books) {
  const events = [];
  books.on('add', (item, meta) => events.push(['add', item.title, meta.snapshot]));
  books.on('change', (item, previous, meta) => events.push(['change', item.title, meta.snapshot]));
  books.on('remove', (item, meta) => events.push(['remove', item.title, meta.snapshot]));
  books.on('snapshot', (items) => events.push(['snapshot', items.length]));
  return events;
}

test('a collection subscribes with a snapshot; a push that overtakes it is applied once, after it', LIMIT, async () => {
  const { client: c, ws, errors } = await client();
  const books = c.sync.collection('/api/books');
  const events = record(books);
  assert.deepEqual(subs(ws), [{ t: 'sub', path: '/api/books', id: 1, snapshot: true }]);
  assert.deepEqual(ws.frames().filter(([, d]) => d.t === 'request'), [], 'no separate read');
  // Made while the snapshot was read: v1 (in it) and v3 (not in it) arrive before the answer.
  ws.receive(push('/api/books', 3, 'add', { id: 2, title: 'B' }));
  ws.receive(push('/api/books', 2, 'change', { id: 1, title: 'A2' }));
  assert.deepEqual(events, [], 'held until the snapshot');
  assert.deepEqual(books.items, []);
  ws.receive(sync({ t: 'subscribed', path: '/api/books', id: 1, v: 2, data: [{ id: 1, title: 'A2' }] }));
  assert.deepEqual(events, [
    ['add', 'A2', true],
    ['snapshot', 1],
    ['add', 'B', false],
  ]);
  await books.ready;
  // The next push is v4; one already applied (v3 again) is dropped.
  ws.receive(push('/api/books', 3, 'add', { id: 2, title: 'B' }));
  ws.receive(push('/api/books', 4, 'remove', { id: 1 }));
  assert.deepEqual(events.slice(3), [['remove', 'A2', false]]);
  assert.deepEqual(books.items, [{ id: 2, title: 'B' }]);
  assert.deepEqual(subs(ws).length, 1, 'no resync');
  assert.deepEqual(errors, []);
  c.close();
});

test('a gap asks for a new snapshot (the subscription is kept); pushes meanwhile are held', LIMIT, async () => {
  const { client: c, ws, errors } = await client();
  const books = c.sync.collection('/api/books');
  const events = record(books);
  ws.receive(sync({ t: 'subscribed', path: '/api/books', id: 1, v: 0, data: [] }));
  await books.ready;
  ws.receive(push('/api/books', 1, 'add', { id: 1, title: 'A' }));
  ws.receive(push('/api/books', 3, 'add', { id: 3, title: 'C' })); // v2 was missed
  assert.deepEqual(subs(ws), [
    { t: 'sub', path: '/api/books', id: 1, snapshot: true },
    { t: 'sub', path: '/api/books', id: 2, snapshot: true },
  ]);
  ws.receive(push('/api/books', 4, 'change', { id: 1, title: 'A4' })); // before the answer: held
  ws.receive(push('/api/books', 5, 'add', { id: 5, title: 'E' }));
  ws.receive(sync({ t: 'subscribed', path: '/api/books', id: 2, v: 4, data: [{ id: 1, title: 'A4' }, { id: 2, title: 'B' }, { id: 3, title: 'C' }] }));
  assert.deepEqual(events, [
    ['snapshot', 0],
    ['add', 'A', false],
    ['change', 'A4', true],
    ['add', 'B', true],
    ['add', 'C', true],
    ['snapshot', 3],
    ['add', 'E', false],
  ]);
  ws.receive(push('/api/books', 6, 'remove', { id: 2 }));
  assert.deepEqual(books.items.map((b) => b.id), [1, 3, 5]);
  assert.equal(subs(ws).length, 2);
  assert.deepEqual(errors, []);
  c.close();
});

test('a plain subscription that sees a versioned push resyncs; its listener gets the snapshot', LIMIT, async () => {
  const { client: c, ws } = await client();
  const seen = [];
  const unsubscribe = c.sync.subscribe('/api/book/1', (data, { op, snapshot }) => seen.push([op, data, snapshot]));
  assert.deepEqual(subs(ws), [{ t: 'sub', path: '/api/book/1', id: 1 }], 'a first subscription is plain');
  ws.receive(sync({ t: 'subscribed', path: '/api/book/1', id: 1 }));
  await unsubscribe.ready;
  ws.receive(sync({ t: 'data', path: '/api/book/1', op: 'change', data: 'plain' }));
  ws.receive(push('/api/book/1', 7, 'change', 'versioned'));
  assert.deepEqual(subs(ws)[1], { t: 'sub', path: '/api/book/1', id: 2, snapshot: true });
  ws.receive(sync({ t: 'subscribed', path: '/api/book/1', id: 2, v: 7, data: 'now' }));
  assert.deepEqual(seen, [
    ['change', 'plain', false],
    ['change', 'now', true],
  ]);
  c.close();
});

test('a collection on a path already subscribed asks for a snapshot; every listener sees it', LIMIT, async () => {
  const { client: c, ws } = await client();
  const seen = [];
  const unsubscribe = c.sync.subscribe('/api/books', (data, { snapshot }) => seen.push([data, snapshot]));
  ws.receive(sync({ t: 'subscribed', path: '/api/books', id: 1 }));
  await unsubscribe.ready;
  const books = c.sync.collection('/api/books');
  assert.deepEqual(subs(ws)[1], { t: 'sub', path: '/api/books', id: 2, snapshot: true });
  let ready = false;
  books.ready.then(() => (ready = true));
  await flush();
  assert.equal(ready, false, 'ready waits for the snapshot');
  ws.receive(sync({ t: 'subscribed', path: '/api/books', id: 2, v: 0, data: [{ id: 1 }] }));
  await books.ready;
  assert.deepEqual(books.items, [{ id: 1 }]);
  assert.deepEqual(seen, [[[{ id: 1 }], true]]);
  c.close();
});

test('at most 256 pushes are held: past them, the snapshot is followed by a resync', LIMIT, async () => {
  const { client: c, ws } = await client();
  const seen = [];
  c.sync.subscribe('/api/counter', (data, { snapshot }) => seen.push(snapshot ? `snapshot ${data}` : data), {}, true);
  for (let v = 1; v <= 300; v++) ws.receive(push('/api/counter', v, 'change', v));
  assert.deepEqual(seen, []);
  ws.receive(sync({ t: 'subscribed', path: '/api/counter', id: 1, v: 0, data: 0 }));
  // The first 255 are applied; the 256th place holds the last push (v300): a gap.
  assert.equal(seen.length, 256);
  assert.equal(seen[0], 'snapshot 0');
  assert.equal(seen.at(-1), 255);
  assert.deepEqual(subs(ws)[1], { t: 'sub', path: '/api/counter', id: 2, snapshot: true });
  ws.receive(push('/api/counter', 301, 'change', 301)); // held for the new snapshot
  ws.receive(sync({ t: 'subscribed', path: '/api/counter', id: 2, v: 300, data: 300 }));
  assert.deepEqual(seen.slice(256), ['snapshot 300', 301]);
  c.close();
});

test('after a reconnect a path subscribed before asks for a snapshot; with readAfterResubscribe false it does not', LIMIT, async () => {
  for (const readAfterResubscribe of [true, false]) {
    const { client: c, Fake, ws } = await client({ readAfterResubscribe, minReconnectionDelay: 0 });
    const seen = [];
    c.sync.subscribe('/api/book/1', (data, { snapshot }) => seen.push([data, snapshot]));
    c.sync.subscribe('/api/book/2', () => {}); // never answered: plain again
    ws.receive(sync({ t: 'subscribed', path: '/api/book/1', id: 1 }));
    ws.fail();
    c.reconnect();
    await flush();
    const again = Fake.sockets[1];
    assert.deepEqual(subs(again), [
      readAfterResubscribe ? { t: 'sub', path: '/api/book/1', id: 3, snapshot: true } : { t: 'sub', path: '/api/book/1', id: 3 },
      { t: 'sub', path: '/api/book/2', id: 4 },
    ]);
    assert.deepEqual(again.frames().filter(([, d]) => d.t === 'request'), [], 'no catch-up read');
    if (readAfterResubscribe) {
      again.receive(push('/api/book/1', 1, 'change', 'overtaking'));
      again.receive(sync({ t: 'subscribed', path: '/api/book/1', id: 3, v: 0, data: 'current' }));
      assert.deepEqual(seen, [
        ['current', true],
        ['overtaking', false],
      ]);
    }
    c.close();
  }
});

test('a refused snapshot forgets the path: ready rejects, the error is reported', LIMIT, async () => {
  const { client: c, ws, errors } = await client();
  const books = c.sync.collection('/api/nothing');
  ws.receive(sync({ t: 'error', code: 'no_handler', message: 'no read', path: '/api/nothing', id: 1 }));
  await assert.rejects(books.ready, (e) => e.code === 'no_handler' && e.path === '/api/nothing');
  assert.deepEqual(errors, ['no_handler']);
  c.close();
});

test('a resumed session subscribes nothing again; versions go on where they were', LIMIT, async () => {
  const Fake = fakeSockets((ws) => ws.open());
  const c = connect('ws://fake/', { WebSocket: Fake, resume: true, pingInterval: null, minReconnectionDelay: 0 });
  await flush();
  const ws = Fake.sockets[0];
  ws.receive(JSON.stringify({ $r: 'session', d: { t: 'welcome', token: 'a1.f00d', window: 120000 } }));
  const books = c.sync.collection('/api/books');
  const events = record(books);
  ws.receive(sync({ t: 'subscribed', path: '/api/books', id: 1, v: 0, data: [] }));
  ws.receive(push('/api/books', 1, 'add', { id: 1, title: 'A' }));
  ws.fail(); // no close frame: the session may be resumed
  c.reconnect();
  await flush();
  const again = Fake.sockets[1];
  again.receive(JSON.stringify({ $r: 'session', d: { t: 'resumed', seen: 1 } }));
  // What the server sent meanwhile, then a new push.
  again.receive(push('/api/books', 2, 'add', { id: 2, title: 'B' }));
  again.receive(push('/api/books', 3, 'add', { id: 3, title: 'C' }));
  assert.deepEqual(subs(again), [], 'nothing subscribed again');
  assert.deepEqual(events, [
    ['snapshot', 0],
    ['add', 'A', false],
    ['add', 'B', false],
    ['add', 'C', false],
  ]);
  c.close();
});
