// Formatting of call values for people.

export const FINAL_STATES = new Set(["FINISH", "FAILED", "BUSY"]);

export function duration(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return "–";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

export function lossPercent(counters) {
  const packets = counters.packets || 0;
  const lost = Math.max(counters.lost || 0, 0);
  return packets + lost ? (100 * lost) / (packets + lost) : 0;
}

export function number(value) {
  return (value || 0).toLocaleString("en-US");
}

export function dateTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString("sv-SE", { hour12: false });
}

// When the call was answered (from its state history), as epoch milliseconds, or null.
export function answeredAt(call) {
  const entry = (call.history || []).find((change) => change.state === "ESTABLISHED");
  return entry ? Date.parse(entry.at) : null;
}

export function endedAt(call) {
  const history = call.history || [];
  const last = history[history.length - 1];
  return last && FINAL_STATES.has(last.state) ? Date.parse(last.at) : null;
}

// The player link from the deployment's pattern, e.g. https://cdn/hls/{app}/{stream}.m3u8.
// A masked stream name (a stream key, shown as ••••) gives no link: only an app that
// reveals its stream names (reveal_stream_names) has one.
export function playbackUrl(pattern, rtmpTarget) {
  if (!pattern || !rtmpTarget || rtmpTarget.includes("\u2022")) return null;
  let url;
  try {
    url = new URL(rtmpTarget);
  } catch {
    return null;
  }
  const parts = url.pathname.replace(/^\/+/, "").split("/");
  const stream = parts.pop() || "";
  const values = { host: url.hostname, app: parts.join("/"), stream };
  return pattern.replace(/\{(host|app|stream)\}/g, (_, key) => encodeURIComponent(values[key]).replace(/%2F/g, "/"));
}

const PROTOCOLS = { twilio: "Twilio Media Streams", acs: "Azure Communication Services", ringcentral: "RingCentral" };

// True for a call that arrived as a WebSocket media stream (it has no SIP dialog and takes no DTMF).
export function isIngest(call) {
  return (call.source || {}).kind === "ingest";
}

// Who the call is with: the callee of a SIP call, or the platform and its call id for an ingest call.
export function partyLabel(call) {
  if (!isIngest(call)) return call.callee || "";
  const { protocol, platformId } = call.source;
  return `${PROTOCOLS[protocol] || protocol}: ${platformId}`;
}

// How the call arrived, for the details page.
export function sourceLabel(call) {
  if (!isIngest(call)) return call.sipDomain ? `SIP via ${call.sipDomain}` : "SIP";
  const { protocol, route, tracks } = call.source;
  const trackList = (tracks || []).length ? `, tracks ${tracks.join(", ")}` : "";
  return `${PROTOCOLS[protocol] || protocol} WebSocket on route ${route}${trackList}`;
}
