// Every module of the package, MessagePack included: `npm run size` measures it.
export * from '../../realtime.js';
export * from '../../backbone.js';
export * from '../../realtime-users.js';
export * from '../../msgpack.js';
