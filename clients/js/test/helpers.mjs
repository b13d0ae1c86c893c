// Shared by the wire tests: the example server as a child process, and bounded waits.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The state letter of process `pid` (`T` when stopped), from /proc. */
function processState(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
  } catch {
    return undefined;
  }
}

/**
 * The example server binary: `REALTIME_SERVER_BIN`, else the debug build in the workspace's
 * target directory (`CARGO_TARGET_DIR` when set), which `cargo test --workspace` builds.
 */
export const SERVER_BIN =
  process.env.REALTIME_SERVER_BIN ||
  join(process.env.CARGO_TARGET_DIR || fileURLToPath(new URL('../../../target', import.meta.url)), 'debug/examples/server');

/**
 * The `realtime` binary (`realtime serve` has `/metrics`), built beside the example server
 * by `cargo test --workspace`: `REALTIME_BIN`, else the debug build.
 */
export const REALTIME_BIN =
  process.env.REALTIME_BIN ||
  join(process.env.CARGO_TARGET_DIR || fileURLToPath(new URL('../../../target', import.meta.url)), 'debug/realtime');

/** The default bound of every wait in the tests. */
export const WAIT = 5000;

/**
 * Starts the example server (or `command`, e.g. `[REALTIME_BIN, 'serve']`) on 127.0.0.1
 * (`port` 0: any free port) and resolves once it printed `listening on ws://ADDR`. A
 * restart on a fixed port retries while the port is still taken.
 */
export async function startServer({ port = 0, args = [], attempts = 20, command = [SERVER_BIN] } = {}) {
  let lastError;
  for (let i = 0; i < attempts; i++) {
    try {
      return await spawnServer(command, port, args);
    } catch (e) {
      lastError = e;
      await sleep(100);
    }
  }
  throw lastError;
}

function spawnServer([bin, ...subcommand], port, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [...subcommand, '--listen', `127.0.0.1:${port}`, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
    });
    const log = [];
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not start within ${WAIT} ms:\n${log.join('')}`));
    }, WAIT);
    child.stderr.on('data', (chunk) => {
      log.push(String(chunk));
      if (log.length > 50) log.shift();
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${bin} (cargo test --workspace builds it; or set REALTIME_SERVER_BIN, REALTIME_BIN): ${e.message}`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before listening:\n${log.join('')}`));
    });
    // The server prints more lines after the ws:// one (`listening on http://...`): once
    // matched, stop reading, or a later chunk would match again and remove `exited`'s listener.
    const onData = (chunk) => {
      stdout += chunk;
      const match = /listening on (ws:\/\/([\d.]+):(\d+))/.exec(stdout);
      if (!match) return;
      child.stdout.off('data', onData);
      child.stdout.resume(); // keep draining, unread
      clearTimeout(timer);
      child.removeAllListeners('exit');
      const exited = new Promise((done) => child.once('exit', done));
      resolve({
        url: match[1],
        port: Number(match[3]),
        pid: child.pid,
        log,
        /** Kills the process (SIGKILL by default) and waits for it to be gone. */
        async kill(signal = 'SIGKILL') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          await exited;
        },
        /** Freezes the process (SIGSTOP) and waits until it is stopped: its sockets stay open, nothing is answered. */
        async freeze() {
          child.kill('SIGSTOP');
          await until(() => processState(child.pid) === 'T', 'the server to stop');
        },
        /** Thaws a frozen process (SIGCONT). */
        thaw() {
          child.kill('SIGCONT');
        },
      });
    };
    child.stdout.on('data', onData);
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or a rejection naming `what` after `ms`. */
export function within(promise, what, ms = WAIT) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The arguments of the next `event` on `target` (anything with `on(event, fn)` returning
 * an unsubscribe function) for which `accept(...args)` is true, within `ms`.
 */
export function next(target, event, accept = () => true, ms = WAIT) {
  let off;
  return within(
    new Promise((resolve) => {
      off = target.on(event, (...args) => {
        if (accept(...args)) resolve(args);
      });
    }),
    `event ${event}`,
    ms,
  ).finally(() => off());
}

/** Waits until `check()` is true, polling, within `ms`. */
export async function until(check, what, ms = WAIT) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Records every `event` of `target` (with its first argument) in an array. */
export function record(target, events) {
  const seen = [];
  for (const event of events) target.on(event, (arg) => seen.push([event, arg]));
  return seen;
}

/**
 * Clients made by a test file, closed after each test: `const clients = tracked(connect)`,
 * then `clients.open(url, options)` resolves once the client is open.
 */
export function tracked(connect, defaults = {}) {
  const made = [];
  return {
    made,
    /** A client (not waited for). */
    make(url, options) {
      const client = connect(url, { minReconnectionDelay: 50, maxReconnectionDelay: 200, ...defaults, ...options });
      made.push(client);
      return client;
    },
    /** A client, once open. */
    async open(url, options) {
      const client = this.make(url, options);
      if (!client.connected) await next(client, 'open');
      return client;
    },
    closeAll() {
      for (const client of made.splice(0)) client.close();
    },
  };
}
