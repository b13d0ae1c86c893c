// Against the real example server: application frames (anything that is not a router
// envelope) are relayed to every other connection, text as text and binary as binary.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../realtime.js';
import { startServer, next, tracked } from './helpers.mjs';

let server;
const clients = tracked(connect);
before(async () => (server = await startServer()));
afterEach(() => clients.closeAll());
after(() => server?.kill());

test('application frames are relayed between two clients', async () => {
  const a = await clients.open(server.url);
  const b = await clients.open(server.url);
  const received = [];
  b.on('message', (data) => received.push(data));
  const got = (n) => next(b, 'message', () => received.length >= n);
  a.send('hello');
  a.send({ kind: 'json', n: 1 });
  a.send(new Uint8Array([1, 2, 3, 255]));
  await got(3);
  assert.deepEqual(received.slice(0, 2), ['hello', '{"kind":"json","n":1}']);
  assert.ok(received[2] instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(received[2])], [1, 2, 3, 255]);

  const back = next(a, 'message');
  b.send('and back');
  assert.deepEqual(await back, ['and back']);
});

test('frames sent before the connection opens are queued and relayed in order', async () => {
  const b = await clients.open(server.url);
  const received = [];
  b.on('message', (data) => received.push(data));
  const a = clients.make(server.url);
  assert.equal(a.connected, false);
  for (let i = 0; i < 50; i++) a.send(`early-${i}`);
  assert.equal(a.queued, 50);
  await next(b, 'message', () => received.length === 50);
  assert.deepEqual(received, Array.from({ length: 50 }, (_, i) => `early-${i}`));
  assert.equal(a.queued, 0);
});

test('an http:// URL is taken as the ws:// URL of the same server', async () => {
  const a = await clients.open(server.url.replace('ws://', 'http://'));
  const b = await clients.open(server.url);
  const got = next(b, 'message');
  a.send('via http');
  assert.deepEqual(await got, ['via http']);
});
