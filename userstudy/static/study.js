// Participant page of the genau-bench listening study. Plain JS, no build step.
// The server decides everything (current item, question order, playback gate, prompt
// reveal); this page only shows the state it gets and reports play/ended events.
"use strict";

const SIDES = ["left", "right"];
let state = null;
let position = null; // position of the item whose clips are loaded
const $ = (id) => document.getElementById(id);

async function api(path, body) {
  const opts = { credentials: "same-origin", headers: { "Content-Type": "application/json" } };
  if (body !== undefined) { opts.method = "POST"; opts.body = JSON.stringify(body); }
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    const msg = data && data.detail && data.detail.message ? data.detail.message : `request failed (${r.status})`;
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return data;
}

function showError(e) { $("message").textContent = e ? e.message : ""; }

function loadClips(item) {
  if (position === item.position) return;
  position = item.position;
  for (const side of SIDES) {
    const a = $(`audio-${side}`);
    a.pause();
    a.src = item[`${side}_url`];
    a.load();
    $(`time-${side}`).value = 0;
  }
}

function renderPlayed(played) {
  for (const side of SIDES) {
    const s = $(`status-${side}`);
    s.textContent = played[side] ? "\u2713 played to the end" : "not played to the end yet";
    s.classList.toggle("ok", !!played[side]);
  }
  const unlocked = played.left && played.right;
  $("vote-left").disabled = !unlocked;
  $("vote-right").disabled = !unlocked;
  $("gate-hint").hidden = unlocked;
}

function render(st) {
  state = st;
  const p = st.progress;
  $("progress-text").textContent = st.completed
    ? `All ${p.items_total} items done`
    : `Item ${st.item.number} of ${p.items_total} \u00b7 question ${st.item.step} of ${st.item.steps}`;
  $("progress-bar").max = Math.max(1, p.items_total);
  $("progress-bar").value = p.items_done;
  if (st.completed) {
    for (const side of SIDES) $(`audio-${side}`).pause();
    $("item").hidden = true;
    $("done").hidden = false;
    $("completion-code").textContent = st.completion_code || "";
    return;
  }
  const item = st.item;
  $("item").hidden = false;
  $("done").hidden = true;
  loadClips(item);
  // textContent, never innerHTML: a prompt containing markup is shown as text.
  $("question-title").textContent = `Question ${item.step} of ${item.steps}: ${item.criterion.title}`;
  $("question-text").textContent = item.criterion.question;
  const revealed = item.prompt !== null && item.prompt !== undefined;
  $("prompt").textContent = revealed ? item.prompt : "";
  $("prompt").hidden = !revealed;
  $("prompt-hidden").hidden = revealed;
  renderPlayed(item.played);
}

async function refresh() {
  try { render(await api("/api/state")); showError(null); } catch (e) { showError(e); }
}

async function sendEvent(side, event) {
  if (position === null) return;
  const a = $(`audio-${side}`);
  try {
    const r = await api(`/api/items/${position}/events`, { side, event, client_ts: a.currentTime });
    if (state && state.item && state.item.position === position) {
      state.item.played = r.played;
      renderPlayed(r.played);
    }
  } catch (e) { showError(e); }
}

async function vote(side) {
  if (!state || !state.item) return;
  const item = state.item;
  $("vote-left").disabled = true;
  $("vote-right").disabled = true;
  try {
    render(await api(`/api/items/${item.position}/votes`, { criterion: item.criterion.key, choice: side }));
    showError(null);
  } catch (e) {
    showError(e);
    await refresh();
  }
}

function wire() {
  for (const side of SIDES) {
    const a = $(`audio-${side}`);
    const button = $(`play-${side}`);
    const label = side === "left" ? "clip 1" : "clip 2";
    button.addEventListener("click", () => {
      if (a.paused) {
        for (const other of SIDES) if (other !== side) $(`audio-${other}`).pause();
        a.play().catch((e) => showError(e));
      } else {
        a.pause();
      }
    });
    a.addEventListener("play", () => { button.textContent = `\u23f8 Pause ${label}`; sendEvent(side, "play"); });
    a.addEventListener("pause", () => { button.textContent = `\u25b6 Play ${label}`; });
    a.addEventListener("ended", () => { button.textContent = `\u25b6 Play ${label}`; sendEvent(side, "ended"); });
    a.addEventListener("timeupdate", () => {
      if (a.duration > 0) $(`time-${side}`).value = a.currentTime / a.duration;
    });
    $(`vote-${side}`).addEventListener("click", () => vote(side));
  }
  refresh();
}

document.addEventListener("DOMContentLoaded", wire);
