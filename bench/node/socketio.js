// The socket.io peer of the bench: the server a Node user would pick instead of us, in the
// idiom of the socket.io docs (its default in-memory adapter, rooms), doing the same job as
// `bench serve` and bench/socketioxide.
//
//   node socketio.js --scenario echo|fanout|memory [--listen 127.0.0.1:0]
//
// - echo: every `m` event goes back to its sender (`socket.emit("m", data)`).
// - fanout: the socket whose handshake query has `role=pub` is the publisher; every other
//   socket joins the room `bench` when it connects, and each `m` event of the publisher is
//   broadcast to the room except the sender (`socket.to("bench").emit("m", seq)`): one
//   text frame `42["m",SEQ]` per member.
// - memory: every socket joins the room `bench` and stays idle.
//
// WebSocket transport only (the load generator never polls); per-message deflate stays off
// (engine.io's default since socket.io v3). Like the other servers it prints
// `listening on ws://ADDR` once it listens, which is how `bench run` learns the port.
'use strict';

const http = require('http');
const { Server } = require('socket.io');
const { scenario, host, port } = require('./args');

const ROOM = 'bench';

const httpServer = http.createServer();
const io = new Server(httpServer, { transports: ['websocket'], serveClient: false });

io.on('connection', (socket) => {
  if (scenario === 'echo') {
    socket.on('m', (data) => socket.emit('m', data));
  } else if (scenario === 'fanout' && socket.handshake.query.role === 'pub') {
    socket.on('m', (seq) => socket.to(ROOM).emit('m', seq));
  } else {
    socket.join(ROOM);
  }
});

httpServer.listen(port, host, () => {
  const address = httpServer.address();
  console.log(`listening on ws://${address.address}:${address.port}`);
});
