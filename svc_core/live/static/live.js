// The Live page: microphone -> capture worklet -> WebSocket (live/ws) -> playback worklet, with the stamps of
// every block, the live numbers and the chart. Protocol: svc_core/live/web_session.py. No build step.
"use strict";

const $ = (id) => document.getElementById(id);
const BLOCK_CHOICES_MS = [40, 60, 80, 100, 120, 160, 200, 300, 500, 1000];
const CLIENT_HEADER = 16;  // uint32 seq, uint32 flags, float64 capture_ms
const SERVER_HEADER = 56;  // uint32 seq, uint32 flags, float64 x6: capture, recv, start, end, send, delay
const PING_MS = 1000;
const REPORT_MS = 250;
const CHART_POINTS = 300;
const WANTED_RATE = 48000;

// Everything a test or the bench reads: window.liveStats
const live = {
  running: false, ready: false, server: null, errors: [], ended: null, session: null,
  client: { sentBlocks: 0, sentSamples: 0, receivedBlocks: 0, receivedSamples: 0, underruns: 0, underrunMs: 0,
            playedSamples: 0, skippedMs: 0, playedBlocks: 0, gatedBlocks: 0, levelDb: null },
  rate: 0, delayMs: 0, inputLatencyMs: 0, blockSamples: 0,
};
window.liveStats = live;

let ctx = null, ws = null, stream = null, source = null, capture = null, playback = null, sink = null;
let seq = 0, pingTimer = null, reportTimer = null;
let pendingPlayed = [];  // [seq, play_ms] for the next report
const sentInfo = new Map();  // seq -> {captureMs, inferMs} until played
const chart = { e2e: [], infer: [] };
let voices = null;

function setStatus(text) { $("status").textContent = text; }
function showError(text) {
  live.errors.push(text);
  $("error").textContent = text;
  $("error").hidden = !text;
}

// ------------------------------------------------------------------------------------------------ controls
async function loadVoices() {
  const res = await fetch("live/voices", { credentials: "same-origin" });
  if (!res.ok) { showError((await res.json()).error || `voices: HTTP ${res.status}`); return; }
  voices = await res.json();
  const d = voices.defaults;
  $("voice").innerHTML = voices.voices.map((v) => `<option value="${v.key}">${escapeHtml(v.label)}</option>`).join("");
  $("f0").innerHTML = voices.f0_predictors.map((n) => `<option${n === d.f0_predictor ? " selected" : ""}>${n}</option>`).join("");
  const blockMs = Math.round(d.block_seconds * 1000);
  $("block").innerHTML = [...new Set([...BLOCK_CHOICES_MS, blockMs])].sort((a, b) => a - b)
    .map((ms) => `<option value="${ms}"${ms === blockMs ? " selected" : ""}>${ms} ms</option>`).join("");
  $("extra").value = d.extra_seconds;
  $("crossfade").value = Math.round(d.crossfade_seconds * 1000);
  $("transpose").value = d.transpose;
  $("gate-on").checked = d.silence_db !== null;
  if (d.silence_db !== null) $("gate").value = d.silence_db;
  $("voice").onchange = fillSpeakers;
  fillSpeakers();
  if (!voices.voices.length) showError("This server has no voices to offer.");
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

function fillSpeakers() {
  const voice = voices.voices.find((v) => v.key === $("voice").value);
  $("speaker").innerHTML = (voice ? voice.speakers : []).map((s) => `<option>${escapeHtml(s)}</option>`).join("");
}

function settings() {
  return {
    block_seconds: Number($("block").value) / 1000, extra_seconds: Number($("extra").value),
    crossfade_seconds: Number($("crossfade").value) / 1000, transpose: Number($("transpose").value),
    speaker: $("speaker").value || null, f0_predictor: $("f0").value,
    silence_db: $("gate-on").checked ? Number($("gate").value) : null, io_rate: ctx ? ctx.sampleRate : WANTED_RATE,
  };
}

// ------------------------------------------------------------------------------------------------ clocks
// AudioContext frame -> page clock (performance.now ms) at which that frame is heard at the output
function frameToPerf(frame) {
  const ts = ctx.getOutputTimestamp();
  return ts.performanceTime + (frame / ctx.sampleRate - ts.contextTime) * 1000;
}

// The input of frame f is processed while the output of frame f is computed, which is heard outputLatency later;
// the microphone captured it inputLatency before that processing.
function captureTime(frame) {
  return frameToPerf(frame) - (ctx.outputLatency || ctx.baseLatency || 0) * 1000 - live.inputLatencyMs;
}

// ------------------------------------------------------------------------------------------------ stream
async function start() {
  showError("");
  live.errors = [];
  if (!navigator.mediaDevices || !window.isSecureContext) {
    showError("No microphone here: this page must be opened over https (or as localhost).");
    return;
  }
  $("start").disabled = true;
  setStatus("starting the microphone…");
  try {
    ctx = new AudioContext({ sampleRate: WANTED_RATE, latencyHint: "interactive" });
    await ctx.audioWorklet.addModule("live/static/capture-worklet.js");
    await ctx.audioWorklet.addModule("live/static/playback-worklet.js");
    stream = await navigator.mediaDevices.getUserMedia({ audio: {
      channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (err) {
    showError(`Microphone: ${err.message || err}`);
    await stop();
    return;
  }
  const track = stream.getAudioTracks()[0];
  live.inputLatencyMs = ((track.getSettings && track.getSettings().latency) || 0) * 1000;
  live.rate = ctx.sampleRate;
  source = ctx.createMediaStreamSource(stream);
  capture = new AudioWorkletNode(ctx, "svc-capture", { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1 });
  sink = ctx.createGain();
  sink.gain.value = 0;  // the capture node must be pulled by the graph; it outputs nothing audible
  playback = new AudioWorkletNode(ctx, "svc-playback", { numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [2] });
  source.connect(capture).connect(sink).connect(ctx.destination);
  playback.connect(ctx.destination);
  capture.port.onmessage = (e) => { if (e.data.type === "block") sendBlock(e.data); };
  playback.port.onmessage = (e) => { if (e.data.type === "played") onPlayed(e.data); };
  openSocket();
}

function openSocket() {
  const url = new URL("live/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  setStatus("connecting…");
  ws.onopen = () => {
    live.running = true;
    ws.send(JSON.stringify({ type: "start", voice: $("voice").value, settings: settings() }));
    pingTimer = setInterval(() => send({ type: "ping", t0: performance.now() }), PING_MS);
    reportTimer = setInterval(report, REPORT_MS);
  };
  ws.onmessage = (e) => (typeof e.data === "string" ? onMessage(JSON.parse(e.data)) : onAudio(e.data));
  ws.onclose = (e) => { if (live.running) { setStatus(`closed (${e.code})`); stop(); } };
}

function send(message) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message)); }

function onMessage(m) {
  if (m.type === "hello") {
    live.session = m.session;
    $("log-link").href = m.log_url; $("log-link").hidden = false;
  } else if (m.type === "loading") {
    setStatus(`loading ${m.voice}…`);
  } else if (m.type === "ready") {
    live.ready = true; live.blockSamples = m.block_samples; live.delayMs = m.algorithmic_delay_ms; live.threads = m.threads;
    capture.port.postMessage({ type: "config", blockSamples: m.block_samples });
    playback.port.postMessage({ type: "reset" });
    playback.port.postMessage({ type: "config", blockSamples: m.block_samples,
                                bufferSamples: Math.round(Number($("buffer").value) / 1000 * ctx.sampleRate) });
    setStatus(`live: ${m.voice}, block ${m.block_samples} samples at ${m.io_rate} Hz`);
    $("stop").disabled = false; $("apply").disabled = false;
  } else if (m.type === "pong") {
    send({ type: "clock", t0: m.t0, t1: m.t1, t2: m.t2, t3: performance.now() });
  } else if (m.type === "stats") {
    live.server = m;
    showNumbers(m);
  } else if (m.type === "error") {
    showError(m.message);
  } else if (m.type === "ended") {
    live.ended = m.reason; showError(m.reason); stop();
  }
}

function sendBlock(block) {
  if (!ctx || !ws || ws.readyState !== WebSocket.OPEN || !live.ready) return;
  const buffer = new ArrayBuffer(CLIENT_HEADER + block.samples.byteLength);
  const view = new DataView(buffer);
  view.setUint32(0, seq, true); view.setUint32(4, 0, true);
  view.setFloat64(8, captureTime(block.frame), true);
  new Float32Array(buffer, CLIENT_HEADER).set(block.samples);
  ws.send(buffer);
  let sum = 0;
  for (const x of block.samples) sum += x * x;
  live.client.levelDb = 10 * Math.log10(sum / block.samples.length + 1e-12);
  live.client.peakLevelDb = Math.max(live.client.peakLevelDb ?? -200, live.client.levelDb);
  seq += 1; live.client.sentBlocks += 1; live.client.sentSamples += block.samples.length;
}

function onAudio(data) {
  const view = new DataView(data);
  const s = view.getUint32(0, true), gated = view.getUint32(4, true) & 1;
  const t = [1, 2, 3, 4, 5, 6].map((i) => view.getFloat64(i * 8, true));  // capture, recv, start, end, send, delay
  const samples = new Float32Array(data.slice(SERVER_HEADER));
  sentInfo.set(s, { captureMs: t[0], inferMs: t[3] - t[2], delayMs: t[5] });
  live.client.receivedBlocks += 1; live.client.receivedSamples += samples.length; live.client.gatedBlocks += gated;
  if (playback) playback.port.postMessage({ type: "block", seq: s, samples }, [samples.buffer]);
}

function onPlayed(m) {
  if (!ctx) return;  // a last message after Stop
  const c = m.counters;
  Object.assign(live.client, { underruns: c.underruns, underrunMs: c.underrunSamples / ctx.sampleRate * 1000,
    playedSamples: c.playedSamples, skippedMs: c.skippedSamples / ctx.sampleRate * 1000, queuedMs: m.queued / ctx.sampleRate * 1000,
    bufferMs: m.buffer / ctx.sampleRate * 1000 });
  for (const [s, frame] of m.stamps) {
    const playMs = frameToPerf(frame);
    pendingPlayed.push([s, playMs]);
    const info = sentInfo.get(s);
    if (info) {
      sentInfo.delete(s);
      live.client.playedBlocks += 1;
      pushPoint(playMs - info.captureMs + info.delayMs, info.inferMs);
    }
  }
  for (const k of sentInfo.keys()) if (k < seq - 200) sentInfo.delete(k);  // skipped blocks
}

function report() {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  const c = live.client;
  send({ type: "report", played: pendingPlayed, underruns: c.underruns, underrun_ms: c.underrunMs,
         played_samples: c.playedSamples, received_samples: c.receivedSamples, skipped_ms: c.skippedMs });
  pendingPlayed = [];
  $("n-underruns").textContent = c.underruns;
  $("n-buffer").textContent = c.bufferMs === undefined ? "–" : c.bufferMs.toFixed(0);
  $("n-level").textContent = c.levelDb === null ? "–" : c.levelDb.toFixed(0);
}

async function stop() {
  live.running = false; live.ready = false;
  clearInterval(pingTimer); clearInterval(reportTimer);
  if (playback) playback.port.postMessage({ type: "stop" });
  if (capture) capture.port.postMessage({ type: "stop" });
  if (ws) { try { send({ type: "stop" }); ws.close(); } catch (e) { /* already closed */ } }
  ws = null;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  if (ctx) await ctx.close();
  ctx = stream = source = capture = playback = sink = null;
  seq = 0; sentInfo.clear();
  $("start").disabled = false; $("stop").disabled = true; $("apply").disabled = true;
  setStatus("stopped");
}

// ------------------------------------------------------------------------------------------------ display
function fmt(x, digits = 0) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }

function showNumbers(s) {
  $("n-e2e").textContent = `${fmt(s.e2e_median_ms)} / ${fmt(s.e2e_p95_ms)}`;
  $("n-infer").textContent = fmt(s.inference_median_ms);
  $("n-rtf").textContent = fmt(s.rtf_median, 2);
  $("n-drops").textContent = s.dropped;
  $("advice").hidden = !s.advice;
  if (s.advice) $("advice").textContent = s.advice.message;
  $("breakdown").textContent = `Median split (ms): upload ${fmt(s.uplink_median_ms)}, queue ${fmt(s.queue_median_ms)}, ` +
    `inference ${fmt(s.inference_median_ms)}, way back + buffer + output ${fmt(s.downlink_median_ms)}; block ` +
    `${fmt(s.block_ms)} (its first sample waits for the last), engine delay ${fmt(s.algorithmic_delay_ms)}; clock ` +
    `offset ${fmt(s.clock_offset_ms, 1)} ms (round trip ${fmt(s.clock_rtt_ms, 1)}).`;
}

function pushPoint(e2e, infer) {
  chart.e2e.push(e2e); chart.infer.push(infer);
  if (chart.e2e.length > CHART_POINTS) { chart.e2e.shift(); chart.infer.shift(); }
  drawChart();
}

function drawChart() {
  const canvas = $("chart"), g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  const top = Math.max(100, ...chart.e2e, ...chart.infer) * 1.1;
  g.strokeStyle = "#ddd"; g.fillStyle = "#888"; g.font = "10px sans-serif";
  for (let ms = 100; ms < top; ms += 100) {
    const y = h - (ms / top) * h;
    g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke(); g.fillText(`${ms}`, 2, y - 2);
  }
  for (const [data, color] of [[chart.e2e, "#2471a3"], [chart.infer, "#c0392b"]]) {
    g.strokeStyle = color; g.beginPath();
    data.forEach((v, i) => { const x = (i / (CHART_POINTS - 1)) * w, y = h - (v / top) * h; i ? g.lineTo(x, y) : g.moveTo(x, y); });
    g.stroke();
  }
}

$("start").onclick = start;
$("stop").onclick = stop;
$("apply").onclick = () => {  // a new voice or new settings: the server starts a fresh stream (same voice: no reload)
  live.ready = false;
  send({ type: "start", voice: $("voice").value, settings: settings() });
};
$("https-note").hidden = window.isSecureContext;
loadVoices().catch((err) => showError(`Could not list the voices: ${err.message || err}`));
