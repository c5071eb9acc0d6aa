// The console: plain DOM, no framework, no build step (ES modules the browser loads itself). Tokens
// live in this module only (never in storage), and every value from the server reaches the page through
// textContent, never as markup.
import { createAvatars } from "./avatars.js";
import { button, el, when } from "./dom.js";
import { createJobsPanel } from "./jobs.js";

const $ = (id) => document.getElementById(id);
const FEED_LIMIT = 100;
const AVATAR_MAX_BYTES = 1024 * 1024;  // contract section 9
const session = {
  access: null, refresh: null, expiresAt: 0, refreshTimer: null, refreshing: null,
  ws: null, lastOffset: null, retries: 0, reconnectTimer: null, reloadTimer: null,
  // The room this page is in: its id, name, the highest offset shown, who is present (id -> name).
  room: null,
  // The signed-in user (GET /api/v1/users/me).
  me: null,
};

// ---- small helpers ------------------------------------------------------------------------------

function say(message, isError = false) {
  $("status").textContent = message;
  $("status").className = isError ? "status error" : "status";
}

function money(cents, currency) {
  return `${(cents / 100).toFixed(2)} ${currency}`;
}

function problemText(status, body) {
  if (body && Array.isArray(body.errors) && body.errors.length) {
    return body.errors.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
  }
  return (body && (body.detail || body.error_description || body.title)) || `HTTP ${status}`;
}

// `body` is sent as it is (a FormData becomes multipart/form-data with its boundary).
async function call(method, path, { json, form, body: raw, headers = {}, auth = true } = {}) {
  const init = { method, headers: { ...headers } };
  if (auth && session.access) init.headers.Authorization = `Bearer ${session.access}`;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = new URLSearchParams(form);
  } else if (raw !== undefined) {
    init.body = raw;
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!response.ok) {
    const error = new Error(problemText(response.status, body));
    error.status = response.status;
    throw error;
  }
  return body;
}

// Runs a form's or button's action, reporting failures on the page instead of in the console.
function guarded(action) {
  return async (event) => {
    if (event) event.preventDefault();
    try { await action(event); } catch (error) { say(error.message, true); }
  };
}

// A user's avatar image, or null when they have none (404). It needs the token, so an <img> cannot
// load it by address; the avatars module turns the answer into a blob: URL. The server lets browsers
// keep an avatar for an hour: `fresh` asks it again (a 304 if the ETag still matches).
async function fetchAvatar(userId, { fresh = false } = {}) {
  const response = await fetch(`/api/v1/users/${encodeURIComponent(userId)}/avatar`, {
    headers: session.access ? { Authorization: `Bearer ${session.access}` } : {},
    cache: fresh ? "no-cache" : "default",
  });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.blob();
}

const avatars = createAvatars(fetchAvatar);
const jobs = createJobsPanel({ call, say, guarded });

// ---- tokens ---------------------------------------------------------------------------------------

async function takeTokens(form) {
  const tokens = await call("POST", "/api/v1/auth/token", { form, auth: false });
  session.access = tokens.access_token;
  session.refresh = tokens.refresh_token;
  session.expiresAt = Date.now() + tokens.expires_in * 1000;
  // Refresh at 80 % of the lifetime, and at least 5 s before it ends.
  const delay = Math.max(1, Math.min(tokens.expires_in * 0.8, tokens.expires_in - 5));
  clearTimeout(session.refreshTimer);
  session.refreshTimer = setTimeout(() => refreshTokens().catch(() => {}), delay * 1000);
}

// One refresh at a time: refresh tokens rotate, and presenting a used one ends the whole session.
function refreshTokens() {
  session.refreshing ??= doRefresh().finally(() => { session.refreshing = null; });
  return session.refreshing;
}

async function doRefresh() {
  try {
    await takeTokens({ grant_type: "refresh_token", refresh_token: session.refresh });
  } catch (error) {
    if (error.status === undefined && Date.now() < session.expiresAt) {
      session.refreshTimer = setTimeout(() => refreshTokens().catch(() => {}), 5000);  // network: retry
    } else {
      signOut(`Your session ended (${error.message}); please log in again.`);
    }
    throw error;
  }
  // The open connection keeps streaming with the new token instead of closing with 4401.
  sendFrame({ type: "refresh", token: session.access });
}

// ---- live events (WebSocket) ----------------------------------------------------------------------

function setConnection(state, label = state) {
  $("connection").dataset.state = state;
  $("connection").textContent = label;
}

function sendFrame(frame) {
  if (session.ws && session.ws.readyState === WebSocket.OPEN) session.ws.send(JSON.stringify(frame));
}

async function connect() {
  session.reconnectTimer = null;
  if (!session.access) return;
  if (Date.now() > session.expiresAt - 10000) {
    try {
      await refreshTokens();
    } catch {
      if (session.access) scheduleReconnect("no token");  // else signed out: nothing to resume
      return;
    }
    if (!session.access) return;  // signed out meanwhile
  }
  const query = new URLSearchParams({ token: session.access });
  if (session.lastOffset !== null) query.set("since", String(session.lastOffset));
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws?${query}`);
  session.ws = ws;
  setConnection("connecting");
  ws.onmessage = (message) => onFrame(JSON.parse(message.data));
  ws.onclose = (close) => {
    if (session.ws === ws) onClosed(close.code);
  };
}

function onClosed(code) {
  session.ws = null;
  if (code === 4403) {
    setConnection("offline");
    say("The server refused this session's events (4403).", true);
    return;
  }
  if (code === 4401) session.expiresAt = 0;  // the next attempt refreshes the token first
  // 4008 (too slow), 1011, 1012 (restart), 1006 (network): come back, and resume where we were.
  scheduleReconnect(code);
}

function scheduleReconnect(why) {
  const delay = Math.min(30, 2 ** session.retries) * (0.5 + Math.random() / 2);
  session.retries += 1;
  setConnection("connecting", `reconnecting (${why})`);
  session.reconnectTimer = setTimeout(connect, delay * 1000);
}

function onFrame(frame) {
  if (frame.type === "ping") {
    sendFrame({ type: "pong" });
  } else if (frame.type === "ready") {
    session.retries = 0;
    // A new connection is in no room: rejoin, and recover what was said meanwhile.
    if (session.room) sendJoin();
    setConnection("live", `live · offset ${frame.offset}`);
    if (!frame.recovered) {
      // Nothing (or not everything) was replayed: what the page shows is loaded over HTTP instead.
      session.lastOffset = frame.offset;
      reloadSoon();
    }
  } else if (frame.type === "event") {
    session.lastOffset = frame.offset;
    addToFeed(frame);
    reloadSoon();
  } else {
    onRoomFrame(frame);
  }
}

// ---- rooms (contract section 6) --------------------------------------------------------------------

function sendJoin() {
  const room = session.room;
  sendFrame(room.offset === null ? { type: "join", room: room.id } : { type: "join", room: room.id, since: room.offset });
}

function onRoomFrame(frame) {
  const room = session.room;
  if (frame.type === "broadcast") {
    say(`${frame.title}: ${frame.body}`);
  } else if (frame.type === "error") {
    say(`Room: ${frame.detail}`, true);
  } else if (!room || frame.room !== room.id) {
    // a frame of a room this page has left
  } else if (frame.type === "message") {
    if (room.offset === null || frame.offset > room.offset) showMessage(frame);
  } else if (frame.type === "joined") {
    room.present = new Map(frame.presence.map((p) => [p.user_id, p.user_name]));
    if (!frame.recovered) loadRoomHistory().catch((error) => say(error.message, true));
    showPresence();
  } else if (frame.type === "presence") {
    if (frame.action === "join") room.present.set(frame.user_id, frame.user_name);
    else room.present.delete(frame.user_id);
    showPresence();
    const item = el("li", null, "presence");
    item.dataset.action = frame.action;
    item.append(avatars.badge(frame.user_id, frame.user_name), `${frame.user_name} ${frame.action === "join" ? "joined" : "left"}`);
    $("room-messages").append(item);
  } else if (frame.type === "room_closed") {
    closeRoom("The room was deleted.");
    loadRooms().catch(() => {});
  }
}

function showMessage(message) {
  session.room.offset = message.offset;
  const item = el("li", null, "message");
  item.dataset.offset = String(message.offset);
  item.dataset.userId = message.user_id;
  item.append(el("span", `#${message.offset}`, "offset"), when(message.ts));
  item.append(avatars.badge(message.user_id, message.user_name), el("span", message.user_name, "event author"));
  item.append(el("div", message.text, "text"));
  $("room-messages").append(item);
  while ($("room-messages").children.length > FEED_LIMIT) $("room-messages").firstChild.remove();
}

// Who is present, by name, each with their avatar: the text reads "Ada, Grace".
function showPresence() {
  const byName = ([, a], [, b]) => (a < b ? -1 : a > b ? 1 : 0);
  const people = [...session.room.present].sort(byName).flatMap(([userId, name], index) => {
    const person = el("span", null, "person");
    person.dataset.userId = userId;
    person.append(avatars.badge(userId, name), name);
    return index ? [", ", person] : [person];
  });
  $("room-presence").replaceChildren(...people);
}

async function loadRoomHistory() {
  const room = session.room;
  const page = await call("GET", `/api/v1/rooms/${encodeURIComponent(room.id)}/messages?limit=50`);
  if (session.room !== room) return;
  $("room-messages").replaceChildren();
  room.offset = null;
  for (const message of page.items.reverse()) showMessage(message);
}

async function enterRoom(id, name) {
  if (session.room) sendFrame({ type: "leave", room: session.room.id });
  session.room = { id, name, offset: null, present: new Map() };
  $("room-name").textContent = name;
  $("room-presence").textContent = "";
  $("room").hidden = false;
  await loadRoomHistory();
  sendJoin();
}

function closeRoom(message) {
  session.room = null;
  $("room").hidden = true;
  $("room-messages").replaceChildren();
  if (message) say(message);
}

async function loadRooms() {
  const page = await call("GET", "/api/v1/rooms?limit=20");
  $("rooms").replaceChildren(...page.items.map((room) => {
    const item = el("li");
    item.dataset.roomId = room.id;
    item.append(el("span", room.name, "room-name"), el("span", room.topic ? ` – ${room.topic}` : "", "muted"));
    const join = button("Join", "quiet");
    join.addEventListener("click", guarded(() => enterRoom(room.id, room.name)));
    item.append(join);
    return item;
  }));
}

function summary(frame) {
  const data = frame.data || {};
  const order = data.order_id ? `order ${String(data.order_id).slice(0, 8)}` : "";
  switch (frame.event) {
    case "order.created": return `${order} created, ${money(data.total_cents, data.currency)}`;
    case "order.status_changed": return `${order}: ${data.from_status} → ${data.to_status}`;
    case "notification.created": return `${data.title}: ${data.body}`;
    default: return JSON.stringify(data);
  }
}

function addToFeed(frame) {
  const item = el("li");
  item.dataset.event = frame.event;
  item.dataset.offset = String(frame.offset);
  item.append(el("span", `#${frame.offset}`, "offset"), when(frame.ts), el("span", frame.event, "event"));
  item.append(el("div", summary(frame)));
  const feed = $("feed");
  feed.prepend(item);
  while (feed.children.length > FEED_LIMIT) feed.lastChild.remove();
}

// ---- orders and notifications (HTTP) --------------------------------------------------------------

// Events come in bursts (an order and its notification): one reload serves them all.
function reloadSoon() {
  clearTimeout(session.reloadTimer);
  session.reloadTimer = setTimeout(guarded(reload), 150);
}

async function reload() {
  if (session.access) await Promise.all([loadOrders(), loadNotifications(), loadRooms()]);
}

async function loadOrders() {
  const page = await call("GET", "/api/v1/orders?limit=20");
  const rows = page.items.map((order) => {
    const row = el("tr");
    row.dataset.orderId = order.id;
    const items = order.items.map((i) => `${i.quantity} × ${i.name}`).join(", ");
    row.append(el("td", order.id.slice(0, 8)), el("td", items));
    row.append(el("td", money(order.total_cents, order.currency)), el("td", order.status, "order-status"));
    const actions = el("td");
    if (order.status === "pending") {
      const pay = button("Pay");
      pay.addEventListener("click", guarded(async () => {
        pay.disabled = true;
        await call("POST", `/api/v1/orders/${encodeURIComponent(order.id)}/pay`);
        say(`Order ${order.id.slice(0, 8)} paid.`);
        await loadOrders();
      }));
      actions.append(pay);
    }
    row.append(actions);
    return row;
  });
  $("orders").replaceChildren(...rows);
  $("orders-empty").hidden = rows.length > 0;
}

async function loadNotifications() {
  const [page, unread] = await Promise.all([
    call("GET", "/api/v1/notifications?limit=20"),
    call("GET", "/api/v1/notifications/unread-count"),
  ]);
  $("unread").textContent = String(unread.count);
  $("notifications").replaceChildren(...page.items.map((n) => {
    const item = el("li", null, n.read_at ? "read" : "unread");
    item.dataset.type = n.type;
    item.append(when(n.created_at), el("span", n.title), el("p", n.body));
    if (!n.read_at) {
      const read = button("Mark read", "quiet");
      read.addEventListener("click", guarded(async () => {
        await call("POST", `/api/v1/notifications/${encodeURIComponent(n.id)}/read`);
        await loadNotifications();
      }));
      item.append(read);
    }
    return item;
  }));
}

// ---- the account area: who is signed in, and their avatar -----------------------------------------

function showMe(me) {
  session.me = me;
  $("who").textContent = `${me.full_name} <${me.email}>`;
  const known = me.avatar_url !== null;
  $("me-avatar").replaceChildren(avatars.badge(me.id, me.full_name, { known }));
  $("account-avatar").replaceChildren(avatars.badge(me.id, me.full_name, { large: true, known }));
  $("remove-avatar").hidden = !known;
}

async function uploadAvatar(form) {
  const file = form.elements.file.files[0];
  if (!file) throw new Error("Choose an image first.");
  let me;
  try {
    me = await call("PUT", "/api/v1/users/me/avatar", { body: new FormData(form) });
  } catch (error) {
    // The gateway refuses a body over the limit before reading it, and closes the connection: the
    // browser may see that as a network failure rather than the 413 it was sent.
    if (error.status === undefined && file.size > AVATAR_MAX_BYTES) {
      throw new Error(`An avatar may be at most ${AVATAR_MAX_BYTES / 1024} KiB (this file has ${Math.ceil(file.size / 1024)} KiB).`);
    }
    throw error;
  }
  form.reset();
  // The new image is the server's re-encoding, not the file sent: read it back, past the browser's
  // copy of the one it replaces.
  avatars.set(me.id, await fetchAvatar(me.id, { fresh: true }));
  showMe(me);
  say("Avatar updated.");
}

// ---- signing in and out ---------------------------------------------------------------------------

function showSignedIn(signedIn) {
  $("signed-in").hidden = !signedIn;
  $("signed-out").hidden = signedIn;
  $("logout").hidden = !signedIn;
}

function signOut(message) {
  clearTimeout(session.refreshTimer);
  clearTimeout(session.reconnectTimer);
  const ws = session.ws;
  Object.assign(session, { access: null, refresh: null, expiresAt: 0, ws: null, lastOffset: null });
  if (ws) ws.close(1000);
  $("feed").replaceChildren();
  closeRoom();
  jobs.close();
  session.me = null;
  $("who").textContent = "";
  $("me-avatar").replaceChildren();
  $("account-avatar").replaceChildren();
  avatars.clear();
  setConnection("offline");
  showSignedIn(false);
  say(message);
}

function bind() {
  $("register-form").addEventListener("submit", guarded(async (event) => {
    const form = Object.fromEntries(new FormData(event.target));
    await call("POST", "/api/v1/auth/register", { json: form });
    $("login-form").elements.email.value = form.email;
    event.target.reset();
    say(`Registered ${form.email}; you can log in now.`);
  }));

  $("login-form").addEventListener("submit", guarded(async (event) => {
    const form = new FormData(event.target);
    await takeTokens({ grant_type: "password", username: form.get("email"), password: form.get("password") });
    event.target.reset();
    const me = await call("GET", "/api/v1/users/me");
    showMe(me);
    showSignedIn(true);
    say("Logged in.");
    // The panel is for admins; the API refuses everyone else (403) whatever the page shows.
    if (me.roles.includes("admin")) jobs.open().catch((error) => say(error.message, true));
    await reload();
    await connect();
  }));

  $("order-form").addEventListener("submit", guarded(async (event) => {
    const form = new FormData(event.target);
    const item = {
      sku: form.get("sku"), name: form.get("name"),
      quantity: Number(form.get("quantity")), unit_price_cents: Number(form.get("unit_price_cents")),
    };
    // A retried click must not order twice (randomUUID needs a secure context, as localhost is).
    const headers = crypto.randomUUID ? { "Idempotency-Key": crypto.randomUUID() } : {};
    const order = await call("POST", "/api/v1/orders", {
      json: { currency: form.get("currency"), items: [item] }, headers,
    });
    say(`Order ${order.id.slice(0, 8)} created.`);
    await loadOrders();
  }));

  $("room-form").addEventListener("submit", guarded(async (event) => {
    const form = Object.fromEntries(new FormData(event.target));
    const room = await call("POST", "/api/v1/rooms", { json: form });
    event.target.reset();
    await loadRooms();
    await enterRoom(room.id, room.name);
  }));

  $("say-form").addEventListener("submit", guarded(async (event) => {
    const text = new FormData(event.target).get("text");
    if (!session.room || !text) return;
    const frame = { type: "say", room: session.room.id, text };
    if (crypto.randomUUID) frame.client_id = crypto.randomUUID();
    sendFrame(frame);
    event.target.reset();
  }));

  $("avatar-form").addEventListener("submit", guarded((event) => uploadAvatar(event.target)));

  $("remove-avatar").addEventListener("click", guarded(async () => {
    await call("DELETE", "/api/v1/users/me/avatar");
    avatars.set(session.me.id, null);
    showMe({ ...session.me, avatar_url: null });
    say("Avatar removed.");
  }));

  $("jobs-refresh").addEventListener("click", guarded(() => jobs.open()));

  $("leave-room").addEventListener("click", guarded(async () => {
    if (session.room) sendFrame({ type: "leave", room: session.room.id });
    closeRoom("Left the room.");
  }));

  $("read-all").addEventListener("click", guarded(async () => {
    const result = await call("POST", "/api/v1/notifications/read-all");
    say(`${result.updated} marked read.`);
    await loadNotifications();
  }));

  $("logout").addEventListener("click", guarded(async () => {
    const refresh = session.refresh;
    signOut("Logged out.");
    if (refresh) await call("POST", "/api/v1/auth/revoke", { form: { token: refresh }, auth: false });
  }));
}

bind();
