// bench/peers/node/echo.js - an echo server on Node.js's net module (one
// event loop, one thread): every chunk read is written back.
//
//   node echo.js PORT
//
// Prints "port <n>" when listening; runs until killed.
'use strict';
const net = require('net');

const port = parseInt(process.argv[2], 10);
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('data', (data) => socket.write(data));
  socket.on('error', () => socket.destroy());
});
server.listen({ port, host: '127.0.0.1', backlog: 1024 }, () => {
  console.log(`port ${port}`);
});
