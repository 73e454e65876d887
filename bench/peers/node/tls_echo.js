// bench/peers/node/tls_echo.js - a TLS echo server on Node.js's tls module
// (one event loop, one thread; Node's OpenSSL and defaults): every chunk
// read is written back.
//
//   node tls_echo.js PORT CERT KEY
//
// Prints "port <n>" when listening; runs until killed.
'use strict';
const fs = require('fs');
const tls = require('tls');

const port = parseInt(process.argv[2], 10);
const server = tls.createServer({
  cert: fs.readFileSync(process.argv[3]),
  key: fs.readFileSync(process.argv[4]),
  minVersion: 'TLSv1.2',
}, (socket) => {
  socket.setNoDelay(true);
  socket.on('data', (data) => socket.write(data));
  socket.on('error', () => socket.destroy());
});
server.on('tlsClientError', () => {});
server.listen({ port, host: '127.0.0.1', backlog: 1024 }, () => {
  console.log(`port ${port}`);
});
