// Exercises the public API against the declarations: `npm run typecheck` compiles it
// (it never runs). Lines marked @ts-expect-error must fail to compile.
import {
  connect,
  Client,
  Collection,
  QueueFullError,
  RealtimeError,
  reconnectDelay,
  jittered,
  defaultUrl,
  type Member,
  type ViewChange,
  type ViewInfo,
} from '../realtime.js';
import { realtimeSync, syncCollection } from '../backbone.js';
import { msgpack, encode, decode } from '../msgpack.js';
import { RealtimeUsers, sharedClient } from '../realtime-users.js';

const client: Client = connect('ws://127.0.0.1:9001/?user=ada', {
  minReconnectionDelay: 500,
  maxReconnectionDelay: 10_000,
  reconnectionDelayGrowFactor: 1.3,
  jitter: 0.2,
  minUptime: 5000,
  connectionTimeout: 4000,
  maxRetries: null,
  maxEnqueuedMessages: 1024,
  maxEnqueuedBytes: 1 << 20,
  startClosed: false,
  pingInterval: 25_000,
  pongTimeout: 10_000,
  timeout: 10_000,
  readAfterResubscribe: true,
  resume: true,
  shouldReconnect: ({ code }) => code < 4000,
  codec: msgpack,
});
connect(async () => `wss://example.com/ws?token=${await Promise.resolve('t')}`);
connect({ startClosed: true });
connect();
// @ts-expect-error unknown option
connect('ws://x', { minReconectionDelay: 1 });

const offOpen: () => void = client.on('open', () => {});
offOpen();
client.on('close', ({ code, reason }) => console.log(code.toFixed(), reason.toUpperCase()));
client.on('reconnecting', ({ attempt, delay }) => console.log(attempt + delay));
client.on('retries-exhausted', () => client.reconnect());
client.on('resumed', () => {});
client.on('reset', ({ reason, unconfirmed }) => console.log(reason.toUpperCase(), unconfirmed.toFixed()));
// @ts-expect-error `resumed` has no argument
client.on('resumed', (info: { reason: string }) => info);
client.on('message', (data) => (typeof data === 'string' ? data.length : data.byteLength));
client.on('error', (e) => console.log(e.code, e.remote, e.path));
// @ts-expect-error no such event
client.on('opened', () => {});

try {
  client.send('text');
  client.send(new Uint8Array([1, 2]));
  client.send({ any: 'json' });
  const sent: 'queued' | 'replaced' | 'dropped' = client.send('tick', { offline: 'volatile' });
  if (sent === 'dropped') console.log('offline');
  client.send({ x: 1 }, { offline: 'latest', key: 'cursor' });
  client.send('quote', { offline: 'expire', ttl: 5000 });
  client.send('plain', { offline: 'buffer' });
  // @ts-expect-error latest needs a key
  client.send('x', { offline: 'latest' });
  // @ts-expect-error expire needs a ttl
  client.send('x', { offline: 'expire' });
  // @ts-expect-error no such policy
  client.send('x', { offline: 'drop' });
} catch (e) {
  if (e instanceof QueueFullError) console.log(e.data, e.code);
}
const queued: number = client.queued;
const connected: boolean = client.connected;
console.log(queued, connected, defaultUrl(), reconnectDelay(1, 100, 1000, 2), jittered(100, 0.5, 0.5));

// Channels
const chat = client.channel('/chat');
await chat.join();
await chat.join({ timeout: 1000 });
chat.emit('say', { text: 'hi' });
const echoed: { a: number } = await chat.emit<{ a: number }>('echo', { a: 1 }, { timeout: 2000 });
chat.emit('echo', 1, (err, data) => console.log(err?.code, data));
chat.emit('echo', 1, { timeout: 10 }, (err: RealtimeError | null) => console.log(err));
const offSaid = chat.on<string>('said', (text) => text.toUpperCase());
offSaid();
chat.handle('ask', async (n: number) => n + 1);
chat.handle('ask', null);
await chat.leave();
console.log(echoed.a, chat.joined, chat.path);
// @ts-expect-error an event name is required
chat.emit();

// Views
const view = await client.views.open('doc-7');
const members: Member[] = view.members;
const you: string | undefined = view.you;
view.on('change', (change: ViewChange, v) => console.log(change.joined, change.left, change.changed, change.closed?.code, v.name));
console.log(members.map((m) => [m.key, m.user, m.clients]), you, view.synced, view.open);
await view.close();
await client.views.close('doc-7');
const one: ViewInfo | null = await client.views.info('doc-7');
const many = await client.views.info(/^doc-/i, { debug: false });
console.log(one?.clients, many.truncated, many[0]?.users[0]?.user);

// Sync
interface Book {
  id: number;
  title: string;
}
const unsubscribe = client.sync.subscribe<Book>('/api/book/1', (book, { op, snapshot, path }) =>
  console.log(book.title, op, snapshot, path),
);
await unsubscribe.ready;
await unsubscribe();
await client.sync.subscribe<Book>('/api/book/1', (book) => console.log(book.id), undefined, true).ready;
const created = await client.sync.create<Book>('/api/books', { title: 'Dune' });
const read = await client.sync.read<Book>(`/api/book/${created.id}`, { timeout: 1000 });
await client.sync.update<Book>(`/api/book/${read.id}`, { title: 'Emma' });
await client.sync.delete(`/api/book/${read.id}`);
client.sync.read('/api/book/abc', (err, data) => console.log(err?.code, data));
client.sync.delete('/api/book/1', { timeout: 5 }, (err) => console.log(err?.message));
await client.sync.request('read', '/api/books');
// @ts-expect-error not a sync method
await client.sync.request('patch', '/api/books');
const books: Collection<Book> = client.sync.collection<Book>('/api/books');
await books.ready;
books.on('add', (book, { snapshot }) => console.log(book.title, snapshot));
books.on('change', (book, previous) => console.log(book.title, previous.title));
books.on('remove', (book) => console.log(book.id));
books.on('snapshot', (items) => console.log(items.length));
console.log(books.items[0]?.title, books.size, books.get(1)?.title, books.get('1'));
await books.close();

// Backbone
const sync = realtimeSync(client);
const model = { url: '/api/book/1', toJSON: () => ({ title: 'Dune' }), trigger: () => {} };
await sync('update', model, { success: (data) => console.log(data), error: (e) => console.log(e.code) });
const stop = syncCollection(client, { url: '/api/books', add: () => {}, remove: () => {} });
await stop.ready;
await stop();

// MessagePack
const bytes: Uint8Array = encode({ $r: 'ch', d: { t: 'join', ch: '/chat', id: 1 } });
console.log(decode(bytes), msgpack.decode(msgpack.encode([1, 'a', null])));

// The element
const element: RealtimeUsers = document.createElement('realtime-users');
element.client = sharedClient(null);
element.setAttribute('key', 'doc-7');
console.log(element.view?.members.length);

client.close(4001, 'bye');
