// Against the real example server with the optional MessagePack codec: router frames go
// out as MessagePack envelopes (PROTOCOL.md 2.1), the server answers in JSON.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../realtime.js';
import { msgpack, decode } from '../msgpack.js';
import { startServer, next, tracked } from './helpers.mjs';

let server;
const clients = tracked(connect);
before(async () => (server = await startServer()));
afterEach(() => clients.closeAll());
after(() => server?.kill());

test('every router answers MessagePack envelopes', async () => {
  const sent = [];
  const Spy = class extends WebSocket {
    send(data) {
      sent.push(data);
      super.send(data);
    }
  };
  const a = await clients.open(`${server.url}/?user=ada`, { codec: msgpack, WebSocket: Spy });
  const chat = a.channel('/chat');
  await chat.join();
  assert.deepEqual(await chat.emit('echo', { n: [1, 2.5, 'x'], ok: true }, {}), { n: [1, 2.5, 'x'], ok: true });
  const view = await a.views.open('packed');
  assert.deepEqual(view.members.map((m) => m.key), ['u:ada']);
  const book = await a.sync.create('/api/books', { title: 'Packed' });
  assert.deepEqual(await a.sync.read(`/api/book/${book.id}`), book);
  await assert.rejects(a.sync.read('/api/book/abc'), (e) => e.code === 'bad_request');
  assert.ok(sent.length >= 6 && sent.every((frame) => frame instanceof Uint8Array), 'every router frame was binary');
  assert.equal(decode(sent[0]).$r, 'ch');
});

test('application objects travel as binary MessagePack', async () => {
  const a = await clients.open(server.url, { codec: msgpack });
  const b = await clients.open(server.url);
  const got = next(b, 'message');
  a.send({ hello: 'world', n: 300 });
  const [data] = await got;
  assert.ok(data instanceof ArrayBuffer);
  assert.deepEqual(decode(data), { hello: 'world', n: 300 });
});
