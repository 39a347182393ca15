// filegate upload page: plain JS on the public API. Everything user-provided is put in
// the page with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "filegate-api-key";

function key() { return $("key").value.trim(); }

function headers(extra) {
  return Object.assign({ "Authorization": "Bearer " + key() }, extra || {});
}

function cell(row, text, cls) {
  const td = row.insertCell();
  if (text instanceof Node) td.appendChild(text); else td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method, headers: headers(body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error((data && data.error && data.error.message) || ("HTTP " + res.status));
    err.status = res.status; err.body = data;
    throw err;
  }
  return data;
}

async function sha256(file) {
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  let binary = "";
  for (const b of new Uint8Array(digest)) binary += String.fromCharCode(b);
  return btoa(binary);
}

function put(created, file, bar) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(created.upload_method, created.file_url);
    for (const [name, value] of Object.entries(created.upload_headers)) {
      // The browser sets Content-Length from the body itself.
      if (name.toLowerCase() !== "content-length") xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error("the store answered " + xhr.status)));
    xhr.onerror = () => reject(new Error("the upload failed (network or CORS)"));
    xhr.send(file);
  });
}

// Files this large go in parts: each part hashed in the browser, its SHA-256 signed
// into its URL, several in flight, each with its own progress bar.
const MULTIPART_FROM = 16 * 1024 * 1024;
const PART_SIZE = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT = 4;

function putPart(part, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(part.method, part.url);
    for (const [name, value] of Object.entries(part.headers)) {
      if (name.toLowerCase() !== "content-length") xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded); };
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error("the store answered " + xhr.status + " to part " + part.part_number)));
    xhr.onerror = () => reject(new Error("part " + part.part_number + " failed (network or CORS)"));
    xhr.send(blob);
  });
}

async function putParts(created, file, bar, row) {
  const mp = created.multipart;
  const slice = (n) => file.slice((n - 1) * mp.part_size_bytes, Math.min(n * mp.part_size_bytes, file.size));
  const holder = document.createElement("div");
  holder.className = "parts";
  const partBars = [];
  for (let n = 1; n <= mp.part_count; n++) {
    const b = document.createElement("progress"); b.max = 1; b.value = 0; b.title = "part " + n;
    holder.appendChild(b); partBars.push(b);
  }
  row.cells[2].appendChild(holder);
  const sent = new Array(mp.part_count).fill(0);
  const signed = new Map(mp.parts.map((p) => [p.part_number, p]));
  let next = 1;
  async function worker() {
    while (next <= mp.part_count) {
      const n = next++;
      const blob = slice(n);
      let part = signed.get(n);
      if (!part) {
        const checksum = await sha256(blob);
        part = (await api("POST", "/v2/files/" + created.file_uuid + "/parts",
          { parts: [{ part_number: n, checksum_sha256: checksum }] })).parts[0];
      }
      await putPart(part, blob, (loaded) => {
        sent[n - 1] = loaded;
        partBars[n - 1].value = blob.size ? loaded / blob.size : 1;
        bar.value = sent.reduce((a, b) => a + b, 0) / Math.max(file.size, 1);
      });
      partBars[n - 1].value = 1;
      row.dataset.partsSent = String((Number(row.dataset.partsSent) || 0) + 1);
    }
  }
  await Promise.all(Array.from({ length: Math.min(PARTS_IN_FLIGHT, mp.part_count) }, worker));
}

function setStatus(row, status, text) {
  const td = row.cells[3];
  td.textContent = text || status;
  td.className = "status-" + status;
  row.dataset.status = status;
}

async function uploadAll(files) {
  if (!key()) { alert("Paste an API key first."); return; }
  const tbody = $("uploads").tBodies[0];
  const rows = files.map((file) => {
    const row = tbody.insertRow();
    row.dataset.name = file.name;
    cell(row, file.name);
    cell(row, file.type || "(from extension)");
    const bar = document.createElement("progress"); bar.max = 1; bar.value = 0;
    cell(row, bar);
    cell(row, "hashing");
    setStatus(row, "pending", "hashing");
    return { file, row, bar };
  });
  const labels = $("labels").value.split(",").map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < rows.length; i += 50) {
    let batch = rows.slice(i, i + 50);
    // Large files are held to their parts' digests, hashed as each part is sent.
    for (const r of batch) r.checksum = r.file.size >= MULTIPART_FROM ? undefined : await sha256(r.file);
    let created = null;
    while (batch.length && !created) {
      const body = {
        files: batch.map((r) => ({
          name: r.file.name, size_bytes: r.file.size, checksum_sha256: r.checksum,
          upload_method: r.file.size >= MULTIPART_FROM ? "MULTIPART" : undefined,
          part_size_bytes: r.file.size >= MULTIPART_FROM ? PART_SIZE : undefined,
          // The server's type registry knows the extension better than the browser
          // (which calls a CSV application/vnd.ms-excel on Windows): send the
          // browser's guess only for names without one.
          content_type: /\.[^./]+$/.test(r.file.name) ? undefined : (r.file.type || undefined),
          path: $("path").value || undefined,
          labels: labels.length ? labels : undefined,
        })),
      };
      const ws = $("workspace").value.trim();
      if (ws) body.workspace_uuid = ws;
      try {
        created = await api("POST", "/v2/files", body);
      } catch (err) {
        const failing = (err.body && err.body.error && err.body.error.details && err.body.error.details.files) || [];
        if (!failing.length) { for (const r of batch) setStatus(r.row, "failed", err.message); batch = []; break; }
        const bad = new Set(failing.map((f) => f.index));
        failing.forEach((f) => setStatus(batch[f.index].row, "failed", f.message));
        batch = batch.filter((_, idx) => !bad.has(idx));
      }
    }
    if (!created) continue;
    const sent = [];
    await Promise.all(batch.map(async (r, idx) => {
      const c = created.files[idx];
      try {
        setStatus(r.row, "uploading", "uploading");
        if (c.upload_method === "MULTIPART") await putParts(c, r.file, r.bar, r.row);
        else await put(c, r.file, r.bar);
        setStatus(r.row, "checking", "checking");
        sent.push({ r, id: c.file_uuid });
      } catch (err) {
        setStatus(r.row, "failed", err.message);
      }
    }));
    if (!sent.length) continue;
    // The batch's uploads are verified together, in one request.
    try {
      const done = await api("POST", "/v2/files/complete", { file_uuids: sent.map((s) => s.id) });
      done.files.forEach((entry, idx) => {
        const row = sent[idx].r.row;
        const reason = entry.error && entry.error.details && entry.error.details.rejection_reason;
        if (!entry.error) setStatus(row, "ready", "ready");
        else if (reason) setStatus(row, "rejected", "rejected: " + reason);
        else setStatus(row, "failed", entry.error.message);
      });
    } catch (err) {
      for (const s of sent) setStatus(s.r.row, "failed", err.message);
    }
  }
  await firstPage();
}

async function download(id) {
  const file = await api("GET", "/v2/files/" + id);
  if (file.download_url) window.location.href = file.download_url;
}

// Bytes in binary units: "812 B", "48.2 KiB", "20.0 MiB".
function humanBytes(n) {
  if (n == null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? v + " B" : v.toFixed(1) + " " + units[i];
}

// The library's listing: its filters, and the cursors of the pages walked so far.
const listing = { cursors: [null], page: 0 };

function listQuery() {
  const q = new URLSearchParams();
  const ws = $("workspace").value.trim();
  if (ws) q.set("workspace_uuid", ws);
  const path = $("filter-path").value;
  if (path) q.set("path", path);
  const label = $("filter-label").value.trim();
  if (label) q.set("label", label);
  const status = $("filter-status").value;
  if (status) q.set("status", status);
  q.set("limit", $("page-size").value);
  const cursor = listing.cursors[listing.page];
  if (cursor) q.set("cursor", cursor);
  return q.toString();
}

async function showUsage(workspace) {
  const u = await api("GET", "/v2/workspaces/" + workspace + "/usage");
  const pct = (n) => Math.min(100, (100 * n) / Math.max(u.quota_bytes, 1)) + "%";
  $("usage-used").style.width = pct(u.used_bytes);
  $("usage-reserved").style.width = pct(u.reserved_bytes);
  $("usage-text").textContent = humanBytes(u.used_bytes) + " used and " + humanBytes(u.reserved_bytes) +
    " reserved of " + humanBytes(u.quota_bytes) + " · " + u.file_count + " files (" +
    u.pending_file_count + " pending) · files up to " + humanBytes(u.max_file_bytes);
  $("usage").dataset.used = String(u.used_bytes);
  $("usage").dataset.files = String(u.file_count);
  $("usage").hidden = false;
}

async function remove(f) {
  if (!confirm("Delete " + f.name + "? Its bytes leave the quota at once.")) return;
  await api("DELETE", "/v2/files/" + f.file_uuid);
  await refresh();
}

async function refresh() {
  if (!key()) return;
  const tbody = $("library").tBodies[0];
  $("library-error").textContent = "";
  try {
    const page = await api("GET", "/v2/files?" + listQuery());
    tbody.replaceChildren();
    for (const f of page.files) {
      const row = tbody.insertRow();
      row.dataset.name = f.name;
      row.dataset.status = f.status;
      row.dataset.size = f.size_bytes == null ? "" : String(f.size_bytes);
      cell(row, f.name);
      cell(row, f.path || "");
      const labels = document.createElement("span");
      for (const l of f.labels) { const s = document.createElement("span"); s.className = "label"; s.textContent = l; labels.appendChild(s); }
      cell(row, labels);
      cell(row, humanBytes(f.size_bytes), "size");
      cell(row, f.rejection_reason ? f.status + ": " + f.rejection_reason : f.status, "status-" + f.status);
      const actions = document.createElement("span");
      if (f.status === "ready") {
        const b = document.createElement("button"); b.type = "button"; b.textContent = "Download";
        b.addEventListener("click", () => download(f.file_uuid).catch((e) => alert(e.message)));
        actions.appendChild(b);
      }
      const del = document.createElement("button"); del.type = "button"; del.textContent = "Delete";
      del.className = "danger delete";
      del.addEventListener("click", () => remove(f).catch((e) => { $("library-error").textContent = e.message; }));
      actions.appendChild(del);
      cell(row, actions);
    }
    listing.cursors[listing.page + 1] = page.next_cursor;
    $("next-page").disabled = !page.next_cursor;
    $("first-page").disabled = listing.page === 0;
    $("page-info").textContent = "page " + (listing.page + 1) + " · " + page.count + " matching";
    $("library").dataset.count = String(page.count);
    await showUsage(page.workspace_uuid);
  } catch (err) {
    $("library-error").textContent = err.message;
  }
}

function firstPage() {
  listing.cursors = [null];
  listing.page = 0;
  return refresh();
}

window.addEventListener("DOMContentLoaded", () => {
  $("key").value = sessionStorage.getItem(KEY) || "";
  $("key").addEventListener("change", () => { sessionStorage.setItem(KEY, key()); refresh(); });
  $("files").addEventListener("change", (e) => { uploadAll(Array.from(e.target.files)); e.target.value = ""; });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); uploadAll(Array.from(e.dataTransfer.files)); });
  $("refresh").addEventListener("click", refresh);
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); firstPage(); });
  $("first-page").addEventListener("click", firstPage);
  $("next-page").addEventListener("click", () => { listing.page++; refresh(); });
  refresh();
});
