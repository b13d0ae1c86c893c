// The channels router's client side against a scripted server (fake socket): answering
// the server's acknowledged emits (PROTOCOL.md 5.3 rule 6) and errors about acks.
import test from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../realtime.js';
import { fakeSockets, flush } from './fake-socket.mjs';

async function openClient() {
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', { WebSocket: Fake, pingInterval: null });
  await flush();
  return { client, ws: Fake.sockets[0] };
}

const emit = (id, ev, data) => JSON.stringify({ $r: 'ch', d: { t: 'emit', ch: '/chat', ev, data, id } });
const acks = (ws) => ws.frames().filter(([, d]) => d.t === 'ack').map(([, d]) => d);

test('the server asks, the handler answers: value, promise, error, no handler', async () => {
  const { client, ws } = await openClient();
  const chat = client.channel('/chat');
  chat.handle('add', ([a, b]) => a + b);
  chat.handle('later', async (x) => ({ doubled: x * 2 }));
  chat.handle('fails', () => {
    throw Object.assign(new Error('not allowed'), { code: 'forbidden' });
  });
  chat.handle('crashes', () => {
    throw new Error('boom');
  });
  chat.handle('nothing', () => undefined);
  ws.receive(emit(1, 'add', [2, 3]));
  ws.receive(emit(2, 'later', 21));
  ws.receive(emit(3, 'fails', null));
  ws.receive(emit(4, 'crashes', null));
  ws.receive(emit(5, 'unknown', null));
  ws.receive(emit(6, 'nothing', null));
  await flush();
  const byId = Object.fromEntries(acks(ws).map((ack) => [ack.id, ack]));
  assert.deepEqual(byId[1], { t: 'ack', id: 1, data: 5 });
  assert.deepEqual(byId[2], { t: 'ack', id: 2, data: { doubled: 42 } });
  assert.deepEqual(byId[3], { t: 'ack', id: 3, err: { code: 'forbidden', message: 'not allowed' } });
  assert.deepEqual(byId[4], { t: 'ack', id: 4, err: { code: 'internal', message: 'boom' } });
  assert.equal(byId[5].err.code, 'no_handler');
  assert.deepEqual(byId[6], { t: 'ack', id: 6, data: null }, 'a null result is sent as data: null');
  chat.handle('add', null);
  ws.receive(emit(7, 'add', [1, 1]));
  await flush();
  assert.equal(acks(ws).find((ack) => ack.id === 7).err.code, 'no_handler');
  client.close();
});

test('an answer is not sent on a newer connection than its request', async () => {
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', { WebSocket: Fake, pingInterval: null });
  await flush();
  let release;
  client.channel('/chat').handle('slow', () => new Promise((resolve) => (release = resolve)));
  Fake.sockets[0].receive(emit(1, 'slow', null));
  Fake.sockets[0].fail();
  client.reconnect();
  await flush();
  release('late');
  await flush();
  assert.deepEqual(acks(Fake.sockets[1]), []);
  client.close();
});

test('an unknown_ack error is about the server\'s id: it fails no request of ours', async () => {
  const { client, ws } = await openClient();
  const pending = client.channel('/chat').emit('echo', 'x', {});
  const errors = [];
  client.on('error', (e) => errors.push(e));
  // Older servers put the server's id in `id`; newer ones in `ack` (PROTOCOL.md 2.3).
  ws.receive('{"$r":"ch","d":{"t":"error","code":"unknown_ack","message":"no acknowledgement 1 is waiting","id":1}}');
  ws.receive('{"$r":"ch","d":{"t":"error","code":"unknown_ack","message":"no acknowledgement 1 is waiting","ack":1}}');
  ws.receive('{"$r":"ch","d":{"t":"ack","id":1,"data":"x"}}');
  assert.equal(await pending, 'x');
  assert.deepEqual(errors.map((e) => e.code), ['unknown_ack', 'unknown_ack']);
  client.close();
});

test('an absent data and "err": null read as success with null', async () => {
  const { client, ws } = await openClient();
  const first = client.channel('/chat').emit('echo', 1, {});
  const second = client.sync.read('/api/x');
  ws.receive('{"$r":"ch","d":{"t":"ack","id":1}}');
  ws.receive('{"$r":"sync","d":{"t":"reply","id":1,"err":null}}');
  assert.equal(await first, null);
  assert.equal(await second, null);
  client.close();
});

test('an error frame with the request id fails that request (a malformed request)', async () => {
  const { client, ws } = await openClient();
  const pending = client.sync.read('/api/x');
  ws.receive('{"$r":"sync","d":{"t":"error","code":"malformed","message":"bad","id":1}}');
  await assert.rejects(pending, (e) => e.code === 'malformed' && e.remote);
  client.close();
});

test('channel paths are checked: / then up to 127 of A-Z a-z 0-9 _ - . /', async () => {
  const { client } = await openClient();
  assert.equal(client.channel('/game/42_a-b.c').path, '/game/42_a-b.c');
  for (const bad of ['', 'chat', '/with space', '/é', `/${'x'.repeat(128)}`]) {
    assert.throws(() => client.channel(bad), TypeError, bad);
  }
  assert.equal(client.channel('/').joined, true);
  await client.channel('/').join(); // the root channel needs no join
  client.close();
});
