"""The explorer page's HTML, CSS and JavaScript (kept as Python strings so the package needs no data
files). ``page.py`` fills the ``@@NAME@@`` slots. The script only decodes and wires controls; plotly
draws (``Plotly.restyle`` per frame)."""

HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>scoredyn explorer: @@TITLE@@</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 12px 20px; color: #222; }
h1 { font-size: 20px; margin: 0 0 2px; }
.source { color: #555; margin: 0 0 8px; }
main { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
#plot { width: 660px; height: 620px; }
aside { width: 380px; }
caption { text-align: left; color: #555; padding-bottom: 2px; }
aside label, aside fieldset { display: block; margin: 6px 0; }
fieldset { border: 1px solid #ccc; padding: 4px 8px; }
select { min-width: 180px; }
input[type=range] { width: 180px; vertical-align: middle; }
button { font-size: 14px; min-width: 80px; }
table { border-collapse: collapse; margin-top: 8px; }
td, th { padding: 2px 8px; text-align: right; border-bottom: 1px solid #eee; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
#status { color: #a00; }
#notes { max-width: 1040px; color: #444; font-size: 13px; }
.mono { font-family: ui-monospace, monospace; }
</style>
</head>
<body>
<h1>scoredyn explorer: @@TITLE@@</h1>
<p class="source">@@SOURCE@@</p>
<p id="status">loading&hellip;</p>
<main>
<div id="plot"></div>
<aside>
  <fieldset><legend>Direction</legend>
    <label><input type="radio" name="direction" value="reverse" checked> reverse: a sampler denoises</label>
    <label><input type="radio" name="direction" value="forward"> forward: the data is noised</label>
  </fieldset>
  <label>Sampler <select id="sampler"></select></label>
  <label>Steps <select id="steps"></select></label>
  <label>Particles <select id="count"></select></label>
  <label><button id="play">&#9654; Play</button>
    frame <input type="range" id="frame" min="0" value="0"> <span id="frame-label" class="mono"></span></label>
  <label>Noise level <input type="range" id="level" min="0" value="0">
    <span id="level-label" class="mono"></span></label>
  <label><input type="checkbox" id="follow" checked> the density follows the frame's noise level</label>
  <label><input type="checkbox" id="arrows" checked> score arrows</label>
  <label><input type="checkbox" id="raw"> the sampler's own coordinates x (else y = c x)</label>
  <div id="run-info"></div>
  <table id="metrics"></table>
</aside>
</main>
<section id="notes">@@NOTES@@</section>
<script type="application/json" id="meta">@@META@@</script>
<script type="application/octet-stream" id="blob">@@BLOB@@</script>
<script type="application/octet-stream" id="plotly-gz">@@PLOTLY@@</script>
<script>@@SCRIPT@@</script>
</body>
</html>
"""

SCRIPT = r"""
"use strict";
const $ = (id) => document.getElementById(id);
const meta = JSON.parse($("meta").textContent);
const runs = Object.fromEntries(meta.runs.map((r) => [r.key, r]));
const state = { direction: "reverse", sampler: meta.runs[1].sampler, steps: meta.runs[1].steps,
                count: meta.counts[meta.counts.length - 1], frame: 0, level: 0, playing: false };
const arrays = {};
let bytes;

async function gunzip(b64) {  // base64 text -> bytes, through the browser's own gzip
  const raw = Uint8Array.from(atob(b64.trim()), (ch) => ch.charCodeAt(0));
  const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function array(name) {  // int16 byte planes -> Float32Array (scoredyn/explorer/encode.py)
  if (arrays[name]) return arrays[name];
  const spec = meta.index[name], [n0, n1, n2] = spec.shape, count = n0 * n1 * n2, row = n1 * n2;
  const codes = new Int16Array(count);
  for (let i = 0; i < count; i++) codes[i] = bytes[spec.start + i] | (bytes[spec.start + count + i] << 8);
  if (spec.delta) for (let i = row; i < count; i++) codes[i] += codes[i - row];  // wraps like int16
  const out = new Float32Array(count);
  for (let b = 0; b < n0 * n1; b++) {
    const a = b % n1;
    for (let j = b * n2; j < (b + 1) * n2; j++) out[j] = spec.shift[a] + spec.step[a] * codes[j];
  }
  return (arrays[name] = out);
}

const currentRun = () => state.direction === "forward" ? runs.forward : runs[`${state.sampler}/${state.steps}`];

function particles(run, f) {  // frame f of a run stored (F, 2, N): x and y are contiguous
  const a = array("run:" + run.key), n = run.n, m = state.count, c = $("raw").checked ? run.scale[f] : 1;
  if (run.alpha) {  // forward: stored as [x0, s eps]; y = alpha x0 + sigma eps
    const al = run.alpha[f], sg = run.sigma_over_s[f], at = (i) => al * a[i] + sg * a[2 * n + i];
    return [Float32Array.from({ length: m }, (_, i) => at(i)), Float32Array.from({ length: m }, (_, i) => at(n + i))];
  }
  const xs = a.subarray(2 * f * n, 2 * f * n + m), ys = a.subarray((2 * f + 1) * n, (2 * f + 1) * n + m);
  return c === 1 ? [xs, ys] : [xs.map((v) => v / c), ys.map((v) => v / c)];
}

function density(k) {  // rows of the (K, G, G) log-density
  const d = array("density"), g = meta.grid_x.length;
  return Array.from({ length: g }, (_, r) => d.subarray((k * g + r) * g, (k * g + r + 1) * g));
}

function arrows(k) {  // segments tail -> tip and two barbs, separated by nulls
  const v = array("arrows"), m = meta.arrow_x.length, x = [], y = [], cs = Math.cos(0.45), sn = Math.sin(0.45);
  for (let j = 0; j < m; j++) {
    const x0 = meta.arrow_x[j], y0 = meta.arrow_y[j], u = v[2 * k * m + j], w = v[(2 * k + 1) * m + j];
    const x1 = x0 + u, y1 = y0 + w, bu = -0.35 * u, bw = -0.35 * w;
    x.push(x0, x1, null, x1 + cs * bu - sn * bw, x1, x1 + cs * bu + sn * bw, null);
    y.push(y0, y1, null, y1 + sn * bu + cs * bw, y1, y1 - sn * bu + cs * bw, null);
  }
  return [x, y];
}

function nearestLevel(sigmaHat) {  // the density level closest in log sigma_hat
  if (sigmaHat === "inf") return meta.levels.length - 1;
  let best = 0;
  meta.levels.forEach((s, k) => {
    if (Math.abs(Math.log(s / sigmaHat)) < Math.abs(Math.log(meta.levels[best] / sigmaHat))) best = k;
  });
  return sigmaHat > 0 ? best : 0;
}

const fmt = (v) => v === null ? "—" : v === "inf" ? "∞" : v === 0 ? "0"
  : Math.abs(v) >= 100 || Math.abs(v) < 0.01 ? v.toExponential(2) : v.toFixed(3);

function drawLevel() {
  const k = state.level, [ax, ay] = arrows(k);
  $("level").value = k;
  $("level-label").textContent = `σ/α = ${fmt(meta.levels[k])}`;
  return Plotly.restyle("plot", { z: [density(k)], x: [meta.grid_x], y: [meta.grid_y] }, [0])
    .then(() => Plotly.restyle("plot", { x: [ax], y: [ay], visible: $("arrows").checked }, [1]));
}

function drawFrame() {
  const run = currentRun(), f = Math.min(state.frame, run.frames - 1), [xs, ys] = particles(run, f);
  state.frame = f;
  $("frame").max = run.frames - 1;
  $("frame").value = f;
  $("frame-label").textContent = `${f + 1}/${run.frames}, σ/α = ${fmt(run.sigma_hat[f])}`;
  const done = Plotly.restyle("plot", { x: [xs], y: [ys] }, [2]);
  if (!$("follow").checked) return done;
  const k = nearestLevel(run.sigma_hat[f]);
  if (k === state.level) return done;
  state.level = k;
  return done.then(drawLevel);
}

function showRun() {
  const run = currentRun();
  const m = run.metrics && run.metrics[state.count];
  const s = run.settings, mono = (v) => `<span class="mono">${v}</span>`;
  const levels = s.levels ? ` per level, ${s.levels} levels` : "";
  $("run-info").innerHTML = run.sampler === "forward"
    ? `<p><b>forward noising</b> of ${run.n} data points: y = α x₀ + σ ε, one ε per particle.</p>`
    : `<p><b>${run.label}</b> (${run.paper}), ${run.steps} steps${levels}; NFE ${run.nfe}; ` +
      `process ${mono(s.process)}, grid ${mono(s.grid)}, start ${mono(s.start)}.</p>`;
  const row = (cells, tag = "td") => "<tr>" + cells.map((c) => `<${tag}>${c}</${tag}>`).join("") + "</tr>";
  $("metrics").innerHTML = !m ? row(["no metrics for the forward run"]) :
    `<caption>metrics of the last frame, ${m.n} particles</caption>` +
    row(["metric", "value", "MC floor", "ratio"], "th") +
    meta.metrics.filter((k) => m[k]).map((k) => row([k, fmt(m[k].value), fmt(m[k].floor), fmt(m[k].ratio)])).join("");
  return drawFrame();
}

function fillSteps() {
  const steps = meta.runs.filter((r) => r.sampler === state.sampler).map((r) => r.steps);
  $("steps").innerHTML = steps.map((s) => `<option value="${s}">${s}</option>`).join("");
  if (!steps.includes(state.steps)) state.steps = steps[0];
  $("steps").value = state.steps;
}

function play() {
  state.playing = !state.playing;
  $("play").innerHTML = state.playing ? "&#10074;&#10074; Pause" : "&#9654; Play";
  if (state.playing && state.frame >= currentRun().frames - 1) state.frame = 0;
  const tick = () => {
    if (!state.playing) return;
    if (state.frame >= currentRun().frames - 1) return play();
    state.frame += 1;
    drawFrame().then(() => setTimeout(tick, 40));
  };
  tick();
}

async function timeFrames(count) {  // mean milliseconds per frame update (for measurement)
  const t0 = performance.now();
  for (let i = 0; i < count; i++) { state.frame = i % currentRun().frames; await drawFrame(); }
  return (performance.now() - t0) / count;
}

function wire() {
  const samplers = [...new Set(meta.runs.slice(1).map((r) => r.sampler))];
  const label = (s) => meta.runs.find((r) => r.sampler === s).label;
  $("sampler").innerHTML = samplers.map((s) => `<option value="${s}">${label(s)}</option>`).join("");
  $("count").innerHTML = meta.counts.map((c) => `<option value="${c}">${c}</option>`).join("");
  $("count").value = state.count;
  $("level").max = meta.levels.length - 1;
  fillSteps();
  document.querySelectorAll("input[name=direction]").forEach((el) => el.addEventListener("change", () => {
    state.direction = el.value; state.frame = 0;
    $("sampler").disabled = $("steps").disabled = state.direction === "forward";
    showRun();
  }));
  $("sampler").addEventListener("change", () => {
    state.sampler = $("sampler").value; fillSteps(); state.frame = 0; showRun();
  });
  $("steps").addEventListener("change", () => {
    state.steps = Number($("steps").value); state.frame = 0; showRun();
  });
  $("count").addEventListener("change", () => { state.count = Number($("count").value); showRun(); });
  $("frame").addEventListener("input", () => { state.frame = Number($("frame").value); drawFrame(); });
  $("level").addEventListener("input", () => {  // a chosen level stops the density following the frames
    state.level = Number($("level").value); $("follow").checked = false; drawLevel();
  });
  $("arrows").addEventListener("change", drawLevel);
  $("raw").addEventListener("change", drawFrame);
  $("follow").addEventListener("change", drawFrame);
  $("play").addEventListener("click", play);
}

async function main() {
  const script = document.createElement("script");
  script.textContent = new TextDecoder().decode(await gunzip($("plotly-gz").textContent));
  document.head.appendChild(script);  // runs plotly.js, which defines window.Plotly
  bytes = await gunzip($("blob").textContent);
  const [x0, x1, y0, y1] = meta.box;
  const axis = (title, range) => ({ title: { text: title }, range, constrain: "domain",
                                     showgrid: false, zeroline: false, ticks: "outside" });
  await Plotly.newPlot("plot", [
    { type: "heatmap", x: meta.grid_x, y: meta.grid_y, z: density(0), zmin: -meta.log_density_floor, zmax: 0,
      zsmooth: "fast", colorscale: meta.colorscale,
      colorbar: { title: { text: "log p (rel.)", side: "right" }, thickness: 12, len: 0.8 },
      hoverinfo: "skip", name: "noised density" },
    { type: "scattergl", mode: "lines", x: [], y: [], name: "score ∇ log p", hoverinfo: "skip",
      line: { color: "rgba(30, 30, 30, 0.55)", width: 1 } },
    { type: meta.webgl ? "scattergl" : "scatter", mode: "markers", x: [], y: [], name: "particles",
      marker: { size: 3.5, color: "#d62728", opacity: 0.7 }, hoverinfo: "skip" },
  ], {
    margin: { l: 60, r: 10, t: 30, b: 50 }, uirevision: "keep",
    xaxis: axis("y₁", [x0, x1]), yaxis: { ...axis("y₂", [y0, y1]), scaleanchor: "x" },
    legend: { orientation: "h", x: 0, y: 1.06, itemsizing: "constant", bgcolor: "rgba(255,255,255,0.8)" },
  }, { responsive: true, displaylogo: false });
  wire();
  await drawLevel();
  await showRun();
  $("status").textContent = "";
  window.explorer = { state, meta, particles, drawFrame, drawLevel, timeFrames, ready: true };
  document.body.dataset.ready = "1";
}

main().catch((err) => { $("status").textContent = `the page could not start: ${err}`; console.error(err); });
"""
