// Countdowns of the *Upcoming live* block (wagtail_live/blocks/upcoming_live.html).

const textElement = document.getElementById("wagtail-live-upcoming-text");
const TEXT = textElement ? JSON.parse(textElement.textContent) : {};

/** "2 d 03:04:05" / "03:04:05" for a number of milliseconds (never negative). */
export function formatCountdown(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(total / 86400);
  const pad = (n) => String(n).padStart(2, "0");
  const clock = `${pad(Math.floor((total % 86400) / 3600))}:${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
  return days ? `${(TEXT.days || "%(count)s d").replace("%(count)s", days)} ${clock}` : clock;
}

function tick(elements) {
  const now = Date.now();
  for (const element of elements) {
    const left = Date.parse(element.dataset.start) - now;
    element.textContent =
      left > 0
        ? (TEXT.startsIn || "%(time)s").replace("%(time)s", formatCountdown(left))
        : TEXT.startingNow || "";
  }
}

const countdowns = [...document.querySelectorAll("[data-live-upcoming] [data-live-countdown]")];
if (countdowns.length) {
  tick(countdowns);
  setInterval(() => tick(countdowns), 1000);
}
