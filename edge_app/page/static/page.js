// The placement page: the verdict is fetched again every second until the placement is usable.
"use strict";
(function () {
  const verdict = document.getElementById("verdict");
  const headline = document.getElementById("headline");
  const guidance = document.getElementById("guidance");
  const checks = document.getElementById("checks");
  const liveness = document.getElementById("liveness");
  const notice = document.getElementById("notice");

  function items(list, values, fill) {
    list.replaceChildren(...values.map((value) => { const li = document.createElement("li"); fill(li, value); return li; }));
  }

  function show(state) {
    const found = state.placement;
    verdict.dataset.ready = state.ready ? "true" : "false";
    headline.textContent = state.ready ? "Ready" : (found ? "Adjust the camera" : "Checking the placement\u2026");
    items(guidance, found ? found.guidance : [], (li, text) => { li.textContent = text; });
    items(checks, found ? Object.entries(found.checks) : [], (li, [name, passed]) => {
      li.textContent = name; li.dataset.check = name; li.className = passed ? "passed" : "failed";
    });
    liveness.textContent = state.live ? "" : "No picture from the camera yet.";
    notice.textContent = state.notice || "";
    notice.hidden = !state.notice;
  }

  async function poll() {
    try {
      const response = await fetch("/api/placement", { cache: "no-store" });
      if (response.ok) { show(await response.json()); }
    } catch (error) { liveness.textContent = "The unit does not answer."; }
    setTimeout(poll, 1000);
  }
  poll();
})();
