// Session resume (PROTOCOL.md section 9) against the real example server, through a TCP
// proxy the test resets (both sockets destroyed, no close frame: what a network drop
// looks like to both ends, which the server treats as a detach). The resuming client gets every relayed frame sent while it
// was away exactly once, in order; what it sent before and during the drop reaches the
// other client exactly once; its channel, view and subscription are not restored (and
// nobody sees it leave the view).
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { connect } from '../realtime.js';
import { startServer, next, tracked, until } from './helpers.mjs';
import { BROWSER_WAIT, launch, skipBrowser, usersShown, waitForUsers } from './browser.mjs';

const clients = tracked(connect);
const cleanups = [];
afterEach(async () => {
  clients.closeAll();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});
after(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/**
 * A TCP proxy to `port` on 127.0.0.1. `reset()` destroys every connection through it, both
 * sides; `hold()` makes new connections wait (unanswered) until `release()`.
 */
async function proxy(port) {
  const pairs = new Set();
  let held = null;
  const server = net.createServer((inbound) => {
    const open = () => {
      const outbound = net.connect(port, '127.0.0.1');
      const pair = [inbound, outbound];
      pairs.add(pair);
      const drop = () => {
        pairs.delete(pair);
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', drop).on('close', drop);
      outbound.on('error', drop).on('close', drop);
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    };
    if (held) held.push(open);
    else open();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const it = {
    url: `ws://127.0.0.1:${server.address().port}/`,
    connections: () => pairs.size,
    reset() {
      // Ended without a close frame. (Not `resetAndDestroy`: Node 20 can spin after an RST
      // here, keeping the test process alive; either way both ends see the stream end.)
      for (const [inbound, outbound] of pairs) inbound.destroy(), outbound.destroy();
      pairs.clear();
    },
    hold() {
      held = [];
    },
    release() {
      const waiting = held ?? [];
      held = null;
      for (const open of waiting) open();
    },
    close: () =>
      new Promise((resolve) => {
        it.release();
        it.reset();
        server.close(resolve);
      }),
  };
  cleanups.push(() => it.close());
  return it;
}

/** A WebSocket class that records the text frames the client writes (router frames decoded). */
function spyingWebSocket(log) {
  return class extends WebSocket {
    send(data) {
      if (typeof data === 'string') log.push(data.startsWith('{"$r"') ? JSON.parse(data) : data);
      super.send(data);
    }
  };
}

test('a dropped connection resumes: every frame once, in order, both ways; nothing restored, nobody sees a leave', async () => {
  const server = await startServer();
  cleanups.push(() => server.kill());
  const link = await proxy(server.port);
  const written = [];
  const ada = clients.make(`${link.url}?user=ada`, {
    resume: true,
    WebSocket: spyingWebSocket(written),
    minReconnectionDelay: 100,
    maxReconnectionDelay: 100,
  });
  const events = [];
  for (const event of ['open', 'close', 'resumed', 'reset']) ada.on(event, () => events.push(event));
  const received = [];
  ada.on('message', (data) => received.push(data));
  await next(ada, 'open');
  const grace = await clients.open(`${server.url}?user=grace`);
  const heard = [];
  grace.on('message', (data) => heard.push(data));

  // Ada joins a channel, opens a view grace watches, subscribes to the books.
  const chat = ada.channel('/chat');
  await chat.join();
  await ada.views.open('doc-resume');
  const graceView = await grace.views.open('doc-resume');
  await until(() => graceView.members.length === 2, 'both members in the view');
  const leaves = [];
  graceView.on('change', (change) => leaves.push(...change.left));
  const books = [];
  const unsubscribe = ada.sync.subscribe('/api/books', (data, message) => books.push([message.op, data?.title]));
  await unsubscribe.ready;
  const restoreFrames = () => written.filter((f) => ['join', 'open', 'sub'].includes(f.d?.t)).length;
  const before = restoreFrames();

  for (let i = 0; i < 5; i++) grace.send(`to-ada-${i}`);
  await until(() => received.length === 5, 'the first frames');

  // Ada writes; the server has the first ten (grace heard them), probably not yet
  // acknowledged; then the link dies under a burst that never reaches it.
  for (let i = 0; i < 10; i++) ada.send(`from-ada-${i}`);
  await until(() => heard.length === 10, 'the first ten of ada');
  for (let i = 10; i < 20; i++) ada.send(`from-ada-${i}`);
  link.hold();
  link.reset();
  await until(() => events.includes('close'), 'the drop to be seen');
  // While ada is away: grace sends, a book is created, ada sends more (queued).
  for (let i = 5; i < 10; i++) grace.send(`to-ada-${i}`);
  await grace.sync.create('/api/books', { title: 'while away' });
  for (let i = 20; i < 25; i++) ada.send(`from-ada-${i}`);
  link.release();

  await next(ada, 'resumed');
  await until(() => received.length >= 10 && heard.length >= 25 && books.length >= 1, 'the missed frames');
  // A little longer: anything delivered twice would arrive now.
  grace.send('last');
  await until(() => received.includes('last'), 'the last frame');
  assert.deepEqual(received, [...Array.from({ length: 10 }, (_, i) => `to-ada-${i}`), 'last']);
  assert.deepEqual(heard, Array.from({ length: 25 }, (_, i) => `from-ada-${i}`));
  assert.deepEqual(books, [['add', 'while away']], 'the push sent while away, once');
  assert.deepEqual(events, ['open', 'close', 'resumed']);
  assert.equal(restoreFrames(), before, 'no join, open or sub written again');
  const writes = (frame) => written.filter((f) => f === frame).length;
  for (let i = 0; i < 10; i++) assert.equal(writes(`from-ada-${i}`), 1, 'what the server had is not sent again');
  assert.ok(writes('from-ada-10') === 2, 'what it lacked is sent again');
  assert.ok(chat.joined, 'still joined');
  assert.deepEqual(leaves, [], 'grace never saw ada leave');
  assert.deepEqual(await chat.emit('echo', 'after', { timeout: 5000 }), 'after');
});

test('a server restarted meanwhile refuses the resume: reset, then a fresh session that restores', async () => {
  const first = await startServer();
  const port = first.port;
  let current = first;
  cleanups.push(() => current.kill());
  const ada = clients.make(`${first.url}?user=ada`, { resume: true, minReconnectionDelay: 100, maxReconnectionDelay: 100 });
  const events = [];
  ada.on('reset', (info) => events.push(['reset', info.reason]));
  ada.on('open', () => events.push('open'));
  await next(ada, 'open');
  const chat = ada.channel('/chat');
  await chat.join();
  await first.kill();
  current = await startServer({ port });
  await next(ada, 'open');
  assert.deepEqual(events, ['open', ['reset', 'unknown'], 'open']);
  await until(() => chat.joined, 'the channel joined again');
  assert.deepEqual(await chat.emit('echo', 'fresh', { timeout: 5000 }), 'fresh');
});

test('a server without sessions (--no-resume) answers disabled: a plain connection', async () => {
  const server = await startServer({ args: ['--no-resume'] });
  cleanups.push(() => server.kill());
  const ada = clients.make(`${server.url}?user=ada`, { resume: true });
  const resets = [];
  ada.on('reset', (info) => resets.push(info));
  await next(ada, 'open');
  const chat = ada.channel('/chat');
  await chat.join();
  assert.deepEqual(await chat.emit('echo', 1, { timeout: 5000 }), 1);
  assert.deepEqual(resets, []);
});

test('the demo page in Chromium resumes: a book added meanwhile arrives once, nobody saw it leave', { skip: skipBrowser }, async () => {
  const server = await startServer();
  cleanups.push(() => server.kill());
  const link = await proxy(server.port);
  const browser = await launch();
  cleanups.push(() => browser.close());
  const errors = [];
  /** The demo page as `user` from `base`, once connected. */
  const open = async (user, base) => {
    const page = await browser.context.newPage();
    page.on('pageerror', (error) => errors.push(`${user}: ${error.message}`));
    await page.goto(`${base}?user=${user}`);
    await status(page, 'open');
    return page;
  };
  const status = (page, state) =>
    page.waitForFunction((state) => document.getElementById('status')?.dataset.state === state, state, { timeout: BROWSER_WAIT });
  // Ada's page, its modules and its socket all go through the proxy.
  const ada = await open('ada', link.url.replace('ws:', 'http:'));
  await ada.evaluate(() => {
    window.seen = [];
    for (const event of ['open', 'resumed', 'reset']) window.demo.client.on(event, () => window.seen.push(event));
    // The page's own collection may still be reading the list: its snapshot comes here too.
    window.demo.client.sync.subscribe('/api/books', (book, { op, snapshot }) => window.seen.push(snapshot ? 'snapshot' : `${op} ${book?.title}`));
  });
  const grace = await open('grace', server.url.replace('ws:', 'http:'));
  await waitForUsers(grace, 'books', ['u:ada', 'u:grace']);

  link.hold();
  link.reset();
  await status(ada, 'closed');
  await grace.fill('#new-title', 'While ada was away');
  await grace.press('#new-title', 'Enter');
  await grace.waitForFunction(() => document.querySelectorAll('#books > li').length === 1, null, { timeout: BROWSER_WAIT });
  assert.deepEqual(await usersShown(grace, 'books'), ['u:ada', 'u:grace'], 'ada is still there for grace');
  link.release();

  await status(ada, 'open');
  await ada.waitForFunction(() => window.seen.includes('add While ada was away'), null, { timeout: BROWSER_WAIT });
  const seen = await ada.evaluate(() => window.seen);
  // No open, no reset, and after the resume no snapshot: the push, once.
  assert.deepEqual(seen.filter((event) => event !== 'snapshot'), ['resumed', 'add While ada was away']);
  assert.deepEqual(seen.slice(seen.indexOf('resumed')), ['resumed', 'add While ada was away']);
  assert.deepEqual(await usersShown(grace, 'books'), ['u:ada', 'u:grace']);
  assert.deepEqual(errors, []);
});
