// Sub-second playback over WebRTC (views/webrtc_watch.py, Janus behind it), tried before
// HLS by player.js when the block has data-webrtc-url. Any refusal (no WebRTC publisher,
// the audience cap, a grant no longer renewed) or failure resolves to null or calls
// onFail, and the player plays HLS instead: WebRTC is never required.

const CONNECT_TIMEOUT_MS = 8000;
const KEEPALIVE_MS = 20000;
const GATHER_TIMEOUT_MS = 2000;

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    setTimeout(resolve, GATHER_TIMEOUT_MS);
  });
}

function playing(video, pc) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no WebRTC media")), CONNECT_TIMEOUT_MS);
    video.addEventListener("playing", () => { clearTimeout(timer); resolve(); }, { once: true });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed") { clearTimeout(timer); reject(new Error("WebRTC failed")); }
    });
  });
}

/**
 * Play ``session`` over WebRTC into ``video``. ``grantToken()`` gives the current playback
 * grant (``<expires>-<signature>``). Resolves to ``{stop()}`` once frames play, or null.
 */
export async function playWebRTC({ video, baseUrl, session, grantToken, onFail = () => {} }) {
  if (!window.RTCPeerConnection || !grantToken()) return null;
  const watchUrl = () => `${baseUrl}${session}/${grantToken()}/`;
  let offer;
  try {
    // Cookies name the person (the user, or the signed visitor id): the cap counts people.
    const response = await fetch(watchUrl(), { method: "POST", credentials: "same-origin" });
    if (response.status !== 201) return null; // {"fallback": "hls"}
    offer = await response.json();
  } catch {
    return null;
  }
  const resourceId = offer.resource.split("/").filter(Boolean).pop();
  const resourceUrl = () => `${watchUrl()}${resourceId}/`;
  const send = (body) =>
    fetch(resourceUrl(), { method: "POST", credentials: "omit", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const pc = new RTCPeerConnection();
  const stream = new MediaStream();
  pc.addEventListener("track", (event) => stream.addTrack(event.track));
  let keepalive = null;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(keepalive);
    pc.close();
    if (video.srcObject === stream) video.srcObject = null;
    fetch(resourceUrl(), { method: "DELETE", credentials: "omit" }).catch(() => {});
  };
  try {
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    const answered = await send({ type: "answer", sdp: pc.localDescription.sdp });
    if (answered.status !== 204) throw new Error(`answer ${answered.status}`);
    video.srcObject = stream;
    video.muted = video.muted || !navigator.userActivation?.hasBeenActive; // autoplay rules
    video.play().catch(() => {});
    await playing(video, pc);
  } catch {
    stop();
    return null;
  }
  const fail = () => {
    if (!stopped) {
      stop();
      onFail();
    }
  };
  keepalive = setInterval(async () => {
    try {
      const response = await send({ type: "keepalive" });
      if (response.status !== 204) fail(); // the grant was not renewed, or Janus dropped us
    } catch {
      /* a network blip: the next keepalive tells */
    }
  }, KEEPALIVE_MS);
  pc.addEventListener("connectionstatechange", () => {
    if (pc.connectionState === "failed" || pc.connectionState === "closed") fail();
  });
  video.dataset.transport = "webrtc";
  return { stop };
}
