// The admin's live preview players (Go Live screen, live dashboard): the session's HLS,
// natively where the browser plays HLS, else with the vendored hls.js.
// Markup: <video data-live-preview data-playback-url=… data-status-url=… data-hlsjs-url=…>
// (data-status-url: the session's public status.json, which gives a fresh playback URL).

import { loadHlsJs } from "./hlsjs.js";

// The screen may open (or reload into the preview) the moment the encoder connects, before
// ffmpeg has written the first segment, and the URL's signed grant expires after minutes
// (docs/delivery.md): on a fatal error, ask status.json for a fresh URL and load again.
const RETRY_MS = 2000;

async function freshUrl(video, url) {
  try {
    const response = await fetch(video.dataset.statusUrl, { credentials: "same-origin" });
    const data = response.ok ? await response.json() : {};
    return data.playback_url || url;
  } catch {
    return url; // offline for a moment: the next retry asks again
  }
}

function attachHls(video, Hls, url) {
  const hls = new Hls({ lowLatencyMode: true });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (!data.fatal) return;
    hls.destroy();
    setTimeout(async () => attachHls(video, Hls, await freshUrl(video, url)), RETRY_MS);
  });
  hls.loadSource(url);
  hls.attachMedia(video);
}

async function playPreview(video) {
  const url = video.dataset.playbackUrl;
  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.addEventListener("error", () =>
      setTimeout(async () => (video.src = await freshUrl(video, video.src || url)), RETRY_MS),
    );
    video.src = url;
    return;
  }
  const Hls = await loadHlsJs(video.dataset.hlsjsUrl);
  if (Hls && Hls.isSupported()) {
    attachHls(video, Hls, url);
  }
}

for (const video of document.querySelectorAll("[data-live-preview]")) {
  playPreview(video);
}
