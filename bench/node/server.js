// The Node `ws` peer of the bench: the server a user would otherwise write, in the
// textbook idiom of the `ws` README, doing the same job as `bench serve`.
//
//   node server.js --scenario echo|fanout|memory [--listen 127.0.0.1:0] [--deflate 1]
//
// --deflate 1: `perMessageDeflate: true`, the README's way to turn compression on (its
// defaults: messages of 1 KiB or more compressed, context takeover kept per connection).
//
// - echo: every frame goes back to its sender, text as text and binary as binary.
// - fanout: the connection on path /pub is the publisher; every other connection is kept
//   in a Set, and each publisher frame is sent to all of them.
// - memory: connections are kept in the same Set, idle; what they send is ignored.
//
// Like the Rust servers it prints `listening on ws://ADDR` once it listens, which is how
// `bench run` learns the port.
'use strict';

const { WebSocketServer } = require('ws');
const { scenario, host, port, deflate } = require('./args');

const wss = new WebSocketServer({ host, port, perMessageDeflate: deflate });
const subscribers = new Set();

wss.on('connection', (ws, req) => {
  // A peer that vanishes mid-write is not the server's failure; without a listener an
  // 'error' event would end the process.
  ws.on('error', () => {});
  if (scenario === 'echo') {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  } else if (scenario === 'fanout' && req.url === '/pub') {
    ws.on('message', (data, isBinary) => {
      for (const client of subscribers) client.send(data, { binary: isBinary });
    });
  } else {
    subscribers.add(ws);
    ws.on('close', () => subscribers.delete(ws));
  }
});

wss.on('listening', () => {
  const address = wss.address();
  console.log(`listening on ws://${address.address}:${address.port}`);
});
