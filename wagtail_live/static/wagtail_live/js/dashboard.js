// The live dashboard's preview player: native HLS where the browser has it, else hls.js.
const video = document.querySelector("[data-live-preview]");
if (video) {
    const url = video.dataset.playbackUrl;
    if (video.canPlayType("application/vnd.apple.mpegurl")) {
        video.src = url;
    } else {
        const script = document.createElement("script");
        script.src = video.dataset.hlsjsUrl;
        script.onload = () => {
            if (window.Hls && window.Hls.isSupported()) {
                const hls = new window.Hls({ lowLatencyMode: true });
                hls.loadSource(url);
                hls.attachMedia(video);
            }
        };
        document.head.append(script);
    }
}
