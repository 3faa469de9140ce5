// Figures shared by the pages: each takes data and options and returns a
// Plot element sized to `width` (pages wrap them in Framework's `resize`).
// `marks` adds marks on top and `plot` passes any other Plot option through
// (it wins over the figure's defaults), so a page can annotate or restyle a
// figure without copying it.
import * as Plot from "@observablehq/plot";

export interface FigureOptions {
  width: number;
  title?: string;
  height?: number;
  /** Extra marks, drawn after the figure's own. */
  marks?: Plot.Markish[];
  /** Any other Plot option, applied over the figure's defaults (`marks` excepted). */
  plot?: Omit<Plot.PlotOptions, "marks">;
}

/** The figure's options with the caller's pass-through applied. */
function withPassThrough(defaults: Plot.PlotOptions, options: FigureOptions): HTMLElement {
  return Plot.plot({
    ...defaults,
    ...options.plot,
    marks: [...(defaults.marks ?? []), ...(options.marks ?? [])],
  }) as HTMLElement;
}

/** Slot counts per expert, with the balanced load `T·k/E` as a rule. */
export function loadBars(
  load: readonly number[],
  options: FigureOptions & { tokens: number; topK: number; highlight?: (e: number) => boolean },
): HTMLElement {
  const meanLoad = (options.tokens * options.topK) / load.length;
  // A labelled colour: orange means "above the balanced load" here, never "chosen".
  const above = options.highlight ? "highlighted" : "above the balanced load";
  const below = options.highlight ? "other" : "at or below it";
  const data = load.map((count, expert) => ({
    expert,
    count,
    busy: (options.highlight ? options.highlight(expert) : count > meanLoad) ? above : below,
  }));
  return withPassThrough(
    {
      width: options.width,
      height: options.height ?? 240,
      title: options.title,
      x: { label: "expert", tickFormat: (d: number) => (load.length > 32 && d % 8 ? "" : String(d)) },
      y: { label: "load c[e] (routing slots)", grid: true },
      color: { domain: [below, above], range: ["#9db4d8", "#e8a33d"], legend: true },
      marks: [
        Plot.barY(data, { x: "expert", y: "count", fill: "busy", tip: true }),
        Plot.ruleY([meanLoad], { stroke: "#333", strokeDasharray: "4 3" }),
        Plot.text([meanLoad], { y: (d: number) => d, frameAnchor: "right", dy: -6, text: () => "balanced load T·k/E" }),
        Plot.ruleY([0]),
      ],
    },
    options,
  );
}

/** A rows × columns heatmap of a flat array. */
export function heatmap(
  values: ArrayLike<number>,
  rows: number,
  columns: number,
  options: FigureOptions & {
    x: string;
    y: string;
    legend: string;
    diverging?: boolean;
    scheme?: Plot.ColorScheme;
    rowLabels?: readonly string[];
    tip?: boolean;
  },
): HTMLElement {
  const cells: { row: string | number; column: number; value: number }[] = [];
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < columns; c++)
      cells.push({ row: options.rowLabels?.[r] ?? r, column: c, value: values[r * columns + c] });
  let extent = 0;
  for (const cell of cells) extent = Math.max(extent, Math.abs(cell.value));
  return withPassThrough(
    {
      width: options.width,
      height: options.height ?? Math.min(420, 40 + rows * 18),
      title: options.title,
      padding: 0,
      marginLeft: options.rowLabels ? 70 : 40,
      x: { label: options.x, tickFormat: (d: number) => (columns > 24 && d % 4 ? "" : String(d)) },
      y: {
        label: options.y,
        tickFormat: (d: number | string) => (typeof d === "number" && rows > 24 && d % 4 ? "" : String(d)),
      },
      color: options.diverging
        ? { type: "linear", scheme: "BuRd", domain: [-extent || -1, extent || 1], legend: true, label: options.legend }
        : {
            type: "linear",
            scheme: options.scheme ?? "Blues",
            domain: [0, extent || 1],
            legend: true,
            label: options.legend,
          },
      marks: [Plot.cell(cells, { x: "column", y: "row", fill: "value", tip: options.tip ?? true, inset: 0.5 })],
    },
    options,
  );
}

/** Lines over steps, one per series. */
export function stepLines(
  points: readonly { step: number; value: number; series: string }[],
  options: FigureOptions & { y: string; x?: string; logY?: boolean; zero?: boolean; smooth?: number; tip?: boolean },
): HTMLElement {
  // Optional moving average over `smooth` steps, drawn over the raw series in a lighter tone.
  const line = { x: "step", y: "value", stroke: "series", tip: options.tip ?? true } as const;
  const marks = options.smooth
    ? [
        Plot.lineY(points, { ...line, strokeOpacity: 0.25, tip: false }),
        Plot.lineY(points, Plot.windowY({ k: options.smooth }, line)),
      ]
    : [Plot.lineY(points, line)];
  return withPassThrough(
    {
      width: options.width,
      height: options.height ?? 260,
      title: options.title,
      x: { label: options.x ?? "step" },
      y: { label: options.y, grid: true, type: options.logY ? "log" : "linear", zero: options.zero },
      color: { legend: true },
      marks: [...marks, ...(options.logY ? [] : [Plot.ruleY([0])])],
    },
    options,
  );
}
