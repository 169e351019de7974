// What the console knows about calls: the views from the API, kept current by the event stream.

import { request } from "./api.js";
import { FINAL_STATES } from "./format.js";

const MAX_SAMPLES = 600; // per call: 10 minutes at one sample a second

export class CallStore {
  constructor() {
    this.calls = new Map(); // callId -> call view (as GET /api/v1/calls returns it)
    this.samples = new Map(); // callId -> [{ t, level, loss, jitter, kbps }]
    this.listeners = new Set();
  }

  onChange(listener) {
    this.listeners.add(listener);
  }

  changed() {
    for (const listener of this.listeners) listener();
  }

  ordered() {
    return [...this.calls.values()].sort((a, b) => (b.createdAt || "").localeCompare(a.createdAt || ""));
  }

  async load() {
    const page = await request("GET", "/api/v1/calls?limit=200");
    this.calls = new Map(page.calls.map((call) => [call.callId, call]));
    this.changed();
  }

  async refresh(callId) {
    try {
      const call = await request("GET", `/api/v1/calls/${encodeURIComponent(callId)}`);
      this.calls.set(callId, { ...this.calls.get(callId), ...call });
      this.changed();
      return call;
    } catch {
      return null;
    }
  }

  // One event from GET /api/v1/events (call.state, stream.state, call.event, calls.stats).
  apply(type, data) {
    if (type === "calls.stats") {
      this.applyStats(data.calls);
    } else if (type === "call.state") {
      this.applyState(data);
    } else if (type === "stream.state") {
      this.applyStreamState(data);
    }
    if (type !== "calls.stats" && data.callId) this.refresh(data.callId);
    this.changed();
  }

  // One destination's stream changed; the call's stream state is the combined one.
  applyStreamState(data) {
    const call = this.calls.get(data.callId);
    if (!call) return;
    call.streamState = data.streamState || data.state;
    const destination = (call.destinations || [])[data.destination];
    if (destination) destination.streamState = data.state;
  }

  applyState(data) {
    const call = this.calls.get(data.callId);
    if (!call) return; // a call started elsewhere: refresh() fetches its view
    call.state = data.state;
    call.reason = data.reason;
    call.history = [...(call.history || []), { state: data.state, reason: data.reason, at: data.timestamp }];
  }

  applyStats(entries) {
    const now = Date.now();
    for (const entry of entries) {
      const call = this.calls.get(entry.callId);
      if (!call) {
        this.refresh(entry.callId); // started while the stream was (re)connecting
        continue;
      }
      if (FINAL_STATES.has(call.state)) continue; // a final state is final: counters sampled before it
      // (another node's, relayed every few seconds) must not bring the call back to life
      const before = call.counters || {};
      call.counters = entry.counters;
      call.state = entry.state;
      call.streamState = entry.streamState;
      this.addSample(entry.callId, now, before, entry.counters);
    }
  }

  addSample(callId, now, before, counters) {
    const list = this.samples.get(callId) || [];
    const last = list[list.length - 1];
    const seconds = last ? (now - last.t) / 1000 : 0;
    const bytes = (counters.bytesPublished || 0) - (before.bytesPublished || 0);
    const received = (counters.packets || 0) - (before.packets || 0);
    const lost = Math.max((counters.lost || 0) - (before.lost || 0), 0);
    list.push({
      t: now,
      level: Math.max(counters.levelDbfs ?? -120, -60),
      loss: received + lost ? (100 * lost) / (received + lost) : 0,
      jitter: counters.jitterMs || 0,
      kbps: seconds > 0 ? Math.max(bytes, 0) * 8 / 1000 / seconds : 0,
    });
    if (list.length > MAX_SAMPLES) list.shift();
    this.samples.set(callId, list);
  }
}
