// The browser chat (issue 12): two headless-Chromium pages and a TCP chat
// client in one room of troupe-chat. Starts troupe-demo on free ports
// (its HTTP service serves the page at /chat, its chat service has a
// WebSocket listener: wss with a throwaway test CA made by
// scripts/gen-test-ca.sh, which this Chromium is told to trust for
// the run), then checks that
//  - both pages load and connect (no page errors),
//  - a line typed in page A reaches page B and the TCP client,
//  - a line from the TCP client reaches both pages,
//  - a line typed in page B reaches page A.
// Exit 0 when all hold; a screenshot of each page is left in OUT_DIR.
import { spawn, execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import net from "node:net";
import { chromium } from "playwright-core";

const [demo, outDir] = process.argv.slice(2);
const fail = (msg) => { console.error("FAIL: " + msg); process.exitCode = 1; };
const deadline = setTimeout(() => { fail("timeout"); process.exit(1); }, 120000);

// A throwaway CA and a "localhost" certificate for the wss listener.
const here = path.dirname(fileURLToPath(import.meta.url));
const certDir = `${outDir}/chat-certs`;
execFileSync("sh", [path.join(here, "../../scripts/gen-test-ca.sh"), certDir]);

// Starts the demo and waits for the READY lines of chat, chat-wss, http.
function startDemo() {
  return new Promise((resolve, reject) => {
    const p = spawn(demo, ["--port", "0", "--schedulers", "2",
                           "--console", `${outDir}/chat-demo.sock`,
                           "--http-port", "0",
                           "--tls-cert", `${certDir}/server.pem`,
                           "--tls-key", `${certDir}/server.key`],
                    { stdio: ["pipe", "pipe", "inherit"] });
    let buf = "";
    p.stdout.on("data", (d) => {
      buf += d;
      const port = (svc) => {
        const m = buf.match(new RegExp("^READY " + svc + " [^\\n]*:(\\d+)$", "m"));
        return m ? Number(m[1]) : 0;
      };
      const chat = port("chat"), ws = port("chat-wss"), http = port("http");
      if (chat && ws && http) resolve({ proc: p, chat, ws, http });
    });
    p.on("exit", (c) => reject(new Error("demo exited " + c)));
  });
}

// A line-based TCP client that keeps everything it received.
function tcpClient(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => resolve(c));
    const c = { sock: s, text: "" };
    s.setEncoding("utf8");
    s.on("data", (d) => { c.text += d; });
    s.on("error", reject);
  });
}

async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  fail(what);
  return false;
}

const logText = (page) => page.textContent("#log");
async function type(page, line) {
  await page.fill("#line", line);
  await page.click("#send");
}

const { proc, chat, ws, http } = await startDemo();
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic",
         // The test CA is trusted for this run only: Chromium's headless
         // mode has no way to add a CA but its own store.
         "--ignore-certificate-errors"],
});
try {
  const url = `http://127.0.0.1:${http}/chat?ws=${ws}&tls=1`;
  const pages = [];
  const errors = [];
  for (let i = 0; i < 2; i++) {
    const p = await browser.newPage();
    p.on("pageerror", (e) => errors.push(String(e)));
    await p.goto(url, { waitUntil: "load" });
    pages.push(p);
  }
  const [a, b] = pages;
  for (const p of pages)
    await until("page connected and in #lobby",
                async () => /you joined #lobby/.test(await logText(p)));
  await type(a, "/nick alice");
  await until("alice named", async () => /you are now alice/.test(await logText(a)));
  await type(b, "/nick bob");
  await until("bob named", async () => /you are now bob/.test(await logText(b)));

  const carol = await tcpClient(chat);
  carol.sock.write("/nick carol\n");
  await until("carol named", () => /you are now carol/.test(carol.text));

  await type(a, "hello from alice");
  await until("bob sees alice",
              async () => /<alice> hello from alice/.test(await logText(b)));
  await until("carol sees alice", () => /<alice> hello from alice/.test(carol.text));

  carol.sock.write("hi from carol over tcp\n");
  await until("alice sees carol",
              async () => /<carol> hi from carol over tcp/.test(await logText(a)));
  await until("bob sees carol",
              async () => /<carol> hi from carol over tcp/.test(await logText(b)));

  await type(b, "bob here");
  await until("alice sees bob", async () => /<bob> bob here/.test(await logText(a)));
  await until("carol sees bob", () => /<bob> bob here/.test(carol.text));

  if (errors.length) fail("page errors: " + errors.join("; "));
  await a.screenshot({ path: `${outDir}/chat-alice.png` });
  await b.screenshot({ path: `${outDir}/chat-bob.png` });
  carol.sock.destroy();
} catch (e) {
  fail(String(e && e.stack || e));
} finally {
  await browser.close();
  proc.kill("SIGINT");
  clearTimeout(deadline);
}
if (!process.exitCode) console.log("chat browser test: OK");
