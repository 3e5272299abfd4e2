"use strict";
// The topfive page: pick or drop a photo, POST it to /api/classify, show each model's top-k.
// Plain DOM code, no library; every text from the server goes in through textContent.

const $ = (id) => document.getElementById(id);
const MAX_SIDE = 480;  // the preview's longest side in CSS pixels
let photo = null;      // the File being classified
let asked = 0;         // the latest request's number: an older answer arriving late is dropped

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function loadModels() {
  const response = await fetch("/api/models");
  const models = await response.json();
  const box = $("models");
  for (const model of models) {
    const label = el("label");
    const check = el("input");
    check.type = "checkbox";
    check.value = model.name;
    check.checked = true;
    label.append(check, " " + model.name, el("span", "idx", " (" + model.runtime + ")"));
    box.append(label);
  }
  fetch("/api/report").then((r) => r.json()).then((r) => { $("report-link").hidden = !r.available; }).catch(() => {});
}

function chosenModels() {
  return [...document.querySelectorAll("#models input:checked")].map((box) => box.value);
}

// The photo as the models saw it: the browser applies the EXIF orientation ("from-image"), as
// topfive's decoder does before classifying.
async function drawPreview(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = $("preview");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.dataset.width = bitmap.width;
  canvas.dataset.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  $("photo-note").textContent = `${file.name}: ${canvas.dataset.width} × ${canvas.dataset.height} pixels, upright (EXIF orientation applied)`;
  $("photo").hidden = false;
}

function latencies(header) {
  // Server-Timing: decode;dur=3.1, m0;dur=12.3;desc="name", ...
  const found = {};
  for (const part of (header || "").split(",")) {
    const name = part.split(";")[0].trim();
    const dur = /;\s*dur=([\d.]+)/.exec(part);
    if (dur) found[name] = parseFloat(dur[1]);
  }
  return found;
}

function agreement(results) {
  const answered = results.filter((r) => r.top);
  const counts = new Map();
  for (const r of answered) {
    for (const c of r.top) {
      const entry = counts.get(c.index) || { name: c.name, index: c.index, n: 0 };
      entry.n += 1;
      counts.set(c.index, entry);
    }
  }
  const shared = [...counts.values()].filter((c) => c.n >= 2).sort((a, b) => b.n - a.n || a.index - b.index);
  return { answered: answered.length, shared, everywhere: new Set(shared.filter((c) => c.n === answered.length).map((c) => c.index)) };
}

function showAgreement(results, topK) {
  const { answered, shared } = agreement(results);
  $("agreement").hidden = answered < 2;
  if (answered < 2) return;
  const text = shared.length
    ? shared.map((c) => `${c.name} (${c.index}): ${c.n} of ${answered}`).join("; ")
    : `no class is in the top-${topK} of two models`;
  $("agree-text").textContent = `In the top-${topK} of several models: ${text}.`;
}

function modelCard(result, ms, everywhere) {
  const card = el("article", "model");
  card.dataset.model = result.model;
  card.append(el("h2", "", result.model));
  if (!result.top) {
    card.append(el("p", "failed", `failed: ${result.error}: ${result.reason}`));
    return card;
  }
  card.append(el("p", "meta", ms === undefined ? "" : `${ms.toFixed(0)} ms (queue + batch + model)`));
  const list = el("ol");
  for (const c of result.top) {
    const row = el("li", everywhere.has(c.index) ? "agree" : "");
    row.dataset.index = c.index;
    row.append(el("span", "idx", "#" + c.index), el("span", "name", c.name),
               el("span", "prob", (100 * c.probability).toFixed(1) + " %"));
    const track = el("div", "track");
    const fill = el("div", "fill");
    fill.style.width = (100 * c.probability).toFixed(2) + "%";  // CSSOM, which the CSP allows
    track.append(fill);
    row.append(track);
    row.title = `${c.name} (index ${c.index}, ${c.wnid}): ${c.probability.toFixed(4)}`;
    list.append(row);
  }
  card.append(list);
  return card;
}

async function classify() {
  const models = chosenModels();
  if (!photo) return setStatus("choose a photo first", true);
  if (!models.length) return setStatus("choose at least one model", true);
  const topK = $("topk").value || "5";
  const form = new FormData();
  form.append("image", photo, photo.name);
  form.append("models", models.join(","));
  form.append("top_k", topK);
  const mine = ++asked;
  setStatus(`classifying with ${models.length} model${models.length > 1 ? "s" : ""}…`);
  $("run").disabled = true;
  try {
    const response = await fetch("/api/classify", { method: "POST", body: form });
    const body = await response.json();
    if (mine !== asked) return;
    if (!response.ok) return setStatus(`${response.status}: ${body.message || body.error}`, true);
    const times = latencies(response.headers.get("Server-Timing"));
    const { everywhere } = agreement(body);
    const cards = body.map((r, i) => modelCard(r, times["m" + i], everywhere));
    $("results").replaceChildren(...cards);
    showAgreement(body, topK);
    setStatus(`done; decoding the photo took ${(times.decode || 0).toFixed(0)} ms`);
  } catch (error) {
    if (mine === asked) setStatus(`the request failed: ${error.message}`, true);
  } finally {
    if (mine === asked) $("run").disabled = !photo;
  }
}

async function choose(file) {
  if (!file) return;
  photo = file;
  $("run").disabled = false;
  $("results").replaceChildren();
  $("agreement").hidden = true;
  try {
    await drawPreview(file);
  } catch (error) {
    $("photo").hidden = true;  // the browser cannot draw it; the server says whether it is an image
  }
  await classify();
}

function wireDrop() {
  const drop = $("drop");
  for (const kind of ["dragenter", "dragover"]) {
    drop.addEventListener(kind, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const kind of ["dragleave", "drop"]) {
    drop.addEventListener(kind, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => { e.preventDefault(); choose(e.dataTransfer.files[0]); });
  $("file").addEventListener("change", (e) => choose(e.target.files[0]));
  $("run").addEventListener("click", classify);
}

wireDrop();
loadModels().catch((error) => setStatus(`the model list could not be loaded: ${error.message}`, true));
