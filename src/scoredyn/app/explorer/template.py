"""The explorer page's HTML, CSS and JavaScript (kept as Python strings so the package needs no data
files). ``page.py`` fills the ``@@NAME@@`` slots. The script decodes the stored frames, evaluates the
exact noised density (and an exact mixture's score) at each frame's noise level, and redraws with
``Plotly.react``; it runs no sampler."""

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
#metric { width: 660px; height: 220px; }
aside { width: 400px; }
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
#run-info p { margin: 4px 0; }
#notes { max-width: 1080px; color: #444; font-size: 13px; }
.mono { font-family: ui-monospace, monospace; }
</style>
</head>
<body>
<h1>scoredyn explorer: @@TITLE@@</h1>
<p class="source">@@SOURCE@@</p>
<p id="status">loading&hellip;</p>
<main>
<div><div id="plot"></div><div id="metric"></div></div>
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
  <label><input type="checkbox" id="trails"> particle trails (<span id="trail-label"></span>)</label>
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

#: The start of every page's script: strict mode, and the loaders of its gzip + base64 payloads
#: (the page's data, and plotly.js itself, inflated by the browser's own ``DecompressionStream``).
PRELUDE = r"""
"use strict";
async function gunzip(b64) {  // base64 text -> bytes, through the browser's own gzip
  const raw = Uint8Array.from(atob(b64.trim()), (ch) => ch.charCodeAt(0));
  const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function loadPlotly() {  // runs the embedded plotly.js, which defines window.Plotly
  const script = document.createElement("script");
  script.textContent = new TextDecoder().decode(await gunzip(document.getElementById("plotly-gz").textContent));
  document.head.appendChild(script);
}
"""

SCRIPT = (
    PRELUDE
    + r"""
const $ = (id) => document.getElementById(id);
const meta = JSON.parse($("meta").textContent);
meta.runs.forEach((r) => { r.sigma_hat = r.sigma_hat.map((v) => v === "inf" ? Infinity : v); });
const runs = Object.fromEntries(meta.runs.map((r) => [r.key, r]));
const opening = meta.runs[1];  // the page opens on the first sampler's samples
const state = { direction: "reverse", sampler: opening.sampler, steps: opening.steps,
                count: meta.counts[meta.counts.length - 1], frame: opening.frames - 1,
                sigmaHat: opening.sigma_hat[opening.frames - 1], playing: false };
const LEVELS = 240;  // positions of the noise slider, geometric over meta.sigma_hat_range
const arrays = {};
let bytes;

function array(name) {  // zigzag bytes (+ escapes), differences along axis 0 -> Float32Array (encode.py)
  if (arrays[name]) return arrays[name];
  const spec = meta.index[name], [n0, n1, n2] = spec.shape, row = n1 * n2, count = n0 * row;
  const codes = new Int32Array(count), out = new Float32Array(count);
  let e = spec.start + count;  // the escape stream follows the one-byte values
  for (let i = 0; i < count; i++) {
    let z = bytes[spec.start + i];
    if (z === 255) { z = 255 + bytes[e] + (bytes[e + 1] << 8) + (bytes[e + 2] << 16); e += 3; }
    const f = Math.floor(i / row), a = Math.floor((i % row) / n2);
    codes[i] = (f > 0 ? codes[i - row] : 0) + spec.mult[f] * (z % 2 === 0 ? z / 2 : -(z + 1) / 2);
    out[i] = spec.shift[a] + spec.step[a] * codes[i];
  }
  return (arrays[name] = out);
}

const currentRun = () => state.direction === "forward" ? runs.forward : runs[`${state.sampler}/${state.steps}`];
const scaleOf = (run, f) => $("raw").checked ? run.scale[f] : 1;  // drawn = y / this: y, or x = y / c
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
const fmt = (v) => v === null ? "—" : v === Infinity ? "∞" : v === 0 ? "0"
  : Math.abs(v) >= 100 || Math.abs(v) < 0.01 ? v.toExponential(2) : v.toFixed(3);

function frameXY(run, f, m) {  // the first m particles of frame f, display coordinates
  const a = array("run:" + run.key), n = run.n;
  if (run.alpha) {  // forward: stored as [x0, s eps]; y = alpha x0 + sigma eps
    const al = run.alpha[f], sg = run.sigma_over_s[f], at = (i) => al * a[i] + sg * a[2 * n + i];
    return [Float32Array.from({ length: m }, (_, i) => at(i)), Float32Array.from({ length: m }, (_, i) => at(n + i))];
  }
  return [a.subarray(2 * f * n, 2 * f * n + m), a.subarray((2 * f + 1) * n, (2 * f + 1) * n + m)];
}

function particles(run, f) {
  const [xs, ys] = frameXY(run, f, state.count), c = scaleOf(run, f);
  return c === 1 ? [xs, ys] : [xs.map((v) => v / c), ys.map((v) => v / c)];
}

function trails(run, f) {  // the last frames of the first particles as lines, each frame in its own coordinates
  const m = Math.min(meta.trail.particles, state.count), x = [], y = [], pts = [];
  for (let g = Math.max(0, f - meta.trail.frames + 1); g <= f; g++) pts.push([...frameXY(run, g, m), scaleOf(run, g)]);
  for (let i = 0; i < m; i++) {
    for (const [xs, ys, c] of pts) { x.push(xs[i] / c); y.push(ys[i] / c); }
    x.push(null); y.push(null);
  }
  return [x, y];
}

function components(sh) {  // the noised law in display coordinates (frames.display_mixture), per component
  const s = meta.s_data, C = sh === Infinity ? 0 : s / Math.sqrt(s * s + sh * sh);
  const v = sh === Infinity ? s * s : (C * sh) ** 2, mix = meta.mixture;
  return mix.weights.map((w, k) => {
    const [[a, b], [, d]] = mix.covs[k], A = C * C * a + v, B = C * C * b, D = C * C * d + v, det = A * D - B * B;
    return { lw: Math.log(w) - Math.log(2 * Math.PI) - 0.5 * Math.log(det), mx: C * mix.means[k][0],
             my: C * mix.means[k][1], pa: D / det, pb: -B / det, pd: A / det };
  });
}

function logTerms(comps, x, y, out) {  // out[k] = log w_k N(y; m_k, S_k); returns their maximum
  let best = -Infinity;
  comps.forEach((q, k) => {
    const dx = x - q.mx, dy = y - q.my;
    out[k] = q.lw - 0.5 * (q.pa * dx * dx + 2 * q.pb * dx * dy + q.pd * dy * dy);
    if (out[k] > best) best = out[k];
  });
  return best;
}

function logDensity(comps, x, y, out = new Float64Array(comps.length)) {  // log p(y), log-sum-exp
  const best = logTerms(comps, x, y, out);
  let sum = 0;
  for (let k = 0; k < comps.length; k++) sum += Math.exp(out[k] - best);
  return best + Math.log(sum);
}

function score(comps, x, y, out) {  // grad log p(y) = sum_k r_k S_k^-1 (m_k - y)
  const best = logTerms(comps, x, y, out);
  let sum = 0, gx = 0, gy = 0;
  comps.forEach((q, k) => {
    const r = Math.exp(out[k] - best), dx = q.mx - x, dy = q.my - y;
    sum += r; gx += r * (q.pa * dx + q.pb * dy); gy += r * (q.pb * dx + q.pd * dy);
  });
  return [gx / sum, gy / sum];
}

let densityCache = { sh: null, z: null };
function density(sh) {  // rows (grid_y) of log p - max on the grid, clipped at -floor
  if (densityCache.sh === sh) return densityCache.z;
  const comps = components(sh), tmp = new Float64Array(comps.length);
  const z = meta.grid_y.map((y) => Float64Array.from(meta.grid_x, (x) => logDensity(comps, x, y, tmp)));
  const top = Math.max(...z.map((row) => Math.max(...row)));
  z.forEach((row) => row.forEach((v, i) => { row[i] = Math.max(v - top, -meta.log_density_floor); }));
  densityCache = { sh, z };
  return z;
}

function nearestLevel(sh) {  // the stored arrow level closest in log sigma_hat
  const lv = meta.arrow_levels;
  if (sh === 0) return 0;
  if (sh === Infinity) return lv.length - 1;
  return lv.reduce((best, s, k) => Math.abs(Math.log(s / sh)) < Math.abs(Math.log(lv[best] / sh)) ? k : best, 0);
}

function arrowVectors(sh) {  // [u, w, level]: exact score arrows at sh, or a learned score's nearest level
  const m = meta.arrow_x.length;
  if (meta.arrow_levels) {
    const k = nearestLevel(sh), v = array("arrows");
    return [v.subarray(2 * k * m, (2 * k + 1) * m), v.subarray((2 * k + 1) * m, (2 * k + 2) * m), meta.arrow_levels[k]];
  }
  const comps = components(sh), tmp = new Float64Array(comps.length), u = new Float64Array(m), w = new Float64Array(m);
  const norm = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    [u[j], w[j]] = score(comps, meta.arrow_x[j], meta.arrow_y[j], tmp);
    norm[j] = Math.max(Math.hypot(u[j], w[j]), 1e-300);
  }
  const median = Float64Array.from(norm).sort()[(m - 1) >> 1];  // the lower median, as torch's
  for (let j = 0; j < m; j++) {  // length 0.9 cell tanh(|s| / median |s|), as frames.score_arrows
    const length = 0.9 * meta.cell * Math.tanh(norm[j] / median);
    u[j] *= length / norm[j]; w[j] *= length / norm[j];
  }
  return [u, w, sh];
}

function arrowSegments(u, w, c) {  // segments tail -> tip and two barbs, separated by nulls, drawn / c
  const x = [], y = [], cs = Math.cos(0.45), sn = Math.sin(0.45);
  for (let j = 0; j < u.length; j++) {
    const x0 = meta.arrow_x[j] / c, y0 = meta.arrow_y[j] / c, du = u[j] / c, dw = w[j] / c;
    const x1 = x0 + du, y1 = y0 + dw, bu = -0.35 * du, bw = -0.35 * dw;
    x.push(x0, x1, null, x1 + cs * bu - sn * bw, x1, x1 + cs * bu + sn * bw, null);
    y.push(y0, y1, null, y1 + sn * bu + cs * bw, y1, y1 - sn * bu + cs * bw, null);
  }
  return [x, y];
}

const sliderOf = (sh) => {  // the noise slider's position nearest sigma_hat
  const [lo, hi] = meta.sigma_hat_range;
  return sh <= lo ? 0 : sh >= hi ? LEVELS : Math.round(LEVELS * Math.log(sh / lo) / Math.log(hi / lo));
};
const sigmaOf = (i) => meta.sigma_hat_range[0] * (meta.sigma_hat_range[1] / meta.sigma_hat_range[0]) ** (i / LEVELS);

function around(box, xs, ys) {  // the box grown to hold every particle, with a margin of 2%
  const pad = (lo, hi) => [lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo)];
  const [ax, bx] = pad(Math.min(box[0], ...xs), Math.max(box[1], ...xs));
  const [ay, by] = pad(Math.min(box[2], ...ys), Math.max(box[3], ...ys));
  return [ax, bx, ay, by];
}

function runTitle(run) {
  if (run.sampler === "forward") return "forward noising";
  return `${run.label}, ${plural(run.steps, "step")}${run.settings.levels ? " per level" : ""}`;
}

function render() {  // every trace and label from the state
  const run = currentRun(), f = (state.frame = Math.min(state.frame, run.frames - 1)), raw = $("raw").checked;
  if ($("follow").checked) state.sigmaHat = run.sigma_hat[f];
  const sh = state.sigmaHat, c = scaleOf(run, f), [px, py] = particles(run, f);
  const [u, w, level] = arrowVectors(sh), [ax, ay] = arrowSegments(u, w, c);
  const [tx, ty] = $("trails").checked ? trails(run, f) : [[], []];
  const differs = !(level > 0 && sh > 0 && Math.abs(Math.log(level / sh)) < 1e-6) && level !== sh;
  const arrowNote = differs ? ` (arrows: learned score at σ/α = ${fmt(level)}, the nearest precomputed level)` : "";
  $("frame").max = run.frames - 1;
  $("frame").value = f;
  $("frame-label").textContent = `${f + 1}/${run.frames}, σ/α = ${fmt(run.sigma_hat[f])}`;
  $("level").value = sliderOf(sh);
  $("level-label").textContent = `σ/α = ${fmt(sh)}${arrowNote}`;
  const time = run.t ? `, t = ${fmt(run.t[f])}` : "", coords = raw ? `; x = y / c, c = ${fmt(c)}` : "";
  const title = `${runTitle(run)} — frame ${f + 1}/${run.frames}: σ/α = ${fmt(run.sigma_hat[f])}${time}${coords}`;
  const [x0, x1, y0, y1] = raw ? around(meta.box.map((v) => v / c), px, py) : meta.box;
  const names = raw ? ["x₁", "x₂"] : ["y₁", "y₂"];
  const axis = (text, range) => ({ title: { text }, range, constrain: "domain", showgrid: false, zeroline: false,
                                   ticks: "outside" });
  const data = [
    { type: "heatmap", x: meta.grid_x.map((v) => v / c), y: meta.grid_y.map((v) => v / c), z: density(sh),
      zmin: -meta.log_density_floor, zmax: 0, zsmooth: "fast", colorscale: meta.colorscale, hoverinfo: "skip",
      colorbar: { title: { text: "log p (rel.)", side: "right" }, thickness: 12, len: 0.8 }, name: "noised density" },
    { type: "scattergl", mode: "lines", x: ax, y: ay, visible: $("arrows").checked, hoverinfo: "skip",
      name: differs ? `learned score at σ/α = ${fmt(level)}` : "score ∇ log p",
      line: { color: "rgba(30, 30, 30, 0.55)", width: 1 } },
    { type: meta.webgl ? "scattergl" : "scatter", mode: "markers", x: px, y: py, name: "particles",
      marker: { size: 3.5, color: "#d62728", opacity: 0.7 }, hoverinfo: "skip" },
    { type: "scattergl", mode: "lines", x: tx, y: ty, visible: $("trails").checked, name: "trails", hoverinfo: "skip",
      line: { color: "rgba(120, 20, 20, 0.35)", width: 1 } },
  ];
  const layout = {
    title: { text: title, font: { size: 13 }, x: 0.01, xanchor: "left", y: 0.99, yref: "container", yanchor: "top" },
    margin: { l: 60, r: 10, t: 56, b: 50 }, uirevision: raw ? `x:${run.key}:${f}` : "y",
    xaxis: axis(names[0], [x0, x1]), yaxis: { ...axis(names[1], [y0, y1]), scaleanchor: "x" },
    legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom", itemsizing: "constant",
              bgcolor: "rgba(255,255,255,0.8)" },
  };
  return Plotly.react("plot", data, layout, { responsive: true, displaylogo: false }).then(() => drawMetric(run, f));
}

function drawMetric(run, f) {  // each frame's energy distance to the exact law, its floor, and this frame
  const frames = run.energy.map((_, i) => i + 1), sh = run.sigma_hat.map(fmt);
  const hover = "frame %{x}, σ/α = %{text}: %{y:.3g}<extra>%{fullData.name}</extra>";
  return Plotly.react("metric", [
    { type: "scatter", mode: "lines+markers", x: frames, y: run.energy, text: sh, hovertemplate: hover,
      name: "energy distance", line: { color: "#1f4e79", width: 1.5 }, marker: { size: 4 } },
    { type: "scatter", mode: "lines", x: frames, y: run.energy_floor, text: sh, hovertemplate: hover,
      name: "Monte-Carlo floor", line: { color: "#777", dash: "dash", width: 1 } },
    { type: "scatter", mode: "markers", x: [f + 1], y: [run.energy[f]], name: "this frame", hoverinfo: "skip",
      marker: { size: 10, color: "#d62728", symbol: "circle-open", line: { width: 2 } } },
  ], {
    margin: { l: 60, r: 10, t: 28, b: 40 }, showlegend: true,
    legend: { orientation: "h", x: 0, y: 1.16, font: { size: 11 } },
    xaxis: { title: { text: "frame" }, range: [0.5, run.frames + 0.5], zeroline: false },
    yaxis: { type: "log", title: { text: `energy, ${meta.metric_particles} particles` }, exponentformat: "power" },
  }, { displaylogo: false, responsive: true });
}

function showRun() {  // the run's settings and metric table, then draw it
  const run = currentRun(), m = run.metrics && run.metrics[state.count], s = run.settings;
  const mono = (v) => `<span class="mono">${v}</span>`;
  const knobs = Object.entries(run.knobs || {}).map(([k, v]) => `${k} = ${v}`).join(", ");
  const levels = s.levels ? ` per level, ${plural(s.levels, "noise level")}` : "";
  $("run-info").innerHTML = run.sampler === "forward"
    ? `<p><b>forward noising</b> of ${plural(state.count, "data point")}: y = α x₀ + σ ε, one ε per particle, ` +
      `at σ/α = 0 then geometric from ${meta.sigma_hat_range[0]} to ${meta.sigma_hat_range[1]}.</p>`
    : `<p><b>${run.label}</b>: ${run.paper}.</p><p>${plural(run.steps, "step")}${levels}; NFE ${run.nfe}; ` +
      `process ${mono(s.process)}, grid ${mono(s.grid)}, start ${mono(s.start)}` +
      `${knobs ? `; ${mono(knobs)}` : ""}; ${plural(run.frames, "frame")} kept` +
      `${s.stochastic ? " (stochastic: every other frame or fewer)" : ""}.</p>`;
  const row = (cells, tag = "td") => "<tr>" + cells.map((c) => `<${tag}>${c}</${tag}>`).join("") + "</tr>";
  $("metrics").innerHTML = !m ? row(["no metric table for the forward run (its frames are exact)"]) :
    `<caption>metrics of the last frame, ${m.n} particles</caption>` +
    row(["metric", "value", "MC floor", "ratio"], "th") +
    meta.metrics.filter((k) => m[k]).map((k) => row([k, fmt(m[k].value), fmt(m[k].floor), fmt(m[k].ratio)])).join("");
  return render();
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
    render().then(() => setTimeout(tick, 40));
  };
  tick();
}

async function timeFrames(count) {  // mean milliseconds per frame update (for measurement)
  const t0 = performance.now();
  for (let i = 0; i < count; i++) { state.frame = i % currentRun().frames; await render(); }
  return (performance.now() - t0) / count;
}

function switchRun() {  // a new run opens on its clean end: a sampler's samples, the forward run's data
  const run = currentRun();
  state.frame = run.sampler === "forward" ? 0 : run.frames - 1;
  return showRun();
}

function wire() {
  const samplers = [...new Set(meta.runs.slice(1).map((r) => r.sampler))];
  const label = (s) => meta.runs.find((r) => r.sampler === s).label;
  $("sampler").innerHTML = samplers.map((s) => `<option value="${s}">${label(s)}</option>`).join("");
  $("sampler").value = state.sampler;
  $("count").innerHTML = meta.counts.map((c) => `<option value="${c}">${c}</option>`).join("");
  $("count").value = state.count;
  $("level").max = LEVELS;
  $("trail-label").textContent = `the last ${meta.trail.frames} frames of ${meta.trail.particles} particles`;
  fillSteps();
  document.querySelectorAll("input[name=direction]").forEach((el) => el.addEventListener("change", () => {
    state.direction = el.value;
    $("sampler").disabled = $("steps").disabled = state.direction === "forward";
    switchRun();
  }));
  $("sampler").addEventListener("change", () => { state.sampler = $("sampler").value; fillSteps(); switchRun(); });
  $("steps").addEventListener("change", () => { state.steps = Number($("steps").value); switchRun(); });
  $("count").addEventListener("change", () => { state.count = Number($("count").value); showRun(); });
  $("frame").addEventListener("input", () => { state.frame = Number($("frame").value); render(); });
  $("level").addEventListener("input", () => {  // a chosen level stops the density following the frames
    state.sigmaHat = sigmaOf(Number($("level").value)); $("follow").checked = false; render();
  });
  ["follow", "arrows", "trails", "raw"].forEach((id) => $(id).addEventListener("change", render));
  $("play").addEventListener("click", play);
}

async function main() {
  await loadPlotly();
  bytes = await gunzip($("blob").textContent);
  wire();
  await showRun();
  $("status").textContent = "";
  window.explorer = { state, meta, particles, components, logDensity, render, drawFrame: render, timeFrames,
                      readyMs: performance.now(), ready: true };
  document.body.dataset.ready = "1";
}

main().catch((err) => { $("status").textContent = `the page could not start: ${err}`; console.error(err); });
"""
)
