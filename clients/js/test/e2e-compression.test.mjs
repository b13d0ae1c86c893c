// End to end in headless Chromium: permessage-deflate as a browser negotiates it with its
// default offer. Two sockets of one page, relayed by `realtime serve`: the page sends a
// compressible JSON message, the other socket receives it, and the server's /metrics show
// that both directions crossed the wire compressed (socket bytes well under payload bytes).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { REALTIME_BIN, startServer } from './helpers.mjs';
import { BROWSER_WAIT, launch, skipBrowser } from './browser.mjs';

/** @type {Awaited<ReturnType<typeof startServer>> | undefined} */
let server;
/** @type {Awaited<ReturnType<typeof launch>> | undefined} */
let browser;

before(async () => {
  server = await startServer({ command: [REALTIME_BIN, 'serve'] });
  if (!skipBrowser) browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.kill();
});

/** The samples of the server's /metrics that this test reads. */
async function metrics() {
  const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  const value = (name) => {
    const line = text.split('\n').find((line) => line.startsWith(`${name} `));
    assert.ok(line, `${name} in /metrics`);
    return Number(line.slice(name.length + 1));
  };
  return {
    socketIn: value('realtime_socket_bytes_in_total'),
    socketOut: value('realtime_socket_bytes_out_total'),
    payloadIn: value('realtime_bytes_in_total{kind="text"}'),
    payloadOut: value('realtime_bytes_out_total{kind="text"}'),
  };
}

/** About 20 KB of JSON, as an application would send (ids, names, flags). */
function json() {
  const rows = [];
  for (let id = 0; id < 250; id++) rows.push({ id, user: `user-${id % 17}`, status: id % 3 ? 'online' : 'away', typing: false });
  return JSON.stringify(rows);
}

test('a browser negotiates permessage-deflate and both directions cross the wire compressed', { skip: skipBrowser }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`http://127.0.0.1:${server.port}/healthz`);
  const before = await metrics();
  const text = json();
  const seen = await page.evaluate(
    async ({ url, text, wait }) => {
      const opened = (ws) => new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error('socket failed'));
      });
      const sender = new WebSocket(url);
      const receiver = new WebSocket(url);
      await Promise.all([opened(sender), opened(receiver)]);
      const received = new Promise((resolve) => {
        receiver.onmessage = (event) => event.data === text && resolve(event.data.length);
      });
      // The relay may not know the receiver in the first instant after its upgrade: send
      // until it arrives (each copy is counted alike on both sides of the ratio).
      let sent = 0;
      const resend = setInterval(() => (sender.send(text), sent++), 200);
      sender.send(text);
      sent++;
      const length = await Promise.race([received, new Promise((resolve) => setTimeout(() => resolve(-1), wait))]);
      clearInterval(resend);
      const extensions = [sender.extensions, receiver.extensions];
      sender.close();
      receiver.close();
      return { length, sent, extensions };
    },
    { url: `ws://127.0.0.1:${server.port}/`, text, wait: BROWSER_WAIT },
  );
  assert.equal(seen.length, text.length, 'the receiver got the message whole');
  const agreed = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
  assert.deepEqual(seen.extensions, [agreed, agreed]);

  const after = await metrics();
  const payloadIn = after.payloadIn - before.payloadIn;
  const socketIn = after.socketIn - before.socketIn;
  const payloadOut = after.payloadOut - before.payloadOut;
  const socketOut = after.socketOut - before.socketOut;
  assert.ok(payloadIn >= text.length * seen.sent, `payload in ${payloadIn} for ${seen.sent} sends`);
  // Chromium compresses what it sends; the server inflated it (payload) from far fewer
  // bytes read (socket: frames, the two upgrade requests excluded, handshakes are not
  // counted).
  assert.ok(socketIn * 3 < payloadIn, `socket bytes in ${socketIn}, payload ${payloadIn}`);
  // The server compressed the relayed copies (and wrote little else: pings, close frames).
  assert.ok(payloadOut >= text.length, `payload out ${payloadOut}`);
  assert.ok(socketOut * 3 < payloadOut, `socket bytes out ${socketOut}, payload ${payloadOut}`);
  await page.close();
});
