// The reconnection schedule, as ws-client's tests state it (backoff.rs, config.rs,
// tests/integration/backoff_schedule.rs, min_uptime.rs, retry_cap.rs, connection_timeout.rs), on a
// mocked clock with a fake socket: the figures must be exact.
import test from 'node:test';
import assert from 'node:assert/strict';
import { connect, reconnectDelay, jittered } from '../realtime.js';
import { fakeSockets, flush, advance } from './fake-socket.mjs';

test('the reconnecting-websocket schedule: 100, 200, 400, 800, 1000, 1000', () => {
  const delays = [1, 2, 3, 4, 5, 6].map((n) => reconnectDelay(n, 100, 1000, 2));
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
});

test('the first attempt is immediate', () => {
  assert.equal(reconnectDelay(0, 100, 1000, 2), 0);
});

test('the default grow factor: 1000, 1300, 1690, then the 10 s cap', () => {
  assert.equal(reconnectDelay(1, 1000, 10000, 1.3), 1000);
  assert.equal(reconnectDelay(2, 1000, 10000, 1.3), 1300);
  assert.equal(reconnectDelay(3, 1000, 10000, 1.3), 1690);
  assert.equal(reconnectDelay(100, 1000, 10000, 1.3), 10000);
});

test('huge attempts saturate at the maximum', () => {
  assert.equal(reconnectDelay(2 ** 32 - 1, 1, 5000, 10), 5000);
  assert.equal(reconnectDelay(2 ** 32 - 1, 250, 250, 1), 250);
});

test('jitter only shortens', () => {
  assert.equal(jittered(1000, 0, 0.7), 1000);
  assert.equal(jittered(1000, 0.5, 0), 1000);
  assert.equal(jittered(1000, 0.5, 0.5), 750);
  assert.equal(jittered(1000, 1, 1), 0);
  assert.equal(jittered(1000, 7, 2), 0);
});

test('invalid options are refused when connecting', () => {
  const bad = (options) => assert.throws(() => connect('ws://127.0.0.1:1/', { startClosed: true, ...options }), RangeError);
  bad({ minReconnectionDelay: 5, maxReconnectionDelay: 4 });
  bad({ reconnectionDelayGrowFactor: 0.9 });
  bad({ reconnectionDelayGrowFactor: NaN });
  bad({ reconnectionDelayGrowFactor: Infinity });
  bad({ jitter: 1.5 });
  bad({ connectionTimeout: 0 });
  bad({ maxEnqueuedMessages: 0 });
  bad({ maxEnqueuedBytes: 0 });
  bad({ pingInterval: 0 });
  bad({ pongTimeout: 0 });
});

test('the default minimum delay is 1 s plus a random 0-4 s, capped by the maximum', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const seen = new Set();
  for (let i = 0; i < 20; i++) {
    const Fake = fakeSockets((ws) => ws.fail());
    const client = connect('ws://fake/', { WebSocket: Fake, pingInterval: null });
    const delays = [];
    client.on('reconnecting', ({ delay }) => delays.push(delay));
    await flush();
    await flush();
    client.close();
    assert.equal(delays.length, 1);
    assert.ok(delays[0] >= 1000 && delays[0] < 5000, `${delays[0]}`);
    seen.add(delays[0]);
  }
  assert.ok(seen.size > 1, 'drawn per client');
  const Fake = fakeSockets((ws) => ws.fail());
  const capped = connect('ws://fake/', { WebSocket: Fake, maxReconnectionDelay: 500, pingInterval: null });
  const delays = [];
  capped.on('reconnecting', ({ delay }) => delays.push(delay));
  await flush();
  await flush();
  capped.close();
  assert.deepEqual(delays, [500]);
});

test('each attempt starts exactly its delay after the previous one failed', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const Fake = fakeSockets((ws) => ws.fail());
  const client = connect('ws://fake/', {
    WebSocket: Fake,
    minReconnectionDelay: 100,
    maxReconnectionDelay: 1000,
    reconnectionDelayGrowFactor: 2,
    maxRetries: 6,
    pingInterval: null,
  });
  const log = [];
  for (const event of ['connecting', 'failed', 'reconnecting', 'retries-exhausted', 'open']) {
    client.on(event, (info) => log.push({ event, at: Date.now(), ...info }));
  }
  const start = Date.now();
  await advance(t.mock.timers, 3600);
  const attempts = log.filter((e) => e.event === 'connecting').map((e) => e.attempt);
  assert.deepEqual(attempts, [0, 1, 2, 3, 4, 5, 6]);
  const waits = log.filter((e) => e.event === 'reconnecting');
  assert.deepEqual(waits.map((e) => e.delay), [100, 200, 400, 800, 1000, 1000]);
  assert.deepEqual(waits.map((e) => e.attempt), [1, 2, 3, 4, 5, 6]);
  for (const wait of waits) {
    const next = log.find((e) => e.event === 'connecting' && e.attempt === wait.attempt);
    assert.equal(next.at - wait.at, wait.delay, `attempt ${wait.attempt} started after its delay`);
  }
  assert.equal(log.at(-1).event, 'retries-exhausted');
  assert.equal(log.at(-1).at - start, 3500, 'given up when the sixth retry failed');
  assert.equal(Fake.sockets.length, 7);
  client.close();
});

async function uptimeDelays(t, hold) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const Fake = fakeSockets((ws) => {
    ws.open();
    setTimeout(() => ws.fail(1001, 'going away'), hold);
  });
  const client = connect('ws://fake/', {
    WebSocket: Fake,
    minReconnectionDelay: 20,
    maxReconnectionDelay: 10000,
    reconnectionDelayGrowFactor: 2,
    minUptime: 300,
    pingInterval: null,
  });
  const delays = [];
  client.on('reconnecting', ({ delay }) => delays.push(delay));
  const closes = [];
  client.on('close', (info) => closes.push(info));
  for (let i = 0; i < 5000 && delays.length < 3; i++) {
    await flush();
    t.mock.timers.tick(1);
  }
  client.close();
  assert.deepEqual(closes[0], { code: 1001, reason: 'going away' });
  return delays;
}

test('short connections keep growing the delay', async (t) => {
  assert.deepEqual(await uptimeDelays(t, 0), [20, 40, 80]);
});

test('connections open for minUptime reset the count', async (t) => {
  assert.deepEqual(await uptimeDelays(t, 700), [20, 20, 20]);
});

test('an attempt that does not open fails after connectionTimeout', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const Fake = fakeSockets(() => {}); // accepted, never answered
  const client = connect('ws://fake/ws', { WebSocket: Fake, connectionTimeout: 2000, maxRetries: 0, pingInterval: null });
  const log = [];
  for (const event of ['connecting', 'failed', 'retries-exhausted']) client.on(event, (info) => log.push([event, Date.now(), info]));
  const start = Date.now();
  await advance(t.mock.timers, 2100);
  assert.deepEqual(log.map(([event]) => event), ['connecting', 'failed', 'retries-exhausted']);
  assert.equal(log[1][1] - start, 2000);
  assert.equal(log[1][2].error.code, 'timeout');
  assert.ok(Fake.sockets[0].closedWith, 'the socket that timed out is closed');
  client.close();
});

test('retries stop after maxRetries, then reconnect() starts over at once', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  let up = false;
  const Fake = fakeSockets((ws) => (up ? ws.open() : ws.fail()));
  const client = connect('ws://fake/', {
    WebSocket: Fake,
    minReconnectionDelay: 10,
    maxReconnectionDelay: 20,
    reconnectionDelayGrowFactor: 2,
    maxRetries: 2,
    pingInterval: null,
  });
  const log = [];
  for (const event of ['connecting', 'failed', 'reconnecting', 'retries-exhausted', 'open']) {
    client.on(event, (info) => log.push([event, info?.attempt, info?.delay]));
  }
  client.send('kept');
  await advance(t.mock.timers, 100);
  assert.deepEqual(log, [
    ['connecting', 0, undefined],
    ['failed', 0, undefined],
    ['reconnecting', 1, 10],
    ['connecting', 1, undefined],
    ['failed', 1, undefined],
    ['reconnecting', 2, 20],
    ['connecting', 2, undefined],
    ['failed', 2, undefined],
    ['retries-exhausted', undefined, undefined],
  ]);
  assert.equal(client.queued, 1, 'messages stay queued');
  up = true;
  log.length = 0;
  client.reconnect();
  await flush();
  assert.deepEqual(log, [['connecting', 0, undefined], ['open', undefined, undefined]]);
  assert.deepEqual(Fake.sockets.at(-1).sent, ['kept']);
  client.close();
});

test('shouldReconnect can decline after a close frame from the server', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', {
    WebSocket: Fake,
    minReconnectionDelay: 10,
    pingInterval: null,
    shouldReconnect: ({ code }) => !(code >= 4000 && code < 4100),
  });
  const log = [];
  for (const event of ['close', 'reconnecting', 'reconnect-declined']) client.on(event, (info) => log.push([event, info?.code]));
  await flush();
  Fake.sockets[0].fail(4001, 'banned');
  await advance(t.mock.timers, 50);
  assert.deepEqual(log, [['close', 4001], ['reconnect-declined', undefined]]);
  assert.equal(Fake.sockets.length, 1);
  client.close();
});
