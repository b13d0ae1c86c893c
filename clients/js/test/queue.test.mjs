// The offline queue: bounded (as ws-client's tests/integration/offline_queue.rs), flushed in order
// after the routers' restore frames (tests/integration/restore_order.rs), with a fake socket.
import test from 'node:test';
import assert from 'node:assert/strict';
import { connect, QueueFullError, RealtimeError } from '../realtime.js';
import { fakeSockets, flush } from './fake-socket.mjs';

test('bounds hand the message back', async () => {
  const Fake = fakeSockets();
  const client = connect('ws://fake/', { WebSocket: Fake, startClosed: true, maxEnqueuedMessages: 3, maxEnqueuedBytes: 10 });
  client.send('aaa');
  client.send('bbb');
  assert.throws(
    () => client.send('ccccc'),
    (e) => e instanceof QueueFullError && e.code === 'queue_full' && e.data === 'ccccc',
    'the byte bound',
  );
  client.send('cccc'); // exactly 10 bytes
  assert.throws(() => client.send(''), (e) => e instanceof QueueFullError && e.data === '', 'the message bound');
  assert.equal(client.queued, 3);
  client.close();
  assert.throws(() => client.send('late'), (e) => e instanceof RealtimeError && e.code === 'closed');
  await flush();
  assert.equal(Fake.sockets.length, 0, 'startClosed: no attempt was ever made');
});

test('bytes are counted in UTF-8, binary by its length', () => {
  const client = connect('ws://fake/', { WebSocket: fakeSockets(), startClosed: true, maxEnqueuedBytes: 8 });
  client.send('éé'); // 4 bytes
  client.send(new Uint8Array(3));
  assert.throws(() => client.send('€'), QueueFullError); // 3 more bytes: 10
  client.send('x');
  assert.equal(client.queued, 3);
  client.close();
});

test('router requests past the bound reject with QueueFullError', async () => {
  const client = connect('ws://fake/', { WebSocket: fakeSockets(), startClosed: true, maxEnqueuedMessages: 1 });
  client.send('fills the queue');
  await assert.rejects(client.sync.read('/api/books'), QueueFullError);
  await assert.rejects(client.channel('/chat').emit('echo', 1, {}), QueueFullError);
  assert.throws(() => client.channel('/chat').emit('say', 1), QueueFullError);
  client.close();
});

test('online, the bound is the socket buffer', async () => {
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', { WebSocket: Fake, maxEnqueuedBytes: 10, pingInterval: null });
  await flush();
  const ws = Fake.sockets[0];
  client.send('0123456789');
  ws.bufferedAmount = 5;
  assert.throws(() => client.send('123456'), QueueFullError);
  client.send('12345');
  assert.deepEqual(ws.sent, ['0123456789', '12345']);
  client.close();
});

test('restore frames go first, then the queue in order, then open', async () => {
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', { WebSocket: Fake, startClosed: true, pingInterval: null });
  const chat = client.channel('/chat');
  const joined = chat.join();
  const opened = client.views.open('doc-1');
  const unsubscribe = client.sync.subscribe('/api/books', () => {});
  client.send('queued-1');
  chat.emit('say', 'queued-2');
  client.send('queued-3');
  let frameCount = -1;
  client.on('open', () => (frameCount = Fake.sockets[0].sent.length));
  client.reconnect();
  await flush();
  const ws = Fake.sockets[0];
  const sent = ws.sent.map((s) => (s.startsWith('{"$r"') ? JSON.parse(s) : s));
  assert.deepEqual(sent, [
    { $r: 'ch', d: { t: 'join', ch: '/chat', id: 1 } },
    { $r: 'views', d: { t: 'open', view: 'doc-1', id: 1 } },
    { $r: 'sync', d: { t: 'sub', path: '/api/books', id: 1 } },
    'queued-1',
    { $r: 'ch', d: { t: 'emit', ch: '/chat', ev: 'say', data: 'queued-2' } },
    'queued-3',
  ]);
  assert.equal(frameCount, 6, 'open is emitted after the queue is written');

  // The server confirms; the link drops; frames queued meanwhile follow the restore, in
  // which the path subscribed before asks for a snapshot (no separate catch-up read).
  ws.receive('{"$r":"ch","d":{"t":"joined","ch":"/chat","id":1}}');
  ws.receive('{"$r":"views","d":{"t":"state","view":"doc-1","members":[],"you":"c:1","id":1}}');
  ws.receive('{"$r":"sync","d":{"t":"subscribed","path":"/api/books","id":1}}');
  await joined;
  await opened;
  await unsubscribe.ready;
  ws.fail();
  client.send('queued-4');
  client.reconnect();
  await flush();
  const again = Fake.sockets[1].sent.map((s) => (s.startsWith('{"$r"') ? JSON.parse(s).d : s));
  assert.deepEqual(again, [
    { t: 'join', ch: '/chat', id: 2 },
    { t: 'open', view: 'doc-1', id: 2 },
    { t: 'sub', path: '/api/books', id: 2, snapshot: true },
    'queued-4',
  ]);
  client.close();
});

test('requests waiting when the link drops fail with closed; wanted things stay', async () => {
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', { WebSocket: Fake, pingInterval: null, minReconnectionDelay: 10 });
  await flush();
  const ws = Fake.sockets[0];
  const ack = client.channel('/chat').emit('echo', 1, {});
  const read = client.sync.read('/api/book/1');
  const join = client.channel('/chat').join({ timeout: 60_000 });
  ws.fail();
  await assert.rejects(ack, (e) => e.code === 'closed');
  await assert.rejects(read, (e) => e.code === 'closed');
  client.reconnect();
  await flush();
  const ws2 = Fake.sockets[1];
  assert.deepEqual(ws2.frames(), [['ch', { t: 'join', ch: '/chat', id: 3 }]]);
  ws2.receive('{"$r":"ch","d":{"t":"joined","ch":"/chat","id":3}}');
  await join; // settled by the answer on the new connection
  client.close();
});

test('a value JSON has no text for is refused with a TypeError, and nothing is queued', () => {
  const client = connect('ws://fake/', { WebSocket: fakeSockets(), startClosed: true });
  for (const value of [undefined, () => 1, Symbol('s')]) {
    assert.throws(() => client.send(value), (e) => e instanceof TypeError && /JSON has no text/.test(e.message), typeof value);
  }
  assert.equal(client.queued, 0);
  client.send(null); // JSON null is a value
  assert.equal(client.queued, 1);
  client.close();
});
