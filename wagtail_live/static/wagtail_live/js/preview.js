// The admin's live preview players (Go Live screen, live dashboard): the session's HLS,
// natively where the browser plays HLS, else with the vendored hls.js.
// Markup: <video data-live-preview data-playback-url=… data-hlsjs-url=…>.

let hlsjsLoading = null;

/** Load the vendored hls.js once (a UMD script that defines window.Hls). */
function loadHlsJs(src) {
  if (window.Hls) return Promise.resolve(window.Hls);
  hlsjsLoading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = () => resolve(window.Hls);
    script.onerror = reject;
    document.head.append(script);
  });
  return hlsjsLoading;
}

// The screen may open (or reload into the preview) the moment the encoder connects, before
// ffmpeg has written the first segment: a playlist that is not there yet is tried again.
const RETRY_MS = 2000;

function attachHls(video, Hls, url) {
  const hls = new Hls({ lowLatencyMode: true });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (!data.fatal) return;
    hls.destroy();
    setTimeout(() => attachHls(video, Hls, url), RETRY_MS);
  });
  hls.loadSource(url);
  hls.attachMedia(video);
}

async function playPreview(video) {
  const url = video.dataset.playbackUrl;
  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.addEventListener("error", () => setTimeout(() => (video.src = url), RETRY_MS));
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
