/// The dashboard at `GET /`: one page, its style and script inline, no build step and nothing from elsewhere.
///
/// It asks for the API token once (kept in the tab's session storage, sent as the bearer header, never in a URL),
/// then shows each app's live release, queue and recent deployments with their phases, follows a deployment's log
/// as Server-Sent Events read from a `fetch` stream (an `EventSource` cannot send the header), and offers deploy and
/// rollback behind a confirmation. Text from the server is only ever set as `textContent`, never parsed as HTML.
enum Dashboard {
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static let page = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pushdeploy</title>
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --ok: #127a3c; --bad: #b42318; --run: #175cd3; --bg: #f8f9fb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; justify-content: space-between; padding: .75rem 1rem;
           background: #fff; border-bottom: 1px solid var(--line); position: sticky; top: 0; }
  header h1 { font-size: 1.1rem; margin: 0; }
  main { padding: 1rem; display: grid; gap: 1rem; max-width: 1200px; margin: 0 auto; }
  section.app { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 1rem; display: grid; gap: .75rem; }
  .row { display: flex; flex-wrap: wrap; gap: .75rem; align-items: center; }
  .card { border: 1px solid var(--line); border-radius: 8px; padding: .6rem .8rem; min-width: 12rem; flex: 1; }
  .label { color: var(--muted); font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; }
  .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; word-break: break-all; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: .35rem .4rem; border-bottom: 1px solid var(--line); vertical-align: top; }
  tr.deployment { cursor: pointer; } tr.deployment:hover, tr.selected { background: #eef4ff; }
  .status { font-weight: 600; } .succeeded { color: var(--ok); } .failed, .interrupted, .rolled_back { color: var(--bad); }
  .running { color: var(--run); }
  .timeline { display: flex; height: .6rem; min-width: 6rem; border-radius: 3px; overflow: hidden; background: var(--line); }
  .timeline span { display: block; height: 100%; }
  pre#log { background: #0f1420; color: #dfe6f3; padding: .75rem; border-radius: 8px; max-height: 22rem; overflow: auto;
            white-space: pre-wrap; word-break: break-word; margin: 0; font-size: .8rem; }
  button, select, input { font: inherit; padding: .35rem .7rem; border-radius: 6px; border: 1px solid #cfd4dc; background: #fff; }
  button.primary { background: var(--run); color: #fff; border-color: var(--run); }
  button.danger { background: var(--bad); color: #fff; border-color: var(--bad); }
  #message { color: var(--bad); }
  @media (max-width: 640px) { .hide-narrow { display: none; } main { padding: .5rem; } .card { min-width: 100%; } }
</style>
</head>
<body>
<header>
  <h1>pushdeploy</h1>
  <form id="token-form" class="row">
    <input id="token" type="password" placeholder="API token" autocomplete="off" aria-label="API token">
    <button id="save-token" type="submit">Use token</button>
  </form>
  <span id="message" role="status"></span>
</header>
<main id="apps"></main>
<template id="app-template">
  <section class="app">
    <div class="row"><h2 class="name" style="margin:0;font-size:1.2rem"></h2><span class="strategy label"></span></div>
    <div class="row">
      <div class="card"><div class="label">Live release</div><div class="live-version mono"></div><div class="live-detail mono"></div></div>
      <div class="card"><div class="label">Instances</div><div class="instances mono"></div></div>
      <div class="card"><div class="label">Queue</div><div class="queue mono"></div></div>
    </div>
    <div class="row">
      <button class="deploy primary" type="button">Deploy branch head</button>
      <select class="rollback-to" aria-label="Roll back to"></select>
      <button class="rollback danger" type="button">Roll back</button>
    </div>
    <table><thead><tr><th>#</th><th>Kind</th><th>Status</th><th>Version</th><th class="hide-narrow">Trigger</th><th>Phases</th></tr></thead>
      <tbody class="deployments"></tbody></table>
    <div class="label">Log <span class="log-title"></span></div>
    <pre id="log" class="log"></pre>
  </section>
</template>
<script>
"use strict";
const phaseColors = { queued: "#98a2b3", fetching: "#7a5af8", building: "#ee46bc", starting: "#f79009", healthy: "#12b76a",
                      switching: "#2e90fa", watching: "#0ba5ec" };
let token = sessionStorage.getItem("pushdeploy-token") || "";
let selected = {};          // app -> deployment id whose log is shown
let following = null;       // { app, id, controller }
const $ = (selector, root = document) => root.querySelector(selector);
function say(text) { $("#message").textContent = text || ""; }

$("#token-form").addEventListener("submit", event => {
  event.preventDefault();
  token = $("#token").value.trim();
  sessionStorage.setItem("pushdeploy-token", token);
  $("#token").value = "";
  refresh();
});

async function api(path, options = {}) {
  if (!token) { say("Enter the API token."); throw new Error("no token"); }
  const response = await fetch(path, { ...options, headers: { ...(options.headers || {}), Authorization: "Bearer " + token } });
  if (response.status === 401) { say("The token was refused."); throw new Error("unauthorized"); }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
  return body;
}

function text(element, value) { element.textContent = value == null ? "" : String(value); return element; }
function make(tag, value, className) { const element = document.createElement(tag); if (className) element.className = className; return text(element, value); }

function timeline(deployment) {
  const bar = make("div", null, "timeline");
  const end = Date.parse(deployment.finished_at || new Date().toISOString());
  const start = Date.parse(deployment.created_at);
  const total = Math.max(end - start, 1);
  for (const phase of deployment.phases || []) {
    const from = Date.parse(phase.started_at), to = phase.ended_at ? Date.parse(phase.ended_at) : end;
    const span = make("span");
    span.style.width = Math.max(2, 100 * (to - from) / total) + "%";
    span.style.background = phaseColors[phase.name] || "#98a2b3";
    span.title = phase.name + " " + ((to - from) / 1000).toFixed(1) + " s";
    bar.appendChild(span);
  }
  return bar;
}

function section(app) {
  let element = document.querySelector(`section.app[data-app="${CSS.escape(app)}"]`);
  if (element) return element;
  element = $("#app-template").content.firstElementChild.cloneNode(true);
  element.dataset.app = app;
  text($(".name", element), app);
  $(".deploy", element).addEventListener("click", async () => {
    if (!confirm(`Deploy the head of ${app}'s branch?`)) return;
    try { const answer = await api(`/apps/${encodeURIComponent(app)}/deploy`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
          select(app, answer.deployment); say(""); refresh(); } catch (error) { say(error.message); }
  });
  $(".rollback", element).addEventListener("click", async () => {
    const to = $(".rollback-to", element).value;
    if (!confirm(`Roll ${app} back to ${to || "the previous release"}?`)) return;
    try { const answer = await api(`/apps/${encodeURIComponent(app)}/rollback`, { method: "POST", headers: { "Content-Type": "application/json" },
                                                                                body: JSON.stringify(to ? { to } : {}) });
          select(app, answer.deployment); say(""); refresh(); } catch (error) { say(error.message); }
  });
  $("#apps").appendChild(element);
  return element;
}

function render(app, status, deployments) {
  const element = section(app);
  text($(".strategy", element), status.strategy);
  const live = status.live;
  text($(".live-version", element), live ? live.version : "nothing live yet");
  text($(".live-detail", element), live ? `${(live.commit || "").slice(0, 12)} · deployment ${live.deployment}` + (live.since ? ` · since ${new Date(live.since).toLocaleString()}` : "") : "");
  text($(".instances", element), (status.instances || []).map(i => `${i.slot} :${i.port} ${i.role} ${i.version}` + (i.restarts ? ` (${i.restarts} restarts)` : "")).join("\n") || "none");
  const queue = status.queue || {};
  text($(".queue", element), [queue.running ? `running ${queue.running.kind} ${queue.running.id} (${queue.running.phase})` : "idle",
                               ...(queue.waiting || []).map(w => `waiting ${w.kind} ${w.id}`)].join("\n"));
  const choose = $(".rollback-to", element), kept = choose.value;
  choose.replaceChildren(make("option", "previous release"), ...(status.rollback_candidates || []).map(v => make("option", v)));
  choose.options[0].value = "";
  if ([...choose.options].some(o => o.value === kept)) choose.value = kept;
  const rows = deployments.map(d => {
    const row = make("tr", null, "deployment" + (selected[app] === d.id ? " selected" : ""));
    row.dataset.id = d.id;
    const finished = ["succeeded", "failed", "cancelled", "superseded", "interrupted", "rolled_back"].includes(d.status);
    const state = make("td", d.status, "status " + (finished ? d.status : "running"));
    // The guard's figures per step (each canary step, then the watch), on hover.
    const figures = f => `${f.failures} of ${f.requests} failed` + (f.p99_seconds != null ? `, p99 ${f.p99_seconds.toFixed(3)} s` : "");
    state.title = (d.guard_steps || []).map(s => `guard ${s.percent} %: ${figures(s.release)}` + (s.stable ? ` (stable: ${figures(s.stable)})` : "")
                                                 + ` — ${s.verdict}`).join("\n");
    row.append(make("td", d.id), make("td", d.kind), state,
               make("td", d.version || "", "mono"), make("td", d.trigger.source + (d.trigger.pusher ? " · " + d.trigger.pusher : ""), "hide-narrow"));
    const phases = make("td"); phases.appendChild(timeline(d)); row.appendChild(phases);
    row.addEventListener("click", () => select(app, d.id));
    return row;
  });
  $(".deployments", element).replaceChildren(...rows);
  if (selected[app] == null && deployments.length) select(app, deployments[0].id);
}

async function refresh() {
  if (!token) { say("Enter the API token."); return; }
  try {
    const apps = await api("/apps");
    for (const app of apps) {
      const name = encodeURIComponent(app);
      const [status, deployments] = await Promise.all([api(`/apps/${name}/status`), api(`/apps/${name}/deployments?limit=15`)]);
      render(app, status, deployments);
    }
    if (!$("#message").textContent.startsWith("Roll") ) say("");
  } catch (error) { if (error.message !== "no token" && error.message !== "unauthorized") say(error.message); }
}

function select(app, id) {
  selected[app] = id;
  for (const row of document.querySelectorAll(`section.app[data-app="${CSS.escape(app)}"] tr.deployment`)) row.classList.toggle("selected", Number(row.dataset.id) === id);
  follow(app, id);
}

async function follow(app, id) {
  if (following && following.app === app && following.id === id) return;
  if (following) following.controller.abort();
  const controller = new AbortController();
  following = { app, id, controller };
  const element = section(app), log = $(".log", element);
  log.textContent = "";
  text($(".log-title", element), `deployment ${id}`);
  let lastEventID = null;
  while (!controller.signal.aborted) {
    try {
      const headers = { Accept: "text/event-stream", Authorization: "Bearer " + token };
      if (lastEventID) headers["Last-Event-ID"] = lastEventID;
      const response = await fetch(`/apps/${encodeURIComponent(app)}/deployments/${id}/log`, { headers, signal: controller.signal });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const reader = response.body.getReader(), decoder = new TextDecoder();
      let buffer = "", ended = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let split;
        while ((split = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, split); buffer = buffer.slice(split + 2);
          let name = "message", data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) name = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
            else if (line.startsWith("id: ")) lastEventID = line.slice(4);
          }
          const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 20;
          if (name === "line") log.append(data.join("\n") + "\n");
          else if (name === "phase") log.append(`── ${JSON.parse(data.join("\n")).phase} ──\n`);
          else if (name === "end") { log.append(`── ${JSON.parse(data.join("\n")).status} ──\n`); ended = true; }
          if (atBottom) log.scrollTop = log.scrollHeight;
        }
      }
      if (ended) return;
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    await new Promise(resolve => setTimeout(resolve, 1000));
  }
}

refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"""#
}
