// The command line shared by the Node peers (server.js, socketio.js):
// `--scenario echo|fanout|memory [--listen HOST:PORT] [--deflate 1]`, default listen
// 127.0.0.1:0, deflate off.
'use strict';

function arg(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

const scenario = arg('scenario', 'echo');
if (!['echo', 'fanout', 'memory'].includes(scenario)) {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
const listen = arg('listen', '127.0.0.1:0');
const colon = listen.lastIndexOf(':');

const deflate = arg('deflate', '0') === '1';

module.exports = { scenario, host: listen.slice(0, colon), port: Number(listen.slice(colon + 1)), deflate };
