/* Lapangan's service worker: the app shell, and nothing else, from one versioned cache.
 *
 * A classic worker (no modules), served by Flask at /lapangan/sw.js so that its scope is
 * /lapangan/. Its version is a digest of every shell file: any change of the shell makes this
 * script differ, so the browser installs the new worker beside the running one. There is no
 * skipWaiting(): the new worker waits until every tab of the app is closed, then activates at
 * the next start, deletes the old caches and serves the new shell. A visit in progress keeps
 * the shell it started with. Data (forms, families, drafts, photos, outbox) lives in
 * IndexedDB, never here, so no update of the shell can strand it.
 */
"use strict";
const VERSION = "{{ version }}";
const PREFIX = "lapangan-shell-";
const CACHE = PREFIX + VERSION;
const SHELL = {{ shell|safe }};

self.addEventListener("install", (event) => {
  // cache: "reload" bypasses the HTTP cache, so the new cache holds the new files.
  event.waitUntil(caches.open(CACHE).then((cache) =>
    cache.addAll(SHELL.map((url) => new Request(url, {cache: "reload"})))));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith(PREFIX) && k !== CACHE)
      .map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("message", (event) => {
  if (event.data === "version" && event.source) event.source.postMessage({version: VERSION});
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;  // GET only
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/")) return;  // API answers are never cached
  if (request.mode === "navigate" && url.pathname.startsWith("/lapangan/")) {
    event.respondWith(caches.open(CACHE)
      .then((cache) => cache.match("/lapangan/"))
      .then((hit) => hit || fetch(request)));
    return;
  }
  if (!SHELL.includes(url.pathname) || url.search) return;
  event.respondWith(caches.open(CACHE)
    .then((cache) => cache.match(url.pathname))
    .then((hit) => hit || fetch(request)));
});
