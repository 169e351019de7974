// An ingest call (a WebSocket media stream) in the real console, Debian's chromium via
// playwright-core: its row, its details, and a hang-up from the row. Input: one JSON argument
// (see tests/e2e/test_console.py). Output: one JSON line of what was seen; exit code 1 with
// the failed step on any failure. Screenshots go to input.artifacts.

import { input, newPage, runScenario, shot, signIn, hangUp } from "./harness.mjs";

const seen = { steps: [], consoleErrors: [] };

async function watchRow(page) {
  await signIn(page, input.token);
  const row = page.locator(`tr[data-call-id="${input.callId}"]`);
  await row.locator('[data-col="streamState"]', { hasText: "PUBLISHING" }).waitFor({ timeout: 30000 });
  seen.party = await row.locator('[data-col="callee"]').textContent();
  seen.dtmfDisabled = await row.getByRole("button", { name: `Send DTMF to ${input.callId}` }).isDisabled();
  seen.packetsShown = Number((await row.locator('[data-col="packets"]').textContent()).replaceAll(",", ""));
  await shot(page, "ingest-row");
  return row;
}

async function details(page, row) {
  await row.getByRole("link", { name: `Details of ${input.callId}` }).click();
  await page.locator("[data-field=source]").waitFor();
  seen.source = await page.locator("[data-field=source]").textContent();
  seen.headings = await page.locator("#details-body h3").allTextContents();
  seen.timeline = await page.locator("ol.timeline").textContent();
  await shot(page, "ingest-details");
  await page.getByRole("link", { name: "Back to calls" }).click();
}

let page, row;
runScenario(seen, [
  ["row", async (browser) => { page = await newPage(browser, seen); row = await watchRow(page); }],
  ["details", () => details(page, row)],
  ["hang up", () => hangUp(page, row, seen)],
]);
