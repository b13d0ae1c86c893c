// The browser heartbeat (PROTOCOL.md 3.1) on a mocked clock: a ping after pingInterval of
// silence, the socket dropped when nothing at all arrives within pongTimeout after it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../realtime.js';
import { fakeSockets, flush, advance } from './fake-socket.mjs';

function pings(ws) {
  return ws.frames().filter(([router]) => router === 'hb').map(([, body]) => body);
}

test('a silent server is pinged after 25 s and dropped 10 s later: close, then reconnecting', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', { WebSocket: Fake, minReconnectionDelay: 1000 });
  const log = [];
  for (const event of ['open', 'close', 'reconnecting']) client.on(event, (info) => log.push([event, Date.now(), info]));
  await flush();
  const start = Date.now();
  const ws = Fake.sockets[0];
  await advance(t.mock.timers, 24_999);
  assert.deepEqual(pings(ws), []);
  await advance(t.mock.timers, 1);
  assert.deepEqual(pings(ws), [{ t: 'ping', id: 1 }]);
  await advance(t.mock.timers, 9_999);
  assert.deepEqual(log.map(([event]) => event), ['open']);
  await advance(t.mock.timers, 1);
  assert.deepEqual(log.map(([event]) => event), ['open', 'close', 'reconnecting']);
  assert.equal(log[1][1] - start, 35_000);
  assert.deepEqual(log[1][2], { code: 1006, reason: 'heartbeat timeout' });
  assert.deepEqual(log[2][2], { attempt: 1, delay: 1000 });
  assert.ok(ws.closedWith, 'the dead socket is closed');
  await advance(t.mock.timers, 1000);
  assert.equal(Fake.sockets.length, 2, 'reconnected after the delay');
  client.close();
});

test('a server that answers pongs keeps the connection; each ping has a new id', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const Fake = fakeSockets((ws) => {
    ws.open();
    const send = ws.send.bind(ws);
    ws.send = (data) => {
      send(data);
      const frame = JSON.parse(data);
      if (frame.$r === 'hb') setTimeout(() => ws.receive(JSON.stringify({ $r: 'hb', d: { t: 'pong', id: frame.d.id } })), 50);
    };
  });
  const client = connect('ws://fake/', { WebSocket: Fake, pingInterval: 1000, pongTimeout: 500 });
  const closes = [];
  client.on('close', (info) => closes.push(info));
  await flush();
  await advance(t.mock.timers, 5000);
  assert.deepEqual(closes, []);
  assert.deepEqual(pings(Fake.sockets[0]).map((p) => p.id), [1, 2, 3, 4]);
  client.close();
});

test('any frame counts as a sign of life: a busy connection never pings', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', { WebSocket: Fake, pingInterval: 1000, pongTimeout: 500 });
  await flush();
  const ws = Fake.sockets[0];
  for (let i = 0; i < 10; i++) {
    await advance(t.mock.timers, 900);
    ws.receive('application traffic');
  }
  assert.deepEqual(pings(ws), []);
  // Any frame after a ping, not only a pong, keeps it alive.
  await advance(t.mock.timers, 1000);
  assert.equal(pings(ws).length, 1);
  await advance(t.mock.timers, 400);
  ws.receive('{"$r":"views","d":{"t":"diff","view":"x","joins":[],"leaves":[]}}');
  await advance(t.mock.timers, 400);
  assert.equal(Fake.sockets.length, 1);
  client.close();
});

test('pingInterval null: no pings, never dropped for silence', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', { WebSocket: Fake, pingInterval: null });
  const closes = [];
  client.on('close', (info) => closes.push(info));
  await flush();
  t.mock.timers.tick(3_600_000);
  await flush();
  assert.deepEqual(pings(Fake.sockets[0]), []);
  assert.deepEqual(closes, []);
  client.close();
});

test('a ping from the peer is answered with a pong of the same id', async () => {
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', { WebSocket: Fake, pingInterval: null });
  const messages = [];
  client.on('message', (data) => messages.push(data));
  await flush();
  const ws = Fake.sockets[0];
  ws.receive('{"$r":"hb","d":{"t":"ping","id":7}}');
  ws.receive('{"$r":"hb","d":{"t":"pong","id":1}}');
  assert.deepEqual(ws.frames(), [['hb', { t: 'pong', id: 7 }]]);
  assert.deepEqual(messages, [], 'heartbeats are not application frames');
  client.close();
});
