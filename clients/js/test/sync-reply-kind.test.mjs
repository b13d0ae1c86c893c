// A sync `reply` settles only a request (create, read, update, delete):
// one naming the id of a subscription waiting for its `subscribed` is ignored, as the
// channels router ignores an `ack` naming an id that is not an acknowledged emit's.
import test from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../realtime.js';
import { fakeSockets, flush } from './fake-socket.mjs';

test('a reply with the id of a waiting subscription is ignored; the subscription and requests still work', async () => {
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', { WebSocket: Fake, pingInterval: null });
  await flush();
  const ws = Fake.sockets[0];
  const errors = [];
  client.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
  const unsubscribe = client.sync.subscribe('/api/book/1', () => {});
  const sub = ws.frames().find(([router, d]) => router === 'sync' && d.t === 'sub')[1];
  ws.receive(JSON.stringify({ $r: 'sync', d: { t: 'reply', id: sub.id, data: 'not for a subscription' } }));
  ws.receive(JSON.stringify({ $r: 'sync', d: { t: 'reply', id: sub.id, err: { code: 'not_found', message: 'nor this' } } }));
  assert.deepEqual(errors, [], 'no frame "could not be applied"');
  // The subscription still waits for its answer, by id.
  ws.receive(JSON.stringify({ $r: 'sync', d: { t: 'subscribed', path: '/api/book/1', id: sub.id } }));
  await unsubscribe.ready;
  const read = client.sync.read('/api/book/1');
  const request = ws.frames().find(([router, d]) => router === 'sync' && d.t === 'request')[1];
  ws.receive(JSON.stringify({ $r: 'sync', d: { t: 'reply', id: request.id, data: { id: 1 } } }));
  assert.deepEqual(await read, { id: 1 });
  assert.deepEqual(errors, []);
  client.close();
});
