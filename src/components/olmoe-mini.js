// OLMoE-mini's facts for pages: the JSON of src/lib/model/olmoe-mini.json,
// handed over as a module by scripts/prepare-assets.mjs (Framework's parser
// cannot read JSON import attributes), through the same describeOlmoeMini
// that Node code uses.
import facts from "../assets/olmoe-mini.js";
import { describeOlmoeMini } from "../lib/model/olmoe-mini-facts.js";

export const olmoeMini = describeOlmoeMini(facts);
