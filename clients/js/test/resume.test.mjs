// Session resume (PROTOCOL.md section 9) against a scripted server (fake socket): the
// handshake, implicit counting, acknowledgements on a mocked clock, the replay buffer,
// refusals, and what the application and the routers see of it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { connect, QueueFullError } from '../realtime.js';
import { fakeSockets, flush, advance } from './fake-socket.mjs';

/** Every test fails rather than hangs when a promise is never settled. */
const LIMIT = { timeout: 5000 };
const session = (d) => JSON.stringify({ $r: 'session', d });
const welcome = (token = 'a1.f00d') => session({ t: 'welcome', token, window: 120000 });
/** What the client wrote, router frames as `router:body` objects, text as it is. */
const wire = (ws) => ws.sent.map((s) => (s.startsWith('{"$r"') ? JSON.parse(s) : s));
/** The frames written that are not the session's own. */
const data = (ws) => wire(ws).filter((f) => f.$r !== 'session');
const acks = (ws) => wire(ws).filter((f) => f.$r === 'session').map((f) => f.d);

/** A resuming client whose sockets open at once; `welcome` sent on the first. */
async function resumingClient(options = {}) {
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/?user=ada&x=a%20b', { WebSocket: Fake, resume: true, pingInterval: null, ...options });
  const events = [];
  for (const event of ['open', 'close', 'resumed', 'reset', 'message']) client.on(event, (arg) => events.push(arg === undefined ? event : [event, arg]));
  await flush();
  return { client, Fake, events, ws: Fake.sockets[0] };
}

test('the first frame is awaited: welcome opens, the routers restore then, data frames are counted', LIMIT, async () => {
  const { client, Fake, events, ws } = await resumingClient();
  assert.equal(ws.url, 'ws://fake/?user=ada&x=a%20b&session=new', "the page's parameters keep their encoding");
  const joined = client.channel('/chat').join();
  client.send('early');
  assert.equal(client.connected, false, 'open only once the server said which session');
  assert.deepEqual(ws.sent, []);
  ws.receive(welcome());
  assert.deepEqual(events, ['open']);
  assert.deepEqual(data(ws), [{ $r: 'ch', d: { t: 'join', ch: '/chat', id: 1 } }, 'early']);
  ws.receive('{"$r":"ch","d":{"t":"joined","ch":"/chat","id":1}}');
  await joined;
  ws.receive('one');
  ws.receive(session({ t: 'ack', n: 1 })); // not counted
  ws.receive('{"$r":"hb","d":{"t":"pong","id":7}}'); // counted, like every data frame
  ws.receive(new Uint8Array([1, 2]).buffer);
  const errors = [];
  client.on('error', (e) => errors.push(e.code));
  ws.receive('{"$r":"ch","d":'); // a data frame, even unreadable
  assert.deepEqual(errors, ['malformed']);
  assert.deepEqual(
    events.filter((e) => e[0] === 'message').map((e) => e[1]),
    ['one', new Uint8Array([1, 2]).buffer],
    'session frames never reach the application',
  );
  ws.fail();
  client.reconnect();
  await flush();
  assert.equal(Fake.sockets[1].url, 'ws://fake/?user=ada&x=a%20b&session=a1.f00d&seen=5');
  client.close();
});

test('acknowledgements: at 64 frames at once, else 1 s after the first unacknowledged one', LIMIT, async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const { client, ws } = await resumingClient();
  ws.receive(welcome());
  for (let i = 0; i < 63; i++) ws.receive(`m${i}`);
  assert.deepEqual(acks(ws), []);
  ws.receive('m63');
  assert.deepEqual(acks(ws), [{ t: 'ack', n: 64 }], 'the 64th frame is acknowledged at once');
  ws.receive('m64');
  await advance(t.mock.timers, 600);
  ws.receive('m65'); // does not move the deadline
  await advance(t.mock.timers, 399);
  assert.equal(acks(ws).length, 1);
  await advance(t.mock.timers, 1);
  assert.deepEqual(acks(ws), [{ t: 'ack', n: 64 }, { t: 'ack', n: 66 }], '1 s after the first frame not acknowledged');
  await advance(t.mock.timers, 5000);
  assert.equal(acks(ws).length, 2, 'nothing new, no ack');
  client.close();
});

test('a resume sends again exactly the frames after the server count, then the queue; nothing twice; no restore', LIMIT, async () => {
  const { client, Fake, events, ws } = await resumingClient({ minReconnectionDelay: 10 });
  ws.receive(welcome('s1.secret'));
  const chat = client.channel('/chat');
  const joined = chat.join();
  ws.receive('{"$r":"ch","d":{"t":"joined","ch":"/chat","id":1}}');
  await joined;
  const answer = chat.emit('echo', 'x', {}); // waits across the drop
  client.send('a');
  client.send('b');
  ws.receive(session({ t: 'ack', n: 2 })); // join and emit arrived
  ws.receive('from-server');
  ws.fail();
  client.send('c'); // queued while away
  const lateJoin = client.channel('/late').join(); // wanted while away
  client.reconnect();
  await flush();
  const ws2 = Fake.sockets[1];
  assert.equal(ws2.url, 'ws://fake/?user=ada&x=a%20b&session=s1.secret&seen=2');
  assert.deepEqual(ws2.sent, [], 'nothing is sent before the server says where to start');
  ws2.receive(session({ t: 'resumed', seen: 3 })); // it had `a` too
  assert.deepEqual(data(ws2), ['b', { $r: 'ch', d: { t: 'join', ch: '/late', id: 3 } }, 'c']);
  assert.deepEqual(events.slice(-2), [['close', { code: 1006, reason: '' }], 'resumed']);
  assert.ok(!events.slice(1).includes('open'), 'resumed instead of open');
  assert.ok(chat.joined, 'still joined: nothing was restored');
  ws2.receive('{"$r":"ch","d":{"t":"ack","id":2,"data":"x"}}');
  assert.equal(await answer, 'x', 'a request made before the drop is answered after it');
  ws2.receive('{"$r":"ch","d":{"t":"joined","ch":"/late","id":3}}');
  await lateJoin;

  // Dropped again: the server had everything (seen 6: join, emit, a, b, join /late, c).
  ws2.fail();
  client.reconnect();
  await flush();
  const ws3 = Fake.sockets[2];
  assert.match(ws3.url, /seen=4$/, 'joined, from-server, then the two answers');
  ws3.receive(session({ t: 'resumed', seen: 6 }));
  assert.deepEqual(data(ws3), [], 'nothing is sent twice');
  client.send('d');
  assert.deepEqual(data(ws3), ['d']);
  client.close();
});

test('given up while away: a resumed session is told; a refused one is not', LIMIT, async () => {
  const { client, Fake, ws } = await resumingClient();
  ws.receive(welcome());
  const chat = client.channel('/chat');
  const joined = chat.join();
  ws.receive('{"$r":"ch","d":{"t":"joined","ch":"/chat","id":1}}');
  await joined;
  ws.fail();
  await chat.leave(); // offline: settled at once
  client.reconnect();
  await flush();
  Fake.sockets[1].receive(session({ t: 'resumed', seen: 1 }));
  assert.deepEqual(data(Fake.sockets[1]), [{ $r: 'ch', d: { t: 'leave', ch: '/chat', id: 2 } }]);
  Fake.sockets[1].receive('{"$r":"ch","d":{"t":"left","ch":"/chat","id":2}}');

  // Joined again, dropped, left while away: a refused session has nothing to leave.
  const again = chat.join();
  Fake.sockets[1].receive('{"$r":"ch","d":{"t":"joined","ch":"/chat","id":3}}');
  await again;
  client.channel('/other').join().catch(() => {});
  Fake.sockets[1].fail();
  await chat.leave();
  client.reconnect();
  await flush();
  const ws3 = Fake.sockets[2];
  ws3.receive(session({ t: 'refused', reason: 'unknown' }));
  ws3.receive(welcome('b2.new'));
  assert.deepEqual(data(ws3), [{ $r: 'ch', d: { t: 'join', ch: '/other', id: 5 } }], 'no leave, the rest restored');
  client.close();
});

test('closed and opened again while away: a resumed session sends the open only (no leave for the others)', LIMIT, async () => {
  const { client, Fake, ws } = await resumingClient();
  ws.receive(welcome());
  const opening = client.views.open('doc');
  ws.receive('{"$r":"views","d":{"t":"state","view":"doc","members":[],"you":"u:ada","id":1}}');
  const first = await opening;
  ws.fail();
  await first.close(); // offline: settled at once
  const again = client.views.open('doc');
  client.reconnect();
  await flush();
  const ws2 = Fake.sockets[1];
  ws2.receive(session({ t: 'resumed', seen: 1 }));
  assert.deepEqual(data(ws2), [{ $r: 'views', d: { t: 'open', view: 'doc', id: 2 } }]);
  ws2.receive('{"$r":"views","d":{"t":"state","view":"doc","members":[],"you":"u:ada","id":2}}');
  assert.equal((await again).you, 'u:ada');
  client.close();
});

test('a refusal: reset, then welcome; the routers restore, frames not acknowledged are not sent again', LIMIT, async () => {
  const { client, Fake, events, ws } = await resumingClient();
  ws.receive(welcome());
  const joined = client.channel('/chat').join();
  ws.receive('{"$r":"ch","d":{"t":"joined","ch":"/chat","id":1}}');
  await joined;
  client.send('unacknowledged');
  const before = client.sync.read('/api/book/1'); // sent before the drop
  ws.fail();
  const during = client.sync.read('/api/book/2'); // queued during it
  client.send('queued');
  client.reconnect();
  await flush();
  const ws2 = Fake.sockets[1];
  ws2.receive(session({ t: 'refused', reason: 'expired' }));
  // Not acknowledged: the join, `unacknowledged` and the first read.
  assert.deepEqual(events.at(-1), ['reset', { reason: 'expired', unconfirmed: 3 }]);
  await assert.rejects(before, (e) => e.code === 'closed', 'the server forgot it');
  assert.equal(client.connected, false, 'a welcome follows');
  ws2.receive(welcome('b2.new'));
  assert.equal(events.at(-1), 'open');
  assert.deepEqual(data(ws2), [
    { $r: 'ch', d: { t: 'join', ch: '/chat', id: 2 } },
    { $r: 'sync', d: { t: 'request', method: 'read', path: '/api/book/2', id: 2 } },
    'queued',
  ]);
  ws2.receive('{"$r":"sync","d":{"t":"reply","id":2,"data":{"id":2}}}');
  assert.deepEqual(await during, { id: 2 }, 'a request queued during the drop goes on');
  // The new session counts from 0.
  ws2.fail();
  client.reconnect();
  await flush();
  assert.match(Fake.sockets[2].url, /session=b2\.new&seen=1$/);
  client.close();
});

test('a close frame ends the session: the next connection is a new one, restored, without reset', LIMIT, async () => {
  const { client, Fake, events, ws } = await resumingClient({ minReconnectionDelay: 10 });
  ws.receive(welcome());
  const joined = client.channel('/chat').join();
  ws.receive('{"$r":"ch","d":{"t":"joined","ch":"/chat","id":1}}');
  await joined;
  ws.fail(1001, 'going away'); // the server closed with a close frame
  client.reconnect();
  await flush();
  assert.match(Fake.sockets[1].url, /session=new$/);
  Fake.sockets[1].receive(welcome('b2.new'));
  assert.deepEqual(data(Fake.sockets[1]), [{ $r: 'ch', d: { t: 'join', ch: '/chat', id: 2 } }]);
  // reconnect() while open sends a close frame (1000 reconnect): that ends it too.
  client.reconnect();
  await flush();
  assert.deepEqual(Fake.sockets[1].closedWith, { code: 1000, reason: 'reconnect' });
  assert.match(Fake.sockets[2].url, /session=new$/);
  assert.ok(!events.some((e) => e[0] === 'reset'));
  client.close();
});

test('heartbeat pings are data frames: counted, kept, sent again after a resume that lacked them', LIMIT, async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const { client, Fake, ws } = await resumingClient({ pingInterval: 1000, pongTimeout: 500, minReconnectionDelay: 100 });
  ws.receive(welcome());
  await advance(t.mock.timers, 1000);
  const ping = { $r: 'hb', d: { t: 'ping', id: 1 } };
  assert.deepEqual(data(ws), [ping]);
  await advance(t.mock.timers, 500); // no answer: dropped, as a dead link is
  await advance(t.mock.timers, 100);
  const ws2 = Fake.sockets[1];
  assert.match(ws2.url, /session=a1\.f00d&seen=0$/);
  ws2.receive(session({ t: 'resumed', seen: 0 }));
  assert.deepEqual(data(ws2), [ping], 'the ping the server never had');
  client.close();
});

test('disabled: no welcome, a plain connection, nothing counted or acknowledged', LIMIT, async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const { client, Fake, events, ws } = await resumingClient();
  ws.receive(session({ t: 'refused', reason: 'disabled' }));
  assert.deepEqual(events, ['open'], 'no reset: nothing was lost');
  for (let i = 0; i < 100; i++) ws.receive('m');
  await advance(t.mock.timers, 2000);
  assert.deepEqual(acks(ws), []);
  ws.fail();
  client.reconnect();
  await flush();
  assert.equal(Fake.sockets[1].url, 'ws://fake/?user=ada&x=a%20b&session=new');
  client.close();
});

test('without the option: no session parameter, and the socket opens at once', LIMIT, async () => {
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', { WebSocket: Fake, pingInterval: null });
  await flush();
  assert.equal(Fake.sockets[0].url, 'ws://fake/');
  assert.equal(client.connected, true);
  client.close();
});

test('frames not acknowledged count against the queue bounds', LIMIT, async () => {
  const { client, Fake, ws } = await resumingClient({ maxEnqueuedMessages: 3, maxEnqueuedBytes: 100 });
  ws.receive(welcome());
  client.send('a');
  client.send('b');
  ws.fail();
  client.send('c'); // queued: 2 kept + 1 queued
  assert.throws(() => client.send('d'), QueueFullError);
  client.reconnect();
  await flush();
  const ws2 = Fake.sockets[1];
  ws2.receive(session({ t: 'resumed', seen: 0 }));
  assert.deepEqual(data(ws2), ['a', 'b', 'c']);
  assert.throws(() => client.send('d'), QueueFullError, 'online too');
  ws2.receive(session({ t: 'ack', n: 2 }));
  client.send('d');
  assert.deepEqual(data(ws2), ['a', 'b', 'c', 'd']);
  client.close();
});

test('a server that never sends its first frame: the attempt times out', LIMIT, async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const { client, Fake, events } = await resumingClient({ connectionTimeout: 500, minReconnectionDelay: 100 });
  const failed = [];
  client.on('failed', (info) => failed.push(info.error.code));
  await advance(t.mock.timers, 500);
  assert.deepEqual(failed, ['timeout']);
  assert.deepEqual(events, []);
  await advance(t.mock.timers, 100);
  assert.equal(Fake.sockets.length, 2);
  client.close();
});
