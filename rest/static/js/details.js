// Call details: summary, player links, stats charts, timeline, recordings and SIP ladder.

import { request } from "./api.js";
import { SERIES, chartFigure, drawChart } from "./charts.js";
import { destinationsTable } from "./destinations.js";
import { clear, element, notice } from "./dom.js";
import { dateTime, isIngest, partyLabel, playbackUrl, sourceLabel } from "./format.js";
import { recordingsSection } from "./player.js";

export class CallDetails {
  constructor(store, settings, player) {
    this.store = store;
    this.settings = settings; // { playbackUrl pattern }
    this.player = player;
    this.body = document.getElementById("details-body");
    this.callId = null;
    this.charts = [];
  }

  async show(callId) {
    this.callId = callId;
    document.getElementById("details-title").textContent = `Call ${callId}`;
    clear(this.body).append(element("p", {}, ["Loading…"]));
    let call = this.store.calls.get(callId);
    try {
      call = await request("GET", `/api/v1/calls/${encodeURIComponent(callId)}`);
    } catch (error) {
      if (!call) {
        clear(this.body).append(element("p", { class: "error" }, [error.message]));
        return;
      }
    }
    if (this.callId === callId) this.render(call);
  }

  render(call) {
    this.charts = SERIES.map((series) => ({ series, ...chartFigure(series) }));
    clear(this.body).append(
      this.summary(call),
      element("h3", {}, ["Destinations"]),
      destinationsTable(call),
      element("h3", {}, ["Stats over time"]),
      element("div", { class: "charts" }, this.charts.map((chart) => chart.figure)),
      element("h3", {}, ["Timeline"]),
      timeline(call),
      element("h3", {}, ["Recordings"]),
      element("div", { id: "recordings-slot" }),
    );
    recordingsSection(call.callId, this.player).then((box) => this.body.querySelector("#recordings-slot")?.replaceWith(box));
    // An ingest call has no SIP dialog; its WebSocket's story is in the timeline.
    if (!isIngest(call)) this.body.append(element("h3", {}, ["SIP ladder"]), ladder(call.sipLadder || []));
    this.redraw();
  }

  redraw() {
    if (!this.callId) return;
    const samples = this.store.samples.get(this.callId) || [];
    for (const chart of this.charts) drawChart(chart, chart.series, samples);
    const call = this.store.calls.get(this.callId);
    const state = this.body.querySelector("[data-field=state]");
    if (call && state) state.textContent = `${call.state} · stream ${call.streamState}`;
  }

  hide() {
    this.callId = null;
  }

  summary(call) {
    const player = playbackUrl(this.settings.playbackUrl, call.rtmpTarget);
    const copy = element("button", { type: "button", class: "secondary small", id: "copy-player-url" }, [
      "Copy player URL",
    ]);
    copy.addEventListener("click", () => copyText(call.rtmpTarget));
    const rows = [
      ["State", element("span", { "data-field": "state" }, [`${call.state} · stream ${call.streamState}`])],
      ["Reason", call.reason || "–"],
      [isIngest(call) ? "Caller" : "Callee", partyLabel(call)],
      ["Source", element("span", { "data-field": "source" }, [sourceLabel(call)])],
      ...(call.node ? [["Node", element("span", { "data-field": "node" }, [call.node])]] : []),
      ["Created", dateTime(call.createdAt)],
      ["Media", element("span", { id: "media-summary" }, [mediaSummary(call)])],
      ["RTMP target", element("span", {}, [element("code", {}, [call.rtmpTarget || "–"]), " ", copy])],
    ];
    if (player) {
      const link = element("a", { href: player, target: "_blank", rel: "noopener", id: "playback-link" }, [player]);
      rows.push(["Playback", link]);
    }
    return element(
      "dl",
      { class: "summary" },
      rows.flatMap(([name, value]) => [element("dt", {}, [name]), element("dd", {}, [value])]),
    );
  }
}

// The negotiated audio codec (timeline "codec" event) and, for video calls, the video counters.
function mediaSummary(call) {
  const codecs = (call.timeline || []).filter((entry) => entry.event === "codec");
  const parts = [`audio ${codecs.length ? codecs[codecs.length - 1].codec : "–"}`];
  const c = call.counters || {};
  if (typeof c.videoPackets === "number") {
    const size = c.videoWidth ? `${c.videoWidth}x${c.videoHeight} at ${c.videoFrameRate} fps, ` : "";
    const offset = typeof c.videoArrivalOffsetMs === "number" ? `, arrives ${c.videoArrivalOffsetMs} ms after its audio` : "";
    parts.push(
      `video H.264: ${size}${c.videoFramesPublished} frames published, ${c.videoKeyframesReceived} key frames, ` +
        `${c.keyframeRequests} key frame requests, ${c.videoLostPackets} packets lost${offset}`,
    );
  }
  return parts.join(" · ");
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    notice(`Copied ${text}`);
  } catch {
    notice(`Copy this URL: ${text}`, "warning"); // clipboard refused (e.g. not a secure context)
  }
}

function timeline(call) {
  const entries = [
    ...(call.history || []).map((e) => ({ at: e.at, what: `call ${e.state}`, detail: e.reason })),
    ...(call.streamHistory || []).map((e) => ({ at: e.at, what: streamLabel(call, e), detail: e.reason })),
    ...(call.timeline || []).map(({ at, event, ...rest }) => ({ at, what: event, detail: describe(rest) })),
  ].sort((a, b) => (a.at || "").localeCompare(b.at || ""));
  const list = element("ol", { class: "timeline" });
  for (const entry of entries) {
    list.append(element("li", {}, [element("time", { datetime: entry.at }, [dateTime(entry.at)]), " ",
      element("strong", {}, [entry.what]), entry.detail ? ` — ${entry.detail}` : ""]));
  }
  return list;
}

function streamLabel(call, entry) {
  const several = (call.destinations || []).length > 1;
  return several ? `stream ${entry.destination} ${entry.state}` : `stream ${entry.state}`;
}

function describe(details) {
  return Object.entries(details)
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(", ");
}

function ladder(entries) {
  if (!entries.length) return element("p", {}, ["No SIP messages recorded."]);
  const rows = entries.map((entry) =>
    element("tr", {}, [
      element("td", {}, [new Date(entry.at * 1000).toISOString().slice(11, 23)]),
      element("td", {}, [entry.direction === "out" ? "bridge →" : "← far end"]),
      element("td", {}, [entry.message]),
      element("td", {}, [entry.cseq || ""]),
    ]),
  );
  const head = element("tr", {}, ["Time (UTC)", "Direction", "Message", "CSeq"].map((t) => element("th", { scope: "col" }, [t])));
  return element("div", { class: "table-wrap" }, [
    element("table", { class: "ladder" }, [
      element("caption", { class: "visually-hidden" }, ["SIP messages of this call"]),
      element("thead", {}, [head]),
      element("tbody", {}, rows),
    ]),
  ]);
}
