// Publish a MediaStream over WebRTC with WHIP (RFC 9725): the Go Live screen's
// "low latency" switch (docs/going-live.md). The offer is sent once ICE gathering
// is complete (no trickle needed), with the stream key as the bearer token; the
// answer's Location is the resource that DELETE ends.

const GATHER_TIMEOUT_MS = 3000;
const CONNECT_TIMEOUT_MS = 20000;

function waitForGathering(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_TIMEOUT_MS); // send what we have: host candidates come first
  });
}

function waitForConnection(pc) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (pc.connectionState === "connected") resolve();
      if (pc.connectionState === "failed") reject(new Error("WebRTC connection failed"));
    };
    pc.addEventListener("connectionstatechange", check);
    setTimeout(() => reject(new Error("WebRTC connection timed out")), CONNECT_TIMEOUT_MS);
    check();
  });
}

/** Prefer H.264: the server copies it into HLS and the recording instead of transcoding. */
function preferH264(transceiver) {
  const capabilities = window.RTCRtpSender?.getCapabilities?.("video");
  if (!capabilities || !transceiver.setCodecPreferences) return;
  const h264 = capabilities.codecs.filter((codec) => codec.mimeType.toLowerCase() === "video/h264");
  const rest = capabilities.codecs.filter((codec) => codec.mimeType.toLowerCase() !== "video/h264");
  if (h264.length) transceiver.setCodecPreferences([...h264, ...rest]);
}

/**
 * Publish ``stream`` to the WHIP endpoint ``url`` with ``token``; resolves once media flows.
 * Returns ``{ pc, location, stop() }``: ``stop()`` sends DELETE (the session ends) and closes.
 * ``onGone`` is called if the connection fails later. Rejects with the server's refusal text.
 */
export async function publishWhip({ stream, url, token, iceServers = [], onGone = () => {} }) {
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
  for (const track of stream.getTracks()) {
    const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    if (track.kind === "video") preferH264(transceiver);
  }
  await pc.setLocalDescription(await pc.createOffer());
  await waitForGathering(pc);
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
    credentials: "omit",
  });
  const body = await response.text();
  if (response.status !== 201) {
    pc.close();
    throw new Error(body.trim() || `WHIP ${response.status}`);
  }
  const location = new URL(response.headers.get("Location"), url).href;
  await pc.setRemoteDescription({ type: "answer", sdp: body });
  try {
    await waitForConnection(pc);
  } catch (error) {
    pc.close();
    throw error;
  }
  let stopped = false;
  pc.addEventListener("connectionstatechange", () => {
    if (!stopped && (pc.connectionState === "failed" || pc.connectionState === "closed")) onGone();
  });
  return {
    pc,
    location,
    async stop() {
      stopped = true;
      try {
        await fetch(location, { method: "DELETE", headers: { Authorization: `Bearer ${token}` }, credentials: "omit" });
      } finally {
        pc.close();
      }
    },
    close() {
      stopped = true;
      pc.close();
    },
  };
}
