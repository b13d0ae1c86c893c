// Against the real example server: channel /chat (room lobby, `say` relayed as `said`,
// `echo` acknowledged with its payload) and the private /admin.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { connect, RealtimeError } from '../realtime.js';
import { startServer, next, tracked, within } from './helpers.mjs';

let server;
const clients = tracked(connect);
before(async () => (server = await startServer()));
afterEach(() => clients.closeAll());
after(() => server?.kill());

test('join, then emit with an acknowledgement: promise and error-first callback', async () => {
  const a = await clients.open(`${server.url}/?user=ada`);
  const chat = a.channel('/chat');
  assert.equal(a.channel('/chat'), chat, 'one object per path');
  assert.equal(chat.joined, false);
  await chat.join();
  assert.equal(chat.joined, true);
  await chat.join(); // joined already: at once

  assert.deepEqual(await chat.emit('echo', { text: 'hi', n: [1, 2] }, { timeout: 2000 }), { text: 'hi', n: [1, 2] });
  assert.equal(await chat.emit('echo', null, {}), null);

  const viaCallback = await within(
    new Promise((resolve) => chat.emit('echo', 'cb', (err, data) => resolve([err, data]))),
    'the callback',
  );
  assert.deepEqual(viaCallback, [null, 'cb']);
  const withOptions = await within(
    new Promise((resolve) => chat.emit('echo', 7, { timeout: 2000 }, (err, data) => resolve([err, data]))),
    'the callback',
  );
  assert.deepEqual(withOptions, [null, 7]);
});

test('failures are error-first: no_handler, not_joined, forbidden, unknown_channel', async () => {
  const a = await clients.open(`${server.url}/?user=ada`);
  const chat = a.channel('/chat');
  await chat.join();
  await assert.rejects(chat.emit('nope', 1, {}), (e) => e instanceof RealtimeError && e.code === 'no_handler' && e.remote);
  const [err, data] = await within(
    new Promise((resolve) => chat.emit('nope', 1, (...args) => resolve(args))),
    'the callback',
  );
  assert.equal(err.code, 'no_handler');
  assert.equal(data, undefined);

  await assert.rejects(a.channel('/game').emit('move', 1, {}), (e) => e.code === 'not_joined');
  await assert.rejects(a.channel('/admin').join(), (e) => e.code === 'forbidden' && e.message === 'admins only');
  assert.equal(a.channel('/admin').joined, false);
  await assert.rejects(a.channel('/nowhere').join(), (e) => e.code === 'unknown_channel');

  const admin = await clients.open(`${server.url}/?user=admin`);
  await admin.channel('/admin').join();
  assert.equal(admin.channel('/admin').joined, true);
});

test('events from the server reach the listeners of their channel', async () => {
  const a = await clients.open(`${server.url}/?user=ada`);
  const b = await clients.open(`${server.url}/?user=bob`);
  await a.channel('/chat').join();
  await b.channel('/chat').join();
  const said = next(b.channel('/chat'), 'said');
  a.channel('/chat').emit('say', { text: 'hello lobby' });
  assert.deepEqual(await said, [{ text: 'hello lobby' }]);

  const seen = [];
  const off = b.channel('/chat').on('said', (data) => seen.push(data));
  off();
  const again = next(b.channel('/chat'), 'said');
  a.channel('/chat').emit('say', 'two');
  await again;
  assert.deepEqual(seen, [], 'a removed listener gets nothing');
});

test('leaving: the server is told, and emits are refused afterwards', async () => {
  const a = await clients.open(server.url);
  const chat = a.channel('/chat');
  await chat.join();
  await chat.leave();
  assert.equal(chat.joined, false);
  await assert.rejects(chat.emit('echo', 1, {}), (e) => e.code === 'not_joined');
  await chat.leave(); // not joined: the server's not_joined counts as success
});

test('an acknowledgement that does not come in time: timeout, by promise and by callback', async () => {
  const a = await clients.open(server.url);
  const chat = a.channel('/chat');
  await chat.join();
  await server.freeze(); // the socket stays open, nothing is answered
  try {
    const started = Date.now();
    await assert.rejects(chat.emit('echo', 1, { timeout: 300 }), (e) => e.code === 'timeout' && !e.remote);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 295 && elapsed < 2000, `${elapsed} ms`);
    const [err] = await within(
      new Promise((resolve) => chat.emit('echo', 2, { timeout: 200 }, (...args) => resolve(args))),
      'the callback',
    );
    assert.equal(err.code, 'timeout');
  } finally {
    server.thaw();
  }
  // The late answers are ignored; the channel works on.
  assert.equal(await chat.emit('echo', 3, {}), 3);
});
