// The page of `defocus serve`: photos go to /api/detect and /api/estimate one after the other (the server runs one
// request at a time anyway); each answer's maps are shown and offered as downloads. Plain JavaScript, no library.
"use strict";

const $ = (id) => document.getElementById(id);
const photos = [];  // {file, name, state: waiting|running|done|failed, detect, estimate, error, photoUrl, li}
let selected = null;
let running = false;

async function api(path, file, params) {
  const form = new FormData();
  form.append("image", file, file.name);
  const response = await fetch(`${path}?${new URLSearchParams(params)}`, { method: "POST", body: form });
  if (!response.ok) {
    let reason = `${response.status} ${response.statusText}`;
    try { reason = (await response.json()).error || reason; } catch (e) { /* not JSON: keep the status */ }
    throw new Error(reason);
  }
  return response;
}

function option(select, info) {
  const o = document.createElement("option");
  o.value = info.name;
  o.textContent = info.name;
  o.title = info.summary;
  select.append(o);
}

async function loadMethods() {
  const answer = await (await fetch("/api/methods")).json();
  for (const info of answer.methods) option(info.task === "dbd" ? $("detector") : $("estimator"), info);
  $("detector").value = answer.defaults.dbd;
  $("estimator").value = answer.defaults.dme || "";
  const mb = answer.limits.max_upload_bytes / 1e6;
  const mp = answer.limits.max_pixels ? `, ${(answer.limits.max_pixels / 1e6).toFixed(0)} megapixels` : "";
  $("limits").textContent = `Up to ${mb} MB per photo${mp}. JPEG, PNG, TIFF, WebP, BMP or GIF.`;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function addPhotos(files) {
  for (const file of files) {
    const photo = { file, name: file.name, state: "waiting", photoUrl: URL.createObjectURL(file) };
    photo.li = document.createElement("li");
    photo.li.addEventListener("click", () => show(photo));
    $("queue").append(photo.li);
    photos.push(photo);
    label(photo);
  }
  $("rerun").disabled = photos.length === 0;
  work();
}

function label(photo) {
  const states = { waiting: "waiting", running: "running…", done: "", failed: "failed" };
  photo.li.textContent = states[photo.state] ? `${photo.name} (${states[photo.state]})` : photo.name;
  photo.li.className = photo.state + (photo === selected ? " selected" : "");
  if (photo.error) photo.li.title = photo.error;
}

// One photo at a time, in the order they were added.
async function work() {
  if (running) return;
  running = true;
  let next;
  while ((next = photos.find((p) => p.state === "waiting"))) {
    const photo = next;
    photo.state = "running";
    label(photo);
    setStatus(`Computing ${photo.name}…`);
    const detector = $("detector").value, estimator = $("estimator").value;
    try {
      photo.detect = await (await api("/api/detect", photo.file, { method: detector, format: "json" })).json();
      photo.estimate = estimator
        ? await (await api("/api/estimate", photo.file, { method: estimator, format: "json" })).json() : null;
      photo.state = "done";
      photo.error = null;
      setStatus("");
    } catch (e) {
      photo.state = "failed";
      photo.error = e.message;
      setStatus(`${photo.name}: ${e.message}`, true);
    }
    label(photo);
    if (photo.state === "done" && (selected === null || selected.state !== "done" || selected === photo)) {
      await show(photo);
    }
  }
  running = false;
}

function loaded(img, url) {
  img.src = url;
  return img.decode().catch(() => undefined);  // a photo the browser cannot show (TIFF): the maps still are
}

async function show(photo) {
  const previous = selected;
  selected = photo;
  if (previous) label(previous);
  label(photo);
  if (photo.state !== "done") {
    if (photo.state === "failed") setStatus(`${photo.name}: ${photo.error}`, true);
    return;
  }
  const result = $("result");
  result.dataset.state = "loading";
  result.hidden = false;
  $("photo-name").textContent = `${photo.name} — ${photo.detect.width}×${photo.detect.height} px`;
  showVerdict(photo.detect);

  const files = photo.detect.files;
  const mapImage = new Image();
  await Promise.all([loaded($("overlay"), files.overlay.url), loaded($("photo"), photo.photoUrl),
                     loaded(mapImage, files.blur.url)]);
  const canvas = $("blur-map");
  canvas.width = mapImage.naturalWidth;
  canvas.height = mapImage.naturalHeight;
  canvas.getContext("2d").drawImage(mapImage, 0, 0);

  const panel = $("defocus-panel");
  panel.hidden = !photo.estimate;
  if (photo.estimate) {
    const unit = photo.estimate.units === "radius" ? "disk radius" : "Gaussian σ";
    $("defocus-caption").textContent =
      `Defocus map (${photo.estimate.method}): ${unit} in px, up to ${photo.estimate.max_value.toFixed(1)} px`;
    await loaded($("defocus"), photo.estimate.files.defocus.url);
  }
  showDownloads(photo);
  const timings = [photo.detect, photo.estimate].filter(Boolean).map((a) => `${a.method} ${a.seconds} s`);
  $("timing").textContent = `Computed by ${timings.join(", ")}.`;
  if (selected === photo) result.dataset.state = "done";
}

// Shown when the server adds a verdict to /api/detect's answer (e.g. keep or reject, from culling).
function showVerdict(answer) {
  const verdict = $("verdict");
  verdict.hidden = answer.verdict === undefined;
  if (verdict.hidden) return;
  const confidence = typeof answer.confidence === "number" ? ` (confidence ${Math.round(answer.confidence * 100)}%)` : "";
  verdict.textContent = `Verdict: ${answer.verdict}${confidence}`;
  verdict.className = String(answer.verdict).toLowerCase();
}

function link(text, name, url) {
  const a = document.createElement("a");
  a.textContent = text;
  a.download = name;
  a.href = url;
  return a;
}

// The .npy maps are not in the JSON answers (a float map is large as text): asked for when wanted.
function npyButton(text, path, photo, params, name) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = text;
  button.addEventListener("click", async () => {
    try {
      const blob = await (await api(path, photo.file, { ...params, format: "npy" })).blob();
      const url = URL.createObjectURL(blob);
      link("", name, url).click();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      setStatus(`${photo.name}: ${e.message}`, true);
    }
  });
  return button;
}

function showDownloads(photo) {
  const files = photo.detect.files;
  const items = [link("blur map (PNG)", files.blur.name, files.blur.url),
                 link("overlay (JPEG)", files.overlay.name, files.overlay.url),
                 npyButton("blur map (.npy)", "/api/detect", photo, { method: photo.detect.method },
                           files.blur.name.replace(/\.png$/, ".npy"))];
  if (photo.estimate) {
    const defocus = photo.estimate.files.defocus;
    items.push(link("defocus map (PNG)", defocus.name, defocus.url),
               npyButton("defocus map (.npy)", "/api/estimate", photo, { method: photo.estimate.method },
                         defocus.name.replace(/\.png$/, ".npy")));
  }
  $("downloads").replaceChildren("Download: ", ...items);
}

function setUp() {
  $("file").addEventListener("change", (e) => { addPhotos(e.target.files); e.target.value = ""; });
  const drop = $("drop");
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    document.addEventListener(type, () => drop.classList.remove("over"));
  }
  document.addEventListener("drop", (e) => { e.preventDefault(); addPhotos(e.dataTransfer.files); });
  $("slider").addEventListener("input", (e) => {
    $("blur-map").style.clipPath = `inset(0 0 0 ${e.target.value}%)`;
  });
  $("rerun").addEventListener("click", () => {
    for (const photo of photos) { photo.state = "waiting"; label(photo); }
    work();
  });
  loadMethods().catch((e) => setStatus(`Cannot list the methods: ${e.message}`, true));
}

setUp();
