// Avatars (contract section 9). GET /api/v1/users/{id}/avatar wants the bearer token, which an <img>
// cannot send: each user's image is fetched once with the header, kept as a blob: URL (the page's CSP
// allows img-src blob: for this), and shown in every badge of that user. A user without one shows
// initials, drawn by the stylesheet from data-initials so they add nothing to the text around them.
import { el } from "./dom.js";

// A user seen without an avatar (or whose image could not be fetched) is asked again after this long.
const MISS_TTL_MS = 60_000;

export function initials(name) {
  const words = String(name ?? "").trim().split(/\s+/).filter(Boolean);
  // Whole code points, so a name that starts with an emoji or a surrogate pair is not cut in half.
  return words.slice(0, 2).map((word) => Array.from(word)[0]).join("").toUpperCase() || "?";
}

// fetchImage(userId) -> a Blob, or null when the user has no avatar; it may throw.
export function createAvatars(fetchImage) {
  // userId -> {url: blob URL | null, at: when it was settled, pending: bool}
  const cache = new Map();
  // Bumped by clear(): an answer that arrives after sign-out is dropped.
  let generation = 0;

  function badgesOf(userId) {
    return [...document.querySelectorAll(".avatar")].filter((node) => node.dataset.userId === userId);
  }

  function paint(badge, url) {
    let img = badge.querySelector("img");
    if (!url) {
      if (img) img.remove();
      badge.classList.remove("has-image");
      return;
    }
    if (!img) {
      img = el("img");
      img.alt = "";  // decorative: the name is always beside it
      img.decoding = "async";
      badge.append(img);
    }
    img.src = url;
    badge.classList.add("has-image");
  }

  function settle(userId, url) {
    const old = cache.get(userId);
    if (old && old.url && old.url !== url) URL.revokeObjectURL(old.url);
    cache.set(userId, { url, at: Date.now(), pending: false });
    for (const badge of badgesOf(userId)) paint(badge, url);
  }

  function store(userId, blob) {
    // Only an image becomes an image URL, whatever else an answer might carry.
    settle(userId, blob && blob.type.startsWith("image/") ? URL.createObjectURL(blob) : null);
  }

  function load(userId) {
    const entry = cache.get(userId);
    if (entry && (entry.pending || entry.url || Date.now() - entry.at < MISS_TTL_MS)) return;
    const started = generation;
    cache.set(userId, { url: entry ? entry.url : null, at: entry ? entry.at : 0, pending: true });
    fetchImage(userId).then(
      (blob) => { if (generation === started) store(userId, blob); },
      () => { if (generation === started) settle(userId, null); },
    );
  }

  return {
    // A badge for userId: initials now, the image once it is known. `known` skips the fetch when the
    // caller already knows whether the user has an avatar (its avatar_url).
    badge(userId, name, { large = false, known } = {}) {
      const badge = el("span", null, large ? "avatar large" : "avatar");
      badge.dataset.userId = String(userId);
      badge.dataset.initials = initials(name);
      badge.setAttribute("aria-hidden", "true");
      if (known === false && !cache.get(userId)?.url) settle(String(userId), null);
      const entry = cache.get(String(userId));
      if (entry && entry.url) paint(badge, entry.url);
      if (known !== false) load(String(userId));
      return badge;
    },
    // The caller's own image changed: shown at once in every badge of theirs.
    set(userId, blob) { store(String(userId), blob); },
    // Forget everything (sign-out): the blob URLs are released.
    clear() {
      generation += 1;
      for (const entry of cache.values()) if (entry.url) URL.revokeObjectURL(entry.url);
      cache.clear();
    },
  };
}
