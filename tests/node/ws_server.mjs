// tests/node/ws_server.mjs - Node's `ws` package as the WebSocket server
// for Troupe's WebSocket client (tests/test_ws_node.c).
//
//   node ws_server.mjs CERT KEY
//
// Listens on 127.0.0.1, one port plain (ws://) and one TLS (wss://, with
// CERT and KEY), and prints "ports <ws> <wss> <pid>". On each connection it
// prints "open <protocol>", pings the client ("hb") and prints
// "pong <data>" when the answer comes; it echoes text and binary messages
// (the text "fragments please" is answered with the text "fragmented"
// sent in three fragments) and prints "closed <code>" when the client
// closes. ws itself rejects unmasked client frames (1002), so an echo
// proves the client masks. Runs until killed (or 60 s).
import fs from 'node:fs';
import https from 'node:https';
import { WebSocketServer } from 'ws';

const handleProtocols = (protocols) =>
  protocols.has('chat') ? 'chat' : false;

function serve(wss) {
  wss.on('connection', (ws) => {
    console.log(`open ${ws.protocol || '-'}`);
    ws.on('pong', (data) => console.log(`pong ${data.toString()}`));
    ws.ping('hb');
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.toString() === 'fragments please') {
        ws.send('frag', { fin: false });
        ws.send('men', { fin: false });
        ws.send('ted', { fin: true });
      } else {
        ws.send(data, { binary: isBinary });
      }
    });
    ws.on('close', (code) => console.log(`closed ${code}`));
    ws.on('error', (err) => console.log(`error ${err.message}`));
  });
}

const plain = new WebSocketServer({ host: '127.0.0.1', port: 0,
                                    perMessageDeflate: false, handleProtocols });
serve(plain);
const tlsServer = https.createServer({
  cert: fs.readFileSync(process.argv[2]),
  key: fs.readFileSync(process.argv[3]),
});
const secure = new WebSocketServer({ server: tlsServer, perMessageDeflate: false,
                                     handleProtocols });
serve(secure);
plain.on('listening', () => {
  tlsServer.listen(0, '127.0.0.1', () => {
    console.log(`ports ${plain.address().port} ${tlsServer.address().port} ${process.pid}`);
  });
});
setTimeout(() => process.exit(0), 60000).unref();
