/* Invigil live proctor page: candidate cards with device health and a live alert list, fed by polling
 * the exam's alerts with a cursor (the server answers at once with news, else after up to `wait` seconds).
 * All data is written with textContent. */
"use strict";

(function () {
  const body = document.body;
  const ALERTS = body.dataset.alerts;
  const EVIDENCE = body.dataset.evidence;
  const POLL_WAIT_S = Number(body.dataset.pollWait) || 20;
  const SNAPSHOT_RETRY_MS = Number(body.dataset.snapshotRetryMs) || 2000;
  const SNAPSHOT_TRIES = 6; // the upload follows its event; after these tries: "snapshot pending"
  const RECONNECT_MS = 2000; // after a failed poll (the server away, or busy)
  const IDLE_MS = 2000; // after an answer without news that did not wait (every waiting slot taken)

  const KINDS = {
    absent: "Candidate absent",
    left_zone: "Left the seat area",
    extra_person: "Another person in view",
    phone: "Phone or handheld device",
    material: "Books, notes or extra screen",
    gaze_away: "Looking away",
    talking: "Talking",
    loud_audio: "Loud sound",
    identity_mismatch: "Face does not match the enrolled photo",
    camera_tamper: "Camera covered, dark or moved",
    speech_keyword: "Keyword spoken",
    device_offline: "Camera unit offline",
    events_refused: "Alerts the unit could not store",
    events_missing: "Events lost between the unit and the bridge",
  };
  const SEVERITIES = { info: "Info", warning: "Warning", critical: "Critical" };
  const SEVERITY_RANK = { info: 0, warning: 1, critical: 2 };
  const FLAGS = {
    gap: "Events were lost before this one",
    replayed: "Replayed event (old sequence number)",
    broken_chain: "Event chain broken: possible tampering",
    disk_full: "Alerts were lost before this one: the unit's disk was full",
    store_error: "Alerts were lost before this one: the unit could not store them",
  };

  let sessions = [];
  const entries = new Map(); // alert id (shared by start/update/end) -> entry
  const seen = new Set(); // ids of alert messages already applied
  let lastId = 0;
  let sessionsTag = "";

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  }

  function duration(ms) {
    let s = Math.max(0, Math.round(ms / 1000));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    s %= 60;
    if (h) return `${h} h ${m} min`;
    return m ? `${m} min ${s} s` : `${s} s`;
  }

  function kindText(kind) {
    return KINDS[kind] || String(kind).replace(/_/g, " ");
  }

  /* ---- connection ---- */

  function setConnection(state, text) {
    $("connection").dataset.state = state;
    $("connection-text").textContent = text;
  }

  async function poll() {
    let delay = 0;
    try {
      const query = `after=${lastId}&wait=${POLL_WAIT_S}&seen=${encodeURIComponent(sessionsTag)}`;
      const response = await fetch(`${ALERTS}?${query}`, { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        setConnection("signed-out", "Signed out: open the proctor link again");
        return; // no more polling: a new link is needed
      }
      if (!response.ok) {
        const retry = Number(response.headers.get("Retry-After"));
        setConnection("reconnecting", "Reconnecting…");
        setTimeout(poll, retry > 0 ? retry * 1000 : RECONNECT_MS);
        return;
      }
      const news = await response.json();
      setConnection("live", "Live");
      const changed = news.sessions_tag !== sessionsTag;
      if (changed) {
        sessionsTag = news.sessions_tag;
        sessions = news.sessions;
        renderSessions();
      }
      news.alerts.forEach(applyAlert);
      if (!news.waited && !changed && news.alerts.length === 0) delay = IDLE_MS; // no waiting slot was free
    } catch (error) {
      setConnection("reconnecting", "Reconnecting…");
      delay = RECONNECT_MS;
    }
    setTimeout(poll, delay);
  }

  /* ---- candidates ---- */

  function isOffline(s) {
    return Boolean(s.offline) || s.device_status === "offline";
  }

  function health(s) {
    if (!s.device) return "none";
    if (isOffline(s)) return "offline";
    return s.device_status === "online" ? "online" : "unknown";
  }

  function fixed(value, digits, unit) {
    return typeof value === "number" ? `${value.toFixed(digits)} ${unit}` : "—";
  }

  function disk(mb) {
    if (typeof mb !== "number") return "—";
    return mb >= 1024 ? `${(mb / 1024).toFixed(1)} GB` : `${mb} MB`;
  }

  function heartbeatText(lastSeen) {
    if (typeof lastSeen !== "number") return "never";
    const age = Math.max(0, Date.now() / 1000 - lastSeen);
    return age < 2 ? "just now" : `${duration(age * 1000)} ago`;
  }

  const FIELDS = [ // [class, label]: one row each in a candidate card
    ["device", "Device"], ["health", "Health"], ["heartbeat", "Last heartbeat"], ["fps", "Frame rate"],
    ["inference", "Inference"], ["queue", "Queue"], ["temperature", "Temperature"], ["disk", "Free disk"],
    ["camera", "Camera"], ["open-alerts", "Open alerts"],
  ];
  const cards = new Map(); // session id -> {card, state, banner, rows}: updated in place, never rebuilt

  function newCard(s) {
    const card = el("li", "card");
    card.dataset.session = s.session;
    const head = el("div", "card-head");
    const state = el("span", "badge");
    head.append(el("h3", "candidate", s.candidate), state);
    const banner = el("p", "offline-banner", "Device offline");
    const list = el("dl", "health-list");
    const rows = {};
    for (const [name, label] of FIELDS) {
      const row = el("div", name);
      rows[name] = el("dd");
      row.append(el("dt", null, label), rows[name]);
      list.append(row);
    }
    card.append(head, banner, list);
    return { card, state, banner, rows };
  }

  function openCount(sessionId) {
    let n = 0;
    for (const entry of entries.values()) if (!entry.ended && entry.first.session === sessionId) n += 1;
    return n;
  }

  function updateCard(view, s) {
    const state = health(s);
    const stats = s.stats || {};
    view.card.dataset.state = s.state;
    view.card.dataset.health = state;
    view.state.className = `badge state-${s.state}`;
    view.state.textContent = s.state;
    view.banner.hidden = !(state === "offline" && s.state !== "ended");
    const texts = {
      device: s.device || "not paired yet",
      health: { none: "—", online: "online", offline: "OFFLINE", unknown: "unknown" }[state],
      heartbeat: heartbeatText(s.last_seen),
      fps: fixed(stats.fps, 1, "fps"),
      inference: fixed(stats.inf_ms, 0, "ms"),
      queue: typeof stats.queue === "number" ? `${stats.queue} events` : "—",
      temperature: fixed(stats.temp, 1, "°C"),
      disk: disk(stats.disk_mb),
      camera: stats.camera || "—",
      "open-alerts": String(openCount(s.session)),
    };
    for (const [name, text] of Object.entries(texts)) {
      if (view.rows[name].textContent !== text) view.rows[name].textContent = text;
    }
    const beat = view.rows.heartbeat.parentElement;
    if (typeof s.last_seen === "number") beat.dataset.lastSeen = String(s.last_seen);
    else delete beat.dataset.lastSeen;
  }

  function renderSessions() {
    const list = $("sessions");
    const current = new Set();
    sessions.forEach((s, index) => {
      current.add(s.session);
      let view = cards.get(s.session);
      if (!view) {
        view = newCard(s);
        cards.set(s.session, view);
      }
      updateCard(view, s);
      const here = list.children[index];
      if (here !== view.card) list.insertBefore(view.card, here || null); // the server's order
    });
    for (const [id, view] of cards) {
      if (!current.has(id)) {
        view.card.remove();
        cards.delete(id);
      }
    }
    $("no-sessions").hidden = sessions.length > 0;
    $("candidate-count").textContent = sessions.length ? `(${sessions.length})` : "";
  }

  function tickHeartbeats() {
    for (const row of document.querySelectorAll(".heartbeat[data-last-seen]")) {
      row.querySelector("dd").textContent = heartbeatText(Number(row.dataset.lastSeen));
    }
  }

  /* ---- alerts ---- */

  function newEntry(a, key) {
    const row = el("li", "alert");
    row.dataset.alert = key;
    const time = el("time", "when", clock(a.t));
    time.dateTime = new Date(a.t).toISOString();
    const what = el("div", "what");
    const kind = el("span", "kind");
    const severity = el("span", "badge severity");
    const who = el("div", "who");
    const candidate = el("strong", "candidate", a.candidate);
    who.append(candidate, el("span", "device", ` · ${a.device}`));
    what.append(kind, severity);
    const status = el("p", "status");
    const flag = el("p", "flag");
    flag.hidden = true;
    const snapshot = el("div", "snapshot");
    const text = el("div", "text");
    text.append(what, who, status, flag);
    row.append(time, text, snapshot);
    return { key, row, kind, severity, status, flag, snapshot, first: a, last: a, ended: false,
      rank: -1, confidence: 0, evidence: null };
  }

  function renderEntry(entry) {
    const a = entry.last;
    entry.row.dataset.kind = entry.first.kind;
    entry.row.dataset.severity = entry.severityName;
    entry.row.dataset.phase = entry.ended ? "ended" : "open";
    entry.row.classList.toggle("open", !entry.ended);
    entry.kind.textContent = kindText(entry.first.kind) + (entry.first.keyword ? `: "${entry.first.keyword}"` : "");
    entry.severity.textContent = SEVERITIES[entry.severityName] || entry.severityName;
    entry.severity.className = `badge severity sev-${entry.severityName}`;
    const confidence = entry.first.kind === "device_offline" ? "" : ` · confidence ${Math.round(entry.confidence * 100)} %`;
    if (entry.ended) {
      const lasted = entry.first.phase === "start" ? `lasted ${duration(a.t - entry.first.t)}` : `at ${clock(a.t)}`;
      entry.status.textContent = `Ended, ${lasted}${confidence}`;
    } else {
      const updated = a !== entry.first ? ` · updated ${clock(a.t)}` : "";
      entry.status.textContent = `Open${updated}${confidence}`;
    }
  }

  function applyAlert(a) {
    if (seen.has(a.id)) return;
    seen.add(a.id);
    lastId = Math.max(lastId, a.id);
    const key = a.alert || a.event || `row-${a.id}`;
    let entry = entries.get(key);
    if (!entry) {
      entry = newEntry(a, key);
      entries.set(key, entry);
      $("alerts").prepend(entry.row);
      $("no-alerts").hidden = true;
    }
    entry.last = a;
    if (a.phase === "end" || a.kind === "events_refused") entry.ended = true; // a report: nothing to end
    const rank = SEVERITY_RANK[a.severity] ?? 0;
    if (rank > entry.rank) {
      entry.rank = rank;
      entry.severityName = a.severity;
    }
    entry.confidence = Math.max(entry.confidence, Number(a.confidence) || 0);
    if (a.flag) {
      entry.flag.hidden = false;
      entry.flag.textContent = `⚠ ${FLAGS[a.flag] || a.flag}`;
    }
    if (a.evidence && !entry.evidence) {
      entry.evidence = a.evidence;
      showSnapshot(entry);
    }
    renderEntry(entry);
    scheduleCounts();
  }

  let countsDue = false;

  function scheduleCounts() { // once per burst of alerts (a resumed stream replays many at once)
    if (countsDue) return;
    countsDue = true;
    setTimeout(() => {
      countsDue = false;
      const open = [...entries.values()].filter((e) => !e.ended).length;
      $("open-count").textContent = open ? `(${open} open)` : "";
      renderSessions(); // the cards' open-alert counts
    }, 0);
  }

  function showSnapshot(entry) {
    const url = EVIDENCE + encodeURIComponent(entry.evidence);
    const box = entry.snapshot;
    const link = el("a");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener";
    const img = el("img", "thumb");
    img.alt = `Snapshot: ${kindText(entry.first.kind)}, candidate ${entry.first.candidate}`;
    const note = el("span", "snapshot-note", "Loading snapshot…");
    link.append(img);
    box.replaceChildren(link, note);
    box.dataset.state = "loading";
    box.dataset.tries = "0";
    let tries = 0;
    img.addEventListener("load", () => {
      box.dataset.state = "loaded";
      note.remove();
    });
    img.addEventListener("error", () => {
      tries += 1;
      box.dataset.tries = String(tries);
      if (tries < SNAPSHOT_TRIES) {
        setTimeout(() => { img.src = `${url}?try=${tries}`; }, SNAPSHOT_RETRY_MS * tries);
        return;
      }
      box.dataset.state = "pending";
      const again = el("button", "retry", "Try again");
      again.type = "button";
      again.addEventListener("click", () => showSnapshot(entry));
      note.textContent = "Snapshot pending ";
      note.append(again);
      link.hidden = true;
    });
    img.src = url;
  }

  if (window.location.search) { // the staff link's ?token= is a cookie now: out of the address bar and history
    window.history.replaceState(null, "", body.dataset.page);
  }
  renderSessions();
  setInterval(tickHeartbeats, 1000);
  poll();
})();
