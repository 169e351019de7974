// The "New call" fields and the same rules the daemon applies (rest/models.py, bridge/rtmp/url.py).
// The server stays the judge: its field errors are shown next to the field too.

const CONTROL = /[\x00-\x1f\x7f]/;

export const CALL_FIELDS = [
  { name: "callId", label: "Call ID", required: true, help: "Your unique ID for this call, e.g. webinar-42" },
  { name: "callee", label: "Callee", required: true, help: "Number or SIP URI to call, e.g. +15551234567" },
  { name: "rtmpUrl", label: "RTMP URL", required: true, max: 1024, kind: "rtmp",
    help: "rtmp://host[:port]/app or rtmps://…" },
  { name: "rtmpStream", label: "RTMP stream", required: true, help: "Stream name on the server, e.g. call-42" },
  { name: "hasAudio", label: "Send audio (sendrecv)", kind: "bool",
    help: "Off: receive only (recvonly). On: the bridge also sends silence" },
  { name: "hasVideo", label: "Video (sendrecv)", kind: "bool", help: "Off: no video is requested" },
];

export const CONNECTION_FIELDS = [
  { name: "sipLogin", label: "SIP login", required: true, help: "User part of the From address" },
  { name: "sipPassword", label: "SIP password", kind: "password", help: "Digest password; never shown again" },
  { name: "sipAuthenticationName", label: "Authentication name", help: "Digest user name if not the login" },
  { name: "sipDomain", label: "SIP domain", required: true, help: "e.g. example.sip.twilio.com" },
  { name: "sipPort", label: "SIP port", kind: "port", help: "Empty: 5060 (5061 for TLS)" },
  { name: "sipTransport", label: "Transport", kind: "choice", choices: ["udp", "tcp", "tls"] },
  { name: "sipRegisterRequired", label: "Register first", kind: "bool", help: "REGISTER before the call" },
  { name: "appKey", label: "App key", help: "Selects the webhook app for status events" },
];

function textProblem(field, value) {
  if (field.required && value === "") return "this field is required";
  if (value.length > (field.max || 256)) return `at most ${field.max || 256} characters`;
  if (CONTROL.test(value)) return "must not contain control characters (CR, LF, NUL, ...)";
  return null;
}

function rtmpProblem(value) {
  let url;
  try {
    url = new URL(value);
  } catch {
    return "must be a URL like rtmp://host:1935/live";
  }
  if (url.protocol !== "rtmp:" && url.protocol !== "rtmps:") {
    return `rtmpUrl must start with rtmp:// or rtmps://, got '${value}'`;
  }
  if (!url.hostname) return "rtmpUrl has no host";
  if (url.pathname.replace(/^\/+/, "") === "") return "rtmpUrl has no application path, e.g. rtmp://host:1935/live";
  return null;
}

function portProblem(value) {
  if (value === "") return null;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    return "must be a whole number from 1 to 65535";
  }
  return null;
}

// Returns the problem with one field's value, or null.
export function problemWith(field, value) {
  if (field.kind === "bool" || field.kind === "choice") return null;
  const text = field.kind === "password" ? value : value.trim();
  const problem = textProblem(field, text);
  if (problem) return problem;
  if (field.kind === "rtmp" && text) return rtmpProblem(text);
  if (field.kind === "port") return portProblem(text);
  return null;
}

// The request body of POST /api/v1/calls from the form's values.
export function callBody(values) {
  const body = { connection: {} };
  for (const field of CALL_FIELDS) body[field.name] = convert(field, values[field.name]);
  for (const field of CONNECTION_FIELDS) {
    const value = convert(field, values[`connection.${field.name}`]);
    if (value !== null) body.connection[field.name] = value;
  }
  return body;
}

function convert(field, value) {
  if (field.kind === "bool") return Boolean(value);
  if (field.kind === "port") return value.trim() === "" ? null : Number(value);
  return field.kind === "password" ? value : value.trim();
}
