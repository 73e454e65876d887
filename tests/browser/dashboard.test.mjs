// The console dashboard in a real headless browser (Debian's chromium via
// playwright-core): starts the demo server (a runtime with a known
// supervision tree, traffic and the console's HTTP port), then checks that
//  - the page loads with no console errors and no request leaves the
//    server (self-contained),
//  - the live supervision tree of the sample is shown,
//  - the page updates (refresh counter, uptime, chart samples),
//  - the kill button is refused without the token and, with it, kills a
//    worker that its supervisor restarts (seen in the tree: new pid,
//    restarts=1).
// Exit 0 when all hold; a screenshot is left in OUT_DIR.
import { spawn } from "node:child_process";
import { chromium } from "playwright-core";

const [demo, outDir] = process.argv.slice(2);
const fail = (msg) => { console.error("FAIL: " + msg); process.exitCode = 1; };
// Waits scale with TP_TEST_SLOW (a busy machine: sanitizers, other jobs).
const slow = Math.max(1, Number(process.env.TP_TEST_SLOW) || 1);
const deadline = setTimeout(() => { fail("timeout"); process.exit(1); },
                            200000 * slow);

function startDemo() {
  return new Promise((resolve, reject) => {
    const p = spawn(demo, [], { stdio: ["pipe", "pipe", "inherit"] });
    let buf = "";
    p.stdout.on("data", (d) => {
      buf += d;
      const m = buf.match(/^PORT (\d+) TOKEN (\S+)$/m);
      if (m) resolve({ proc: p, port: Number(m[1]), token: m[2] });
    });
    p.on("exit", (c) => reject(new Error("demo exited " + c)));
  });
}

const { proc, port, token } = await startDemo();
const base = `http://127.0.0.1:${port}`;
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [], foreign = [];
  // The one expected failure: the kill without the token (401).
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 401/.test(m.text()))
      errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("request", (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });

  await page.goto(base + "/", { waitUntil: "load" });
  // The live tree: root, the app supervisor and its workers.
  await page.waitForSelector('#tree li[data-id="app"] li[data-id="worker_a"]',
                             { timeout: 30000 * slow });
  const ids = await page.$$eval("#tree li", (l) => l.map((e) => e.dataset.id));
  for (const id of ["root", "app", "worker_a", "worker_b", "pool"])
    if (!ids.includes(id)) fail("tree lacks " + id + ": " + ids.join(","));
  const actors = Number(await page.textContent("#actors"));
  if (!(actors >= 5)) fail("actors count " + actors);

  // It updates: refresh counter, uptime and chart samples move on.
  const r0 = Number(await page.getAttribute("body", "data-refreshes"));
  const up0 = await page.textContent("#uptime");
  await page.waitForFunction((r) => Number(document.body.dataset.refreshes) >= r + 3,
                             r0, { timeout: 30000 * slow });
  const up1 = await page.textContent("#uptime");
  if (up0 === up1) fail("uptime did not change: " + up0);
  const samples = Number(await page.getAttribute("#chart", "data-samples"));
  if (!(samples >= 2)) fail("chart samples " + samples);
  const rate = Number(await page.textContent("#rate"));
  if (!(rate > 0)) fail("msgs/s " + rate);

  // Kill without the token: refused, the worker keeps its pid.
  const sel = '#tree li[data-id="worker_a"]';
  const pid0 = await page.getAttribute(sel, "data-pid");
  await page.click(`${sel} > button[title^="kill"]`);
  await page.waitForFunction(() => /kill .*: /.test(document.getElementById("status").textContent),
                             null, { timeout: 30000 * slow });
  const st = await page.textContent("#status");
  if (!/token/.test(st)) fail("kill without token: " + st);
  if ((await page.getAttribute(sel, "data-pid")) !== pid0) fail("killed without token");

  // With the token: killed and restarted by its supervisor.
  await page.fill("#token", token);
  await page.dispatchEvent("#token", "change");
  await page.click(`${sel} > button[title^="kill"]`);
  await page.waitForFunction(([s, p]) => {
    const e = document.querySelector(s);
    return e && e.dataset.pid && e.dataset.pid !== p &&
           /restarts=1/.test(e.textContent);
  }, [sel, pid0], { timeout: 30000 * slow });
  const pid1 = await page.getAttribute(sel, "data-pid");
  console.log(`worker_a ${pid0} -> ${pid1} (restarted)`);

  await page.screenshot({ path: outDir + "/dashboard.png", fullPage: true });
  if (errors.length) fail("page errors: " + errors.join(" | "));
  if (foreign.length) fail("requests outside the server: " + foreign.join(" "));
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
  proc.kill("SIGTERM");
  clearTimeout(deadline);
}
if (!process.exitCode) console.log("dashboard: 1 passed, 0 failed");
