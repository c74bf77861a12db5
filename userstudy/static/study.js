// Participant page of the genau-bench listening study. Plain JS, no build step.
// The server decides everything (current item, question order, playback gate, prompt
// reveal); this page only shows the state it gets and reports play/ended events.
"use strict";

const SIDES = ["left", "right"];
let state = null;
let position = null; // position of the item whose clips are loaded
const $ = (id) => document.getElementById(id);

const RETRY_DELAYS_MS = [300, 1000, 2500, 5000];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// `retry`: send again when the reply is lost (network error, or a proxy's 502/503/504). Only for
// votes: the server answers a repeated identical vote with the stored vote, so a vote committed
// just before the server died is not reported as an error.
async function api(path, body, retry = false) {
  const opts = { credentials: "same-origin", headers: { "Content-Type": "application/json" } };
  if (body !== undefined) { opts.method = "POST"; opts.body = JSON.stringify(body); }
  let r = null;
  for (let attempt = 0; ; attempt++) {
    try {
      r = await fetch(path, opts);
      if (!(retry && [502, 503, 504].includes(r.status))) break;
    } catch (e) {
      if (!retry || attempt >= RETRY_DELAYS_MS.length) throw e;
    }
    if (attempt >= RETRY_DELAYS_MS.length) break;
    await sleep(RETRY_DELAYS_MS[attempt]);
  }
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
    s.textContent = played[side] ? "played to the end" : "not played to the end yet";
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
  // per question: the bar moves with every answer, not only after an item's fourth
  $("progress-bar").max = Math.max(1, p.questions_total);
  $("progress-bar").value = p.questions_done;
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
    render(await api(`/api/items/${item.position}/votes`, { criterion: item.criterion.key, choice: side }, true));
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
    // the glyph is a CSS shape (class "playing" turns the triangle into two bars): no symbol font
    const setPlaying = (playing) => {
      button.classList.toggle("playing", playing);
      button.querySelector(".label").textContent = `${playing ? "Pause" : "Play"} ${label}`;
    };
    button.addEventListener("click", () => {
      if (a.paused) {
        for (const other of SIDES) if (other !== side) $(`audio-${other}`).pause();
        a.play().catch((e) => showError(e));
      } else {
        a.pause();
      }
    });
    a.addEventListener("play", () => { setPlaying(true); sendEvent(side, "play"); });
    a.addEventListener("pause", () => { setPlaying(false); });
    a.addEventListener("ended", () => { setPlaying(false); sendEvent(side, "ended"); });
    a.addEventListener("timeupdate", () => {
      if (a.duration > 0) $(`time-${side}`).value = a.currentTime / a.duration;
    });
    $(`vote-${side}`).addEventListener("click", () => vote(side));
  }
  refresh();
}

document.addEventListener("DOMContentLoaded", wire);
