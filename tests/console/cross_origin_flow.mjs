// A web page of another origin (input.evilUrl, served on loopback under the name evil.example)
// tries to drive the daemon the way the security review did: a text/plain fetch and a text/plain
// form POST to /RESTCall/call, a fetch to /api/v1/node/drain; then a rebound name
// (rebound.example → 127.0.0.1, as DNS rebinding makes it) reads the call list as its own origin.
// Prints what the browser saw as one JSON line; tests/e2e/test_browser_guard.py judges it against
// the daemon's API and kamailio's log.

import { input, runScenario } from "./harness.mjs";

const seen = { steps: [], consoleErrors: [] };
let page;

// no-cors: the browser sends it without a preflight and hides the answer from the page
async function postFrom(url, headers, body) {
  return page.evaluate(async ({ url, headers, body }) => {
    try {
      return (await fetch(url, { method: "POST", mode: "no-cors", headers, body })).type;
    } catch (error) {
      return `error: ${error}`;
    }
  }, { url, headers, body });
}

// A form with enctype text/plain whose one field makes the body a JSON document: name + "=" + value.
async function submitForm(url, field) {
  const navigation = page.waitForEvent("framenavigated", { timeout: 15000 });
  await page.evaluate(({ url, name, value }) => {
    const form = document.createElement("form");
    form.method = "POST";
    form.action = url;
    form.enctype = "text/plain";
    const input = document.createElement("input");
    input.name = name;
    input.value = value;
    form.appendChild(input);
    document.body.appendChild(form);
    form.submit();
  }, { url, ...field });
  await navigation;
  await page.waitForLoadState("domcontentloaded");
  return page.evaluate(() => document.body.innerText);
}

await runScenario(seen, [
  ["evil page", async (browser) => {
    page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(20000);
    await page.goto(input.evilUrl);
  }],
  ["fetches", async () => {
    seen.fetchCall = await postFrom(`${input.daemonUrl}/RESTCall/call`, { "Content-Type": "text/plain" },
      JSON.stringify(input.fetchBody));
    seen.fetchDrain = await postFrom(`${input.daemonUrl}/api/v1/node/drain`, {}, "{}");
  }],
  ["form", async () => {
    seen.formAnswer = await submitForm(`${input.daemonUrl}/RESTCall/call`, input.formField);
  }],
  ["rebound", async () => {
    const rebound = await page.goto(`http://rebound.example:${input.daemonPort}/api/v1/calls`);
    seen.reboundStatus = rebound.status();
    seen.reboundBody = await rebound.text();
  }],
], ["--host-resolver-rules=MAP evil.example 127.0.0.1, MAP rebound.example 127.0.0.1"]);
