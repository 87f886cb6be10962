"""The figures page's HTML, CSS and JavaScript (Python strings, so the package needs no data files).
``figures.py`` fills the ``@@NAME@@`` slots. The script evaluates closed forms of the exact mixture
(density, score, posterior mean) and replays the arrays computed in Python; plotly draws."""

from .template import PRELUDE

FIGURES_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>scoredyn figures: @@TITLE@@</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 12px 20px; color: #222; max-width: 1200px; }
h1 { font-size: 21px; margin: 0 0 2px; }
h2 { font-size: 17px; margin: 26px 0 4px; border-top: 1px solid #ddd; padding-top: 12px; }
.source { color: #555; margin: 0 0 8px; }
.row { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
.plot { width: 560px; height: 520px; }
.small { width: 400px; height: 330px; }
.square { width: 330px; height: 330px; }
aside { width: 470px; }
aside label { display: block; margin: 6px 0; }
input[type=range] { width: 170px; vertical-align: middle; }
button { font-size: 14px; }
table { border-collapse: collapse; margin-top: 6px; }
td, th { padding: 2px 8px; text-align: right; border-bottom: 1px solid #eee; white-space: nowrap; }
td:first-child, th:first-child { text-align: left; }
.caption { max-width: 1080px; color: #333; }
.mono, td { font-family: ui-monospace, monospace; font-size: 13px; }
#status { color: #a00; }
</style>
</head>
<body>
<h1>Diffusion as particle dynamics: four interactive figures</h1>
<p class="source">@@SOURCE@@: still an exact Gaussian mixture (means (&mu;<sub>k</sub> &minus; m) / s, covariances
&Sigma;<sub>k</sub> / s&sup2;), standardized as diffusion models standardize their data. Built by
<span class="mono">scoredyn figures</span>; everything runs in this page, without a network.</p>
<p id="status">loading&hellip;</p>

<h2>1. The noise compass</h2>
<div class="row">
  <div id="compass-plot" class="plot"></div>
  <aside>
    <label>time t <input type="range" id="compass-t" min="1" max="1000" value="300">
      <span id="compass-t-label" class="mono"></span></label>
    <label>accuracy <input type="range" id="compass-acc" min="0" max="100" value="100">
      <span id="compass-acc-label" class="mono"></span></label>
    <table id="compass-numbers"></table>
  </aside>
</div>
<p class="caption">
Click anywhere in the plot to place a noisy point x<sub>t</sub>. Under the VP process x<sub>t</sub> = &alpha;(t)
x<sub>0</sub> + &sigma;(t) &epsilon; (&beta; from 0.1 to 20), the best prediction of the noise from x<sub>t</sub>
alone is its posterior mean &epsilon;&#770;(x<sub>t</sub>) = E[&epsilon; | x<sub>t</sub>] = &minus;&sigma; &nabla;
log p<sub>t</sub>(x<sub>t</sub>), the target that the &epsilon;-prediction network of Ho et al. (2020) is trained
towards; here it is exact, evaluated in the page from the noised mixture. The green arrow is the predicted noise
step &sigma; &epsilon;<sub>&theta;</sub>, drawn so that it ends at x<sub>t</sub>; the orange arrow runs from
x<sub>t</sub> to the reconstruction x&#770;<sub>0</sub> = (x<sub>t</sub> &minus; &sigma;
&epsilon;<sub>&theta;</sub>) / &alpha;. At 100% accuracy x&#770;<sub>0</sub> is Tweedie's posterior mean
E[x<sub>0</sub> | x<sub>t</sub>] (white diamond): a weighted average of the components, so at large t it lies
between them. The accuracy slider mixes in a wrong direction: &epsilon;<sub>&theta;</sub> = a &epsilon;&#770; + (1
&minus; a) R&epsilon;&#770;, with R the rotation by 90&deg; counter-clockwise (same length, perpendicular; in
between the prediction is also shorter, by &radic;(a&sup2; + (1&minus;a)&sup2;)); below 100% a thin grey arrow shows
the exact step. As a falls the reconstruction slides off the data. Shading: log p<sub>t</sub>; lines: contours of
the data density p<sub>0</sub>.</p>

<h2>2. Reverse SDE and probability-flow ODE</h2>
<div class="row">
  <div id="paths-plot" class="plot"></div>
  <aside>
    <label>noise scale &lambda; <input type="range" id="paths-lam" min="0" max="4" value="0">
      <span id="paths-lam-label" class="mono"></span></label>
    <label><button id="paths-new">new starts</button> <span id="paths-set-label" class="mono"></span></label>
  </aside>
</div>
<p class="caption">
Paths of the reverse-time family dx = [f x &minus; (1 + &lambda;&sup2;)/2 g&sup2; &nabla; log p<sub>t</sub>(x)] dt +
&lambda; g dW&#772; from t = 1 to 0 on the exact score (VP process; 256 Euler&ndash;Maruyama steps of
<span class="mono">scoredyn.samplers.reverse_sde</span> on the Karras et al. (2022) grid, computed when the page was
built; 65 points per path kept). &lambda; = 0 is the probability-flow ODE (Song et al. 2021, eq. 13), &lambda; = 1
the reverse SDE (Anderson 1982; Song et al. 2021, eq. 6); in continuous time every &lambda; has the same marginals
p<sub>t</sub>. Twelve starts are drawn from p<sub>1</sub> and each is run twice with independent noise; colour is
time. At &lambda; = 0 the two runs of a start coincide: the ODE is deterministic, and in (x, t) two of its solutions
never meet (uniqueness), so paths neither merge nor split. The plane shows their projection, which forgets t:
projected ODE paths may cross, at different times. For &lambda; &gt; 0 the two runs of one start branch apart and
wander. Every &lambda; uses the same noise draws (scaled by &lambda;), so the slider deforms one set of paths;
<i>new starts</i> cycles through the precomputed start sets. Shading: log p<sub>0</sub>.</p>

<h2>3. Linear and cosine noise schedules</h2>
<div class="row">
  <div id="sched-curve" class="small"></div>
  <div id="sched-linear" class="square"></div>
  <div id="sched-cosine" class="square"></div>
</div>
<div class="row"><aside style="width: auto">
  <label>time t = n / T <input type="range" id="sched-t" min="0" max="1000" value="200">
    <span id="sched-t-label" class="mono"></span></label>
  <table id="sched-numbers"></table>
</aside></div>
<p class="caption">
The fraction of signal power left, &alpha;&#772;(t) = &alpha;(t)&sup2;, of the discrete DDPM schedules with T = 1000
steps (<span class="mono">ddpm</span>: linear &beta; from 10<sup>&minus;4</sup> to 0.02, Ho et al. 2020;
<span class="mono">ddpm-cosine</span>: Nichol &amp; Dhariwal 2021, s = 0.008). Right: the same data points
x<sub>0</sub> and the same noise &epsilon;, noised as &radic;&alpha;&#772; x<sub>0</sub> + &radic;(1 &minus;
&alpha;&#772;) &epsilon; under each schedule (the data standardized, as everywhere on this page; images are likewise
scaled to [&minus;1, 1]). The linear schedule spends its signal early; the cosine one keeps it longer and loses it
linearly in the middle. At t = 0.2 the discrete linear product &prod;(1 &minus; &beta;<sub>n</sub>) over n &le; 200
is 0.6590 and the cosine &alpha;&#772; is 0.8987; 0.658, the value sometimes quoted, is the continuous VP-SDE limit
(&beta;(t) = 0.1 + 19.9 t, &alpha;&#772; = exp(&minus;&int;&beta;) = 0.6584; dashed).</p>

<h2>4. The forward SDE and its Fokker&ndash;Planck equation</h2>
<div class="row">
  <div id="fp-plot" class="plot"></div>
  <div>
    <div id="fp-hist" class="small"></div>
    <label>time t <input type="range" id="fp-t" min="0" max="60" value="12">
      <span id="fp-t-label" class="mono"></span></label>
    <table id="fp-numbers"></table>
  </div>
</div>
<p class="caption">
Data points moved by the forward SDE dx = f(t) x dt + g(t) dW (VP; Euler&ndash;Maruyama, @@SUBSTEPS@@ steps between
frames, which are spaced as t = u&sup2; with u uniform;
<span class="mono">scoredyn.core.processes.simulate_forward</span>; Song et al. 2021, eq. 5), over the exact density
p<sub>t</sub> of the noised mixture (means &alpha; &mu;<sub>k</sub>, covariances &alpha;&sup2; &Sigma;<sub>k</sub> +
&sigma;&sup2; I), evaluated in the page. That density solves the Fokker&ndash;Planck equation &part;p/&part;t =
&minus;&nabla;&middot;(f x p) + &frac12; g&sup2; &Delta;p. Right: the histogram of the particles' first coordinate
against the exact marginal density of x<sub>1</sub>, and their mean and covariance against p<sub>t</sub>'s. The
particles never see p<sub>t</sub>, yet they follow it: the drift pulls them towards the origin, the diffusion
spreads them, and by t = 1 they are close to N(0, I).</p>

<script type="application/octet-stream" id="data-gz">@@DATA@@</script>
<script type="application/octet-stream" id="plotly-gz">@@PLOTLY@@</script>
<script>@@SCRIPT@@</script>
</body>
</html>
"""

FIGURES_SCRIPT = (
    PRELUDE
    + r"""
const $ = (id) => document.getElementById(id);
const GRID = 90, LOG_FLOOR = 12, BANDS = 8;
const HEAT = [[0, "#ffffff"], [0.4, "#e3edf7"], [0.75, "#9ecae1"], [1, "#3a7ab8"]];
const GREYS = [[0, "#ffffff"], [0.6, "#ececec"], [1, "#b9b9b9"]];
// time bands of the paths, from t = 1 (noise) to t = 0 (data)
const BAND_COLOURS = ["#1b3a8a", "#2f5fb3", "#3f86c4", "#3a9e9e", "#5a9e3f", "#c09a1b", "#e07b39", "#c0392b"];
const GREEN = "#138a36", ORANGE = "#e66101";
const CONFIG = { displaylogo: false, responsive: false };
const state = { compass: { i: 300, acc: 100, x: 0, y: 0, r: null }, paths: { lam: 0, set: 0 },
                sched: { i: 200 }, fp: { f: 12 }, busy: 0 };
let D = null;

function track(promise) {  // count pending redraws, so a reader can wait until the page is still
  state.busy += 1;
  return Promise.resolve(promise).finally(() => { state.busy -= 1; });
}

const f4 = (v) => (Math.abs(v) < 5e-5 ? 0 : v).toFixed(4);
const pair = (v) => `(${f4(v[0])}, ${f4(v[1])})`;
const linspace = (a, b, n) => Array.from({ length: n }, (_, i) => a + (b - a) * i / (n - 1));

// --- closed forms of the exact mixture: p_t = sum_k pi_k N(alpha mu_k, alpha^2 Sigma_k + sigma^2 I) ---

function noised(a, s) {
  const { weights, means, covs } = D.mixture;
  return weights.map((w, k) => {
    const C = covs[k], s11 = a * a * C[0][0] + s * s, s12 = a * a * C[0][1], s22 = a * a * C[1][1] + s * s;
    const det = s11 * s22 - s12 * s12;
    return { w, mu: means[k], C, m: [a * means[k][0], a * means[k][1]], S: [s11, s12, s22],
             P: [s22 / det, -s12 / det, s11 / det], logc: Math.log(w) - 0.5 * Math.log(det) - Math.log(2 * Math.PI) };
  });
}

function joint(comps, x, y) {  // log pi_k N_k(x), and P_k (x - m_k), per component
  return comps.map((c) => {
    const dx = x - c.m[0], dy = y - c.m[1], u = c.P[0] * dx + c.P[1] * dy, v = c.P[1] * dx + c.P[2] * dy;
    return { l: c.logc - 0.5 * (dx * u + dy * v), u, v };
  });
}

function logsumexp(ls) {
  const top = Math.max(...ls);
  return top + Math.log(ls.reduce((acc, l) => acc + Math.exp(l - top), 0));
}

function logDensity(comps, x, y) {  // one pass, no allocation: the grids call it K G^2 times
  let top = -Infinity, sum = 0;
  for (const c of comps) {
    const dx = x - c.m[0], dy = y - c.m[1];
    const l = c.logc - 0.5 * (dx * (c.P[0] * dx + c.P[1] * dy) + dy * (c.P[1] * dx + c.P[2] * dy));
    if (l > top) { sum = sum * Math.exp(top - l) + 1; top = l; } else sum += Math.exp(l - top);
  }
  return top + Math.log(sum);
}

// the score -sum_k w_k P_k (x - m_k) and Tweedie's E[x0 | x] = sum_k w_k (mu_k + a Sigma_k P_k (x - m_k))
function posterior(comps, a, x, y) {
  const js = joint(comps, x, y), top = logsumexp(js.map((j) => j.l)), score = [0, 0], mean = [0, 0];
  js.forEach((j, k) => {
    const w = Math.exp(j.l - top), c = comps[k];
    score[0] -= w * j.u;
    score[1] -= w * j.v;
    mean[0] += w * (c.mu[0] + a * (c.C[0][0] * j.u + c.C[0][1] * j.v));
    mean[1] += w * (c.mu[1] + a * (c.C[1][0] * j.u + c.C[1][1] * j.v));
  });
  return { score, mean };
}

function moments(a, s) {  // mean alpha m and covariance alpha^2 C + sigma^2 I of p_t
  const { weights, means, covs } = D.mixture, m = [0, 0], c = [0, 0, 0];
  weights.forEach((w, k) => { m[0] += w * means[k][0]; m[1] += w * means[k][1]; });
  weights.forEach((w, k) => {
    const dx = means[k][0] - m[0], dy = means[k][1] - m[1];
    c[0] += w * (covs[k][0][0] + dx * dx); c[1] += w * (covs[k][0][1] + dx * dy); c[2] += w * (covs[k][1][1] + dy * dy);
  });
  return { mean: [a * m[0], a * m[1]], cov: [a * a * c[0] + s * s, a * a * c[1], a * a * c[2] + s * s] };
}

let gridCache = null;
function grid() {
  if (!gridCache) gridCache = [linspace(D.box[0], D.box[1], GRID), linspace(D.box[2], D.box[3], GRID)];
  return gridCache;
}

function densityGrid(comps) {  // log p on the grid relative to its maximum, clipped at -LOG_FLOOR
  const [gx, gy] = grid(), z = gy.map((y) => gx.map((x) => logDensity(comps, x, y)));
  const top = Math.max(...z.map((r) => Math.max(...r)));
  return z.map((r) => r.map((v) => Math.max(v - top, -LOG_FLOOR)));
}

function heatmap(z, colorscale, name) {
  const [gx, gy] = grid();
  return { type: "heatmap", x: gx, y: gy, z, zmin: -LOG_FLOOR, zmax: 0, colorscale, showscale: false,
           zsmooth: "fast", hoverinfo: "skip", name };
}

function boxLayout(extra) {
  const axis = (title, range) => ({ title: { text: title }, range, constrain: "domain", showgrid: false,
                                    zeroline: false, ticks: "outside" });
  return { margin: { l: 50, r: 10, t: 10, b: 45 }, dragmode: false, hovermode: false,
           xaxis: axis("x₁", [D.box[0], D.box[1]]), yaxis: { ...axis("x₂", [D.box[2], D.box[3]]), scaleanchor: "x" },
           legend: { orientation: "h", x: 0, y: -0.12, bgcolor: "rgba(255,255,255,0.8)" }, ...extra };
}

const legendLine = (name, color, width = 4) =>
  ({ type: "scatter", mode: "lines", x: [null], y: [null], name, line: { color, width }, hoverinfo: "skip" });

// --- 1. the noise compass ---

function compassAt(x, y, i, acc) {
  const a = D.vp.alpha[i], s = D.vp.sigma[i], p = posterior(noised(a, s), a, x, y);
  const epsHat = [-s * p.score[0], -s * p.score[1]];
  const r = acc / 100, turned = [-epsHat[1], epsHat[0]];  // eps_hat rotated by +90 degrees
  const epsTheta = [r * epsHat[0] + (1 - r) * turned[0], r * epsHat[1] + (1 - r) * turned[1]];
  const x0Hat = [(x - s * epsTheta[0]) / a, (y - s * epsTheta[1]) / a];
  return { t: D.vp.t[i], alpha: a, sigma: s, x: [x, y], score: p.score, epsHat, epsTheta, x0Hat, mean: p.mean,
           miss: Math.hypot(x0Hat[0] - p.mean[0], x0Hat[1] - p.mean[1]),
           logp0: logDensity(noised(1, 0), x0Hat[0], x0Hat[1]) - state.compass.logp0Max };
}

function arrow(tail, tip, color, width, gap = {}) {  // gap: standoff / startstandoff in px, to leave x_t visible
  return { x: tip[0], y: tip[1], ax: tail[0], ay: tail[1], xref: "x", yref: "y", axref: "x", ayref: "y",
           showarrow: true, arrowhead: 2, arrowsize: 1.1, arrowwidth: width, arrowcolor: color, text: "", ...gap };
}

function drawCompass(withDensity) {
  const c = state.compass, r = compassAt(c.x, c.y, c.i, c.acc);
  c.r = r;
  $("compass-t-label").textContent = `t = ${r.t.toFixed(3)}, α = ${r.alpha.toFixed(3)}, σ = ${r.sigma.toFixed(3)}`;
  $("compass-acc-label").textContent = `${c.acc}%`;
  const rows = [["x_t", pair(r.x)], ["ε̂(x_t) = −σ ∇log p_t", pair(r.epsHat)], [`ε_θ at ${c.acc}%`, pair(r.epsTheta)],
                ["x̂₀ = (x_t − σ ε_θ)/α", pair(r.x0Hat)], ["E[x₀ | x_t] (Tweedie)", pair(r.mean)],
                ["|x̂₀ − E[x₀ | x_t]|", f4(r.miss)], ["log p₀(x̂₀) − max log p₀", r.logp0.toFixed(2)]];
  $("compass-numbers").innerHTML = rows.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join("");
  const start = [r.x[0] - r.sigma * r.epsTheta[0], r.x[1] - r.sigma * r.epsTheta[1]];
  const exact = [r.x[0] - r.sigma * r.epsHat[0], r.x[1] - r.sigma * r.epsHat[1]];
  const annotations = [arrow(start, r.x, GREEN, 4, { standoff: 7 }),
                       arrow(r.x, r.x0Hat, ORANGE, 4, { startstandoff: 7 })];
  if (c.acc < 100) annotations.unshift(arrow(exact, r.x, "#666", 1.5, { standoff: 7 }));
  const gd = "compass-plot";
  let done = Promise.resolve();
  if (withDensity) done = Plotly.restyle(gd, { z: [densityGrid(noised(r.alpha, r.sigma))] }, [0]);
  return track(done
    .then(() => Plotly.restyle(gd, { x: [[r.x[0]], [r.x0Hat[0]], [r.mean[0]]],
                                     y: [[r.x[1]], [r.x0Hat[1]], [r.mean[1]]] }, [2, 3, 4]))
    .then(() => Plotly.relayout(gd, { annotations })));
}

function placeCompass(x, y) {
  state.compass.x = x;
  state.compass.y = y;
  return drawCompass(false);
}

async function initCompass() {
  const c = state.compass, data = noised(1, 0), z0 = densityGrid(data), [gx, gy] = grid();
  c.logp0Max = Math.max(...gx.flatMap((x) => gy.map((y) => logDensity(data, x, y))));
  c.x = D.box[0] + 0.45 * (D.box[1] - D.box[0]);  // a first x_t between the components
  c.y = D.box[2] + 0.45 * (D.box[3] - D.box[2]);
  const marker = (name, symbol, color, size, line) =>
    ({ type: "scatter", mode: "markers", x: [], y: [], name, hoverinfo: "skip",
       marker: { symbol, color, size, line: { color: line, width: 1.5 } } });
  await Plotly.newPlot("compass-plot", [
    heatmap(z0, HEAT, "log p_t"),
    { type: "contour", x: gx, y: gy, z: z0, showscale: false, hoverinfo: "skip", name: "p₀ contours",
      contours: { coloring: "lines", start: -8, end: -1, size: 2.33 }, colorscale: [[0, "#555"], [1, "#555"]],
      line: { width: 1 } },
    marker("x_t", "circle", "#111", 11, "#fff"),
    marker("x̂₀", "star", ORANGE, 16, "#222"),
    marker("E[x₀ | x_t]", "diamond", "#fff", 11, "#111"),
    legendLine("σ ε_θ (noise step)", GREEN),
    legendLine("x_t → x̂₀", ORANGE),
  ], boxLayout({}), CONFIG);
  // a click anywhere in the plot area places x_t (capture: before plotly's own handlers)
  $("compass-plot").addEventListener("click", (e) => {
    const area = $("compass-plot").querySelector(".nsewdrag");
    if (!area) return;
    const b = area.getBoundingClientRect(), L = $("compass-plot").layout;
    const fx = (e.clientX - b.left) / b.width, fy = (e.clientY - b.top) / b.height;
    if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return;
    const [x0, x1] = L.xaxis.range, [y0, y1] = L.yaxis.range;
    placeCompass(x0 + fx * (x1 - x0), y1 - fy * (y1 - y0));
  }, true);
  return drawCompass(true);
}

// --- 2. reverse SDE and probability-flow ODE paths ---

function pathBands(lam, set) {  // one trace per time band: every path's segment in it, separated by nulls
  const paths = D.paths.xy[lam][set], m = D.paths.t.length, per = (m - 1) / BANDS;
  return Array.from({ length: BANDS }, (_, b) => {
    const x = [], y = [];
    for (const p of paths) {
      for (let j = b * per; j <= (b + 1) * per; j++) { x.push(p[j][0]); y.push(p[j][1]); }
      x.push(null); y.push(null);
    }
    return [x, y];
  });
}

function drawPaths() {
  const { lam, set } = state.paths, bands = pathBands(lam, set), paths = D.paths.xy[lam][set];
  const l = D.paths.lambdas[lam], kind = l === 0 ? " (probability-flow ODE)" : l === 1 ? " (reverse SDE)" : "";
  $("paths-lam-label").textContent = `λ = ${l.toFixed(2)}${kind}`;
  $("paths-set-label").textContent = `start set ${set + 1} of ${D.paths.xy[0].length}`;
  const at = (j, d) => paths.map((p) => p[j < 0 ? p.length - 1 : j][d]);
  const x = [...bands.map((b) => b[0]), at(0, 0), at(-1, 0)], y = [...bands.map((b) => b[1]), at(0, 1), at(-1, 1)];
  return track(Plotly.restyle("paths-plot", { x, y }, Array.from({ length: BANDS + 2 }, (_, k) => k + 1)));
}

async function initPaths() {
  const t = D.paths.t, per = (t.length - 1) / BANDS;
  const bands = BAND_COLOURS.map((color, b) => ({ type: "scatter", mode: "lines", x: [], y: [], hoverinfo: "skip",
    name: `t ${t[b * per].toFixed(2)}→${t[(b + 1) * per].toFixed(2)}`, line: { color, width: 1.6 } }));
  const dots = (name, symbol, color) => ({ type: "scatter", mode: "markers", x: [], y: [], name, hoverinfo: "skip",
                                          marker: { symbol, size: 7, color, line: { color: "#111", width: 1 } } });
  const traces = [heatmap(densityGrid(noised(1, 0)), GREYS, "log p₀"), ...bands,
                  dots("start (t = 1)", "circle-open", "#111"), dots("end (t = 0)", "circle", "#111")];
  await Plotly.newPlot("paths-plot", traces,
                       boxLayout({ legend: { orientation: "h", x: 0, y: -0.12, font: { size: 10 } } }), CONFIG);
  return drawPaths();
}

// --- 3. linear and cosine schedules ---

function noisedData(name, i) {
  const a = D.schedules[name].alpha[i], s = D.schedules[name].sigma[i], x0 = D.schedules.x0, eps = D.schedules.eps;
  return [x0.map((p, j) => a * p[0] + s * eps[j][0]), x0.map((p, j) => a * p[1] + s * eps[j][1])];
}

function schedAt(i) {
  const abar = (name) => D.schedules[name].alpha[i] ** 2;
  return { t: D.schedules.u[i], linear: abar("ddpm"), cosine: abar("ddpm-cosine"), vp: D.schedules.vp_abar[i] };
}

function drawSchedules() {
  const i = state.sched.i, r = schedAt(i);
  state.sched.r = r;
  $("sched-t-label").textContent = `t = ${r.t.toFixed(3)} (n = ${Math.round(r.t * D.schedules.ddpm.T)})`;
  const rows = [["linear ᾱ", r.linear, "abar-linear"], ["cosine ᾱ", r.cosine, "abar-cosine"],
                ["continuous VP-SDE ᾱ", r.vp, "abar-vp"]];
  const cells = ([k, v, id]) => `<tr><td>${k}</td><td id="${id}">${f4(v)}</td></tr>`;
  $("sched-numbers").innerHTML = rows.map(cells).join("");
  const [lx, ly] = noisedData("ddpm", i), [cx, cy] = noisedData("ddpm-cosine", i);
  const title = (name, v) => ({ "title.text": `${name}: ᾱ = ${f4(v)}` });
  return track(Plotly.restyle("sched-curve", { x: [[r.t, r.t]], y: [[r.linear, r.cosine]] }, [3])
    .then(() => Plotly.restyle("sched-linear", { x: [lx], y: [ly] }, [0]))
    .then(() => Plotly.relayout("sched-linear", title("linear", r.linear)))
    .then(() => Plotly.restyle("sched-cosine", { x: [cx], y: [cy] }, [0]))
    .then(() => Plotly.relayout("sched-cosine", title("cosine", r.cosine))));
}

async function initSchedules() {
  const u = D.schedules.u, sq = (a) => a.map((v) => v * v);
  await Plotly.newPlot("sched-curve", [
    { type: "scatter", mode: "lines", x: u, y: sq(D.schedules.ddpm.alpha), name: "linear",
      line: { color: "#2c7bb6", width: 3 } },
    { type: "scatter", mode: "lines", x: u, y: sq(D.schedules["ddpm-cosine"].alpha), name: "cosine",
      line: { color: "#e8705a", width: 3 } },
    { type: "scatter", mode: "lines", x: u, y: D.schedules.vp_abar, name: "VP-SDE (continuous)",
      line: { color: "#777", width: 1.5, dash: "dash" } },
    { type: "scatter", mode: "markers", x: [], y: [], name: "at t", showlegend: false,
      marker: { size: 11, color: ["#2c7bb6", "#e8705a"], line: { color: "#111", width: 1.5 } } },
  ], { margin: { l: 50, r: 10, t: 10, b: 45 }, hovermode: false, dragmode: false,
       xaxis: { title: { text: "t = n / T" }, range: [0, 1] },
       yaxis: { title: { text: "ᾱ(t) = α²" }, range: [0, 1.02] },
       legend: { x: 0.55, y: 0.98, bgcolor: "rgba(255,255,255,0.8)" } }, CONFIG);
  const scatter = (color) => [{ type: "scatter", mode: "markers", x: [], y: [], hoverinfo: "skip",
                                marker: { size: 4, color, opacity: 0.75 } }];
  const layout = (color) => ({ margin: { l: 35, r: 10, t: 30, b: 30 }, hovermode: false, dragmode: false,
    title: { text: "", font: { size: 13, color }, x: 0.5 }, xaxis: { range: [D.box[0], D.box[1]], zeroline: false },
    yaxis: { range: [D.box[2], D.box[3]], scaleanchor: "x", zeroline: false } });
  await Plotly.newPlot("sched-linear", scatter("#2c7bb6"), layout("#2c7bb6"), CONFIG);
  await Plotly.newPlot("sched-cosine", scatter("#e8705a"), layout("#e8705a"), CONFIG);
  return drawSchedules();
}

// --- 4. the forward SDE and the Fokker-Planck solution ---

function marginal1(comps, xs) {  // density of x_1 under p_t: sum_k pi_k N(x; m_k1, S_k11)
  return xs.map((x) => comps.reduce((acc, c) => acc + c.w * Math.exp(-0.5 * (x - c.m[0]) ** 2 / c.S[0])
                                                     / Math.sqrt(2 * Math.PI * c.S[0]), 0));
}

function particleMoments(xy) {
  const n = xy.length, m = [0, 0], c = [0, 0, 0];
  xy.forEach((p) => { m[0] += p[0] / n; m[1] += p[1] / n; });
  xy.forEach((p) => {
    const dx = p[0] - m[0], dy = p[1] - m[1];
    c[0] += dx * dx / (n - 1); c[1] += dx * dy / (n - 1); c[2] += dy * dy / (n - 1);
  });
  return { mean: m, cov: c };
}

function drawForward() {
  const f = state.fp.f, a = D.fp.alpha[f], s = D.fp.sigma[f], xy = D.fp.xy[f], comps = noised(a, s);
  const xs = linspace(D.box[0], D.box[1], 300), emp = particleMoments(xy), exact = moments(a, s);
  state.fp.r = { t: D.fp.t[f], alpha: a, sigma: s, emp, exact };
  $("fp-t-label").textContent = `t = ${D.fp.t[f].toFixed(3)}, α = ${a.toFixed(3)}, σ = ${s.toFixed(3)}`;
  const cov = (c) => `${f4(c[0])}, ${f4(c[1])}, ${f4(c[2])}`;
  $("fp-numbers").innerHTML = "<tr><th></th><th>particles</th><th>exact p_t</th></tr>" +
    `<tr><td>mean</td><td>${pair(emp.mean)}</td><td>${pair(exact.mean)}</td></tr>` +
    `<tr><td>cov (11, 12, 22)</td><td>${cov(emp.cov)}</td><td>${cov(exact.cov)}</td></tr>`;
  return track(Plotly.restyle("fp-plot", { z: [densityGrid(comps)] }, [0])
    .then(() => Plotly.restyle("fp-plot", { x: [xy.map((p) => p[0])], y: [xy.map((p) => p[1])] }, [1]))
    .then(() => Plotly.restyle("fp-hist", { x: [xy.map((p) => p[0]), xs], y: [null, marginal1(comps, xs)] }, [0, 1])));
}

async function initForward() {
  await Plotly.newPlot("fp-plot", [
    heatmap(densityGrid(noised(1, 0)), HEAT, "exact p_t"),
    { type: "scatter", mode: "markers", x: [], y: [], name: "SDE particles", hoverinfo: "skip",
      marker: { size: 4, color: "#d62728", opacity: 0.75 } },
  ], boxLayout({}), CONFIG);
  const width = (D.box[1] - D.box[0]) / 60;
  await Plotly.newPlot("fp-hist", [
    { type: "histogram", x: [], histnorm: "probability density", name: "particles' x₁",
      xbins: { start: D.box[0], end: D.box[1], size: width }, marker: { color: "rgba(214, 39, 40, 0.45)" } },
    { type: "scatter", mode: "lines", x: [], y: [], name: "exact marginal of p_t",
      line: { color: "#1f3b73", width: 2.5 } },
  ], { margin: { l: 50, r: 10, t: 10, b: 40 }, hovermode: false, dragmode: false, bargap: 0.02,
       xaxis: { title: { text: "x₁" }, range: [D.box[0], D.box[1]] }, yaxis: { title: { text: "density" } },
       legend: { x: 0.01, y: 0.99, bgcolor: "rgba(255,255,255,0.8)" } }, CONFIG);
  return drawForward();
}

// --- wiring ---

function wire() {
  const slider = (id, apply) => $(id).addEventListener("input", () => apply(Number($(id).value)));
  slider("compass-t", (v) => { state.compass.i = v; drawCompass(true); });
  slider("compass-acc", (v) => { state.compass.acc = v; drawCompass(false); });
  slider("paths-lam", (v) => { state.paths.lam = v; drawPaths(); });
  $("paths-new").addEventListener("click", () => {
    state.paths.set = (state.paths.set + 1) % D.paths.xy[0].length;
    drawPaths();
  });
  slider("sched-t", (v) => { state.sched.i = v; drawSchedules(); });
  slider("fp-t", (v) => { state.fp.f = v; drawForward(); });
}

async function main() {
  await loadPlotly();
  D = JSON.parse(new TextDecoder().decode(await gunzip($("data-gz").textContent)));
  $("compass-t").max = D.vp.t.length - 1;
  $("sched-t").max = D.schedules.u.length - 1;
  $("fp-t").max = D.fp.t.length - 1;
  $("paths-lam").max = D.paths.lambdas.length - 1;
  state.compass.i = Number($("compass-t").value);
  state.compass.acc = Number($("compass-acc").value);
  state.paths.lam = Number($("paths-lam").value);
  state.sched.i = Number($("sched-t").value);
  state.fp.f = Number($("fp-t").value);
  await initCompass();
  await initPaths();
  await initSchedules();
  await initForward();
  wire();
  $("status").textContent = "";
  window.figures = { state, data: D, compassAt, placeCompass, schedAt, noised, posterior, logDensity, ready: true };
}

main().catch((err) => { $("status").textContent = `the page could not start: ${err}`; console.error(err); });
"""
)
