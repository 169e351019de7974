// A cluster of two nodes in the real console, signed in on node-a (Debian's chromium via
// playwright-core): the Node column, the nodes bar, the per-node view of node-b, node-b's call's
// details, and a hang-up of it from node-a's console. Input: one JSON argument (see
// tests/e2e/test_console.py); output: one JSON line of what was seen.

import { check, input, newPage, runScenario, shot, signIn, hangUp } from "./harness.mjs";

const seen = { steps: [], consoleErrors: [] };

async function allNodes(page) {
  await signIn(page, input.token);
  for (const callId of [input.callId, input.otherCallId]) {
    await page.locator(`tr[data-call-id="${callId}"] [data-col="state"]`, { hasText: "ESTABLISHED" }).waitFor();
  }
  seen.nodeHeader = await page.locator('#calls-table th[data-col="node"]').isVisible();
  seen.rows = {};
  for (const row of await page.locator("#calls-body tr").all()) {
    seen.rows[await row.getAttribute("data-call-id")] = await row.locator('[data-col="node"]').textContent();
  }
  seen.bar = await page.locator("#nodes-bar a").allTextContents();
  await shot(page, "cluster-all-nodes");
}

async function nodeView(page) {
  await page.locator("#nodes-bar").getByRole("link", { name: /^node-b/ }).click();
  await page.locator("#calls-title-text", { hasText: "on node-b" }).waitFor();
  await page.locator(`tr[data-call-id="${input.otherCallId}"]`).waitFor({ state: "detached" });
  const rows = await page.locator("#calls-body tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.callId));
  seen.nodeView = { title: await page.locator("#calls-title-text").textContent(), rows };
  check(page.url().endsWith("#/calls?node=node-b"), `the per-node view has its own address: ${page.url()}`);
  await shot(page, "cluster-node-b");
}

async function details(page) {
  await page.getByRole("link", { name: `Details of ${input.callId}` }).click();
  await page.locator("[data-field=node]").waitFor();
  seen.detailsNode = await page.locator("[data-field=node]").textContent();
  await page.goBack();
  await page.locator("#calls-title-text", { hasText: "on node-b" }).waitFor();
}

let page;
runScenario(seen, [
  ["all nodes", async (browser) => { page = await newPage(browser, seen); await allNodes(page); }],
  ["node view", () => nodeView(page)],
  ["details", () => details(page)],
  ["hang up", () => hangUp(page, page.locator(`tr[data-call-id="${input.callId}"]`), seen)],
]);
