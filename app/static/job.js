// The job page, live: follows the job's event stream (polls when streams fail) and
// sends cancel / retry / delete to the API with the session's CSRF token.
"use strict";

(function () {
  const root = document.getElementById("job");
  if (!root) return;
  const jobId = root.dataset.jobId;
  const api = `/api/jobs/${encodeURIComponent(jobId)}`;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const TERMINAL = new Set(["finished", "failed", "stopped", "canceled"]);
  const $ = (id) => document.getElementById(id);
  let lastEventId = root.dataset.lastEventId || "0";
  let startedAt = null;
  let status = $("status").textContent.trim();
  let source = null;
  let pollTimer = null;
  let watchdog = null;
  let shownAttempt = Number($("log").dataset.attempt) || null;

  function markAttempt(number, note) {
    const mark = document.createElement("li");
    mark.className = "attempt";
    mark.textContent = `— attempt ${number}${note || ""} —`;
    $("log").appendChild(mark);
    shownAttempt = number;
  }

  function setText(id, text) {
    $(id).textContent = text == null ? "" : String(text);
  }

  function showWhen(id, value) {
    const cell = $(id);
    cell.textContent = "";
    if (!value) {
      cell.textContent = "—";
      return;
    }
    const time = document.createElement("time");
    time.dateTime = value;
    time.textContent = value.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC");
    cell.appendChild(time);
  }

  function setStatus(next) {
    status = next;
    const badge = $("status");
    badge.textContent = next;
    badge.className = `badge badge-${next}`;
    $("cancel").disabled = !["queued", "scheduled", "deferred", "started"].includes(next);
    $("retry").disabled = !["failed", "stopped", "canceled"].includes(next);
    $("delete").disabled = !TERMINAL.has(next);
    setText("live", TERMINAL.has(next) ? "" : source ? "live" : pollTimer ? "updating every second" : "");
  }

  function setProgress(percent, message, eta, status) {
    const bar = $("progress");
    if (percent == null) {
      // Only a running job without a figure gets the moving bar; the rest stand still.
      if (status === "started") bar.removeAttribute("value");
      else bar.value = status === "finished" ? 100 : 0;
      setText("percent", "");
    } else {
      bar.value = percent;
      setText("percent", `${Math.round(percent)}%`);
    }
    if (message !== undefined) setText("progress-message", message || "");
    setText("eta", eta ? `about ${Math.round(eta)} s left` : "");
  }

  function progressFromEvent(data) {
    const { done, total, message } = data;
    if (typeof done !== "number" || typeof total !== "number" || total <= 0) {
      setProgress(null, message, null, "started");
      return;
    }
    const percent = Math.min(100, Math.max(0, (done / total) * 100));
    let eta = null;
    if (startedAt && percent > 0 && percent < 100) {
      const elapsed = (Date.now() - startedAt) / 1000;
      eta = (elapsed * (100 - percent)) / percent;
    }
    setProgress(percent, message, eta);
  }

  function appendLog(line) {
    if (typeof line.attempt === "number" && line.attempt !== shownAttempt) markAttempt(line.attempt);
    const item = document.createElement("li");
    item.className = `level-${String(line.level || "info").toLowerCase()}`;
    const level = document.createElement("span");
    level.className = "level";
    level.textContent = line.level || "INFO";
    if (typeof line.at === "number") {
      const at = document.createElement("time");
      at.className = "at";
      const moment = new Date(line.at * 1000);
      at.dateTime = moment.toISOString();
      at.textContent = moment.toISOString().slice(11, 19);
      item.append(at, " ");
    }
    item.append(level, ` ${line.message}`);
    const log = $("log");
    log.appendChild(item);
    while (log.children.length > 500) log.firstElementChild.remove();
  }

  function showArtifact(doc) {
    const box = $("artifact");
    box.textContent = "";
    const url = doc.links && doc.links.artifact;
    const described = doc.result && doc.result.artifact;
    if (!url || !described) return;
    const para = document.createElement("p");
    const link = document.createElement("a");
    link.href = url;
    link.download = "";
    link.textContent = `Download ${described.filename}`;
    para.append(link, ` (${described.size} bytes)`);
    box.appendChild(para);
    if (String(described.content_type).startsWith("image/")) {
      const img = document.createElement("img");
      img.src = url;
      img.alt = described.filename;
      img.className = "preview";
      box.appendChild(img);
    }
  }

  function render(doc) {
    if (!doc) return;
    startedAt = doc.started_at ? Date.parse(doc.started_at) : null;
    setStatus(doc.status);
    const p = doc.progress || {};
    setProgress(p.percent, p.message, p.eta_seconds, doc.status);
    showWhen("scheduled_for", doc.scheduled_for);
    showWhen("started_at", doc.started_at);
    showWhen("ended_at", doc.ended_at);
    setText("attempts", doc.attempts);
    setText("worker", doc.worker || "—");
    const finished = doc.status === "finished";
    $("result-block").hidden = !finished;
    if (finished) {
      setText("result", JSON.stringify(doc.result, null, 2));
      showArtifact(doc);
    }
    const stopped = doc.status === "stopped";
    $("stopped").hidden = !stopped;
    $("error-block").hidden = !doc.error || stopped;
    if (doc.error) {
      setText("error-type", doc.error.type);
      setText("error-message", doc.error.message);
      setText("traceback", doc.error.traceback);
    }
    $("waiting").hidden = finished || Boolean(doc.error);
  }

  async function call(method, path) {
    const response = await fetch(path, {
      method,
      headers: { Accept: "application/json", "X-CSRFToken": csrf },
      credentials: "same-origin",
    });
    if (response.status === 204) return null;
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error((body && (body.detail || body.title)) || `the server answered ${response.status}`);
    }
    return body;
  }

  async function refresh() {
    const doc = await call("GET", api);
    // A read sent while the job ran can answer after its end event: it must not take the page back.
    if (TERMINAL.has(status) && !TERMINAL.has(doc.status)) return;
    render(doc);
    if (TERMINAL.has(doc.status) && source) stopFollowing();
  }

  function follow() {
    if (!window.EventSource) {
      poll();
      return;
    }
    source = new EventSource(`${api}/events?last_event_id=${encodeURIComponent(lastEventId)}`);
    // Whatever the stream misses, the page reads the job every few seconds while it follows it.
    watchdog = setInterval(() => refresh().catch(() => {}), 3000);
    let failures = 0;
    source.addEventListener("open", () => {
      failures = 0;
      setText("live", "live");
    });
    source.addEventListener("status", (event) => {
      lastEventId = event.lastEventId || lastEventId;
      const data = JSON.parse(event.data);
      setStatus(data.status);
      if (data.status === "started") {
        startedAt = data.at ? data.at * 1000 : Date.now();
        refresh().catch(() => {});
      }
    });
    source.addEventListener("progress", (event) => {
      lastEventId = event.lastEventId || lastEventId;
      progressFromEvent(JSON.parse(event.data));
    });
    source.addEventListener("log", (event) => {
      lastEventId = event.lastEventId || lastEventId;
      appendLog(JSON.parse(event.data));
    });
    source.addEventListener("end", (event) => {
      const data = JSON.parse(event.data);
      stopFollowing();
      if (data.job) render(data.job);
      if (!TERMINAL.has(status)) poll(); // the job ended: read it until the page says so
    });
    source.addEventListener("error", () => {
      failures += 1;
      // The browser reconnects by itself (with Last-Event-ID); after repeated failures, poll instead.
      if (source.readyState === EventSource.CLOSED || failures >= 3) {
        stopFollowing();
        poll();
      }
    });
  }

  function stopFollowing() {
    if (source) source.close();
    source = null;
    if (watchdog) clearInterval(watchdog);
    watchdog = null;
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
    setText("live", "");
  }

  function poll() {
    setText("live", "updating every second");
    const tick = async () => {
      try {
        const [doc, logs] = await Promise.all([call("GET", api), call("GET", `${api}/logs?tail=200`)]);
        render(doc);
        if (logs.lines.length) {  // lines carry their attempt; with none, keep the page's own marks
          $("log").textContent = "";
          shownAttempt = 1;
          logs.lines.forEach(appendLog);
        }
        if (TERMINAL.has(doc.status)) {
          stopFollowing();
          return;
        }
      } catch (error) {
        setText("live", `cannot reach the server (${error.message}); retrying`);
      }
      pollTimer = setTimeout(tick, 1000);
    };
    pollTimer = setTimeout(tick, 0);
  }

  async function act(action) {
    const message = $("action-message");
    message.hidden = true;
    try {
      if (action === "delete") {
        await call("DELETE", api);
        window.location.assign(root.dataset.history);
        return;
      }
      const doc = await call("POST", `${api}/${action}`);
      // Stopping a running job is asynchronous: the stream may already have told how it ended.
      if (action === "cancel" && TERMINAL.has(status)) return;
      if (action === "retry") markAttempt(doc.attempts + 1, `, retried ${new Date().toISOString().slice(11, 19)}`);
      render(doc);
      if (!TERMINAL.has(doc.status) && !source && !pollTimer) follow();
    } catch (error) {
      message.textContent = `Could not ${action} the job: ${error.message}`;
      message.hidden = false;
    }
  }

  for (const button of root.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => act(button.dataset.action));
  }
  setStatus(status);
  if (!TERMINAL.has(status)) follow();
  refresh().catch(() => {});
})();
