/**
 * A minimal MessagePack encoder and decoder, for the client's optional `codec` option
 * (`connect(url, { codec: msgpack })`): router frames then go out as MessagePack
 * envelopes and `client.send(object)` sends binary MessagePack.
 *
 * Maps keep their keys' insertion order; integers take the smallest form, other numbers
 * float64; byte arrays are `bin`; `undefined` properties are left out and `toJSON` is
 * honoured, as in `JSON.stringify`. The decoder refuses extension types and more than 127
 * levels of nesting (`RangeError`) and returns integers outside the safe range as bigints.
 *
 * @packageDocumentation
 */

/** Encodes `value` as MessagePack. */
export function encode(value: unknown): Uint8Array;

/** Decodes the one MessagePack value that fills `bytes`. */
export function decode(bytes: Uint8Array | ArrayBuffer): any;

/** The codec for the client's `codec` option. */
export const msgpack: {
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array | ArrayBuffer): any;
};
