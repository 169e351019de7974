// The "New call" form: every field of the REST contract, checked here first, then by the daemon.

import { ApiError, request } from "./api.js";
import { CALL_FIELDS, CONNECTION_FIELDS, callBody, problemWith } from "./validate.js";
import { element } from "./dom.js";

const inputs = new Map(); // full field name ("connection.sipDomain") -> { field, input, error }

function inputFor(field, id) {
  if (field.kind === "bool") return element("input", { id, type: "checkbox" });
  if (field.kind === "choice") {
    return element("select", { id }, field.choices.map((choice) => element("option", { value: choice }, [choice])));
  }
  const type = field.kind === "password" ? "password" : "text";
  const attributes = { id, type, autocomplete: field.kind === "password" ? "new-password" : "off" };
  if (field.kind === "port") attributes.inputmode = "numeric";
  if (field.required) attributes["aria-required"] = "true";
  return element("input", attributes);
}

function renderField(container, field, fullName) {
  const id = `f-${fullName.replace(".", "-")}`;
  const input = inputFor(field, id);
  const help = element("p", { id: `${id}-help`, class: "help" }, [field.help || ""]);
  const error = element("p", { id: `${id}-error`, class: "error", "data-error-for": fullName });
  input.setAttribute("aria-describedby", `${id}-help ${id}-error`);
  const label = element("label", { for: id }, [field.label + (field.required ? " *" : "")]);
  const wrapper = element("div", { class: field.kind === "bool" ? "field check" : "field" });
  wrapper.append(...(field.kind === "bool" ? [input, label] : [label, input]), help, error);
  container.append(wrapper);
  input.addEventListener("blur", () => check(fullName));
  inputs.set(fullName, { field, input, error });
}

function valueOf(input) {
  return input.type === "checkbox" ? input.checked : input.value;
}

function showError(fullName, message) {
  const entry = inputs.get(fullName);
  if (!entry) return false;
  entry.error.textContent = message || "";
  entry.input.setAttribute("aria-invalid", message ? "true" : "false");
  return true;
}

function check(fullName) {
  const { field, input } = inputs.get(fullName);
  const problem = problemWith(field, valueOf(input));
  showError(fullName, problem);
  return problem === null;
}

function values() {
  const out = {};
  for (const [name, { input }] of inputs) out[name] = valueOf(input);
  return out;
}

async function submit(event, form, onStarted) {
  event.preventDefault();
  const formError = form.querySelector("#form-error");
  formError.textContent = "";
  const bad = [...inputs.keys()].filter((name) => !check(name));
  if (bad.length) {
    inputs.get(bad[0]).input.focus();
    formError.textContent = `Please correct ${bad.length === 1 ? "the marked field" : `${bad.length} marked fields`}.`;
    return;
  }
  const button = form.querySelector("#start-call");
  button.disabled = true;
  try {
    const call = await request("POST", "/api/v1/calls", callBody(values()));
    inputs.get("connection.sipPassword").input.value = "";
    onStarted(call);
  } catch (error) {
    const field = error instanceof ApiError ? error.field : null;
    if (field && showError(field, error.message)) inputs.get(field).input.focus();
    formError.textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

export function setUpCallForm(onStarted) {
  const form = document.getElementById("call-form");
  for (const field of CALL_FIELDS) renderField(document.getElementById("call-fields"), field, field.name);
  for (const field of CONNECTION_FIELDS) {
    renderField(document.getElementById("connection-fields"), field, `connection.${field.name}`);
  }
  form.addEventListener("submit", (event) => submit(event, form, onStarted));
}

export function focusCallForm() {
  inputs.get("callId").input.focus();
}
