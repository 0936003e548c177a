// The sdserve web page: a form over POST /v1/jobs, a job followed over Server-Sent Events (GET
// /v1/jobs/{id}/events, which EventSource reconnects with Last-Event-ID), previews, cancel and a gallery.
// The quality check: POST /v1/evaluations, its Server-Sent Events read from the fetch response (EventSource
// cannot POST). No build step: plain ES2020 served as it is.
"use strict";

const $ = (id) => document.getElementById(id);
const FIELDS = ["prompt", "negative_prompt", "width", "height", "steps", "guidance_scale", "scheduler", "seed",
  "num_images", "preview_interval"];
const NUMBERS = new Set(["width", "height", "steps", "guidance_scale", "seed", "num_images", "preview_interval"]);
const STAGES = ["text_encoding", "image_encoding", "denoising", "decoding"];
let initImage = null; // the chosen start image as a data URL (image-to-image), or null
let maskImage = null;  // the chosen inpainting mask as a data URL, or null
let sizeMultiple = 8, maxSide = 2048;

// Timings for tests and the curious: when each preview event arrived and when its image was shown (Date.now()).
window.sdTimings = [];

let source = null;      // the EventSource of the job followed now
// A bearer token, when the server asks for one (401): kept in this browser, sent as Authorization, and as
// ?access_token= where the browser cannot set headers (EventSource, img).
let token = localStorage.getItem("sd-token") || "";
const authHeaders = () => (token ? { Authorization: "Bearer " + token } : {});
const withToken = (url) => (token ? url + (url.includes("?") ? "&" : "?") + "access_token="
  + encodeURIComponent(token) : url);

/** A 401 or 403 answer: ask for a token next to the form; true when it was one. */
function needsToken(status, err) {
  if (status !== 401 && status !== 403) return false;
  $("token-form").hidden = false;
  $("err-token").textContent = describe(err);
  $("token").focus();
  return true;
}
let current = null;     // {id, resolved, seeds, ended}

function showError(field, message) {
  const el = $("err-" + field);
  const input = $(field);
  if (el && input) {
    el.textContent = message;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  } else {
    $("form-error").textContent = message;
  }
}

function clearErrors() {
  for (const f of FIELDS) {
    $("err-" + f).textContent = "";
    $(f).removeAttribute("aria-invalid");
  }
  $("form-error").textContent = "";
  $("job-error").textContent = "";
}

/** An API error body ({status, code, message, field}) as a sentence a person can act on. */
function describe(err) {
  if (!err || !err.message) return "Something went wrong.";
  switch (err.code) {
    case "RESOURCE_EXHAUSTED": return "The server is full: " + err.message + ". Try again in a moment.";
    case "UNAVAILABLE": return "The service cannot run jobs right now: " + err.message;
    case "DEADLINE_EXCEEDED": return "The job took too long: " + err.message;
    case "CANCELLED": return "Cancelled: " + err.message;
    case "NOT_FOUND": return "Not found: " + err.message;
    default: return err.message;
  }
}

function body() {
  const b = {};
  for (const f of FIELDS) {
    const v = $(f).value.trim();
    if (v === "") continue;
    b[f] = NUMBERS.has(f) ? Number(v) : v;
  }
  if (initImage) {
    b.init_image = initImage;
    b.strength = Number($("strength").value);
    if (maskImage) b.mask_image = maskImage;
  }
  return b;
}

/** A start image chosen: shown, the strength slider with it, width and height set to its size when they fit. */
function chooseInitImage(file) {
  $("err-init_image").textContent = "";
  if (!file) { clearInitImage(); return; }
  const reader = new FileReader();
  reader.onload = () => {
    const img = $("init-preview");
    img.onload = () => {
      const w = img.naturalWidth, h = img.naturalHeight;
      if (w % sizeMultiple === 0 && h % sizeMultiple === 0 && w <= maxSide && h <= maxSide) {
        $("width").value = w; $("height").value = h;
      }
    };
    img.src = reader.result;
    img.hidden = false;
    initImage = reader.result;
    $("strength-field").hidden = false;
    $("mask-field").hidden = false;
    $("init-clear").hidden = false;
  };
  reader.onerror = () => { $("err-init_image").textContent = "That file cannot be read."; };
  reader.readAsDataURL(file);
}

/** An inpainting mask chosen (with a start image): shown beside it; strength 1 repaints from noise alone. */
function chooseMask(file) {
  $("err-mask_image").textContent = "";
  if (!file) { maskImage = null; $("mask-preview").hidden = true; return; }
  const reader = new FileReader();
  reader.onload = () => {
    maskImage = reader.result;
    $("mask-preview").src = reader.result;
    $("mask-preview").hidden = false;
    $("strength").value = "1"; $("strength-value").textContent = "1";
  };
  reader.onerror = () => { $("err-mask_image").textContent = "That file cannot be read."; };
  reader.readAsDataURL(file);
}

function clearInitImage() {
  initImage = null;
  maskImage = null;
  $("mask_image").value = "";
  $("mask-preview").hidden = true;
  $("mask-field").hidden = true;
  $("init_image").value = "";
  $("init-preview").hidden = true;
  $("init-preview").removeAttribute("src");
  $("strength-field").hidden = true;
  $("init-clear").hidden = true;
}

async function loadModel() {
  try {
    const r = await fetch("/v1/model", { headers: authHeaders() });
    const m = await r.json();
    if (needsToken(r.status, m)) {
      $("model-line").textContent = "this server needs an access token";
      return;
    }
    if (!r.ok) throw new Error(describe(m));
    $("model-line").textContent = `model ${m.model}, ${m.default_width}x${m.default_height} by default, sizes in `
      + `multiples of ${m.size_multiple} up to ${m.max_side}`;
    const sel = $("scheduler");
    sel.replaceChildren(...m.schedulers.map((s) => new Option(s, s, s === m.default_scheduler,
      s === m.default_scheduler)));
    for (const f of ["width", "height"]) {
      $(f).step = m.size_multiple; $(f).min = m.size_multiple; $(f).max = m.max_side;
    }
    $("width").value = m.default_width; $("height").value = m.default_height;
    sizeMultiple = m.size_multiple; maxSide = m.max_side;
    $("steps").max = m.max_steps; $("steps").value = m.default_steps;
    $("guidance_scale").value = m.default_guidance_scale;
    $("num_images").max = m.max_images;
    $("eval-scheduler").replaceChildren(...m.schedulers.map((s) => new Option(s, s, s === m.default_scheduler,
      s === m.default_scheduler)));
    $("eval-steps").max = m.max_steps;
  } catch (e) {
    $("model-line").textContent = "The server did not answer: " + e.message;
  }
}

async function submit(event) {
  event.preventDefault();
  clearErrors();
  $("generate").disabled = true;
  try {
    const r = await fetch("/v1/jobs", { method: "POST", headers: { "Content-Type": "application/json",
      ...authHeaders() }, body: JSON.stringify(body()) });
    const answer = await r.json().catch(() => ({ message: `HTTP ${r.status}` }));
    if (needsToken(r.status, answer)) {
      $("generate").disabled = false;
      return;
    }
    if (!r.ok) {
      showError(answer.field, describe(answer));
      $("generate").disabled = false;
      return;
    }
    follow(answer.job_id);
  } catch (e) {
    $("form-error").textContent = "The server cannot be reached: " + e.message;
    $("generate").disabled = false;
  }
}

function resetJobPanel(id) {
  $("job").hidden = false;
  $("job-id").textContent = id;
  $("job-status").textContent = "connecting…";
  $("job-error").textContent = "";
  $("previews").replaceChildren();
  $("stage-image_encoding").hidden = true; // shown for an image-to-image job (its accepted event says so)
  for (const s of STAGES) {
    const el = $("stage-" + s);
    el.querySelector("progress").value = 0;
    el.querySelector("progress").max = 1;
    el.querySelector(".stage-detail").textContent = "";
  }
  $("cancel").disabled = false;
}

/** Follows a job's events; the URL's #job= keeps it, so that a reload re-attaches to it. */
function follow(id) {
  if (source) source.close();
  current = { id, ended: false, images: 0 };
  history.replaceState(null, "", "#job=" + encodeURIComponent(id));
  resetJobPanel(id);
  $("generate").disabled = true;
  source = new EventSource(withToken(`/v1/jobs/${encodeURIComponent(id)}/events`));
  const on = (name, f) => source.addEventListener(name, (e) => f(JSON.parse(e.data), e));
  source.onopen = () => { if (!current.ended) $("job-status").textContent = "connected"; };
  source.onerror = () => {
    if (current.ended) return;
    if (source.readyState === EventSource.CLOSED) { // refused (the job is unknown or expired): no retry
      ended("This job is no longer held by the server (it ended a while ago, or never existed).");
    } else {
      $("job-status").textContent = "connection lost, reconnecting…";
    }
  };
  on("accepted", (a) => {
    current.resolved = a.resolved; current.seeds = a.seeds;
    // an image-to-image job has an image encoding stage (its progress may be superseded before a late reader
    // attaches: the accepted event always comes)
    $("stage-image_encoding").hidden = !a.resolved.strength;
  });
  on("queued", (q) => { $("job-status").textContent = `waiting: ${q.position} of ${q.queue_depth} in the queue`; });
  on("progress", progress);
  on("preview", preview);
  on("image", image);
  on("completed", (c) => {
    ended(null);
    $("job-status").textContent = `done in ${(c.total_ms / 1000).toFixed(2)} s`;
  });
  on("failed", (err) => {
    ended(describe(err));
    if (err.field) showError(err.field, err.message);
  });
}

function ended(error) {
  current.ended = true;
  if (source) source.close();
  source = null;
  $("cancel").disabled = true;
  $("generate").disabled = false;
  if (error) {
    $("job-error").textContent = error;
    $("job-status").textContent = "ended";
  }
}

function progress(p) {
  const el = $("stage-" + p.stage);
  if (!el) return;
  el.hidden = false;
  const bar = el.querySelector("progress");
  bar.max = Math.max(1, p.total_steps);
  bar.value = p.step;
  // stages before this one are done
  for (const s of STAGES.slice(0, STAGES.indexOf(p.stage))) {
    const b = $("stage-" + s).querySelector("progress");
    b.value = b.max;
  }
  let detail = `${p.step} / ${p.total_steps}`;
  if (p.estimated_remaining_ms > 0) detail += `, ~${(p.estimated_remaining_ms / 1000).toFixed(1)} s left`;
  el.querySelector(".stage-detail").textContent = detail;
  $("job-status").textContent = p.stage.replace("_", " ");
}

function preview(p, e) {
  const received = Date.now();
  let img = document.getElementById("preview-" + p.index);
  if (!img) {
    img = document.createElement("img");
    img.id = "preview-" + p.index;
    $("previews").append(img);
  }
  img.alt = `preview of image ${p.index + 1} at step ${p.step}`;
  img.dataset.step = p.step;
  img.onload = () => window.sdTimings.push({ kind: "preview", seq: Number(e.lastEventId), step: p.step,
    index: p.index, received, shown: Date.now() });
  img.src = "data:image/png;base64," + p.png;
}

function image(i) {
  current.images++;
  const preview = document.getElementById("preview-" + i.index);
  if (preview) preview.src = withToken(i.url);
  $("gallery-empty").hidden = true;
  const li = document.createElement("li");
  const img = document.createElement("img");
  img.src = withToken(i.url);
  const prompt = current.resolved ? current.resolved.prompt : "";
  img.alt = prompt ? `${prompt} (seed ${i.seed})` : `image ${i.index + 1}, seed ${i.seed}`;
  const caption = document.createElement("span");
  caption.className = "prompt";
  caption.textContent = prompt;
  const meta = document.createElement("span");
  meta.className = "muted";
  const r = current.resolved || {};
  meta.textContent = `seed ${i.seed} · ${i.width}x${i.height} · ${r.steps || "?"} steps ${r.scheduler || ""}`
    + (r.strength ? ` · from an image, strength ${r.strength}` : "");
  const use = document.createElement("button");
  use.type = "button";
  use.className = "secondary use-seed";
  use.textContent = "Use this seed";
  use.onclick = () => { $("seed").value = i.seed; $("seed").focus(); };
  const link = document.createElement("a");
  link.href = withToken(i.url);
  link.download = `sdserve-${i.seed}.png`;
  link.textContent = "Download";
  li.append(img, caption, meta, use, link);
  // the latest job first, its images in index order
  if (current.lastItem && current.lastItem.isConnected) current.lastItem.after(li); else $("gallery").prepend(li);
  current.lastItem = li;
}

async function cancel() {
  if (!current || current.ended) return;
  $("cancel").disabled = true;
  try {
    const r = await fetch(`/v1/jobs/${encodeURIComponent(current.id)}`, { method: "DELETE",
      headers: authHeaders() });
    if (!r.ok) $("job-error").textContent = describe(await r.json());
  } catch (e) {
    $("job-error").textContent = "The server cannot be reached: " + e.message;
  }
}

const EVAL_FIELDS = { images: "eval-images", steps: "eval-steps", scheduler: "eval-scheduler",
  guidance_scale: "eval-guidance" };
let evaluation = null; // the AbortController of the evaluation run followed now

/** Runs an evaluation and follows its events: progress, then the result table, or the error. */
async function evaluate(event) {
  event.preventDefault();
  for (const id of Object.values(EVAL_FIELDS)) {
    $("err-" + id).textContent = ""; $(id).removeAttribute("aria-invalid");
  }
  $("eval-error").textContent = "";
  $("eval-result").hidden = true;
  const b = {};
  for (const [field, id] of Object.entries(EVAL_FIELDS)) {
    const v = $(id).value.trim();
    if (v !== "") b[field] = field === "scheduler" ? v : Number(v);
  }
  evaluation = new AbortController();
  $("evaluate").disabled = true;
  $("eval-cancel").hidden = false;
  $("eval-status").textContent = "starting…";
  const bar = $("eval-progress").querySelector("progress");
  bar.value = 0;
  try {
    const r = await fetch("/v1/evaluations", { method: "POST", signal: evaluation.signal, headers: {
      "Content-Type": "application/json", Accept: "text/event-stream", ...authHeaders() }, body: JSON.stringify(b) });
    if (!r.ok) {
      const err = await r.json().catch(() => ({ message: `HTTP ${r.status}` }));
      if (needsToken(r.status, err)) return;
      const id = EVAL_FIELDS[err.field];
      if (id) { $("err-" + id).textContent = err.message; $(id).setAttribute("aria-invalid", "true"); $(id).focus(); }
      else $("eval-error").textContent = describe(err);
      $("eval-status").textContent = "";
      return;
    }
    $("eval-progress").hidden = false;
    $("eval-status").textContent = "generating and measuring…";
    await readEvents(r.body, (name, data) => {
      if (name === "progress") {
        bar.max = data.images_total; bar.value = data.images_done;
        let detail = `${data.images_done} / ${data.images_total}`;
        if (data.estimated_remaining_ms > 0) detail += `, ~${(data.estimated_remaining_ms / 1000).toFixed(0)} s left`;
        $("eval-detail").textContent = detail;
        if (data.measuring) $("eval-status").textContent = "measuring: FID, KID, precision, recall, IS…";
      } else if (name === "result") {
        bar.value = bar.max;
        showEvaluation(data);
        $("eval-status").textContent = `done in ${(data.total_ms / 1000).toFixed(1)} s`;
      } else if (name === "failed") {
        $("eval-error").textContent = describe(data);
        $("eval-status").textContent = "ended";
      }
    });
  } catch (e) {
    if (e.name === "AbortError") $("eval-status").textContent = "stopped";
    else $("eval-error").textContent = "The server cannot be reached: " + e.message;
  } finally {
    evaluation = null;
    $("evaluate").disabled = false;
    $("eval-cancel").hidden = true;
  }
}

/** Reads a text/event-stream body, calling on(name, JSON data) for each event (comments skipped). */
async function readEvents(stream, on) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
      }
      if (data) on(name, JSON.parse(data));
    }
  }
}

function showEvaluation(r) {
  const q = r.resolved;
  $("eval-caption").textContent = `${q.images} images, ${q.steps} steps of ${q.scheduler}, guidance `
    + `${q.guidance_scale}, against ${r.reference_images} real images (${r.extractor})`;
  const rows = [["FID", r.fid.toFixed(3)], ["KID", r.kid.toFixed(5)], ["Precision", r.precision.toFixed(3)],
    ["Recall", r.recall.toFixed(3)]];
  if (r.inception_score != null) {
    rows.push(["Inception Score", `${r.inception_score.toFixed(3)} ± ${r.inception_score_std.toFixed(3)}`]);
  }
  if (r.adherence) {
    const pct = (x) => (100 * x).toFixed(1) + "%";
    rows.push(["Adherence", `colour ${pct(r.adherence.colour)}, background ${pct(r.adherence.background)}, `
      + `shape ${pct(r.adherence.shape)}, size ${pct(r.adherence.size)}`]);
  }
  $("eval-rows").replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row"; th.textContent = k;
    const td = document.createElement("td");
    td.textContent = v;
    tr.append(th, td);
    return tr;
  }));
  $("eval-result").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  $("eval-form").addEventListener("submit", evaluate);
  $("eval-cancel").addEventListener("click", () => { if (evaluation) evaluation.abort(); });
  $("job-form").addEventListener("submit", submit);
  $("init_image").addEventListener("change", (e) => chooseInitImage(e.target.files[0]));
  $("init-clear").addEventListener("click", clearInitImage);
  $("mask_image").addEventListener("change", (e) => chooseMask(e.target.files[0]));
  $("strength").addEventListener("input", () => { $("strength-value").textContent = $("strength").value; });
  $("cancel").addEventListener("click", cancel);
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token").value.trim();
    localStorage.setItem("sd-token", token);
    $("err-token").textContent = "";
    $("token-form").hidden = true;
    loadModel();
  });
  for (const f of FIELDS) {
    $(f).addEventListener("input", () => { $("err-" + f).textContent = ""; $(f).removeAttribute("aria-invalid"); });
  }
  loadModel();
  const m = location.hash.match(/^#job=(.+)$/);
  if (m) follow(decodeURIComponent(m[1]));
});
