/**
 * Token → expert flow across layers, drawn with d3's own modules: the tokens
 * of a span down the left, then one column of experts per layer; every token
 * is linked to each expert it was sent to in each layer, the link's width and
 * opacity its gate. Hover a token (or its label) to follow its path through
 * the layers; brush a span of tokens to see which experts they share (an
 * expert's fill: the span's gate mass on it). Plot draws the lab's other
 * figures; this one needs custom interaction (hover paths, a brush that
 * recolours another column), which is what d3's selection, brush and shapes
 * are for.
 *
 * @typedef {import("../lib/routed-layer.js").TokenRoutes} TokenRoutes
 */
import { select } from "d3-selection";
import { scaleLinear, scalePoint, scaleSequential } from "d3-scale";
import { interpolateBlues } from "d3-scale-chromatic";
import { linkHorizontal } from "d3-shape";
import { brushY } from "d3-brush";

/**
 * @param {TokenRoutes} routes every layer's route of the span
 * @param {string[]} labels the span's token texts
 * @param {{ width: number, rowHeight?: number }} options
 * @returns {SVGSVGElement}
 */
export function routeFlow(routes, labels, { width, rowHeight = 14 }) {
  const { layers, experts, topK, tokens, chosen, gates } = routes;
  const margin = { top: 28, right: 12, bottom: 8, left: 96 };
  const height = margin.top + margin.bottom + Math.max(tokens * rowHeight, experts * 5);
  const tokenY = scalePoint()
    .domain(Array.from({ length: tokens }, (_, t) => t))
    .range([margin.top, height - margin.bottom])
    .padding(0.5);
  const expertY = scaleLinear()
    .domain([0, experts - 1])
    .range([margin.top + 4, height - margin.bottom - 4]);
  const layerX = scalePoint()
    .domain(Array.from({ length: layers }, (_, l) => l))
    .range([margin.left + 140, width - margin.right - 10])
    .padding(0);
  const tokenX = margin.left;
  const nodeHeight = Math.max(2, (expertY(1) - expertY(0)) * 0.8);

  const links = [];
  for (let l = 0; l < layers; l++)
    for (let t = 0; t < tokens; t++)
      for (let i = 0; i < topK; i++) {
        const at = (l * tokens + t) * topK + i;
        links.push({ token: t, layer: l, expert: chosen[at], gate: gates[at] });
      }
  const maxGate = Math.max(1e-9, ...gates);
  const width_ = scaleLinear().domain([0, maxGate]).range([0.3, 3]);
  const path = linkHorizontal()
    .source((d) => [tokenX + 4, tokenY(d.token)])
    .target((d) => [layerX(d.layer) - 4, expertY(d.expert)]);

  const svg = select(document.createElementNS("http://www.w3.org/2000/svg", "svg"))
    .attr("width", width)
    .attr("height", height)
    .attr("viewBox", [0, 0, width, height])
    .attr("data-testid", "route-flow")
    .style("font", "10px var(--sans-serif, sans-serif)")
    .style("max-width", "100%");

  svg
    .append("g")
    .selectAll("text")
    .data(Array.from({ length: layers }, (_, l) => l))
    .join("text")
    .attr("x", (l) => layerX(l))
    .attr("y", 14)
    .attr("text-anchor", "middle")
    .text((l) => `layer ${l}`);

  const linkGroup = svg.append("g").attr("fill", "none");
  const linkPaths = linkGroup
    .selectAll("path")
    .data(links)
    .join("path")
    .attr("class", "flow-link")
    .attr("d", path)
    .attr("stroke", "#4c78a8")
    .attr("stroke-width", (d) => width_(d.gate))
    .attr("stroke-opacity", (d) => 0.08 + 0.3 * (d.gate / maxGate));

  const fill = scaleSequential(interpolateBlues).domain([0, 1]);
  const nodes = svg
    .append("g")
    .selectAll("rect")
    .data(Array.from({ length: layers * experts }, (_, i) => ({ layer: Math.floor(i / experts), expert: i % experts })))
    .join("rect")
    .attr("class", "flow-expert")
    .attr("x", (d) => layerX(d.layer) - 4)
    .attr("y", (d) => expertY(d.expert) - nodeHeight / 2)
    .attr("width", 8)
    .attr("height", nodeHeight)
    .attr("fill", "#ddd")
    .attr("stroke", "#999")
    .attr("stroke-width", 0.3);
  nodes.append("title").text((d) => `layer ${d.layer}, expert ${d.expert}`);

  const tokenGroup = svg.append("g");
  const tokenLabels = tokenGroup
    .selectAll("text")
    .data(labels.slice(0, tokens).map((text, t) => ({ text, t })))
    .join("text")
    .attr("class", "flow-token")
    .attr("data-token", (d) => d.t)
    .attr("x", tokenX)
    .attr("y", (d) => tokenY(d.t))
    .attr("dy", "0.32em")
    .attr("text-anchor", "end")
    .style("cursor", "pointer")
    .text((d) => JSON.stringify(d.text).slice(1, -1).slice(0, 14));

  // Highlight a set of tokens: their links drawn strong, the rest faded; each expert filled by the set's gate mass.
  function highlight(set) {
    const mass = new Float64Array(layers * experts);
    let total = 0;
    for (const d of links)
      if (set.has(d.token)) {
        mass[d.layer * experts + d.expert] += d.gate;
        total += d.gate;
      }
    const peak = Math.max(1e-9, ...mass);
    linkPaths
      .classed("active", (d) => set.has(d.token))
      .attr("stroke", (d) => (set.has(d.token) ? "#e45756" : "#4c78a8"))
      .attr("stroke-opacity", (d) =>
        set.size === 0 ? 0.08 + 0.3 * (d.gate / maxGate) : set.has(d.token) ? 0.35 + 0.6 * (d.gate / maxGate) : 0.03,
      );
    nodes.attr("fill", (d) =>
      set.size === 0 || total === 0 ? "#ddd" : fill(mass[d.layer * experts + d.expert] / peak),
    );
    tokenLabels.attr("font-weight", (d) => (set.has(d.t) ? "bold" : null));
  }

  // Brush a span of tokens on the token column.
  const brush = brushY()
    .extent([
      [4, margin.top],
      [tokenX + 6, height - margin.bottom],
    ])
    .on("brush end", ({ selection }) => {
      if (!selection) return highlight(new Set());
      const [y0, y1] = selection;
      highlight(new Set(tokenY.domain().filter((t) => tokenY(t) >= y0 && tokenY(t) <= y1)));
    });
  svg.append("g").attr("class", "flow-brush").call(brush);

  // Hover a token for its path (drawn above the brush so labels stay hoverable).
  tokenGroup.raise();
  tokenLabels.on("pointerenter", (_, d) => highlight(new Set([d.t]))).on("pointerleave", () => highlight(new Set()));

  return svg.node();
}
