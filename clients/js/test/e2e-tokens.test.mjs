// End to end in headless Chromium: the one-time token flow against examples/axum_tokens.rs.
// The page fetches a single-use token over HTTP before every connection attempt (the URL
// provider), so it is let in as its user, and after a server restart it logs in again with
// a fresh token (the old one is spent, and the restarted server never issued it).
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_BIN, WAIT, sleep, within } from './helpers.mjs';
import { BROWSER_WAIT, launch, skipBrowser } from './browser.mjs';

/** examples/axum_tokens: `REALTIME_TOKENS_BIN`, else beside the example server. */
const TOKENS_BIN = process.env.REALTIME_TOKENS_BIN || join(dirname(SERVER_BIN), 'axum_tokens');

/** Starts axum_tokens on 127.0.0.1:`port` once it printed `listening on http://ADDR`. */
async function startTokens(port = 0) {
  let lastError;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      return await spawnTokens(port);
    } catch (e) {
      lastError = e;
      await sleep(100);
    }
  }
  throw lastError;
}

function spawnTokens(port) {
  return new Promise((resolve, reject) => {
    const child = spawn(TOKENS_BIN, ['--listen', `127.0.0.1:${port}`], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, RUST_LOG: 'warn' },
    });
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`axum_tokens did not start within ${WAIT} ms`));
    }, WAIT);
    const failed = (e) => {
      clearTimeout(timer);
      reject(e instanceof Error ? new Error(`cannot run ${TOKENS_BIN} (cargo build --example axum_tokens, or set REALTIME_TOKENS_BIN): ${e.message}`) : new Error(`axum_tokens exited (${e}) before listening`));
    };
    child.on('error', failed);
    child.on('exit', failed);
    const onData = (chunk) => {
      stdout += chunk;
      const match = /listening on http:\/\/([\d.]+):(\d+)/.exec(stdout);
      if (!match) return;
      child.stdout.off('data', onData);
      child.stdout.resume();
      clearTimeout(timer);
      child.off('exit', failed);
      const exited = new Promise((done) => child.once('exit', done));
      resolve({
        port: Number(match[2]),
        origin: `http://127.0.0.1:${match[2]}`,
        async kill() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        },
      });
    };
    child.stdout.on('data', onData);
  });
}

/** POST /notify?user=USER: resolves with how many connections it reached. */
async function notify(server, user, text) {
  const response = await within(
    fetch(`${server.origin}/notify?user=${user}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text }),
    }),
    'POST /notify',
  );
  assert.equal(response.status, 200);
  return (await response.json()).delivered;
}

let server;
let browser;
const pageErrors = [];

before(async () => {
  if (skipBrowser) return;
  server = await startTokens();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.kill();
});

afterEach(() => {
  assert.deepEqual(pageErrors.splice(0), [], 'no uncaught errors in the page');
});

test('one-time tokens: the page logs in with a fresh token before every attempt, a restart included', { skip: skipBrowser }, async () => {
  const page = await browser.context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  // axum_tokens serves no page and no modules. The document must come from the server itself
  // (a page Playwright made up would be a "public" origin, and Chromium's local network
  // access checks block its WebSocket to 127.0.0.1): `/ws` answers a plain GET with a
  // refusal, enough of a page. The module is served here, on that origin.
  await page.route('**/realtime.js', (route) =>
    route.fulfill({ contentType: 'text/javascript', path: fileURLToPath(new URL('../realtime.js', import.meta.url)) }),
  );
  try {
    await page.goto(`${server.origin}/ws`);
    await page.evaluate(async () => {
      const { connect } = await import('/realtime.js');
      const state = { calls: 0, tokens: [], notes: [] };
      const client = connect(
        async () => {
          state.calls++;
          const response = await fetch('/user/sockettoken?user=ada');
          if (!response.ok) throw new Error(`login: ${response.status}`);
          const { token } = await response.json();
          state.tokens.push(token);
          return `ws://${location.host}/ws?token=${encodeURIComponent(token)}`;
        },
        { minReconnectionDelay: 100, maxReconnectionDelay: 500 },
      );
      client.channel('/').on('notify', (body) => state.notes.push(body.text));
      client.on('failed', ({ error }) => (state.failures ??= []).push(String(error?.message ?? error)));
      client.on('error', (e) => (state.errors ??= []).push(String(e.message ?? e)));
      Object.assign(window, { client, state });
    });
    const connected = (want) =>
      page.waitForFunction((want) => window.client.connected === want, want, { timeout: BROWSER_WAIT }).catch(async (e) => {
        throw new Error(`connected is not ${want}: ${JSON.stringify(await page.evaluate(() => window.state))}: ${e.message}`);
      });
    await connected(true);
    // The identity came from the token: a notification to ada reaches the page.
    assert.equal(await notify(server, 'ada', 'one'), 1);
    await page.waitForFunction(() => window.state.notes.includes('one'), null, { timeout: BROWSER_WAIT });

    const port = server.port;
    await server.kill();
    await connected(false);
    server = await startTokens(port);
    await connected(true);
    const { calls, tokens } = await page.evaluate(() => window.state);
    assert.ok(calls >= 2, `the provider was called before each attempt (${calls} calls)`);
    assert.equal(new Set(tokens).size, tokens.length, 'every attempt used a fresh token');
    assert.equal(await notify(server, 'ada', 'two'), 1);
    await page.waitForFunction(() => window.state.notes.includes('two'), null, { timeout: BROWSER_WAIT });
  } finally {
    await page.evaluate(() => window.client?.close()).catch(() => {});
    await page.close();
  }
});
