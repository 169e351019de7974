// What every browser scenario shares: its input (one JSON argument from tests/e2e/test_console.py),
// Debian's chromium through playwright-core, pages that collect console errors, screenshots, and
// the verdict (one JSON line of what was seen; exit code 1 naming the step that failed).

import { chromium } from "playwright-core";
import path from "node:path";

export const input = JSON.parse(process.argv[2]);

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

export const shot = (page, name) => page.screenshot({ path: path.join(input.artifacts, `${name}.png`), fullPage: true });

// A page whose console errors land in seen.consoleErrors, except those `expected(text)` allows.
export async function newPage(browser, seen, viewport = { width: 1280, height: 900 }, expected = () => false) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on("console", (message) => {
    if (message.type() === "error" && !expected(message.text())) seen.consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => seen.consoleErrors.push(`page error: ${error.message}`));
  return page;
}

export async function signIn(page, token) {
  await page.goto(input.baseUrl);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
}

// Hangs the call of `row` up from its row (with the dialog's confirmation) and waits for FINISH.
export async function hangUp(page, row, seen) {
  await row.getByRole("button", { name: `Hang up ${input.callId}` }).click();
  await page.locator("#hangup-dialog").getByRole("button", { name: "Hang up" }).click();
  await row.locator('[data-col="state"]', { hasText: "FINISH" }).waitFor({ timeout: 15000 });
  seen.endedState = await row.locator('[data-col="state"]').textContent();
}

// Runs [name, step(browser)] pairs in order in one browser, then prints `seen` and exits.
// `extraArgs`: more chromium switches (e.g. --host-resolver-rules for names that map to loopback).
export async function runScenario(seen, steps, extraArgs = []) {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--autoplay-policy=no-user-gesture-required",
      ...extraArgs,
    ],
  });
  try {
    for (const [name, step] of steps) {
      seen.steps.push(name);
      await step(browser);
    }
    seen.ok = true;
  } catch (error) {
    seen.ok = false;
    seen.error = `${seen.steps.at(-1)}: ${error.message}`;
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(seen));
  process.exit(seen.ok ? 0 : 1);
}
