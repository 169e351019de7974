// The daemon's REST API as the console uses it: bearer token, typed errors, live events.

const TOKEN_KEY = "sip-rtmp-bridge.token";

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const token = savedToken();
  return token ? { Authorization: `Bearer ${token}`, ...extra } : extra;
}

async function errorFrom(response) {
  try {
    const body = await response.json();
    const e = body.error || {};
    return new ApiError(response.status, e.code || "error", e.message || response.statusText, e.field);
  } catch {
    return new ApiError(response.status, "error", `${response.status} ${response.statusText}`, null);
  }
}

export async function request(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "the daemon cannot be reached; check that it is running", null);
  }
  if (!response.ok) throw await errorFrom(response);
  return response.status === 204 ? null : response.json();
}

// Server-Sent Events over fetch (EventSource cannot send an Authorization header).
// Calls onEvent(type, data) per event and onStatus("open" | "retrying" | "closed");
// reconnects with backoff until signal aborts.
export async function followEvents(path, onEvent, onStatus, signal) {
  let delay = 1000;
  while (!signal.aborted) {
    try {
      const response = await fetch(path, { headers: headers(), signal });
      if (!response.ok) throw await errorFrom(response);
      onStatus("open");
      delay = 1000;
      await readStream(response.body, onEvent, signal);
    } catch (error) {
      if (signal.aborted) break;
      if (error instanceof ApiError && error.status === 401) {
        onStatus("unauthorized");
        return;
      }
    }
    onStatus("retrying");
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15000);
  }
  onStatus("closed");
}

async function readStream(body, onEvent, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      dispatch(buffer.slice(0, end), onEvent);
      buffer = buffer.slice(end + 2);
    }
  }
}

function dispatch(block, onEvent) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) type = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  if (data.length) onEvent(type, JSON.parse(data.join("\n")));
}
