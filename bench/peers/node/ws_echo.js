// bench/peers/node/ws_echo.js - a WebSocket echo server on Node's `ws`
// package (the copy pinned in tests/node: `npm ci --prefix tests/node`),
// as its README writes one: every message is sent back with its type.
// One event loop, one thread; compression off (as Troupe has none),
// otherwise ws's defaults (maxPayload 100 MiB, client tracking on).
//
//   node ws_echo.js PORT
//
// Prints "port <n>" when listening; runs until killed.
'use strict';
const path = require('path');
const { WebSocketServer } = require(
  path.join(__dirname, '..', '..', '..', 'tests', 'node', 'node_modules', 'ws'));

const port = parseInt(process.argv[2], 10);
const wss = new WebSocketServer({ host: '127.0.0.1', port, backlog: 1024,
                                  perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => ws.terminate());
});
wss.on('listening', () => console.log(`port ${port}`));
