// The web page in headless Chromium (Debian's /usr/bin/chromium through playwright-core) against a live
// orchestrator whose jobs run one at a time (SD_ORCHESTRATOR_MAX_CONCURRENT_JOBS=1). Run by BrowserIT:
//   SD_HTTP=http://127.0.0.1:8080 SD_GRPC=127.0.0.1:50050 SD_PROTO=proto/src/main/proto SD_OUT=target/browser \
//   node ui.test.mjs
// Covers: submit -> queue position -> previews -> images in the gallery, "use this seed"; a validation error
// next to its field; cancel; the connection cut mid-job (through a TCP proxy this script closes), which
// EventSource reconnects with Last-Event-ID; a reload mid-job that re-attaches and completes. Measures how
// long after the gRPC Watch of the same job hears each preview the browser shows it. Exits non-zero on failure.
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { chromium } from "playwright-core";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const HTTP = process.env.SD_HTTP;
const GRPC = process.env.SD_GRPC;
const OUT = process.env.SD_OUT || "target/browser";
const CHROMIUM = process.env.SD_CHROMIUM || "/usr/bin/chromium";
assert.ok(HTTP && GRPC && process.env.SD_PROTO, "set SD_HTTP, SD_GRPC and SD_PROTO");
fs.mkdirSync(OUT, { recursive: true });

const def = protoLoader.loadSync("sd/v1/diffusion.proto", { includeDirs: [process.env.SD_PROTO], keepCase: true, longs: Number,
  enums: String, defaults: true });
const sd = grpc.loadPackageDefinition(def).sd.v1;
const diffusion = new sd.Diffusion(GRPC, grpc.credentials.createInsecure(),
  { "grpc.max_receive_message_length": 64 << 20 });

/** A Generate (or Watch) call: resolves with its events, each stamped with Date.now() on arrival. */
function record(call) {
  const events = [];
  const done = new Promise((resolve, reject) => {
    call.on("data", (e) => events.push({ at: Date.now(), e }));
    call.on("end", () => resolve(events));
    call.on("error", (err) => (err.code === grpc.status.CANCELLED ? resolve(events) : reject(err)));
  });
  done.catch(() => {}); // failures surface where the caller awaits it
  return { events, done, call };
}

const results = [];
async function step(name, f) {
  const t = Date.now();
  await f();
  results.push(`${name}: ok in ${Date.now() - t} ms`);
  console.log(`ui-test: ${name}: ok (${Date.now() - t} ms)`);
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
const page = await context.newPage();
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
// (the browser logs each 4xx answer as "Failed to load resource": the validation errors asked for below)
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push(m.text());
});

async function open() {
  await page.goto(HTTP + "/");
  await page.waitForSelector("#scheduler option", { state: "attached" });
}

const timeout = { timeout: 60000 };
let latency = null;
try {
  await open();

  await step("submit, queue, previews, images, use this seed", async () => {
    // a job on the only slot, so that the page's job waits and both its watchers are attached before it starts
    const blocker = record(diffusion.Generate({ prompt: "a green square on a white background", width: 256,
      height: 256, steps: 40, seed: 1 }));
    await new Promise((r) => setTimeout(r, 300));
    await page.fill("#prompt", "a small yellow triangle on a purple background");
    await page.fill("#steps", "30");
    await page.fill("#seed", "11");
    await page.fill("#num_images", "2");
    await page.fill("#preview_interval", "1");
    await page.click("#generate");
    await page.waitForFunction(() => /waiting: 1 of/.test(document.querySelector("#job-status").textContent), null,
      timeout);
    const jobId = (await page.textContent("#job-id")).trim();
    const watch = record(diffusion.Watch({ job_id: jobId, after_seq: 0 }));
    await page.waitForFunction(() => document.querySelectorAll("#gallery li").length === 2, null, timeout);
    const grpcEvents = await watch.done;
    await blocker.done;
    const seeds = await page.$$eval("#gallery li .muted", (els) => els.map((e) => e.textContent));
    assert.match(seeds[0], /^seed 11 /);
    assert.match(seeds[1], /^seed 12 /);
    for (const src of await page.$$eval("#gallery li img", (els) => els.map((e) => e.src))) {
      const r = await fetch(src);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("content-type"), "image/png");
    }
    // every preview the browser showed, against the arrival of the same preview on the gRPC Watch
    const timings = await page.evaluate(() => window.sdTimings);
    const grpcAt = new Map(grpcEvents.filter((x) => x.e.preview).map((x) => [`${x.e.preview.step}/${x.e.preview.index}`,
      x.at]));
    const lags = [];
    for (const t of timings) {
      const at = grpcAt.get(`${t.step}/${t.index}`);
      if (at !== undefined) lags.push({ step: t.step, index: t.index, lag: t.shown - at });
    }
    assert.ok(lags.length >= 2, `previews seen on both paths: ${lags.length}`);
    const first = lags[0];
    const sorted = lags.map((l) => l.lag).sort((a, b) => a - b);
    latency = { first: first.lag, median: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1],
      n: lags.length };
    console.log(`ui-test: preview shown after its gRPC event: first (step ${first.step}) ${first.lag} ms, median `
      + `${latency.median} ms, max ${latency.max} ms over ${lags.length} previews`);
    assert.ok(first.lag <= 50, `the first preview appeared ${first.lag} ms after its gRPC event (goal: 50 ms)`);
    await page.screenshot({ path: path.join(OUT, "ui.png"), fullPage: true });
    await page.click("#gallery li:first-child .use-seed");
    assert.equal(await page.inputValue("#seed"), "11");
  });

  await step("a validation error next to its field", async () => {
    await page.fill("#steps", "500");
    await page.click("#generate");
    await page.waitForFunction(() => document.querySelector("#err-steps").textContent.length > 0, null, timeout);
    assert.equal(await page.textContent("#err-steps"), "steps must be in [1, 200], got 500");
    assert.equal(await page.getAttribute("#steps", "aria-invalid"), "true");
    await page.screenshot({ path: path.join(OUT, "ui-error.png"), fullPage: true });
    await page.fill("#steps", "30");
    assert.equal(await page.textContent("#err-steps"), "", "the message goes when the field is edited");
    await page.fill("#width", "17");
    await page.click("#generate");
    await page.waitForFunction(() => document.querySelector("#err-width").textContent.length > 0, null, timeout);
    assert.match(await page.textContent("#err-width"), /^width must be a multiple of 16/);
    await page.fill("#width", "64");
  });

  await step("image-to-image from a chosen file, and a file that is no image", async () => {
    const src = await page.$eval("#gallery li:first-child img", (e) => e.src);
    const png = Buffer.from(await (await fetch(src)).arrayBuffer());
    const before = await page.$$eval("#gallery li", (els) => els.length);
    await page.setInputFiles("#init_image", { name: "start.png", mimeType: "image/png", buffer: png });
    await page.waitForSelector("#strength-field:not([hidden])", timeout);
    await page.waitForSelector("#init-preview:not([hidden])", timeout);
    assert.equal(await page.inputValue("#width"), "64", "width and height follow the image");
    await page.fill("#strength", "0.5");
    assert.equal(await page.textContent("#strength-value"), "0.5");
    await page.fill("#steps", "10");
    await page.fill("#num_images", "1");
    await page.fill("#prompt", "a small green triangle on a purple background");
    await page.click("#generate");
    await page.waitForFunction((n) => document.querySelectorAll("#gallery li").length === n + 1, before, timeout);
    assert.equal(await page.isVisible("#stage-image_encoding"), true, "the image encoding stage is shown");
    assert.equal(await page.textContent("#stage-denoising .stage-detail"), "10 / 10");
    await page.screenshot({ path: path.join(OUT, "ui-img2img.png"), fullPage: true });
    // inpainting: a mask (white: the centre repainted) beside the start image; strength goes to 1
    const mask = await page.evaluate(() => {
      const c = document.createElement("canvas");
      c.width = 64; c.height = 64;
      const g = c.getContext("2d");
      g.fillStyle = "#000"; g.fillRect(0, 0, 64, 64);
      g.fillStyle = "#fff"; g.fillRect(16, 16, 32, 32);
      return c.toDataURL("image/png");
    });
    await page.setInputFiles("#mask_image", { name: "mask.png", mimeType: "image/png",
      buffer: Buffer.from(mask.split(",")[1], "base64") });
    await page.waitForSelector("#mask-preview:not([hidden])", timeout);
    assert.equal(await page.inputValue("#strength"), "1", "a mask sets strength 1");
    await page.click("#generate");
    await page.waitForFunction((n) => document.querySelectorAll("#gallery li").length === n + 2, before, timeout);
    await page.setInputFiles("#mask_image", []);
    // a file that is not an image: the server's message, next to the field
    await page.setInputFiles("#init_image", { name: "notes.png", mimeType: "image/png",
      buffer: Buffer.from("not a png") });
    await page.waitForSelector("#strength-field:not([hidden])", timeout);
    await page.click("#generate");
    await page.waitForFunction(() => document.querySelector("#err-init_image").textContent.length > 0, null, timeout);
    assert.match(await page.textContent("#err-init_image"), /^init_image: not a PNG or other readable image/);
    await page.click("#init-clear");
    assert.equal(await page.isVisible("#strength-field"), false, "removed: text-to-image again");
  });

  await step("cancel", async () => {
    await page.fill("#steps", "200");
    await page.fill("#width", "256");
    await page.fill("#height", "256");
    await page.fill("#num_images", "1");
    await page.click("#generate");
    await page.waitForFunction(() => /denoising/.test(document.querySelector("#job-status").textContent), null,
      timeout);
    await page.click("#cancel");
    await page.waitForFunction(() => /Cancelled/.test(document.querySelector("#job-error").textContent), null,
      timeout);
    assert.equal(await page.isEnabled("#generate"), true, "a new job can be submitted");
  });

  await step("a connection cut mid-job: EventSource reconnects and the job completes", async () => {
    // the page through a TCP proxy whose connections this test cuts, as a network or a load balancer would
    const sockets = new Set();
    const upstream = new URL(HTTP);
    const proxy = net.createServer((client) => {
      const server = net.connect(Number(upstream.port), upstream.hostname);
      for (const s of [client, server]) {
        sockets.add(s);
        s.on("error", () => {});
        s.on("close", () => { sockets.delete(s); client.destroy(); server.destroy(); });
      }
      client.pipe(server).pipe(client);
    });
    await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
    const cut = await context.newPage();
    cut.on("pageerror", (e) => pageErrors.push(String(e)));
    try {
      await cut.goto(`http://127.0.0.1:${proxy.address().port}/`);
      await cut.waitForSelector("#scheduler option", { state: "attached" });
      await cut.fill("#steps", "120");
      await cut.fill("#width", "192");
      await cut.fill("#height", "192");
      await cut.fill("#preview_interval", "10");
      await cut.click("#generate");
      await cut.waitForFunction(() => /denoising/.test(document.querySelector("#job-status").textContent), null,
        timeout);
      const stepBefore = Number((await cut.textContent("#stage-denoising .stage-detail")).split(" ")[0]);
      for (const s of sockets) s.destroy(); // the event stream (and any idle connection) is cut
      await cut.waitForFunction(() => /reconnecting/.test(document.querySelector("#job-status").textContent), null,
        timeout);
      await cut.waitForFunction(() => document.querySelectorAll("#gallery li").length === 1, null, timeout);
      assert.match(await cut.textContent("#job-status"), /^done in/);
      assert.equal(await cut.textContent("#job-error"), "");
      assert.ok(stepBefore < 120, `the cut came mid-job (step ${stepBefore} of 120)`);
    } finally {
      await cut.close();
      proxy.close();
    }
  });

  await step("a quality check: a bad field next to it, then progress and the measures' table", async () => {
    await page.fill("#eval-images", "3");
    await page.click("#evaluate");
    await page.waitForFunction(() => document.querySelector("#err-eval-images").textContent !== "", null, timeout);
    assert.match(await page.textContent("#err-eval-images"), /images must be in \[16, 2048\]/);
    assert.equal(await page.getAttribute("#eval-images", "aria-invalid"), "true");
    await page.fill("#eval-images", "24");
    await page.fill("#eval-steps", "4");
    await page.click("#evaluate");
    await page.waitForFunction(() => /^done in/.test(document.querySelector("#eval-status").textContent), null,
      timeout);
    assert.equal(await page.textContent("#err-eval-images"), "");
    assert.equal(await page.getAttribute("#eval-progress progress", "value"), "24");
    const rows = await page.$$eval("#eval-rows tr", (trs) => trs.map((tr) => tr.querySelector("th").textContent));
    assert.deepEqual(rows, ["FID", "KID", "Precision", "Recall", "Inception Score", "Adherence"]);
    const fid = Number(await page.textContent("#eval-rows tr:first-child td"));
    assert.ok(fid > 0 && Number.isFinite(fid), `FID ${fid}`);
    assert.match(await page.textContent("#eval-caption"), /^24 images, 4 steps of ddim/);
    await page.screenshot({ path: path.join(OUT, "quality-check.png"), fullPage: true });
    results.push({ step: "quality check", fid });
  });

  await step("stopping a quality check stops its jobs on the server", async () => {
    await page.fill("#eval-images", "512");
    await page.fill("#eval-steps", "25");
    await page.click("#evaluate");
    await page.waitForFunction(() => /\d+ \/ 512/.test(document.querySelector("#eval-detail").textContent), null,
      timeout);
    await page.click("#eval-cancel");
    await page.waitForFunction(() => document.querySelector("#eval-status").textContent === "stopped", null, timeout);
    const listJobs = () => new Promise((resolve, reject) => diffusion.ListJobs({ limit: 1000 },
      (err, r) => (err ? reject(err) : resolve(r))));
    let jobs = await listJobs();
    for (let i = 0; i < 100 && jobs.running + jobs.waiting > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      jobs = await listJobs();
    }
    assert.equal(jobs.running + jobs.waiting, 0, "the run's jobs were cancelled");
    assert.equal(await page.isDisabled("#evaluate"), false);
  });

  await step("a reload mid-job re-attaches and completes", async () => {
    await page.fill("#steps", "120");
    await page.fill("#width", "128");
    await page.fill("#height", "128");
    const before = await page.$$eval("#gallery li", (els) => els.length);
    await page.click("#generate");
    await page.waitForFunction(() => /denoising/.test(document.querySelector("#job-status").textContent), null,
      timeout);
    const jobId = (await page.textContent("#job-id")).trim();
    assert.equal(new URL(page.url()).hash, "#job=" + jobId);
    await page.reload(); // drops the event stream; the page comes back from its URL
    await page.waitForFunction(() => document.querySelectorAll("#gallery li").length === 1, null, timeout);
    assert.equal((await page.textContent("#job-id")).trim(), jobId, "the same job");
    assert.match(await page.textContent("#job-status"), /^done in/);
    assert.ok(before >= 2, "the gallery had the earlier images before the reload");
  });

  assert.deepEqual(pageErrors, [], "no error in the page's console");
} catch (e) {
  await page.screenshot({ path: path.join(OUT, "failure.png"), fullPage: true }).catch(() => {});
  console.error("ui-test: FAILED:", e.stack || e);
  console.error("ui-test: page errors:", pageErrors);
  process.exitCode = 1;
} finally {
  await browser.close();
  diffusion.close();
}
if (process.exitCode !== 1) {
  fs.writeFileSync(path.join(OUT, "figures.json"), JSON.stringify({ latency, results }, null, 2));
  console.log("ui-test: PASS");
}
