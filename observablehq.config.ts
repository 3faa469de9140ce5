// Observable Framework configuration. Every URL in the built site is
// relative, so one build works under any sub-path (GitHub Pages serves a
// project at /<repository>/); `base` only matters for 404.html.
import { readFileSync } from "node:fs";
import type MarkdownIt from "markdown-it";
import { buildCopyPlugin } from "./tools/build-copy-plugin.js";
import { earlyModelPlugin } from "./tools/early-model-plugin.js";
import { staticTexPlugin } from "./tools/static-tex-plugin.js";

export default {
  title: "MoE Balance Lab",
  root: "src",
  base: process.env.MOE_LAB_BASE ?? "/moe-balance-lab/",
  style: "style.css",
  // The default list loads Google Fonts: a third-party request, and a failed
  // one offline. The theme falls back to system fonts.
  globalStylesheets: [],
  // The icon: none to fetch. The script holds the reader's place while the page draws (its comment
  // says why); read at each page's render, so that the dev server serves an edit of it on reload.
  head: () =>
    `<link rel="icon" href="data:,"><script>${readFileSync(new URL("./tools/inline/hold-place.js", import.meta.url), "utf8")}</script>`,
  pages: [
    { name: "Why balance", path: "/" },
    { name: "Routing", path: "/routing" },
    { name: "The load-balancing loss", path: "/load-balancing" },
    { name: "CV² of importance and load", path: "/cv2" },
    { name: "Router z-loss", path: "/z-loss" },
    { name: "Three granularities", path: "/granularity" },
    { name: "Loss-free balancing", path: "/loss-free" },
    { name: "Production routers", path: "/routers" },
    { name: "Train a router, live", path: "/live-training" },
    { name: "Playground", path: "/playground" },
    { name: "Ablation on OLMoE-mini", path: "/ablation" },
    { name: "Your router logits", path: "/your-logits" },
    { name: "Your framework", path: "/your-framework" },
  ],
  footer: "MoE Balance Lab — every number computed in your browser by the lab's loss library.",
  search: false,
  // ```build-copy NAME fences: tables of OLMoE-mini's numbers computed at build time, in the HTML itself;
  // ```early-model: the model worker started from the HTML; formulas without interpolations typeset at build time.
  markdownIt: (md: MarkdownIt) => md.use(buildCopyPlugin).use(earlyModelPlugin).use(staticTexPlugin),
};
