// The player bar: listen to a live call, or play one of its recordings. Each URL carries a short-lived
// ticket asked for with the token (an <audio> element cannot send the Authorization header).
//
// Live audio goes through Media Source Extensions: the ADTS stream is read with fetch and appended
// as it arrives, and playback is kept near the live edge. Given the stream's URL directly, the
// <audio> element would first buffer several seconds (measured: 8 s at 32 kbit/s) before playing.

import { request } from "./api.js";
import { clear, element, notice } from "./dom.js";
import { dateTime } from "./format.js";

const path = (callId) => `/api/v1/calls/${encodeURIComponent(callId)}`;

export class Player {
  constructor() {
    this.bar = document.getElementById("player");
    this.audio = document.getElementById("player-audio");
    this.label = document.getElementById("player-label");
    document.getElementById("player-stop").addEventListener("click", () => this.stop());
    this.audio.addEventListener("error", () => {
      if (this.audio.getAttribute("src")) notice(`The player could not play ${this.label.textContent}.`, "error");
    });
  }

  async listen(callId) {
    try {
      const { url } = await request("GET", `${path(callId)}/tickets?purpose=listen`);
      const live = new LiveSource(url);
      this.start(live.objectUrl, `Listening to ${callId} (live)`, callId);
      this.live = live;
      live.keepNearEdge(this.audio);
    } catch (error) {
      notice(`Cannot listen to ${callId}: ${error.message}`, "error");
    }
  }

  async playRecording(callId, recording) {
    try {
      const { ticket } = await request("GET", `${path(callId)}/tickets?purpose=recordings`);
      this.start(`${recording.url}?ticket=${encodeURIComponent(ticket)}`, `Recording ${recording.name}`, callId);
    } catch (error) {
      notice(`Cannot play ${recording.name}: ${error.message}`, "error");
    }
  }

  start(url, label, callId) {
    this.live?.close();
    this.live = null;
    this.label.textContent = label;
    this.bar.dataset.callId = callId;
    this.bar.hidden = false;
    this.audio.src = url;
    this.audio.play().catch((error) => notice(`The browser did not start playing: ${error.message}`, "warning"));
  }

  stop() {
    this.live?.close();
    this.live = null;
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.audio.load(); // closes the live stream's connection
    this.bar.hidden = true;
  }
}

const LIVE_EDGE_SECONDS = 0.3; // how far behind the newest audio the player is kept
const MAX_BEHIND_SECONDS = 1.0; // further behind than this: jump forward

// A live ADTS stream fed into a MediaSource as it arrives.
class LiveSource {
  constructor(url) {
    this.url = url;
    this.controller = new AbortController();
    this.media = new MediaSource();
    this.objectUrl = URL.createObjectURL(this.media);
    this.media.addEventListener("sourceopen", () => this.pump(), { once: true });
  }

  async pump() {
    const buffer = this.media.addSourceBuffer("audio/aac");
    buffer.mode = "sequence";
    try {
      const response = await fetch(this.url, { signal: this.controller.signal });
      if (!response.ok) throw new Error(`the daemon answered ${response.status}`);
      const reader = response.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (buffer.updating) await new Promise((resolve) => buffer.addEventListener("updateend", resolve, { once: true }));
        buffer.appendBuffer(value);
      }
      if (this.media.readyState === "open") this.media.endOfStream();
    } catch (error) {
      if (!this.controller.signal.aborted) notice(`The live audio stopped: ${error.message}`, "warning");
    }
  }

  keepNearEdge(audio) {
    this.timer = setInterval(() => {
      const ranges = audio.buffered;
      if (!ranges.length) return;
      const edge = ranges.end(ranges.length - 1);
      if (edge - audio.currentTime > MAX_BEHIND_SECONDS) audio.currentTime = edge - LIVE_EDGE_SECONDS;
      if (audio.paused && edge > 0) audio.play().catch(() => {});
    }, 250);
  }

  close() {
    clearInterval(this.timer);
    this.controller.abort();
    URL.revokeObjectURL(this.objectUrl);
  }
}

// The recordings of a call, with a Play button each (details view).
export async function recordingsSection(callId, player) {
  const box = element("div", { id: "recordings" }, [element("p", {}, ["Loading…"])]);
  try {
    const { recordings } = await request("GET", `${path(callId)}/recordings`);
    clear(box).append(recordings.length ? recordingsTable(callId, recordings, player) : element("p", {}, ["None."]));
  } catch (error) {
    clear(box).append(element("p", { class: "error" }, [error.message]));
  }
  return box;
}

function recordingsTable(callId, recordings, player) {
  const head = ["File", "Format", "Track", "Duration", "Size", "State", "Upload", ""].map((text) =>
    element("th", { scope: "col" }, [text]),
  );
  const rows = recordings.map((recording) => {
    const play = element("button", { type: "button", class: "secondary small", "aria-label": `Play ${recording.name}` }, [
      "Play",
    ]);
    play.disabled = recording.state === "deleted";
    play.addEventListener("click", () => player.playRecording(callId, recording));
    const upload = recording.upload || {};
    return element("tr", { "data-recording": recording.name }, [
      element("td", {}, [recording.name]),
      element("td", {}, [recording.format]),
      element("td", {}, [recording.track]),
      element("td", {}, [`${(recording.durationSeconds || 0).toFixed(1)} s`]),
      element("td", {}, [`${Math.round((recording.bytes || 0) / 1024)} KiB`]),
      element("td", { title: recording.reason || "" }, [recording.state]),
      element("td", { title: upload.error || upload.url || "" }, [upload.state ? `${upload.state} ${upload.at ? dateTime(upload.at) : ""}` : "–"]),
      element("td", {}, [play]),
    ]);
  });
  return element("div", { class: "table-wrap" }, [
    element("table", { class: "recordings" }, [
      element("caption", { class: "visually-hidden" }, ["Recordings of this call"]),
      element("thead", {}, [element("tr", {}, head)]),
      element("tbody", {}, rows),
    ]),
  ]);
}
