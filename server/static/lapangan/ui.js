// Small DOM helpers: elements are built node by node (never innerHTML with data), so a name
// or a note from the server can never become markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

const DATE = new Intl.DateTimeFormat("id-ID", {dateStyle: "medium", timeStyle: "short"});

export function when(iso) {
  if (!iso) return "belum pernah";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : DATE.format(d);
}

export function megabytes(bytes) {
  if (bytes === undefined || bytes === null) return "?";
  const mb = bytes / 1048576;
  return mb >= 1024 ? `${(mb / 1024).toFixed(1).replace(".", ",")} GB`
    : `${mb.toFixed(mb < 10 ? 1 : 0).replace(".", ",")} MB`;
}

/** A KK or NIK shown masked: the first six digits (the area) and the last four. */
export function mask(number) {
  const s = String(number || "");
  if (s.length < 12) return s;
  return s.slice(0, 6) + "•".repeat(s.length - 10) + s.slice(-4);
}

export function label(value) {
  if (value && typeof value === "object") return value.id || value.en || "";
  return value === undefined || value === null ? "" : String(value);
}
