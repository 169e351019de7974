// The console: sign-in, views (#/calls, #/calls?node=<id>, #/new, #/calls/<id>, #/history), live events,
// row actions.

import { ApiError, followEvents, forgetToken, request, savedToken, saveToken } from "./api.js";
import { CallsTable } from "./calls.js";
import { CallDetails } from "./details.js";
import { notice } from "./dom.js";
import { focusCallForm, setUpCallForm } from "./form.js";
import { HistoryView } from "./history.js";
import { NodesBar } from "./nodes.js";
import { Player } from "./player.js";
import { CallStore } from "./store.js";

const VIEWS = ["signin", "calls", "new", "details", "history"];
const store = new CallStore();
const settings = { playbackUrl: "", scope: "full" };
const player = new Player();
const table = new CallsTable(store, { hangUp: confirmHangUp, dtmf: askDtmf, listen: (id) => player.listen(id) });
const details = new CallDetails(store, settings, player);
const history = new HistoryView();
const nodesBar = new NodesBar(table);
let events = null; // AbortController of the event stream

function showView(name) {
  for (const view of VIEWS) document.getElementById(`view-${view}`).hidden = view !== name;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  if (savedToken() === null) return showView("signin");
  const hash = location.hash || "#/calls";
  const match = hash.match(/^#\/calls\/(.+)$/);
  if (match) {
    showView("details");
    details.show(decodeURIComponent(match[1]));
    return;
  }
  details.hide();
  const view = { "#/new": "new", "#/history": "history" }[hash] || "calls";
  showView(view);
  if (view === "calls") {
    const node = hash.match(/^#\/calls\?node=(.+)$/);
    nodesBar.select(node ? decodeURIComponent(node[1]) : null);
  }
  if (view === "new") {
    if (settings.scope !== "full") notice("This token is read-only: it cannot start calls.", "warning");
    focusCallForm();
  }
  if (view === "history") history.load();
}

async function signIn(token) {
  saveToken(token);
  let me;
  try {
    me = await request("GET", "/api/v1/whoami");
  } catch (error) {
    forgetToken();
    throw error;
  }
  settings.playbackUrl = me.playbackUrl;
  settings.scope = me.scope;
  table.canAct = me.scope === "full";
  table.canListen = me.scope !== "read";
  document.getElementById("who-name").textContent = `Signed in as ${me.name}${me.scope !== "full" ? " (read-only)" : ""}`;
  document.getElementById("nav").hidden = false;
  document.getElementById("who").hidden = false;
  document.getElementById("new-call-link").hidden = me.scope !== "full";
  document.querySelector('#nav a[data-view="new"]').hidden = me.scope !== "full";
  if (me.scope !== "full") notice("Read-only token: you can watch calls but not start, hang up or send DTMF.", "warning");
  await store.load();
  await nodesBar.start();
  startEvents();
}

function signInMessage(error) {
  if (error instanceof ApiError && error.status === 401) {
    return "That token was not accepted. Check it against the daemon's [auth] tokens (it is case-sensitive).";
  }
  if (error instanceof ApiError && error.status === 429) return "Too many attempts; wait a moment and try again.";
  return error.message;
}

function startEvents() {
  events?.abort();
  events = new AbortController();
  const pill = document.getElementById("stream-status");
  let reconnecting = false;
  followEvents("/api/v1/events?stats=1", (type, data) => store.apply(type, data), (status) => {
    pill.textContent = `events: ${{ open: "live", retrying: "reconnecting…", closed: "off" }[status] || status}`;
    pill.dataset.status = status;
    if (status === "open" && reconnecting) store.load(); // catch up on what happened while it was down
    reconnecting = status === "retrying";
    if (status === "unauthorized") signOut("The token is no longer accepted; sign in again.");
  }, events.signal);
}

function signOut(message) {
  events?.abort();
  nodesBar.stop();
  forgetToken();
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  notice(message || "Signed out.");
  location.hash = "#/calls";
  route();
}

function confirmHangUp(callId) {
  const dialog = document.getElementById("hangup-dialog");
  document.getElementById("hangup-text").textContent = `End call ${callId}? The far end gets a BYE and the stream stops.`;
  dialog.onclose = async () => {
    if (dialog.returnValue !== "hangup") return;
    try {
      await request("DELETE", `/api/v1/calls/${encodeURIComponent(callId)}`);
      notice(`Hanging up ${callId}.`);
    } catch (error) {
      notice(`Could not hang up ${callId}: ${error.message}`, "error");
    }
  };
  dialog.returnValue = "";
  dialog.showModal();
}

function askDtmf(callId) {
  const dialog = document.getElementById("dtmf-dialog");
  const input = document.getElementById("dtmf-digits");
  const error = document.getElementById("dtmf-error");
  input.value = "";
  error.textContent = "";
  dialog.dataset.callId = callId;
  dialog.querySelector("h2").textContent = `Send DTMF to ${callId}`;
  dialog.showModal();
}

async function sendDtmf(event) {
  event.preventDefault();
  const dialog = document.getElementById("dtmf-dialog");
  const digits = document.getElementById("dtmf-digits").value.trim();
  const error = document.getElementById("dtmf-error");
  if (!/^[0-9*#A-Da-d]{1,32}$/.test(digits)) {
    error.textContent = "Enter 1 to 32 of 0–9, *, #, A–D.";
    return;
  }
  try {
    await request("POST", `/api/v1/calls/${encodeURIComponent(dialog.dataset.callId)}/dtmf`, { digits });
    dialog.close();
    notice(`Sent ${digits} to ${dialog.dataset.callId}.`);
  } catch (failure) {
    error.textContent = failure.message;
  }
}

function wire() {
  document.getElementById("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("token-error");
    error.textContent = "";
    try {
      await signIn(document.getElementById("token").value.trim());
      document.getElementById("token").value = "";
      route();
    } catch (failure) {
      error.textContent = signInMessage(failure);
      document.getElementById("token").setAttribute("aria-invalid", "true");
    }
  });
  document.getElementById("sign-out").addEventListener("click", () => signOut());
  document.getElementById("dtmf-form").addEventListener("submit", sendDtmf);
  for (const button of document.querySelectorAll("dialog [data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
  setUpCallForm((call) => {
    notice(`Call ${call.callId} started.`);
    store.calls.set(call.callId, call);
    store.changed();
    location.hash = "#/calls";
  });
  store.onChange(() => {
    table.render();
    details.redraw();
  });
  window.addEventListener("hashchange", route);
}

async function start() {
  wire();
  const token = savedToken();
  if (token !== null) {
    try {
      await signIn(token);
    } catch (error) {
      notice(signInMessage(error), "error");
    }
  }
  route();
}

start();
