// *Remind me* buttons (wagtail_live/includes/remind_me.html): post without leaving the page.
// Without JavaScript the form still works; it then shows a small confirmation page.

async function submitReminder(form, cancel) {
  const data = new FormData(form);
  if (cancel) {
    data.set("cancel", "1");
  }
  const response = await fetch(form.action, {
    method: "POST",
    body: data,
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  return response.json();
}

function enhance(form) {
  if (form.dataset.liveRemindReady) {
    return;
  }
  form.dataset.liveRemindReady = "1";
  const status = form.querySelector("[data-live-remind-status]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const cancel = event.submitter?.name === "cancel";
    const answer = await submitReminder(form, cancel).catch(() => null);
    if (answer?.login_url) {
      window.location.assign(answer.login_url);
      return;
    }
    if (!answer) {
      form.submit();
      return;
    }
    status.textContent = answer.message;
    if (answer.ok) {
      for (const button of form.querySelectorAll("button")) {
        button.hidden = true;
      }
    }
  });
}

for (const form of document.querySelectorAll("[data-live-remind]")) {
  enhance(form);
}
