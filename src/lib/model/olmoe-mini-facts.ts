/**
 * OLMoE-mini's facts as the code reads them, from the one JSON file that the
 * site and the Python recipe (data/recipe/facts.py) share:
 * src/lib/model/olmoe-mini.json. Node code gets them from `olmoe-mini.ts`;
 * pages from `src/components/olmoe-mini.js` (Framework's parser predates JSON
 * import attributes, so prepare-assets.mjs hands pages the same JSON as a module).
 */

/** The JSON file's shape. */
export interface OlmoeMiniJson {
  readonly checkpoints: readonly string[];
  readonly architecture: {
    readonly d_model: number;
    readonly n_layers: number;
    readonly n_heads: number;
    readonly n_experts: number;
    readonly top_k: number;
    readonly expert_hidden: number;
    readonly max_seq: number;
    /** RoPE's base frequency. */
    readonly rope_theta: number;
    /** RMSNorm's ε. */
    readonly norm_eps: number;
  };
  readonly context: number;
  readonly batch_sequences: number;
}

/** The four shipped checkpoints, one per balancing strategy. */
export type CheckpointName = "micro" | "global" | "loss-free" | "none";

export interface OlmoeMini {
  readonly checkpoints: readonly CheckpointName[];
  readonly layers: number;
  readonly experts: number;
  readonly topK: number;
  /** Tokens per window: longer text is routed as consecutive windows, each a sequence. */
  readonly context: number;
  /** Sequences per optimizer step in the recipe. */
  readonly batchSequences: number;
  readonly architecture: OlmoeMiniJson["architecture"];
}

export function describeOlmoeMini(facts: OlmoeMiniJson): OlmoeMini {
  return {
    checkpoints: facts.checkpoints as readonly CheckpointName[],
    layers: facts.architecture.n_layers,
    experts: facts.architecture.n_experts,
    topK: facts.architecture.top_k,
    context: facts.context,
    batchSequences: facts.batch_sequences,
    architecture: facts.architecture,
  };
}
