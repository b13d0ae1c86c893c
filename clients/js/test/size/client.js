// The whole client as a page loads it (the three entry points; MessagePack is opt-in):
// `npm run size` measures it against the 8 kB (gzipped) budget.
export * from '../../realtime.js';
export * from '../../realtime-users.js';
export * from '../../backbone.js';
