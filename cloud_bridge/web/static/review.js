// Invigil review: step through a session's alerts with j/k and decide with c/d/s (n: write a note first).
"use strict";
(function () {
  const body = document.body;
  const alerts = Array.from(document.querySelectorAll("#alerts > li.alert"));
  const message = document.getElementById("message");
  const VERDICTS = { c: "confirmed", d: "dismissed", s: "second_look" };
  let current = -1;

  function select(index) {
    if (!alerts.length) return;
    current = Math.max(0, Math.min(alerts.length - 1, index));
    alerts.forEach((item, i) => item.classList.toggle("current", i === current));
    const item = alerts[current];
    item.focus({ preventScroll: true });
    item.scrollIntoView({ block: "nearest" });
    document.querySelectorAll("svg.timeline .bar").forEach((bar) => {
      bar.classList.toggle("current", bar.getAttribute("data-alert") === item.dataset.alert);
    });
    history.replaceState(null, "", "#" + item.id);
  }

  function say(text, bad) {
    message.textContent = text;
    message.classList.toggle("bad", !!bad);
  }

  function label(status) {
    return status.replace(/_/g, " ");
  }

  async function decide(box, verdict) {
    if (body.dataset.decides !== "yes") { say("Only staff and reviewer logins record decisions.", true); return; }
    const note = box.querySelector(".note");
    const alertId = box.dataset.alert || null;
    say("Saving…");
    try {
      const answer = await fetch(body.dataset.decisions, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ alert_id: alertId, verdict: verdict, note: note ? note.value : "" }),
      });
      const data = await answer.json();
      if (!answer.ok) { say("Not saved: " + (data.detail || answer.status), true); return; }
      const review = await (await fetch(body.dataset.review, { credentials: "same-origin" })).json();
      const found = alertId === null ? review.decision : (review.alerts.find((a) => a.alert_id === alertId) || {}).decision;
      const status = box.querySelector(".status");
      if (found && status) {
        status.textContent = label(found.status);
        status.className = "status st-" + found.status;
      }
      box.dataset.decided = found ? found.status : verdict;
      const last = box.querySelector(".last");
      if (last && found && found.latest) {
        last.textContent = "(" + found.latest.verdict + " by " + found.latest.reviewer +
          (found.latest.note ? ": " + found.latest.note : "") + ")";
      }
      if (note) note.value = "";
      say("Saved: " + label(found ? found.status : verdict) + (alertId ? "" : " (session)"));
    } catch (error) {
      say("Not saved: " + error, true);
    }
  }

  document.querySelectorAll(".decision-box button[data-verdict]").forEach((button) => {
    button.addEventListener("click", () => decide(button.closest(".decision-box"), button.dataset.verdict));
  });
  document.querySelectorAll("svg.timeline .bar").forEach((bar) => {
    bar.addEventListener("click", () => {
      select(alerts.findIndex((item) => item.dataset.alert === bar.getAttribute("data-alert")));
    });
  });
  alerts.forEach((item, i) => item.addEventListener("click", (event) => {
    if (!event.target.closest("button, textarea")) select(i);
  }));

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target instanceof HTMLTextAreaElement || event.target instanceof HTMLInputElement;
    if (typing) {
      if (event.key === "Escape") { event.target.blur(); if (current >= 0) alerts[current].focus(); }
      return;
    }
    if (event.key === "j") { select(current + 1); event.preventDefault(); }
    else if (event.key === "k") { select(current - 1); event.preventDefault(); }
    else if (event.key === "n" && current >= 0) {
      const note = alerts[current].querySelector(".note");
      if (note) { note.focus(); event.preventDefault(); }
    } else if (VERDICTS[event.key] && current >= 0) {
      event.preventDefault();
      decide(alerts[current], VERDICTS[event.key]);
    }
  });

  const start = alerts.findIndex((item) => "#" + item.id === location.hash);
  if (start >= 0) select(start);
})();
