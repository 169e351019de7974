// The live calls table: rows updated in place from the event stream (no re-render, focus stays put).

import { targetsLabel } from "./destinations.js";
import { element } from "./dom.js";
import { FINAL_STATES, answeredAt, duration, endedAt, isIngest, lossPercent, number, partyLabel } from "./format.js";

const LEVEL_FLOOR = -60;

export class CallsTable {
  constructor(store, actions) {
    this.store = store; // the shared call store (state.js)
    this.actions = actions; // { hangUp(callId), dtmf(callId), listen(callId) }
    this.body = document.getElementById("calls-body");
    this.rows = new Map();
    this.canAct = true;
    this.canListen = true; // scope listen or full
    this.clustered = false; // one node of a cluster: the Node column is shown
    this.nodeFilter = null; // the per-node view: only this node's calls
  }

  setClustered(clustered) {
    if (clustered === this.clustered) return;
    this.clustered = clustered;
    document.querySelector('#calls-table th[data-col="node"]').hidden = !clustered;
    for (const row of this.rows.values()) row.cells.node.hidden = !clustered;
  }

  setNodeFilter(node) {
    this.nodeFilter = node;
    this.render();
  }

  shown(call) {
    return this.nodeFilter === null || call.node === this.nodeFilter;
  }

  render() {
    const calls = this.store.ordered().filter((call) => this.shown(call));
    const visible = new Set(calls.map((call) => call.callId));
    for (const [callId, row] of this.rows) {
      if (!visible.has(callId)) {
        row.tr.remove();
        this.rows.delete(callId);
      }
    }
    calls.forEach((call, index) => {
      const row = this.rows.get(call.callId) || this.addRow(call);
      if (this.body.children[index] !== row.tr) this.body.insertBefore(row.tr, this.body.children[index] || null);
      this.fill(row, call);
    });
    const active = calls.filter((call) => !FINAL_STATES.has(call.state)).length;
    document.getElementById("calls-count").textContent = `(${active} up)`;
    document.getElementById("calls-empty").hidden = calls.length > 0;
  }

  addRow(call) {
    const cells = {};
    const tr = element("tr", { "data-call-id": call.callId });
    for (const key of ["callId", "callee", "node", "state", "streamState", "duration", "packets", "loss", "jitter"]) {
      cells[key] = element("td", { "data-label": labelOf(key), "data-col": key });
      tr.append(cells[key]);
    }
    cells.node.hidden = !this.clustered;
    cells.meter = element("meter", { min: LEVEL_FLOOR, max: 0, low: -45, high: -6, optimum: -20, value: LEVEL_FLOOR });
    cells.levelText = element("span", { class: "level-text" });
    tr.append(element("td", { "data-label": "Level", "data-col": "level" }, [cells.meter, cells.levelText]));
    cells.target = element("td", { "data-label": "RTMP target", class: "target", "data-col": "target" });
    cells.reconnects = element("td", { "data-label": "Reconnects", "data-col": "reconnects" });
    tr.append(cells.target, cells.reconnects, this.actionCell(call.callId, cells));
    const row = { tr, cells };
    this.rows.set(call.callId, row);
    return row;
  }

  actionCell(callId, cells) {
    const details = element("a", { href: `#/calls/${encodeURIComponent(callId)}`, class: "button secondary small" }, [
      "Details",
    ]);
    details.setAttribute("aria-label", `Details of ${callId}`);
    cells.dtmf = element("button", { type: "button", class: "secondary small", "aria-label": `Send DTMF to ${callId}` }, [
      "DTMF",
    ]);
    cells.hangUp = element("button", { type: "button", class: "danger small", "aria-label": `Hang up ${callId}` }, [
      "Hang up",
    ]);
    cells.listen = element("button", { type: "button", class: "secondary small", "aria-label": `Listen to ${callId}` }, [
      "Listen",
    ]);
    cells.listen.addEventListener("click", () => this.actions.listen(callId));
    cells.dtmf.addEventListener("click", () => this.actions.dtmf(callId));
    cells.hangUp.addEventListener("click", () => this.actions.hangUp(callId));
    const buttons = [details, cells.listen, cells.dtmf, cells.hangUp];
    return element("td", { "data-label": "Actions", class: "row-actions" }, buttons);
  }

  fill(row, call) {
    const { cells } = row;
    const counters = call.counters || {};
    const ended = FINAL_STATES.has(call.state);
    set(cells.callId, call.callId);
    set(cells.callee, partyLabel(call));
    set(cells.node, call.node || "");
    setBadge(cells.state, call.state, call.reason);
    setBadge(cells.streamState, call.streamState, "");
    const started = answeredAt(call);
    const until = ended ? endedAt(call) || Date.now() : Date.now();
    set(cells.duration, started ? duration((until - started) / 1000) : "–");
    set(cells.packets, number(counters.packets));
    set(cells.loss, `${lossPercent(counters).toFixed(1)} %`);
    set(cells.jitter, `${(counters.jitterMs || 0).toFixed(1)} ms`);
    const level = typeof counters.levelDbfs === "number" ? counters.levelDbfs : -120;
    cells.meter.value = Math.max(level, LEVEL_FLOOR);
    set(cells.levelText, level <= -120 ? "silent" : `${level.toFixed(1)} dBFS`);
    cells.meter.setAttribute("aria-label", `Audio level of ${call.callId}: ${cells.levelText.textContent}`);
    set(cells.target, targetsLabel(call));
    set(cells.reconnects, number(counters.reconnects));
    cells.dtmf.disabled = ended || !this.canAct || call.state !== "ESTABLISHED" || isIngest(call);
    cells.dtmf.title = isIngest(call) ? "A WebSocket media stream cannot carry DTMF back to its platform" : "";
    cells.hangUp.disabled = ended || !this.canAct;
    cells.listen.disabled = ended || !this.canListen || call.streamState !== "PUBLISHING";
    row.tr.classList.toggle("ended", ended);
  }
}

function labelOf(key) {
  return {
    callId: "Call ID",
    callee: "Callee or source",
    node: "Node",
    state: "Call",
    streamState: "Stream",
    duration: "Duration",
    packets: "Packets",
    loss: "Loss",
    jitter: "Jitter",
  }[key];
}

function set(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function setBadge(cell, value, title) {
  set(cell, value || "–");
  cell.className = `state state-${(value || "none").toLowerCase()}`;
  if (title) cell.title = title;
}
