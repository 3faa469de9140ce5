// The playground's counterfactual, calibration and consistency read-outs:
// plain HTML from the states the page's cells hold (one job each: say what
// was measured, with the numbers a test can read back through data-testid).
import { html } from "htl";
import type { Tokenizer } from "../lib/model/tokenizer.js";
import type { CounterfactualResult } from "../lib/model/counterfactual.js";
import type { CalibrationSummary, Swap } from "../lib/model/calibration.js";
import type { ConsistencyResult, RunComparison } from "../lib/model/consistency.js";

type Pending = { status: "idle" } | { status: "running" } | { status: "message"; message: string };

export type CounterfactualState =
  | Pending
  | { status: "loading"; progress: number }
  | { status: "done"; result: CounterfactualResult; token: number; checkpoint: string; nextToken: number };

const percent = (logProb: number) => `${(100 * Math.exp(logProb)).toFixed(1)} %`;
const signed = (v: number, digits = 4) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(digits)}`;

function pending(state: Pending | { status: "loading"; progress: number }, idle: string): HTMLElement {
  if (state.status === "idle") return html`<p class="muted">${idle}</p>`;
  if (state.status === "loading")
    return html`<p>Loading the full graph… <progress value=${state.progress} max="1"></progress></p>`;
  if (state.status === "running") return html`<p>Running OLMoE-mini in this browser…</p>`;
  return html`<p class="warning" data-testid="cf-message">${state.message}</p>`;
}

export function counterfactualCard(
  state: CounterfactualState,
  tokenizer: Tokenizer,
  ids: readonly number[],
): HTMLElement {
  if (state.status !== "done")
    return html`<div class="card" data-testid="counterfactual">${pending(state, "Press “Run the counterfactual” (it loads the full graph, 8 MB, once).")}</div>`;
  const { result: r, token, checkpoint, nextToken } = state;
  const text = (id: number) => JSON.stringify(tokenizer.tokenText(id));
  const predictions = (label: string, p: CounterfactualResult["before"]) =>
    html`<table class="cf-top"><thead><tr><th colspan="2">${label}</th></tr></thead><tbody>${p.top.map(
      ({ id, logProb }) =>
        html`<tr class=${id === nextToken ? "actual" : ""}><td><code>${text(id)}</code></td><td>${percent(logProb)}</td></tr>`,
    )}</tbody></table>`;
  return html`<div class="card" data-testid="counterfactual">
    <p><strong>${checkpoint}</strong>, token no. ${token} <code>${text(ids[token])}</code>, layer ${r.layer}:
    its choice no. ${r.slot + 1}, expert ${r.expertOut} (router probability ${r.gateOut.toFixed(3)}), replaced by
    expert <strong data-testid="cf-expert-in">${r.expertIn}</strong> (${r.gateIn.toFixed(3)}, the gate it now gets).</p>
    <p>The next token, <code>${text(nextToken)}</code>: ${percent(r.before.logProb)} → ${percent(r.after.logProb)},
    Δ log p = <strong data-testid="cf-delta" data-value=${r.deltaLogProb}>${signed(r.deltaLogProb)}</strong> nats.
    ${Number.isNaN(r.laterDelta) ? "" : html`The tokens after it: mean Δ log p ${signed(r.laterDelta)} (they attend to this token's changed state).`}</p>
    <div class="cf-tables">${predictions("top predictions before", r.before)}${predictions("after", r.after)}</div>
  </div>`;
}

export interface CalibrationRow {
  checkpoint: string;
  summary: CalibrationSummary;
  swaps: readonly Swap[];
  source: "build" | "live";
}

const withInterval = (value: number, se: number, digits = 3) =>
  Number.isNaN(se) ? value.toFixed(digits) : `${value.toFixed(digits)} ± ${(1.96 * se).toFixed(digits)}`;

export function calibrationTable(rows: readonly CalibrationRow[]): HTMLElement {
  return html`<table data-testid="calibration-table">
    <thead><tr>
      <th>checkpoint</th>
      <th title="mean Δ log p when the router's first choice is replaced by its best left-out expert">first choice worth (nats)</th>
      <th title="share of pairs of dropped experts where dropping the higher-ranked one hurt more (0.5 = chance)">drop order right</th>
      <th title="share of pairs of left-out experts where the higher-ranked one helped more (0.5 = chance)">add order right</th>
      <th title="share of (token, layer) where some left-out expert gave a higher log p than the router's weakest choice">a left-out expert did better</th>
      <th title="experts below the router's top-k swapped in (ranks k+1 onwards)">left-out experts tried</th>
      <th>cells</th><th>source</th>
    </tr></thead>
    <tbody>${rows.map(
      ({ checkpoint, summary: s, swaps, source }) => html`<tr data-checkpoint=${checkpoint}>
        <td>${checkpoint}</td>
        <td data-value=${s.firstChoiceWorth}>${withInterval(s.firstChoiceWorth, s.firstChoiceWorthSE)}</td>
        <td>${withInterval(s.dropOrderAgreement, s.dropOrderAgreementSE)}</td>
        <td>${withInterval(s.addOrderAgreement, s.addOrderAgreementSE)}</td>
        <td>${withInterval(s.betterLeftOut, s.betterLeftOutSE)}</td>
        <td>${swaps.filter((swap) => swap.kind === "add").length}</td>
        <td>${s.cells}</td><td data-testid="calibration-source">${source}</td>
      </tr>`,
    )}</tbody>
  </table>
  <p class="muted">± : 95 % intervals over the (token, layer) cells of one checkpoint; cells of one token share its text, so they are narrower than an interval over texts would be. “Drop 8” and “add 9” are the same swap (the weakest choice out, the best left-out expert in).</p>`;
}

export type ConsistencyState = Pending | { status: "done"; result: ConsistencyResult; checkpoint: string };

export function consistencyTable(state: ConsistencyState, layers: number): HTMLElement {
  if (state.status !== "done")
    return html`<div data-testid="consistency">${pending(state, "Press “Route twice”.")}</div>`;
  const { result, checkpoint } = state;
  const row = (label: string, c: RunComparison, id: string) => html`<tr data-testid=${id}>
    <th>${label}</th>
    ${c.flipRateByLayer.map((f) => html`<td>${(100 * f).toFixed(1)} %</td>`)}
    <td data-testid=${`${id}-any`} data-value=${c.anyLayerFlipped}>${(100 * c.anyLayerFlipped).toFixed(1)} %</td>
    <td data-value=${c.meanLogProbMismatch}>${c.meanLogProbMismatch.toExponential(2)}</td>
    <td>${c.maxLogProbMismatch.toExponential(2)}</td>
    <td>${c.k3KL.toExponential(2)}</td>
    <td>${(100 * c.extremeShare).toFixed(1)} %</td>
  </tr>`;
  const what =
    result.perturbation.kind === "bf16"
      ? "router inputs rounded to bfloat16"
      : result.perturbation.kind === "noise" && result.perturbation.epsilon === 0
        ? "nothing (the same run twice: every number below must be 0)"
        : result.perturbation.kind === "noise"
          ? `a perturbation ε = ${result.perturbation.epsilon.toExponential(0)} per coordinate of the router inputs`
          : "WebGPU against WASM";
  return html`<div data-testid="consistency">
    <p><strong>${checkpoint}</strong>, ${result.tokens} tokens (the text's first window), second run: ${what}.</p>
    <table>
      <thead><tr><th></th>${Array.from({ length: layers }, (_, l) => html`<th>flips, layer ${l}</th>`)}<th>tokens with a flip in any layer</th><th>mean |Δ log p|</th><th>max |Δ log p|</th><th>k3-KL</th><th>|Δ log p| > ln 2</th></tr></thead>
      <tbody>${row("each run its own route", result.free, "consistency-free")}${row("second run replays the first's route", result.replayed, "consistency-replay")}</tbody>
    </table>
    <p class="muted">A flip: the token's set of top-k experts differs between the runs. With replay the route is the first run's by construction; what mismatch remains comes from the gates, which are recomputed from the second run's own router logits.</p>
  </div>`;
}
