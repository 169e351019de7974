// Small DOM helpers: elements are built with textContent, never from HTML strings.

export function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function notice(message, kind = "info") {
  const box = document.getElementById("notice");
  box.textContent = message;
  box.dataset.kind = kind;
}
