// The envelope (PROTOCOL.md 2.1) both ways, and the MessagePack codec.
import test from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../realtime.js';
import { encode, decode, msgpack } from '../msgpack.js';
import { fakeSockets, flush } from './fake-socket.mjs';

async function openClient(options = {}) {
  const Fake = fakeSockets((ws) => ws.open());
  const client = connect('ws://fake/', { WebSocket: Fake, pingInterval: null, ...options });
  await flush();
  return { client, ws: Fake.sockets[0] };
}

test('router frames start with the 7 bytes {"$r":" and carry the body in d', async () => {
  const { client, ws } = await openClient();
  client.views.open('doc-7').catch(() => {}); // rejected with closed at the end
  client.channel('/chat').emit('say', { text: 'hi' });
  assert.equal(ws.sent[0], '{"$r":"views","d":{"t":"open","view":"doc-7","id":1}}');
  assert.equal(ws.sent[1], '{"$r":"ch","d":{"t":"emit","ch":"/chat","ev":"say","data":{"text":"hi"}}}');
  client.close();
});

test('incoming frames: routers take theirs, the application gets every other frame unchanged', async () => {
  const { client, ws } = await openClient();
  const messages = [];
  const errors = [];
  client.on('message', (data) => messages.push(data));
  client.on('error', (e) => errors.push(e.code));
  const said = [];
  client.channel('/chat').on('said', (data) => said.push(data));
  ws.receive('{"$r":"ch","d":{"t":"emit","ch":"/chat","ev":"said","data":"hello"}}');
  ws.receive('{"$r":"hb","d":{"t":"pong","id":1}}');
  ws.receive('plain text');
  ws.receive('{"text":"an application object"}');
  ws.receive('{"$r":"other","d":{"x":1}}'); // no such router here: the application's
  const binary = new Uint8Array([1, 2, 3]).buffer;
  ws.receive(binary);
  ws.receive('{"$r":"ch","d":not json}');
  assert.deepEqual(said, ['hello']);
  assert.deepEqual(messages, ['plain text', '{"text":"an application object"}', '{"$r":"other","d":{"x":1}}', binary]);
  assert.deepEqual(errors, ['malformed']);
  client.close();
});

test('application frames: text, binary, and JSON for other values', async () => {
  const { client, ws } = await openClient();
  const bytes = new Uint8Array([9, 8]);
  client.send('text');
  client.send(bytes);
  client.send(bytes.buffer);
  client.send({ a: [1, 'b'] });
  client.send(42);
  assert.deepEqual(ws.sent, ['text', bytes, bytes.buffer, '{"a":[1,"b"]}', '42']);
  client.close();
});

test('MessagePack: the envelope of PROTOCOL.md 2.1, byte for byte', () => {
  const bytes = encode({ $r: 'views', d: { t: 'open', view: 'doc-7' } });
  const head = [0x82, 0xa2, 0x24, 0x72, 0xa5, 0x76, 0x69, 0x65, 0x77, 0x73, 0xa1, 0x64];
  assert.deepEqual([...bytes.subarray(0, head.length)], head);
  assert.deepEqual(decode(bytes), { $r: 'views', d: { t: 'open', view: 'doc-7' } });
});

test('MessagePack: every type round-trips, in the smallest form', () => {
  const cases = [
    [null, [0xc0]],
    [false, [0xc2]],
    [true, [0xc3]],
    [0, [0x00]],
    [127, [0x7f]],
    [128, [0xcc, 0x80]],
    [256, [0xcd, 0x01, 0x00]],
    [65536, [0xce, 0x00, 0x01, 0x00, 0x00]],
    [-1, [0xff]],
    [-32, [0xe0]],
    [-33, [0xd0, 0xdf]],
    [-129, [0xd1, 0xff, 0x7f]],
    [-40000, [0xd2, 0xff, 0xff, 0x63, 0xc0]],
    [0.5, [0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0]],
    ['', [0xa0]],
    ['é', [0xa2, 0xc3, 0xa9]],
    [[], [0x90]],
    [{}, [0x80]],
    [new Uint8Array([1, 2]), [0xc4, 0x02, 0x01, 0x02]],
  ];
  for (const [value, bytes] of cases) {
    assert.deepEqual([...encode(value)], bytes, JSON.stringify(value));
    assert.deepEqual(decode(new Uint8Array(bytes)), value);
  }
  const values = [
    2 ** 32,
    Number.MAX_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER,
    -(2 ** 31) - 1,
    1e300,
    'x'.repeat(31),
    'x'.repeat(32),
    'x'.repeat(300),
    'y'.repeat(70000),
    Array.from({ length: 16 }, (_, i) => i),
    Array.from({ length: 70000 }, (_, i) => i % 3),
    Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])),
    { nested: { deeper: [1, { a: null, b: [true, false] }] }, s: 'ünïcødé ✓ 𝄞' },
  ];
  for (const value of values) assert.deepEqual(decode(encode(value)), value);
  assert.equal(decode(encode(2n ** 63n)), 2n ** 63n);
  assert.deepEqual(decode(encode({ a: undefined, b: 1, d: new Date(0) })), { b: 1, d: '1970-01-01T00:00:00.000Z' });
});

test('MessagePack: random values round-trip (seeded)', () => {
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const value = (depth) => {
    const kind = Math.floor(random() * (depth > 3 ? 5 : 7));
    if (kind === 0) return null;
    if (kind === 1) return random() < 0.5;
    if (kind === 2) return Math.floor((random() - 0.5) * 2 ** (random() * 53));
    if (kind === 3) return random() * 1e6;
    if (kind === 4) return String.fromCharCode(...Array.from({ length: random() * 40 }, () => 32 + random() * 2000));
    if (kind === 5) return Array.from({ length: random() * 20 }, () => value(depth + 1));
    return Object.fromEntries(Array.from({ length: random() * 20 }, (_, i) => [`k${i}`, value(depth + 1)]));
  };
  for (let i = 0; i < 500; i++) {
    const v = value(0);
    assert.deepEqual(decode(encode(v)), v);
  }
});

test('MessagePack: bad input is refused, never a crash', () => {
  assert.throws(() => decode(new Uint8Array([0xa5, 0x61])), RangeError); // truncated
  assert.throws(() => decode(new Uint8Array([0xd4, 0x01, 0x00])), RangeError); // ext
  assert.throws(() => decode(new Uint8Array([0xc0, 0xc0])), RangeError); // trailing
  assert.throws(() => decode(new Uint8Array([0xc1])), RangeError); // never used
  assert.throws(() => decode(new Uint8Array(200).fill(0x91)), RangeError); // 200 levels
  let deep = 1;
  for (let i = 0; i < 127; i++) deep = [deep];
  assert.throws(() => encode(deep), RangeError);
  assert.deepEqual(decode(encode({ __proto__x: 1, ['__proto__']: 2 })).__proto__x, 1);
  assert.equal(Object.getPrototypeOf(decode(new Uint8Array([0x81, 0xa9, ...Buffer.from('__proto__'), 0x01]))), Object.prototype);
});

test('with the msgpack codec, router frames go out as binary envelopes and come back either way', async () => {
  const { client, ws } = await openClient({ codec: msgpack });
  const reply = client.sync.read('/api/book/1');
  const sent = ws.sent[0];
  assert.ok(sent instanceof Uint8Array);
  assert.deepEqual(decode(sent), { $r: 'sync', d: { t: 'request', method: 'read', path: '/api/book/1', id: 1 } });
  ws.receive(encode({ $r: 'sync', d: { t: 'reply', id: 1, data: { id: 1, title: 'Dune' } } }).buffer);
  assert.deepEqual(await reply, { id: 1, title: 'Dune' });
  const again = client.sync.read('/api/book/2');
  ws.receive('{"$r":"sync","d":{"t":"reply","id":2,"err":{"code":"not_found","message":"no such book"}}}');
  await assert.rejects(again, (e) => e.code === 'not_found' && e.remote);
  client.send({ hello: 'world' });
  assert.deepEqual(decode(ws.sent.at(-1)), { hello: 'world' });
  const messages = [];
  client.on('message', (data) => messages.push(data));
  const app = encode({ not: 'an envelope' }).buffer;
  ws.receive(app);
  assert.deepEqual(messages, [app]);
  client.close();
});
