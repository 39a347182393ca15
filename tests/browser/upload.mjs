// End-to-end: the upload page in headless Chromium uploads a real PDF, a mislabeled
// file (a PNG named .pdf), a 20 MiB text file that goes in three parts and twelve
// small notes; the PDF, the large file and the notes must end ready, the PNG
// rejected, and the library must show them: sizes in binary units, the workspace's
// usage against its quota, filters by status, path and label, pages of ten, and a
// delete. Saves a screenshot.
//
// Env: FILEGATE_URL, FILEGATE_API_KEY, NODE_MODULES_DIR (where playwright-core is),
// SCREENSHOT (png path), CHROMIUM (default /usr/bin/chromium).
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const require = createRequire(process.env.NODE_MODULES_DIR + "/");
const { chromium } = require("playwright-core");

function pdf() {
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
  ];
  let out = "%PDF-1.4\n";
  const offsets = [];
  objects.forEach((body, i) => { offsets.push(out.length); out += `${i + 1} 0 obj\n${body}\nendobj\n`; });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const o of offsets) out += `${String(o).padStart(10, "0")} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, "latin1");
}

const large = Buffer.alloc(20 * 1024 * 1024, "filegate parts\n");

const png = Buffer.from("89504e470d0a1a0a0000000d4948445200000001000000010806000000" + "1f15c489", "hex");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 820 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
  await page.goto(process.env.FILEGATE_URL + "/");
  await page.fill("#key", process.env.FILEGATE_API_KEY);
  await page.press("#key", "Tab");
  await page.fill("#path", "browser/");
  await page.fill("#labels", "e2e");
  page.on("dialog", (d) => d.accept());
  const notes = Array.from({ length: 12 }, (_, i) => ({
    name: `note-${String(i + 1).padStart(2, "0")}.txt`, mimeType: "text/plain", buffer: Buffer.from(`note ${i + 1}\n`),
  }));
  await page.setInputFiles("#files", [
    { name: "report.pdf", mimeType: "application/pdf", buffer: pdf() },
    { name: "photo.pdf", mimeType: "application/pdf", buffer: png },
    { name: "large.txt", mimeType: "text/plain", buffer: large },
    ...notes,
  ]);
  const row = (table, name, status) => `#${table} tr[data-name="${name}"][data-status="${status}"]`;
  await page.waitForSelector(row("uploads", "report.pdf", "ready"), { timeout: 30000 });
  await page.waitForSelector(row("uploads", "photo.pdf", "rejected"), { timeout: 30000 });
  await page.waitForSelector(row("library", "report.pdf", "ready"), { timeout: 30000 });
  await page.waitForSelector(row("library", "photo.pdf", "rejected"), { timeout: 30000 });
  await page.waitForSelector(row("uploads", "large.txt", "ready"), { timeout: 60000 });
  await page.waitForSelector(row("library", "large.txt", "ready"), { timeout: 30000 });
  const parts = await page.getAttribute(row("uploads", "large.txt", "ready"), "data-parts-sent");
  assert.equal(parts, "3", "the large file went in three 8 MiB parts");
  const partBars = await page.$$eval(row("uploads", "large.txt", "ready") + " .parts progress", (bars) => bars.map((b) => b.value));
  assert.deepEqual(partBars, [1, 1, 1], "each part has its own progress bar, full");
  const reason = await page.textContent(row("uploads", "photo.pdf", "rejected") + " td:nth-child(4)");
  assert.match(reason, /image\/png/, "the rejection reason names what the bytes are");
  const labels = await page.textContent(row("library", "report.pdf", "ready"));
  assert.match(labels, /browser\//);
  assert.match(labels, /e2e/);
  await page.waitForSelector(row("uploads", "note-12.txt", "ready"), { timeout: 30000 });

  // Sizes in binary units; the usage of the workspace against its quota.
  await page.click("#refresh");
  await page.waitForSelector(`#library tr[data-name="large.txt"][data-size="${large.length}"]`);
  assert.match(await page.textContent(row("library", "large.txt", "ready") + " td.size"), /^20\.0 MiB$/);
  await page.waitForFunction(() => document.getElementById("usage").dataset.files === "14");
  const usage = await page.textContent("#usage-text");
  assert.match(usage, /20\.0 MiB used and 0 B reserved of \d+\.\d (MiB|GiB)/, usage);
  assert.match(usage, /14 files \(0 pending\)/, usage);

  // Pages of ten, newest first: 15 files are a page of 10 and a page of 5.
  await page.selectOption("#page-size", "10");
  await page.click("#filters button[type=submit]");
  await page.waitForFunction(() => document.querySelectorAll("#library tbody tr").length === 10);
  assert.match(await page.textContent("#page-info"), /page 1 · 15 matching/);
  await page.click("#next-page");
  await page.waitForFunction(() => document.querySelectorAll("#library tbody tr").length === 5);
  assert.match(await page.textContent("#page-info"), /page 2 · 15 matching/);
  assert.equal(await page.isDisabled("#next-page"), true);
  await page.click("#first-page");
  await page.waitForFunction(() => document.querySelectorAll("#library tbody tr").length === 10);

  // Filters: by status, then by path prefix and label.
  await page.selectOption("#filter-status", "rejected");
  await page.click("#filters button[type=submit]");
  await page.waitForFunction(() => document.querySelectorAll("#library tbody tr").length === 1);
  await page.waitForSelector(row("library", "photo.pdf", "rejected"));
  await page.selectOption("#filter-status", "");
  await page.fill("#filter-path", "browser/");
  await page.fill("#filter-label", "e2e");
  await page.click("#filters button[type=submit]");
  await page.waitForFunction(() => document.getElementById("library").dataset.count === "15");
  await page.fill("#filter-label", "no-such-label");
  await page.click("#filters button[type=submit]");
  await page.waitForFunction(() => document.getElementById("library").dataset.count === "0");
  await page.fill("#filter-label", "");
  await page.selectOption("#page-size", "50");
  await page.click("#filters button[type=submit]");
  await page.waitForFunction(() => document.querySelectorAll("#library tbody tr").length === 15);

  // Delete: the row goes, and the usage counts one file less.
  await page.click(row("library", "note-01.txt", "ready") + " button.delete");
  await page.waitForFunction(() => !document.querySelector('#library tr[data-name="note-01.txt"]'));
  await page.waitForFunction(() => document.getElementById("usage").dataset.files === "13");
  await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  // CORS preflights that fail show up as console errors; there must be none.
  assert.deepEqual(problems.filter((p) => !p.includes("422")), [], problems.join("\n"));
  console.log("screenshot: " + process.env.SCREENSHOT);
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
}
console.log(failed ? "browser: 0 passed, 1 failed" : "browser: 1 passed, 0 failed");
process.exit(failed ? 1 : 0);
