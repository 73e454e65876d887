// tests/node/ws_client.mjs - Node's `ws` package (the pinned copy in
// tests/node/node_modules) as a WebSocket client of a Troupe echo server;
// run by tests/test_ws_node.c.
//
//   node ws_client.mjs BASE_URL SMALL_URL [CA_FILE]
//
// BASE_URL: ws://127.0.0.1:PORT or wss://localhost:PORT (CA_FILE: the CA
// that signed the server's certificate; it is verified), a listener with
// max_message at its default of 1 MiB; SMALL_URL the same with
// max_message 1000. Opens one connection per case below on
// BASE_URL/<case> (too_big: SMALL_URL/too_big), prints "ok <case>" for
// each that behaved, or "FAIL <case>: why" and exits 1 at the first that
// did not. The server echoes text and binary messages and closes with
// code N when sent the text "close N".
import fs from 'node:fs';
import WebSocket from 'ws';

const base = process.argv[2];
const small = process.argv[3];
const ca = process.argv[4] ? fs.readFileSync(process.argv[4]) : undefined;
const MiB = 1024 * 1024;

class Failure extends Error {}
function check(cond, why) {
  if (!cond) throw new Failure(why);
}

// A connection with a queue of what arrives: messages, pongs, the close.
function open(url) {
  const ws = new WebSocket(url, ['chat'], {
    ca,
    perMessageDeflate: false,
    maxPayload: 4 * MiB,
  });
  const events = [];
  let wake = null;
  const push = (e) => {
    events.push(e);
    if (wake) {
      const w = wake;
      wake = null;
      w();
    }
  };
  ws.on('message', (data, isBinary) => push({ kind: 'message', data, isBinary }));
  ws.on('pong', (data) => push({ kind: 'pong', data }));
  ws.on('close', (code, reason) =>
    push({ kind: 'close', code, reason: reason.toString() }));
  ws.on('error', (err) => push({ kind: 'error', err: String(err) }));
  const next = (what, ms = 10000) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Failure(`no ${what} in ${ms} ms`)), ms);
      const take = () => {
        if (events.length === 0) {
          wake = take;
          return;
        }
        clearTimeout(t);
        resolve(events.shift());
      };
      take();
    });
  const opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', (e) => reject(new Failure(`open: ${e}`)));
  });
  return { ws, next, opened };
}

async function expectMessage(c, isBinary, want, what) {
  const e = await c.next(what);
  check(e.kind === 'message', `${what}: got ${e.kind} ${e.code ?? e.err ?? ''}`);
  check(e.isBinary === isBinary, `${what}: isBinary ${e.isBinary}`);
  check(Buffer.compare(e.data, Buffer.from(want)) === 0,
        `${what}: ${e.data.length} bytes differ from the ${want.length} sent`);
}

async function expectClose(c, code, reason, what) {
  // Whatever else arrives first (nothing should) is a failure too.
  const e = await c.next(what);
  check(e.kind === 'close', `${what}: got ${e.kind} ${e.err ?? ''}`);
  check(e.code === code, `${what}: close code ${e.code}, wanted ${code}`);
  if (reason !== null)
    check(e.reason === reason, `${what}: reason '${e.reason}', wanted '${reason}'`);
  check(c.ws.readyState === WebSocket.CLOSED, `${what}: readyState ${c.ws.readyState}`);
}

const cases = {
  // Text, binary, fragments, large messages, pings; then a clean close.
  async main(c) {
    check(c.ws.protocol === 'chat', `subprotocol '${c.ws.protocol}'`);
    const text = 'hello \u03ba\u1f79\u03c3\u03bc\u03b5';
    c.ws.send(text);
    await expectMessage(c, false, text, 'text echo');
    const bin = Buffer.from([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff]);
    c.ws.send(bin);
    await expectMessage(c, true, bin, 'binary echo');
    c.ws.send(Buffer.alloc(0));
    await expectMessage(c, true, Buffer.alloc(0), 'empty binary echo');
    // A text message in three fragments, the second boundary inside the
    // two bytes of a Greek letter: the server validates UTF-8 across them.
    const frag = Buffer.from('fragmented \u03ba\u1f79', 'utf8');
    c.ws.send(frag.subarray(0, 4), { binary: false, fin: false });
    c.ws.send(frag.subarray(4, 12), { binary: false, fin: false });
    c.ws.send(frag.subarray(12), { binary: false, fin: true });
    await expectMessage(c, false, frag, 'fragmented text');
    // Binary fragments with a ping between them (control frames may be
    // interleaved, RFC 6455 5.4): the pong first, then the whole message.
    const b1 = Buffer.alloc(1000, 0xab), b2 = Buffer.alloc(70000, 0xcd);
    c.ws.send(b1, { binary: true, fin: false });
    c.ws.ping('mid-message');
    c.ws.send(b2, { binary: true, fin: true });
    let e = await c.next('pong between fragments');
    check(e.kind === 'pong' && e.data.toString() === 'mid-message',
          `pong between fragments: ${e.kind} '${e.data ?? ''}'`);
    await expectMessage(c, true, Buffer.concat([b1, b2]), 'fragmented binary');
    // 64-bit length frames: 200 KB of text, exactly max_message of binary.
    const big = 'x'.repeat(200000);
    c.ws.send(big);
    await expectMessage(c, false, big, '200 KB text');
    const max = Buffer.alloc(MiB);
    for (let i = 0; i < max.length; i++) max[i] = (i * 7) & 0xff;
    c.ws.send(max);
    await expectMessage(c, true, max, '1 MiB binary');
    c.ws.ping('are you there');
    e = await c.next('pong');
    check(e.kind === 'pong' && e.data.toString() === 'are you there',
          `pong: ${e.kind} '${e.data ?? ''}'`);
    c.ws.ping();
    e = await c.next('empty pong');
    check(e.kind === 'pong' && e.data.length === 0, `empty pong: ${e.kind}`);
    c.ws.close(1000, 'done');
    // The server echoes the code (its reason is its own: none).
    await expectClose(c, 1000, null, 'close 1000');
  },
  // An application close code: the server answers with the same code.
  async custom(c) {
    c.ws.close(4000, 'custom');
    await expectClose(c, 4000, null, 'close 4000');
  },
  // The server starts the close (tp_ws_close(4001)).
  async server_close(c) {
    c.ws.send('close 4001');
    await expectClose(c, 4001, null, 'server close 4001');
  },
  // Invalid UTF-8 in a text message: 1007 from the server.
  async bad_utf8(c) {
    c.ws.send(Buffer.from([0x6f, 0x6b, 0xc3, 0x28]), { binary: false });
    await expectClose(c, 1007, null, 'invalid UTF-8');
  },
  // One byte over max_message: 1009 from the server. On the 1000-byte
  // listener, so that the server has read the whole frame when it closes:
  // over 1 MiB it closes while the client is still sending, its kernel
  // resets the connection for the unread bytes, and the client may see
  // that (1006) before the Close frame.
  async too_big(c) {
    c.ws.send(Buffer.alloc(1001));
    await expectClose(c, 1009, null, 'message over max_message');
  },
};

try {
  for (const [name, run] of Object.entries(cases)) {
    const c = open((name === 'too_big' ? small : base) + '/' + name);
    try {
      await c.opened;
      await run(c);
    } catch (err) {
      c.ws.terminate();
      throw err instanceof Failure ? new Failure(`${name}: ${err.message}`) : err;
    }
    console.log(`ok ${name}`);
  }
} catch (err) {
  console.log(`FAIL ${err.message}`);
  process.exit(1);
}
