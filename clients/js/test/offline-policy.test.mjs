// The per-message offline policy (`send(data, {offline})`, ws-client's `Offline`; its
// tests are ws-client's tests/integration/offline_policy.rs), with a fake socket.
import test from 'node:test';
import assert from 'node:assert/strict';
import { connect, QueueFullError, RealtimeError } from '../realtime.js';
import { fakeSockets, flush } from './fake-socket.mjs';

test('each policy while offline: what is written keeps the order of the sends', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1000 });
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', { WebSocket: Fake, startClosed: true, pingInterval: null });
  const sends = [
    ['buffer-1', undefined, 'queued'],
    ['volatile', { offline: 'volatile' }, 'dropped'],
    ['cursor-1', { offline: 'latest', key: 'cursor' }, 'queued'],
    ['buffer-2', { offline: 'buffer' }, 'queued'],
    ['status-1', { offline: 'latest', key: 'status' }, 'queued'],
    ['cursor-2', { offline: 'latest', key: 'cursor' }, 'replaced'],
    ['stale', { offline: 'expire', ttl: 50 }, 'queued'],
    ['fresh', { offline: 'expire', ttl: 60_000 }, 'queued'],
    ['buffer-3', {}, 'queued'],
  ];
  for (const [data, options, expected] of sends) assert.equal(client.send(data, options), expected, data);
  assert.equal(client.queued, 7, 'the volatile frame and cursor-1 are not queued');
  t.mock.timers.tick(50); // stale expires
  client.reconnect();
  await flush();
  const ws = Fake.sockets[0];
  assert.deepEqual(ws.sent, ['buffer-1', 'buffer-2', 'status-1', 'cursor-2', 'fresh', 'buffer-3']);

  // Online, every policy is written.
  assert.equal(client.send('volatile-online', { offline: 'volatile' }), 'queued');
  assert.equal(client.send('cursor-3', { offline: 'latest', key: 'cursor' }), 'queued');
  assert.equal(client.send('quick', { offline: 'expire', ttl: 0 }), 'queued');
  assert.deepEqual(ws.sent.slice(6), ['volatile-online', 'cursor-3', 'quick']);
  client.close();
});

test('bounds hold for every policy', () => {
  const client = connect('ws://fake/', { WebSocket: fakeSockets(), startClosed: true, maxEnqueuedMessages: 2, maxEnqueuedBytes: 10 });
  const full = (data, options) =>
    assert.throws(() => client.send(data, options), (e) => e instanceof QueueFullError && e.data === data, data);
  client.send('aaaa');
  client.send('kkkk', { offline: 'latest', key: 'k' });
  full('x');
  full('x', { offline: 'latest', key: 'other' });
  // A replacement takes the place it frees: two frames, 6 bytes.
  assert.equal(client.send('kk', { offline: 'latest', key: 'k' }), 'replaced');
  full('kkkkkkk', { offline: 'latest', key: 'k' }); // 4 + 7 bytes
  assert.equal(client.send('kkkkkk', { offline: 'latest', key: 'k' }), 'replaced');
  assert.equal(client.send('v', { offline: 'volatile' }), 'dropped');
  full('e', { offline: 'expire', ttl: 0 });
  assert.equal(client.queued, 2);
  client.close();
  assert.throws(() => client.send('late', { offline: 'volatile' }), (e) => e instanceof RealtimeError && e.code === 'closed');
});

test('expired frames make room', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1000 });
  const client = connect('ws://fake/', { WebSocket: fakeSockets(), startClosed: true, maxEnqueuedMessages: 3 });
  client.send('kept');
  client.send('stale-1', { offline: 'expire', ttl: 10 });
  client.send('stale-2', { offline: 'expire', ttl: 10 });
  assert.throws(() => client.send('early'), QueueFullError, 'not expired yet');
  t.mock.timers.tick(10);
  assert.equal(client.send('new'), 'queued');
  assert.equal(client.queued, 2, 'both expired frames were discarded');
  client.close();
});
