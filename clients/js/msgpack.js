/**
 * A minimal MessagePack encoder and decoder, for the client's optional `codec` option:
 *
 * ```js
 * import { connect } from './realtime.js';
 * import { msgpack } from './msgpack.js';
 * const client = connect('wss://example.com/ws', { codec: msgpack });
 * ```
 *
 * With it, router frames go out as MessagePack envelopes (PROTOCOL.md section 2.1: a map
 * whose first key is `"$r"`), and `client.send(object)` sends binary MessagePack. The
 * server answers router frames in JSON either way, and the client reads both.
 *
 * Maps are written with their keys in insertion order (never as positional arrays), the
 * way the server's helpers write them. Integers use the smallest form; other numbers are
 * float64. Supported: null (and undefined), booleans, numbers, bigints, strings, byte
 * arrays (`Uint8Array`, any `ArrayBufferView`, `ArrayBuffer`) as `bin`, arrays, plain
 * objects (properties that are `undefined` are left out, an object with `toJSON` is
 * written as its result, like `JSON.stringify` does). Extension types are refused by the
 * decoder (`RangeError`); integers outside the safe range decode as bigints.
 *
 * @module msgpack
 */

const utf8 = new TextEncoder();
const text = new TextDecoder('utf-8', { fatal: true });

/**
 * Encodes `value` as MessagePack.
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function encode(value) {
  let buf = new Uint8Array(256);
  let view = new DataView(buf.buffer);
  let pos = 0;
  /** @param {number} n how many more bytes `buf` must hold */
  const room = (n) => {
    if (pos + n <= buf.length) return;
    const bigger = new Uint8Array(Math.max(buf.length * 2, pos + n));
    bigger.set(buf);
    buf = bigger;
    view = new DataView(buf.buffer);
  };
  /** @param {number} b */
  const byte = (b) => {
    room(1);
    buf[pos++] = b;
  };
  /** @param {number} b @param {1 | 2 | 4} size @param {number} n */
  const head = (b, size, n) => {
    // A type byte followed by a big-endian length or value of `size` bytes.
    room(1 + size);
    buf[pos++] = b;
    if (size === 1) view.setUint8(pos, n);
    else if (size === 2) view.setUint16(pos, n);
    else if (size === 4) view.setUint32(pos, n);
    pos += size;
  };
  /**
   * A length `n` in the smallest of the forms (`fix | n` up to `fixMax`, or a type byte
   * and 1, 2 or 4 bytes) that the type has.
   * @param {number} n
   * @param {number | undefined} fix
   * @param {number} fixMax
   * @param {number | undefined} b8
   * @param {number} b16
   * @param {number} b32
   */
  const length = (n, fix, fixMax, b8, b16, b32) => {
    if (n <= fixMax && fix !== undefined) byte(fix | n);
    else if (n < 0x100 && b8 !== undefined) head(b8, 1, n);
    else if (n < 0x10000) head(b16, 2, n);
    else head(b32, 4, n);
  };
  /** @param {Uint8Array} b */
  const bytes = (b) => {
    room(b.length);
    buf.set(b, pos);
    pos += b.length;
  };
  /**
   * @param {any} v a value of the application's, of any type (narrowed by the checks below)
   * @param {number} depth
   */
  const write = (v, depth) => {
    if (depth > 127) throw new RangeError('nested too deep for MessagePack (127 levels)');
    if (v === null || v === undefined) return byte(0xc0);
    if (v === false) return byte(0xc2);
    if (v === true) return byte(0xc3);
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) {
        if (v >= 0) {
          if (v < 0x80) return byte(v);
          if (v < 0x100) return head(0xcc, 1, v);
          if (v < 0x10000) return head(0xcd, 2, v);
          if (v < 0x100000000) return head(0xce, 4, v);
          room(9);
          buf[pos++] = 0xcf;
          view.setBigUint64(pos, BigInt(v));
          pos += 8;
          return;
        }
        if (v >= -32) return byte(v & 0xff);
        if (v >= -0x80) return room(2), (buf[pos++] = 0xd0), view.setInt8(pos++, v);
        if (v >= -0x8000) return room(3), (buf[pos++] = 0xd1), view.setInt16(pos, v), (pos += 2);
        if (v >= -0x80000000) return room(5), (buf[pos++] = 0xd2), view.setInt32(pos, v), (pos += 4);
        room(9);
        buf[pos++] = 0xd3;
        view.setBigInt64(pos, BigInt(v));
        pos += 8;
        return;
      }
      room(9);
      buf[pos++] = 0xcb;
      view.setFloat64(pos, v);
      pos += 8;
      return;
    }
    if (typeof v === 'bigint') {
      room(9);
      if (v >= 0n) (buf[pos++] = 0xcf), view.setBigUint64(pos, BigInt.asUintN(64, v));
      else (buf[pos++] = 0xd3), view.setBigInt64(pos, BigInt.asIntN(64, v));
      pos += 8;
      return;
    }
    if (typeof v === 'string') {
      const b = utf8.encode(v);
      length(b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      return bytes(b);
    }
    if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
      const b = v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      length(b.length, undefined, -1, 0xc4, 0xc5, 0xc6);
      return bytes(b);
    }
    if (Array.isArray(v)) {
      length(v.length, 0x90, 15, undefined, 0xdc, 0xdd);
      for (const item of v) write(item, depth + 1);
      return;
    }
    if (typeof v === 'object') {
      if (typeof v.toJSON === 'function') return write(v.toJSON(), depth);
      const keys = Object.keys(v).filter((k) => v[k] !== undefined && typeof v[k] !== 'function');
      length(keys.length, 0x80, 15, undefined, 0xde, 0xdf);
      for (const key of keys) write(key, depth + 1), write(v[key], depth + 1);
      return;
    }
    throw new TypeError(`cannot encode a ${typeof v} as MessagePack`);
  };
  write(value, 1);
  return buf.slice(0, pos);
}

/**
 * Decodes one MessagePack value that fills `bytes`.
 * @param {Uint8Array | ArrayBuffer} bytes
 * @returns {any}
 */
export function decode(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let pos = 0;
  /** @param {number} n */
  const need = (n) => {
    if (pos + n > b.length) throw new RangeError('truncated MessagePack');
  };
  /** @param {1 | 2 | 4} size */
  const uint = (size) => {
    need(size);
    const v = size === 1 ? view.getUint8(pos) : size === 2 ? view.getUint16(pos) : view.getUint32(pos);
    pos += size;
    return v;
  };
  /** @param {boolean} signed */
  const big = (signed) => {
    need(8);
    const v = signed ? view.getBigInt64(pos) : view.getBigUint64(pos);
    pos += 8;
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  /** @param {number} n */
  const str = (n) => {
    need(n);
    return text.decode(b.subarray(pos, (pos += n)));
  };
  /** @param {number} n */
  const bin = (n) => {
    need(n);
    return b.slice(pos, (pos += n));
  };
  /** @param {number} n @param {number} depth @returns {unknown[]} */
  const array = (n, depth) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(read(depth + 1));
    return out;
  };
  /** @param {number} n @param {number} depth */
  const map = (n, depth) => {
    /** @type {Record<string, unknown>} */
    const out = {};
    for (let i = 0; i < n; i++) {
      const key = read(depth + 1);
      Object.defineProperty(out, String(key), { value: read(depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return out;
  };
  /** @param {number} depth @returns {unknown} */
  const read = (depth) => {
    if (depth > 127) throw new RangeError('MessagePack nested too deep (127 levels)');
    need(1);
    const t = b[pos++];
    if (t < 0x80) return t;
    if (t < 0x90) return map(t & 0x0f, depth);
    if (t < 0xa0) return array(t & 0x0f, depth);
    if (t < 0xc0) return str(t & 0x1f);
    if (t >= 0xe0) return t - 0x100;
    switch (t) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return bin(uint(1));
      case 0xc5:
        return bin(uint(2));
      case 0xc6:
        return bin(uint(4));
      case 0xca:
        need(4);
        return view.getFloat32((pos += 4) - 4);
      case 0xcb:
        need(8);
        return view.getFloat64((pos += 8) - 8);
      case 0xcc:
        return uint(1);
      case 0xcd:
        return uint(2);
      case 0xce:
        return uint(4);
      case 0xcf:
        return big(false);
      case 0xd0:
        need(1);
        return view.getInt8(pos++);
      case 0xd1:
        need(2);
        return view.getInt16((pos += 2) - 2);
      case 0xd2:
        need(4);
        return view.getInt32((pos += 4) - 4);
      case 0xd3:
        return big(true);
      case 0xd9:
        return str(uint(1));
      case 0xda:
        return str(uint(2));
      case 0xdb:
        return str(uint(4));
      case 0xdc:
        return array(uint(2), depth);
      case 0xdd:
        return array(uint(4), depth);
      case 0xde:
        return map(uint(2), depth);
      case 0xdf:
        return map(uint(4), depth);
    }
    throw new RangeError(`unsupported MessagePack type 0x${t.toString(16)}`);
  };
  const value = read(1);
  if (pos !== b.length) throw new RangeError('trailing bytes after the MessagePack value');
  return value;
}

/** The codec for the client's `codec` option. */
export const msgpack = { encode, decode };
