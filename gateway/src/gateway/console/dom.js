// Small DOM helpers the console's modules share. Every value from the server reaches the page as text
// (textContent, attributes through the DOM), never as markup.

export function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

export function when(iso, format = "time") {
  const date = new Date(iso);
  const time = el("time", format === "time" ? date.toLocaleTimeString() : date.toLocaleString());
  time.dateTime = iso;
  return time;
}

export function button(text, className) {
  const node = el("button", text, className);
  node.type = "button";
  return node;
}
