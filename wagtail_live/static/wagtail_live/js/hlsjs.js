// Loading the vendored hls.js, shared by the live player (player.js) and the admin's
// previews (preview.js): one <script> and one promise per page, whichever asks first.

let hlsjsLoading = null;

/** Load the vendored hls.js once (a classic UMD script that defines window.Hls). */
export function loadHlsJs(src) {
  if (window.Hls) {
    return Promise.resolve(window.Hls);
  }
  hlsjsLoading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = () => resolve(window.Hls);
    script.onerror = reject;
    document.head.append(script);
  });
  return hlsjsLoading;
}
