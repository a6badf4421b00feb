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

async function playPreview(video) {
  const url = video.dataset.playbackUrl;
  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
    return;
  }
  const Hls = await loadHlsJs(video.dataset.hlsjsUrl);
  if (Hls && Hls.isSupported()) {
    const hls = new Hls({ lowLatencyMode: true });
    hls.loadSource(url);
    hls.attachMedia(video);
  }
}

for (const video of document.querySelectorAll("[data-live-preview]")) {
  playPreview(video);
}
