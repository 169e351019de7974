// Drives the real console in Debian's chromium (playwright-core) against a running daemon.
// Input: one JSON argument (see tests/e2e/test_console.py). Output: one JSON line of what was
// seen; exit code 1 with the failed step on any failure. Screenshots go to input.artifacts.

import { check, input, newPage as openPage, runScenario, shot, signIn, hangUp } from "./harness.mjs";

const seen = { steps: [], levels: [], packets: [], consoleErrors: [] };

// Chromium logs every 4xx response as a console error; the two steps that provoke one on
// purpose may have exactly that one, nothing else.
const EXPECTED = { "wrong token": /status of 401/, "field errors": /status of 400/ };
function expectedNetworkError(text) {
  const expected = EXPECTED[seen.steps.at(-1)];
  return Boolean(expected && text.startsWith("Failed to load resource") && expected.test(text));
}

const newPage = (browser, viewport) => openPage(browser, seen, viewport, expectedNetworkError);

async function wrongToken(page) {
  await signIn(page, "not-the-token");
  const error = page.locator("#token-error");
  await error.waitFor({ state: "visible" });
  seen.signInError = await error.textContent();
  check(/not accepted/.test(seen.signInError), `wrong token message: ${seen.signInError}`);
  await shot(page, "signin-error");
}

async function fillCall(page, call) {
  await page.getByRole("link", { name: "New call", exact: true }).first().click();
  for (const [label, value] of call.text) await page.getByLabel(label, { exact: true }).fill(value);
}

async function fieldErrors(page) {
  // Client-side: an empty required field is caught before any request.
  await fillCall(page, { text: [["Call ID *", ""]] });
  await page.getByRole("button", { name: "Start call" }).click();
  seen.clientError = await page.locator("#f-callId-error").textContent();
  check(seen.clientError === "this field is required", `client-side error: ${seen.clientError}`);
  // Server-side: a host the daemon does not allow (only the server knows its allow-list).
  await fillCall(page, { text: [...input.call.text, ["RTMP URL *", "rtmp://not-allowed.example/live"]] });
  await page.getByRole("button", { name: "Start call" }).click();
  const error = page.locator("#f-rtmpUrl-error");
  await page.waitForFunction(() => document.querySelector("#f-rtmpUrl-error").textContent.includes("allowed"));
  seen.serverError = await error.textContent();
  await shot(page, "new-call-server-error");
}

async function startCall(page) {
  await fillCall(page, input.call);
  await shot(page, "new-call-form");
  await page.getByRole("button", { name: "Start call" }).click();
  const row = page.locator(`tr[data-call-id="${input.callId}"]`);
  await row.waitFor();
  await row.locator('[data-col="state"]', { hasText: "ESTABLISHED" }).waitFor({ timeout: 30000 });
  await row.locator('[data-col="streamState"]', { hasText: "PUBLISHING" }).waitFor({ timeout: 30000 });
  for (let i = 0; i < 6; i++) {
    await page.waitForTimeout(1000);
    seen.levels.push(await row.locator("meter").evaluate((meter) => meter.value));
    seen.packets.push(Number((await row.locator('[data-col="packets"]').textContent()).replaceAll(",", "")));
  }
  await shot(page, "live-calls");
  return row;
}

async function details(page, row) {
  await row.getByRole("link", { name: `Details of ${input.callId}` }).click();
  await page.locator("#view-details canvas").first().waitFor();
  await page.waitForTimeout(3000); // a few stats samples for the charts
  seen.playbackLink = await page.locator("#playback-link").getAttribute("href");
  seen.mediaSummary = await page.locator("#media-summary").textContent();
  seen.ladderRows = await page.locator("table.ladder tbody tr").count();
  seen.destinationRows = await page.locator("table.destinations tbody tr").allTextContents();
  seen.chartCaption = await page.locator(".chart figcaption").first().textContent();
  await shot(page, "call-details");
  await page.getByRole("link", { name: "Back to calls" }).click();
}

async function history(page) {
  await page.getByRole("link", { name: "History" }).click();
  await page.getByLabel("State").selectOption("FINISH");
  await page.getByRole("button", { name: "Filter" }).click();
  const row = page.locator("#history-body tr", { hasText: input.callId });
  await row.waitFor();
  seen.historyRow = (await row.textContent()).trim();
  await shot(page, "history");
}

async function phoneWidth(browser) {
  const page = await newPage(browser, { width: 390, height: 844 });
  await signIn(page, input.token);
  await page.locator("#view-calls").waitFor();
  await page.waitForTimeout(500);
  seen.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await shot(page, "phone-calls");
  await page.context().close();
}

async function readOnly(browser) {
  const page = await newPage(browser);
  await signIn(page, input.readToken);
  await page.locator("#notice", { hasText: "Read-only" }).waitFor();
  seen.readOnlyNotice = await page.locator("#notice").textContent();
  seen.readOnlyNewCallVisible = await page.locator("#new-call-link").isVisible();
  await page.context().close();
}

let page, row;
runScenario(seen, [
  ["wrong token", async (browser) => { page = await newPage(browser); await wrongToken(page); }],
  ["sign in", async () => { await signIn(page, input.token); await page.locator("#who-name").waitFor(); }],
  ["field errors", () => fieldErrors(page)],
  ["start call", async () => { row = await startCall(page); }],
  ["details", () => details(page, row)],
  ["hang up", () => hangUp(page, row, seen)],
  ["history", () => history(page)],
  ["phone width", (browser) => phoneWidth(browser)],
  ["read-only token", (browser) => readOnly(browser)],
]);
