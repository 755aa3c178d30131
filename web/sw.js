// Keeps the page's own files (index.html, app.js, pkg/*.js) so that it opens offline; app.js keeps
// the model and the WebAssembly in the same cache. Cache first: a build is never changed in place,
// a new one comes with a new cache name (build.sh writes the hash of its files here).
const CACHE = "captioner-__VERSION__";

// The page's shell, kept at once: the first visit was fetched before this worker ran.
const SHELL = ["./", "app.js", "pkg/captioner_web.js"];

self.addEventListener("install", event => {
  event.waitUntil((async () => {
    await (await caches.open(CACHE)).addAll(SHELL);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", event => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", event => {
  const request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(request, { ignoreSearch: true });
    if (hit) return hit;
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  })());
});
