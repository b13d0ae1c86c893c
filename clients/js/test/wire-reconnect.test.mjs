// Against the real example server, killed and restarted on the same port: the client
// restores its channels, views and subscriptions (renewed with a snapshot, which catches
// up) before it writes what was queued while the server was down, in order; the URL
// provider is asked before every attempt; a frozen server is detected by the heartbeat.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../realtime.js';
import { startServer, next, tracked, until, within, sleep } from './helpers.mjs';

const clients = tracked(connect);
const servers = [];
afterEach(async () => {
  clients.closeAll();
  for (const server of servers.splice(0)) await server.kill();
});
after(async () => {
  for (const server of servers.splice(0)) await server.kill();
});

async function start(port = 0) {
  const server = await startServer({ port });
  servers.push(server);
  return server;
}

/** A WebSocket that records what the client writes, in order. */
function spyingWebSocket(log) {
  return class extends WebSocket {
    send(data) {
      log.push(typeof data === 'string' && data.startsWith('{"$r"') ? JSON.parse(data) : data);
      super.send(data);
    }
  };
}

test('after a restart: restore first (join, open, sub with a snapshot), then the offline queue in order', async () => {
  let server = await start();
  const port = server.port;
  let allowA = true;
  let providerCalls = 0;
  const wire = [];
  const a = clients.make(
    () => {
      providerCalls++;
      if (!allowA) throw new Error('not yet');
      return `ws://127.0.0.1:${port}/?user=ada`;
    },
    { WebSocket: spyingWebSocket(wire), minReconnectionDelay: 100, maxReconnectionDelay: 300 },
  );
  const lifecycle = [];
  for (const event of ['connecting', 'open', 'close', 'reconnecting', 'failed']) a.on(event, () => lifecycle.push(event));
  await next(a, 'open');
  const chat = a.channel('/chat');
  await chat.join();
  const view = await a.views.open('doc-r');
  const books = a.sync.collection('/api/books');
  await books.ready;
  await a.sync.create('/api/books', { title: 'before the crash' });
  await until(() => books.size === 1, 'the first book');

  // The crash: SIGKILL, no close frame.
  const closed = next(a, 'close');
  await server.kill();
  const [info] = await closed;
  assert.equal(info.code, 1006);
  const closeAt = lifecycle.indexOf('close');
  assert.deepEqual(lifecycle.slice(closeAt, closeAt + 2), ['close', 'reconnecting'], 'close, then reconnecting');
  assert.equal(view.synced, false);
  assert.deepEqual(view.members.map((m) => m.key), ['u:ada'], 'the last known members stay');
  assert.equal(chat.joined, false);

  // Queued while the server is down.
  const queuedAck = chat.emit('echo', 'queued-ack', { timeout: 15000 });
  a.send('q1');
  const created = a.sync.create('/api/books', { title: 'written offline' }, { timeout: 15000 });
  a.send('q2');
  chat.emit('say', 'q3 said');
  a.send('q4');
  assert.equal(a.queued, 6);

  // Restart on the same port; an observer connects before A is let in.
  allowA = false;
  await next(a, 'failed'); // an attempt while it is down
  server = await start(port);
  const b = await clients.open(`${server.url}/?user=bob`);
  await b.channel('/chat').join();
  const received = [];
  b.on('message', (data) => received.push(data));
  const said = next(b.channel('/chat'), 'said');
  const observer = await b.views.open('doc-r');
  const adaBack = next(observer, 'change', () => observer.members.some((m) => m.key === 'u:ada'));
  const events = [];
  books.on('add', (item, meta) => events.push(['add', item.title, meta.snapshot]));
  books.on('remove', (item, meta) => events.push(['remove', item.title, meta.snapshot]));
  books.on('snapshot', (items) => events.push(['snapshot', items.length]));
  wire.length = 0;
  allowA = true;
  await within(next(a, 'open', () => true, 10000), 'the reconnect', 10000);

  // What A wrote, in order: the restore, then the queue.
  const kinds = wire.map((frame) => (typeof frame === 'string' ? frame : `${frame.$r} ${frame.d.t}${frame.d.method ? ' ' + frame.d.method : ''}`));
  assert.deepEqual(kinds.slice(0, 9), [
    'ch join',
    'views open',
    'sync sub',
    'ch emit',
    'q1',
    'sync request create',
    'q2',
    'ch emit',
    'q4',
  ]);
  assert.equal(a.queued, 0);

  // The server saw the join before the queued emit, the subscription before the create.
  assert.equal(await queuedAck, 'queued-ack');
  const book = await created;
  assert.equal(book.title, 'written offline');
  assert.deepEqual(await said, ['q3 said']);
  await until(() => received.length === 3, 'the relayed frames');
  assert.deepEqual(received, ['q1', 'q2', 'q4']);
  await adaBack;
  assert.equal(view.synced, true);
  assert.deepEqual(view.members.map((m) => m.key), ['u:ada', 'u:bob']);
  assert.equal(chat.joined, true);

  // The snapshot replaced the collection (the restarted server lost its books), then
  // the push of the create followed.
  await until(() => events.some(([event]) => event === 'add'), 'the push of the create').catch((e) => { console.log('EVENTS', JSON.stringify(events), JSON.stringify(books.items)); throw e; });
  assert.deepEqual(events, [
    ['remove', 'before the crash', true],
    ['snapshot', 0],
    ['add', 'written offline', false],
  ]);
  assert.deepEqual(books.items, [book]);

  // One provider call per attempt.
  const attempts = lifecycle.filter((event) => event === 'connecting').length;
  assert.equal(providerCalls, attempts);
});

test('the URL provider is called before every attempt, and may be async', async () => {
  const server = await start();
  const urls = [];
  let token = 0;
  const seen = [];
  const Spy = class extends WebSocket {
    constructor(url) {
      seen.push(url);
      super(url);
    }
  };
  const client = clients.make(
    async () => {
      await sleep(5);
      const url = `${server.url}/?user=u&token=${++token}`;
      urls.push(url);
      return url;
    },
    { WebSocket: Spy, minReconnectionDelay: 50 },
  );
  await next(client, 'open');
  client.reconnect();
  await next(client, 'open');
  client.reconnect();
  await next(client, 'open');
  assert.deepEqual(urls, [1, 2, 3].map((n) => `${server.url}/?user=u&token=${n}`));
  assert.deepEqual(seen, urls, 'each attempt used its own URL');

  // A provider that fails counts as a failed attempt, retried after the backoff.
  let fail = 2;
  const flaky = clients.make(
    () => {
      if (fail-- > 0) throw new Error('token service down');
      return server.url;
    },
    { minReconnectionDelay: 20, reconnectionDelayGrowFactor: 2 },
  );
  const failures = [];
  flaky.on('failed', ({ attempt, error }) => failures.push([attempt, error.message]));
  const delays = [];
  flaky.on('reconnecting', ({ delay }) => delays.push(delay));
  await next(flaky, 'open');
  assert.deepEqual(failures, [
    [0, 'token service down'],
    [1, 'token service down'],
  ]);
  assert.deepEqual(delays, [20, 40]);
});

/** Whether the server answers heartbeat pings (PROTOCOL.md 3.1). */
async function answersHeartbeats(url) {
  const ws = new WebSocket(url);
  try {
    await within(new Promise((resolve, reject) => ((ws.onopen = resolve), (ws.onerror = reject))), 'the probe', 2000);
    const pong = new Promise((resolve) => {
      ws.onmessage = (event) => resolve(String(event.data).startsWith('{"$r":"hb"'));
    });
    ws.send('{"$r":"hb","d":{"t":"ping","id":1}}');
    return await within(pong, 'a pong', 1000).catch(() => false);
  } finally {
    ws.close();
  }
}

test('heartbeat: a frozen server is detected and the client reconnects when it thaws', async (t) => {
  const server = await start();
  if (!(await answersHeartbeats(server.url))) {
    t.skip('the server does not answer {"$r":"hb"} pings yet (PROTOCOL.md 3.1); rebuild it once that lands');
    return;
  }
  const client = await clients.open(server.url, { pingInterval: 200, pongTimeout: 300, minReconnectionDelay: 100 });
  // A quiet but live server answers the pings: the connection stays.
  const closes = [];
  client.on('close', (info) => closes.push(info));
  await sleep(1200);
  assert.deepEqual(closes, [], 'pongs keep a quiet connection');

  await server.freeze(); // sockets stay open, nothing is answered
  try {
    const [info] = await within(next(client, 'close', () => true, 3000), 'the heartbeat timeout', 3000);
    assert.deepEqual(info, { code: 1006, reason: 'heartbeat timeout' });
  } finally {
    server.thaw();
  }
  await next(client, 'open');
});
