// A web page of another origin (input.evilUrl, served on loopback under the name evil.example)
// tries to drive the daemon the way the security review did: a text/plain fetch and a text/plain
// form POST to /RESTCall/call, a fetch to /api/v1/node/drain; then a rebound name
// (rebound.example → 127.0.0.1, as DNS rebinding makes it) reads the call list as its own origin.
// Prints what the browser saw as one JSON line; tests/e2e/test_browser_guard.py judges it against
// the daemon's API and kamailio's log.

import { chromium } from "playwright-core";

const input = JSON.parse(process.argv[2]);
const seen = { steps: [] };

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--host-resolver-rules=MAP evil.example 127.0.0.1, MAP rebound.example 127.0.0.1",
  ],
});
try {
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(20000);
  await page.goto(input.evilUrl);
  seen.steps.push("evil page");
  // no-cors: the browser sends it without a preflight and hides the answer from the page
  seen.fetchCall = await page.evaluate(async ({ url, body }) => {
    try {
      const reply = await fetch(url, { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body });
      return reply.type;
    } catch (error) {
      return `error: ${error}`;
    }
  }, { url: `${input.daemonUrl}/RESTCall/call`, body: JSON.stringify(input.fetchBody) });
  seen.fetchDrain = await page.evaluate(async (url) => {
    try {
      return (await fetch(url, { method: "POST", mode: "no-cors", body: "{}" })).type;
    } catch (error) {
      return `error: ${error}`;
    }
  }, `${input.daemonUrl}/api/v1/node/drain`);
  seen.steps.push("fetches");
  // A form with enctype text/plain whose one field makes the body a JSON document: name + "=" + value.
  const navigation = page.waitForEvent("framenavigated", { timeout: 15000 });
  await page.evaluate(({ url, name, value }) => {
    const form = document.createElement("form");
    form.method = "POST";
    form.action = url;
    form.enctype = "text/plain";
    const field = document.createElement("input");
    field.name = name;
    field.value = value;
    form.appendChild(field);
    document.body.appendChild(form);
    form.submit();
  }, { url: `${input.daemonUrl}/RESTCall/call`, ...input.formField });
  await navigation;
  await page.waitForLoadState("domcontentloaded");
  seen.formAnswer = await page.evaluate(() => document.body.innerText);
  seen.steps.push("form");
  const rebound = await page.goto(`http://rebound.example:${input.daemonPort}/api/v1/calls`);
  seen.reboundStatus = rebound.status();
  seen.reboundBody = await rebound.text();
  seen.steps.push("rebound");
  seen.ok = true;
} catch (error) {
  seen.error = String(error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
