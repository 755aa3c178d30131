// The browser's captioner: the library compiled to WebAssembly (pkg/), the model's files and the
// encoder's weights fetched beside the page, once: they are kept in the browser's Cache Storage
// (as the page itself is, by sw.js), so the page works offline after its first visit. serve's page
// (index.html, built from src/serve/page.html) asks `window.captionPhoto` for each photo's caption.
import init, { PageCaptioner } from "./pkg/captioner_web.js";

// build.sh writes the hash of the page's files here: a new build is a new cache.
const CACHE = "captioner-__VERSION__";
const MODEL = ["model/config.json", "model/vocab.json", "model/weights.safetensors",
               "model/familiar.safetensors", "model/concepts.safetensors", "encoder.safetensors"];

// A file of the page, from the cache when it is there, else fetched and kept.
async function kept(cache, name) {
  const hit = await cache.match(name);
  if (hit) return hit;
  const response = await fetch(name);
  if (!response.ok) throw new Error(`${name}: ${response.status} ${response.statusText}`);
  await cache.put(name, response.clone());
  return response;
}

async function load() {
  say("Loading the model (once: it stays in this browser)…");
  const started = performance.now();
  const cache = await caches.open(CACHE);
  await init({ module_or_path: kept(cache, "pkg/captioner_web_bg.wasm") });
  const [config, vocab, ...binaries] = await Promise.all(MODEL.map(async name => {
    const response = await kept(cache, name);
    return name.endsWith(".json") ? response.text() : new Uint8Array(await response.arrayBuffer());
  }));
  const captioner = new PageCaptioner(config, vocab, ...binaries);
  const seconds = (performance.now() - started) / 1000;
  say(`Ready (${seconds.toFixed(1)} s). Photos are captioned on this device; nothing is sent.`);
  window.captionerLoadSeconds = seconds;
  return captioner;
}

const ready = load();
ready.catch(err => say(`The model did not load: ${err}`, true));

// A photo's caption as serve answers it: { ok, answer } with the answer's caption, words and
// attention, or its error.
window.captionPhoto = async blob => {
  const captioner = await ready;
  const bytes = new Uint8Array(await blob.arrayBuffer());
  // Let "Captioning…" show before the work holds the page's thread.
  await new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)));
  try {
    const started = performance.now();
    const answer = JSON.parse(captioner.caption(bytes));
    // Read by bench/web_latency.py: the caption's time on the page's thread.
    window.captionerLastMs = performance.now() - started;
    return { ok: true, answer };
  } catch (err) {
    return { ok: false, answer: { error: String(err.message || err) } };
  }
};

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("sw.js").catch(err => console.warn("no offline copy:", err));
}
