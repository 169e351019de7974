// Listening to a live call and playing its recording in the real console (Debian's chromium via
// playwright-core). The page itself measures what it plays: a Web Audio AnalyserNode on the
// player's <audio> element, its dominant frequency polled every 100 ms. Input: one JSON argument
// (see tests/e2e/test_console.py); output: one JSON line of what was seen.

import { hangUp, input, newPage, runScenario, shot, signIn } from "./harness.mjs";

const seen = { steps: [], consoleErrors: [] };

// In the page: route the player through an analyser once, then report the loudest bin's frequency.
async function installAnalyser(page) {
  await page.evaluate(() => {
    const audio = document.getElementById("player-audio");
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 8192;
    context.createMediaElementSource(audio).connect(analyser);
    analyser.connect(context.destination);
    window.dominantHz = () => {
      const bins = new Float32Array(analyser.frequencyBinCount);
      analyser.getFloatFrequencyData(bins);
      let peak = 0;
      for (let i = 1; i < bins.length; i++) if (bins[i] > bins[peak]) peak = i;
      return { hz: (peak * context.sampleRate) / analyser.fftSize, db: bins[peak], state: context.state };
    };
    window.resumeAudio = () => context.resume();
  });
}

// Seconds from now until the analyser hears `hz` ± 10 (at least -60 dB), or null after `limit` s.
async function secondsUntilHeard(page, hz, limit) {
  const start = Date.now();
  let last = null;
  while (Date.now() - start < limit * 1000) {
    last = await page.evaluate(() => window.dominantHz());
    if (Math.abs(last.hz - hz) <= 10 && last.db > -60) return { seconds: (Date.now() - start) / 1000, last };
    await page.waitForTimeout(100);
  }
  return { seconds: null, last };
}

async function listen(page) {
  await signIn(page, input.token);
  const row = page.locator(`tr[data-call-id="${input.callId}"]`);
  await row.locator('[data-col="streamState"]', { hasText: "PUBLISHING" }).waitFor({ timeout: 30000 });
  await installAnalyser(page);
  await row.getByRole("button", { name: `Listen to ${input.callId}` }).click();
  await page.evaluate(() => window.resumeAudio());
  const heard = await secondsUntilHeard(page, 440, 3);
  seen.listenSeconds = heard.seconds;
  seen.listenLast = heard.last;
  seen.playerLabel = await page.locator("#player-label").textContent();
  await shot(page, "listen");
  await page.locator("#player-stop").click();
  return row;
}

// Until the analyser hears nothing (what played before has died away), at most `limit` s.
async function untilSilent(page, limit) {
  const start = Date.now();
  while (Date.now() - start < limit * 1000) {
    const { db } = await page.evaluate(() => window.dominantHz());
    if (db === null || db < -100) return true;
    await page.waitForTimeout(100);
  }
  return false;
}

async function playRecording(page) {
  await page.goto(`${input.baseUrl}#/calls/${encodeURIComponent(input.callId)}`);
  seen.silentBeforePlay = await untilSilent(page, 5);
  const play = page.getByRole("button", { name: `Play ${input.recording}` });
  await play.waitFor({ timeout: 20000 });
  seen.recordingRows = await page.locator("table.recordings tbody tr").allTextContents();
  await play.click();
  await page.evaluate(() => window.resumeAudio());
  const heard = await secondsUntilHeard(page, 440, 5);
  seen.recordingSeconds = heard.seconds;
  seen.recordingLast = heard.last;
  seen.recordingSrc = await page.locator("#player-audio").getAttribute("src");
  await shot(page, "recording-player");
  await page.locator("#player-stop").click();
}

// The page asks for the recording with a ticket issued for another call: the daemon must refuse it.
async function foreignTicket(page) {
  seen.foreign = await page.evaluate(async ({ callId, recording, ticket }) => {
    const url = `/api/v1/calls/${encodeURIComponent(callId)}/recordings/${recording}?ticket=${encodeURIComponent(ticket)}`;
    const response = await fetch(url);
    return { status: response.status, message: (await response.json()).error.message };
  }, input);
}

// Chromium logs the 403 the last step provokes on purpose as a console error; that one is expected.
const refusedOnPurpose = (text) => seen.steps.at(-1) === "another call's ticket" && /status of 403/.test(text);

let page, row;
runScenario(seen, [
  ["listen", async (browser) => { page = await newPage(browser, seen, undefined, refusedOnPurpose); row = await listen(page); }],
  ["hang up", () => hangUp(page, row, seen)],
  ["play recording", () => playRecording(page)],
  ["another call's ticket", () => foreignTicket(page)],
]);
