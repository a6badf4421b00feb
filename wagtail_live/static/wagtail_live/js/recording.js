// Counts a play of a published recording: one beacon per page view, on the first play.
for (const player of document.querySelectorAll("[data-plays-url]")) {
  const media = player.querySelector("video, audio");
  if (!media) continue;
  media.addEventListener(
    "play",
    () => {
      const url = player.dataset.playsUrl;
      if (!(navigator.sendBeacon && navigator.sendBeacon(url))) {
        fetch(url, { method: "POST", credentials: "same-origin", keepalive: true });
      }
    },
    { once: true },
  );
}
