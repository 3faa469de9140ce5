/** OLMoE-mini's facts for Node, tests and the bundled workers (pages: src/components/olmoe-mini.js). */
import facts from "./olmoe-mini.json" with { type: "json" };
import { describeOlmoeMini } from "./olmoe-mini-facts.js";

export type { CheckpointName, OlmoeMini } from "./olmoe-mini-facts.js";
export const olmoeMini = describeOlmoeMini(facts);
