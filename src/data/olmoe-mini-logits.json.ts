// Framework data loader: OLMoE-mini's router logits on its four fixed sample
// sequences, for each shipped checkpoint (src/data/reference-logits.ts), so
// that the "Your framework" page and `moe-lab losses FILE --framework NAME`
// read the same numbers.
import { referenceLogits } from "./reference-logits.js";

process.stdout.write(JSON.stringify(referenceLogits()));
