// A stand-in for the browser's WebSocket, driven by the tests, for the client's timer and
// queue logic (with node:test's mocked clock). The wire tests use the real server instead.

/**
 * A WebSocket class whose instances are recorded in `sockets` and handed, a microtask
 * after construction, to `behaviour(socket)` (which may call `open()`, `fail()`...).
 */
export function fakeSockets(behaviour = () => {}) {
  const sockets = [];
  class FakeSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSED = 3;
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.readyState = 0;
      this.bufferedAmount = 0;
      this.binaryType = 'blob';
      this.closedWith = null;
      this.onopen = this.onclose = this.onmessage = this.onerror = null;
      sockets.push(this);
      queueMicrotask(() => FakeSocket.behaviour(this));
    }
    send(data) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open');
      this.sent.push(data);
    }
    close(code, reason) {
      this.closedWith = { code, reason };
      this.readyState = 3;
    }
    /** The server accepts. */
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }
    /** The connection fails or drops (1006 unless told). */
    fail(code = 1006, reason = '') {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
    /** A frame from the server. */
    receive(data) {
      this.onmessage?.({ data });
    }
    /** The router frames sent, decoded: `[router, body]`. */
    frames() {
      return this.sent.filter((s) => typeof s === 'string' && s.startsWith('{"$r":"')).map((s) => {
        const { $r, d } = JSON.parse(s);
        return [$r, d];
      });
    }
  }
  FakeSocket.behaviour = behaviour;
  FakeSocket.sockets = sockets;
  return FakeSocket;
}

/** Lets queued microtasks and immediates run (not mocked by the tests' clock). */
export const flush = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Advances the mocked clock by `ms`, one millisecond at a time, letting microtasks run in
 * between (so that a timer set by a callback of another timer fires at its exact time).
 */
export async function advance(timers, ms) {
  for (let i = 0; i < ms; i++) {
    await flush();
    timers.tick(1);
  }
  await flush();
}
