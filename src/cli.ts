/**
 * `moe-lab losses FILE [--top-k K] [--micro-batch M]`: every number of the
 * specification's output record for a file of router logits, as one JSON
 * object on stdout. Problems with the input end in one line on stderr and
 * exit status 2.
 *
 * The file is read the way the "Your router logits" page reads a dropped one
 * (stream.ts: header first, then rows in 16 MiB chunks into one summary), so
 * the CLI and the page share one code path and one precision, and a file of
 * any size is read in bounded memory. Only regular files are read (a FIFO or
 * a device could block forever or never end); `-` reads standard input, up
 * to MAX_WHOLE_BYTES.
 */
import { open, stat } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { lossDescriptors, lossRecord } from "./lib/losses/index.js";
import { supportedFormats } from "./lib/io/read.js";
import {
  bytesSource,
  MAX_WHOLE_BYTES,
  planLogits,
  streamLogits,
  summaryForPlan,
  type ByteSource,
} from "./lib/io/stream.js";
import { LabInputError, decimalInteger, type FloatArray } from "./lib/types.js";
import {
  frameworkNames,
  frameworkRecord,
  frameworks,
  isFrameworkName,
  type FrameworkName,
} from "./lib/frameworks/index.js";
import { olmoeConvention, probabilitiesWarning, type GroupRule, type ScoreFunction } from "./lib/conventions.js";
import { isPresetName, presetNames, routingPresets } from "./lib/presets.js";
import {
  groupRules,
  parseBiasJson,
  resolveConvention,
  scoreFunctions,
  type RoutingRequest,
} from "./lib/routing-options.js";
import { AuxMapCounter, type AuxMapLayer } from "./lib/aux-map.js";
import { CapacityCounter, type CapacityLayer } from "./lib/capacity-counter.js";
import type { DropPolicy } from "./lib/capacity.js";
import { combineListeners } from "./lib/summary.js";

/** `lbl.{switch,hf,…}, z_loss.{…}, …`, from the registry. */
const lossFamiliesHelp = [...new Set(lossDescriptors.map((d) => d.family))]
  .map(
    (family) =>
      `${family}.{${lossDescriptors
        .filter((d) => d.family === family)
        .map((d) => d.variant)
        .join(",")}}`,
  )
  .join(",\n");

const frameworkHelp = frameworkNames
  .map((name) => {
    const spec = frameworks[name];
    const lbl = spec.lbl ? `α ${spec.lbl.defaultCoefficient} (${spec.lbl.key})` : "no aux loss";
    const z = spec.zLoss ? `β ${spec.zLoss.defaultCoefficient} (${spec.zLoss.key})` : "no z-loss";
    return `  ${name.padEnd(16)} ${spec.label}: ${lbl}, ${z}`;
  })
  .join("\n");
const choiceHelp = frameworkNames.flatMap((name) => frameworks[name].choices.map((c) => `  ${name}: ${c}`)).join("\n");

const presetHelp = presetNames.map((name) => `  ${name.padEnd(16)} ${routingPresets[name].label}`).join("\n");

const usage = `usage: moe-lab losses FILE [--top-k K] [--micro-batch M]
                      [--preset NAME | --score F [--groups G --topk-groups N]
                                        [--group-rule R] [--scaling-factor S] [--post-softmax]]
                      [--bias BIAS.json | --ignore-file-bias]
                      [--capacity-factor CF [--drop-policy probs|position]]
                      [--framework NAME [--alpha A] [--beta B] [--dp N] [--ga N]
                                        [--pad-to N] [--per-token-loss]]
       moe-lab --version

Prints every load-balancing loss of FILE's router logits as one JSON object:
${lossFamiliesHelp}
and load [L][E].
All values are unweighted (before the coefficients α and β).

FILE: ${supportedFormats}; - reads standard input.
  JSON: {"router_logits": [L][T][E], "top_k": k, "sequence_lengths": [...],
         "micro_batch_sequences": m}; only router_logits and top_k are needed.
  .npy / .safetensors: shape [T,E], [L,T,E] or [L,B,S,E], or one [T,E]
         tensor per layer (safetensors, ordered by the numbers in the names).
--top-k K        experts per token (overrides the file)
--micro-batch M  sequences per micro-batch (overrides the file; default 1)

--framework NAME adds "framework": {name, alpha, beta, aux_loss, z_loss,
                 per_layer_alpha, per_layer_beta, ...}: the terms NAME adds to
                 its training loss for this batch, coefficients included, and
                 their per-layer strength in common units (one layer's Switch
                 LBL on slots; one layer's mean lse²). Names and defaults:
${frameworkHelp}
--alpha A, --beta B  the coefficients as configured (default: the documented default)
--dp N, --ga N   data-parallel ranks and gradient-accumulation steps, simulated
                 exactly (ranks × steps must divide the sequences; default 1)
--pad-to N       pad every sequence to N tokens and count the pads, as a loss
                 without a padding mask does (pads get all-equal router logits)
--per-token-loss Megatron-LM's --calculate-per-token-loss (micro-batches weighted
                 by their tokens)

The route is the lab's (OLMoE's) softmax router unless one of these is given;
then "load", MaxVio and every loss are computed on the route that convention
dispatches, and the LBL's P is the score an aux loss balances (the softmax, or
the per-token normalised sigmoid / sqrt(softplus)):
--preset NAME    a model's routing convention:
${presetHelp}
--score F        softmax | sigmoid | sqrtsoftplus
--groups G --topk-groups N
                 group-limited routing: G groups of experts, N kept per token
--group-rule R   max | top2-sum | deepseek-v3 (max, or top-2 sum with a bias) |
                 megatron (top-(k/N) sum); default: megatron for softmax,
                 deepseek-v3 otherwise
--scaling-factor S  multiplies the gates
--post-softmax   softmax routers: top-k of the logits, then softmax over the
                 chosen (Megatron-LM's default, gpt-oss); default: top-k of the softmax
--bias FILE      expert bias, added to the scores for the choice only: a JSON
                 array of E numbers, or one such array per layer. A .safetensors
                 FILE may carry its own: tensors named *.expert_bias (Megatron-LM,
                 torchtitan) or *.e_score_correction_bias (DeepSeek-V3 in HF
                 transformers), [L, E] or one [E] per layer; it is used unless
--ignore-file-bias routes without it
A preset and an option that disagree are refused.
--capacity-factor CF  adds "capacity": each expert takes at most ceil(T·k/E · CF)
                 slots of each micro-batch (Megatron-LM's get_capacity), per layer:
                 the dropped share, tokens that lose every expert, and the global
                 LBL with f counted before vs after the drop (Megatron-LM #1513).
                 "load" and the losses stay dropless.
--drop-policy P  probs (keep each expert's highest gates; default) | position
                 (keep its earliest tokens)
Where the upstream code leaves a choice, the lab makes it:
${choiceHelp}`;

class UsageError extends Error {}

interface Options {
  file: string;
  topK?: number;
  microBatch?: number;
  framework?: FrameworkName;
  alpha?: number;
  beta?: number;
  dp?: number;
  ga?: number;
  padTo?: number;
  perTokenLoss?: boolean;
  routing: RoutingRequest;
  bias?: string;
  ignoreFileBias?: boolean;
  capacityFactor?: number;
  dropPolicy?: DropPolicy;
}

/** A coefficient as written on a command line: a plain decimal or scientific number, finite and ≥ 0. */
function coefficient(flag: string, text: string | undefined): number {
  if (text === undefined || !/^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$|^[0-9]+\.$/.test(text)) {
    throw new UsageError(
      `${flag} needs a number ≥ 0 such as 0.01 or 1e-3, got ${text === undefined ? "nothing" : `'${oneLine(text)}'`}`,
    );
  }
  const value = Number(text);
  if (!Number.isFinite(value)) throw new UsageError(`${flag} must be finite, got '${oneLine(text)}'`);
  return value;
}

function parseArguments(args: string[]): Options | "help" | "version" {
  if (args.includes("--help") || args.includes("-h") || args.length === 0) return "help";
  if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) return "version";
  const [command, ...rest] = args;
  if (command !== "losses") throw new UsageError(`unknown command '${command}'`);
  const options: Partial<Options> = {};
  const routing: { -readonly [K in keyof RoutingRequest]: RoutingRequest[K] } = {};
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const equals = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const [flag, inline] = equals >= 0 ? [arg.slice(0, equals), arg.slice(equals + 1)] : [arg, undefined];
    if (flag === "--per-token-loss") {
      if (inline !== undefined) throw new UsageError("--per-token-loss takes no value");
      options.perTokenLoss = true;
    } else if (flag === "--ignore-file-bias") {
      if (inline !== undefined) throw new UsageError("--ignore-file-bias takes no value");
      options.ignoreFileBias = true;
    } else if (flag === "--post-softmax") {
      if (inline !== undefined) throw new UsageError("--post-softmax takes no value");
      routing.preSoftmax = false;
    } else if (flag === "--capacity-factor") {
      const value = coefficient(flag, inline ?? rest[++i]);
      if (!(value > 0)) throw new UsageError("--capacity-factor must be greater than 0");
      options.capacityFactor = value;
    } else if (flag === "--drop-policy") {
      const text = inline ?? rest[++i];
      if (text !== "probs" && text !== "position")
        throw new UsageError(
          `--drop-policy is probs or position, got ${text === undefined ? "nothing" : `'${oneLine(text)}'`}`,
        );
      options.dropPolicy = text;
    } else if (flag === "--preset" || flag === "--score" || flag === "--group-rule" || flag === "--bias") {
      const text = inline ?? rest[++i];
      if (text === undefined) throw new UsageError(`${flag} needs a value`);
      if (flag === "--preset") {
        if (!isPresetName(text))
          throw new UsageError(`unknown preset '${oneLine(text)}'; known: ${presetNames.join(", ")}`);
        routing.preset = text;
      } else if (flag === "--score") {
        if (!scoreFunctions.includes(text as ScoreFunction))
          throw new UsageError(`unknown score function '${oneLine(text)}'; known: ${scoreFunctions.join(", ")}`);
        routing.score = text as ScoreFunction;
      } else if (flag === "--group-rule") {
        if (!groupRules.includes(text as GroupRule))
          throw new UsageError(`unknown group rule '${oneLine(text)}'; known: ${groupRules.join(", ")}`);
        routing.groupRule = text as GroupRule;
      } else options.bias = text;
    } else if (flag === "--groups" || flag === "--topk-groups") {
      const text = inline ?? rest[++i];
      const value = decimalInteger(text);
      if (text === undefined || value === null || value < 1)
        throw new UsageError(
          `${flag} needs a positive decimal integer, got ${text === undefined ? "nothing" : `'${oneLine(text)}'`}`,
        );
      if (flag === "--groups") routing.groups = value;
      else routing.topkGroups = value;
    } else if (flag === "--scaling-factor") {
      const value = coefficient(flag, inline ?? rest[++i]);
      if (!(value > 0)) throw new UsageError("--scaling-factor must be greater than 0");
      routing.scalingFactor = value;
    } else if (
      flag === "--top-k" ||
      flag === "--micro-batch" ||
      flag === "--dp" ||
      flag === "--ga" ||
      flag === "--pad-to"
    ) {
      const text = inline ?? rest[++i];
      const value = decimalInteger(text);
      if (text === undefined || value === null)
        throw new UsageError(
          `${flag} needs a decimal integer, got ${text === undefined ? "nothing" : `'${oneLine(text)}'`}`,
        );
      if ((flag === "--dp" || flag === "--ga") && value < 1)
        throw new UsageError(`${flag} must be a positive integer, got ${value}`);
      if (flag === "--top-k") options.topK = value;
      else if (flag === "--micro-batch") options.microBatch = value;
      else if (flag === "--dp") options.dp = value;
      else if (flag === "--pad-to") options.padTo = value;
      else options.ga = value;
    } else if (flag === "--framework") {
      const text = inline ?? rest[++i];
      if (text === undefined || !isFrameworkName(text)) {
        throw new UsageError(
          `${text === undefined ? "--framework needs a name" : `unknown framework '${oneLine(text)}'`}; known: ${frameworkNames.join(", ")}`,
        );
      }
      options.framework = text;
    } else if (flag === "--alpha" || flag === "--beta") {
      const value = coefficient(flag, inline ?? rest[++i]);
      if (flag === "--alpha") options.alpha = value;
      else options.beta = value;
    } else if (flag.startsWith("-") && flag !== "-") {
      throw new UsageError(`unknown option '${oneLine(flag)}'`);
    } else if (options.file === undefined) {
      options.file = arg;
    } else {
      throw new UsageError(`one file at a time; got '${oneLine(options.file)}' and '${oneLine(arg)}'`);
    }
  }
  if (options.file === undefined) throw new UsageError("no FILE given");
  if (options.dropPolicy !== undefined && options.capacityFactor === undefined)
    throw new UsageError("--drop-policy needs --capacity-factor (without a capacity nothing is dropped)");
  options.routing = routing;
  if (options.framework === undefined) {
    const stray = (["alpha", "beta", "dp", "ga", "padTo", "perTokenLoss"] as const).find(
      (key) => options[key] !== undefined,
    );
    const flagName: Record<string, string> = { padTo: "pad-to", perTokenLoss: "per-token-loss" };
    if (stray) throw new UsageError(`--${flagName[stray] ?? stray} applies to a framework: add --framework NAME`);
  }
  return options as Options;
}

/** A name as it goes into a one-line message: control characters (a newline in a file name) escaped. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

/** A regular file read by ranges, or standard input read whole (bounded). */
async function openSource(file: string): Promise<{ source: ByteSource; close(): Promise<void> }> {
  const name = oneLine(file);
  if (file === "-") {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_WHOLE_BYTES)
        throw new LabInputError(
          `standard input holds more than ${MAX_WHOLE_BYTES / 2 ** 20} MiB; pass a file name instead (files of any size are streamed)`,
        );
      chunks.push(chunk);
    }
    return { source: bytesSource(new Uint8Array(Buffer.concat(chunks)), "standard input"), close: async () => {} };
  }
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new LabInputError(
      `cannot read ${name}: ${code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "ENOTDIR" ? "a part of the path is not a directory" : (error as Error).message}`,
    );
  }
  if (!info.isFile()) {
    const kind = info.isDirectory()
      ? "a directory"
      : info.isFIFO()
        ? "a named pipe (FIFO)"
        : info.isCharacterDevice()
          ? "a character device"
          : info.isBlockDevice()
            ? "a block device"
            : info.isSocket()
              ? "a socket"
              : "not a regular file";
    throw new LabInputError(`cannot read ${name}: it is ${kind}; give a regular file, or - to read standard input`);
  }
  let handle;
  try {
    handle = await open(file, "r");
  } catch (error) {
    throw new LabInputError(
      `cannot read ${name}: ${(error as NodeJS.ErrnoException).code === "EACCES" ? "permission denied" : (error as Error).message}`,
    );
  }
  const size = info.size;
  const source: ByteSource = {
    name,
    size,
    async read(start, end) {
      const bytes = new Uint8Array(Math.max(0, Math.min(end, size) - start));
      let at = 0;
      while (at < bytes.length) {
        const { bytesRead } = await handle.read(bytes, at, bytes.length - at, start + at);
        if (bytesRead === 0) break; // the file shrank while we read it: streamLogits reports the short read
        at += bytesRead;
      }
      return bytes.subarray(0, at);
    },
  };
  return { source, close: () => handle.close() };
}

async function losses(options: Options): Promise<string> {
  const { source, close } = await openSource(options.file);
  try {
    const plan = await planLogits(source);
    const topK = options.topK ?? plan.topK;
    if (topK === undefined) throw new LabInputError(`${source.name} does not say top_k: pass --top-k K`);
    const sequenceLengths = plan.sequenceLengths ?? [plan.tokens];
    const convention = resolveConvention(options.routing, topK, plan.experts);
    const fileBias = options.ignoreFileBias ? undefined : plan.selectionBias;
    if (fileBias && options.bias !== undefined)
      throw new LabInputError(
        `${source.name} carries its own expert bias (${plan.selectionBiasSource}) and --bias gives another: drop --bias, or add --ignore-file-bias`,
      );
    const bias = options.bias === undefined ? fileBias : await readBias(options.bias, plan.layers, plan.experts);
    if (options.framework !== undefined && (convention || bias)) {
      throw new LabInputError(
        `--framework simulates the framework's own softmax router: drop the routing options${fileBias ? " (this file carries an expert bias: --ignore-file-bias)" : ""}, or --framework`,
      );
    }
    // With a bias or another convention, also count the map an aux loss reads (Megatron-LM's own top-k).
    const auxMap = convention || bias ? new AuxMapCounter(plan, topK) : null;
    const microBatch = options.microBatch ?? plan.microBatchSequences ?? 1;
    // A capacity is applied per micro-batch, the tokens one router call sees, on the same pass.
    const capacity =
      options.capacityFactor === undefined
        ? null
        : new CapacityCounter(
            plan,
            topK,
            sequenceLengths,
            microBatch,
            options.capacityFactor,
            options.dropPolicy ?? "probs",
          );
    const onRow = combineListeners(auxMap?.onRow, capacity?.onRow);
    const summary = summaryForPlan(plan, topK, sequenceLengths, {
      ...(convention ? { convention } : {}),
      ...(bias ? { selectionBias: bias } : {}),
      ...(onRow ? { onRow } : {}),
    });
    let checkedRows = 0;
    const warnings: string[] = [];
    // A framework's terms need every row (its micro-batches, buffers and
    // gradients): keep them, in the file's precision, as they stream by.
    const kept = options.framework === undefined ? null : keptLogits(plan);
    let at = 0;
    await streamLogits(source, plan, (values, count) => {
      if (convention && checkedRows === 0) {
        const warning = probabilitiesWarning(values.subarray(0, count * plan.experts), plan.experts, convention.score);
        if (warning) warnings.push(warning);
      }
      checkedRows += count;
      summary.addRows(values, 0, count);
      if (kept) {
        kept.set(values.subarray(0, count * plan.experts), at);
        at += count * plan.experts;
      }
    });
    const finished = summary.finish();
    const record: Record<string, unknown> = { ...lossRecord(finished, microBatch) };
    if (capacity) record.capacity = capacityRecord(capacity.finish(finished), options, microBatch);
    if (convention || bias)
      record.routing = {
        ...(convention ?? olmoeConvention(topK)),
        bias: fileBias ? `from the file: ${plan.selectionBiasSource}` : bias ? "given" : "none",
        aux_map: auxMapRecord(auxMap!.finish(finished)),
      };
    for (const warning of warnings) process.stderr.write(`moe-lab: warning: ${warning}\n`);
    if (kept && options.framework) {
      record.framework = frameworkRecord(
        { data: kept, layers: plan.layers, tokens: plan.tokens, experts: plan.experts },
        topK,
        sequenceLengths,
        {
          framework: options.framework,
          alpha: options.alpha,
          beta: options.beta,
          layout: { dataParallel: options.dp ?? 1, gradientAccumulation: options.ga ?? 1 },
          padTo: options.padTo,
          perTokenLoss: options.perTokenLoss,
        },
      );
    }
    return JSON.stringify(record, null, 2);
  } finally {
    await close();
  }
}

/** The expert bias of --bias FILE (JSON; bounded size). */
async function readBias(file: string, layers: number, experts: number): Promise<Float64Array> {
  const name = oneLine(file);
  let text: string;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new LabInputError(`cannot read the bias file ${name}: it is not a regular file`);
    if (info.size > 64 * 2 ** 20)
      throw new LabInputError(
        `the bias file ${name} is ${(info.size / 2 ** 20).toFixed(0)} MiB; a bias is a few numbers per expert`,
      );
    text = readFileSync(file, "utf8");
  } catch (error) {
    if (error instanceof LabInputError) throw error;
    throw new LabInputError(
      `cannot read the bias file ${name}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}`,
    );
  }
  return parseBiasJson(text, layers, experts, `the bias file ${name}`);
}

/** The array that holds a planned file's every logit, float64 when the file is (router logits 1e-10 apart must keep their order). */
function keptLogits(plan: { layers: number; tokens: number; experts: number; dtype: string }): FloatArray {
  const count = plan.layers * plan.tokens * plan.experts;
  const bytes = count * (plan.dtype === "float64" ? 8 : 4);
  if (bytes > MAX_WHOLE_BYTES)
    throw new LabInputError(
      `--framework keeps every logit in memory; this file's ${(bytes / 2 ** 20).toFixed(0)} MiB of logits pass the ${MAX_WHOLE_BYTES / 2 ** 20} MiB limit: give fewer tokens`,
    );
  return plan.dtype === "float64" ? new Float64Array(count) : new Float32Array(count);
}

/** Per layer, what a capacity drops and what the LBL then reads (capacity-counter.ts), in the record's snake_case. */
function capacityRecord(layers: CapacityLayer[], options: Options, microBatch: number): Record<string, unknown> {
  return {
    what: "slots over ceil(T·k/E · factor) per expert and micro-batch dropped (Megatron-LM get_capacity, apply_router_token_dropping); load and every loss above are dropless",
    factor: options.capacityFactor,
    drop_policy: options.dropPolicy ?? "probs",
    micro_batch_sequences: microBatch,
    capacity: layers.map((l) => (l.capacity[0] === l.capacity[1] ? l.capacity[0] : l.capacity)),
    dropped_share: layers.map((l) => l.droppedShare),
    tokens_fully_dropped: layers.map((l) => l.tokensFullyDropped),
    lbl_f_before_drop: layers.map((l) => l.lblBefore),
    lbl_f_after_drop: layers.map((l) => l.lblAfter),
  };
}

/** Per layer, the dispatched route against the map an aux loss counts (aux-map.ts), in the record's snake_case. */
function auxMapRecord(layers: AuxMapLayer[]): Record<string, unknown> {
  return {
    what: "the aux loss's own map: plain top-k of the per-token normalised scores, no bias, no groups (Megatron-LM compute_routing_scores_for_aux_loss)",
    tokens_differing: layers.map((l) => l.tokensDiffering),
    max_vio_route: layers.map((l) => l.maxVioRoute),
    max_vio_aux_map: layers.map((l) => l.maxVioAuxMap),
    lbl_route: layers.map((l) => l.lblRoute),
    lbl_aux_map: layers.map((l) => l.lblAuxMap),
  };
}

export async function main(args: string[]): Promise<number> {
  try {
    const options = parseArguments(args);
    if (options === "help") {
      process.stdout.write(usage + "\n");
      return 0;
    }
    if (options === "version") {
      const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
        name: string;
        version: string;
      };
      process.stdout.write(`${pkg.name} ${pkg.version}\n`);
      return 0;
    }
    process.stdout.write((await losses(options)) + "\n");
    return 0;
  } catch (error) {
    if (error instanceof LabInputError || error instanceof UsageError) {
      process.stderr.write(`moe-lab: ${error.message}\n`);
      if (error instanceof UsageError) process.stderr.write("run 'moe-lab --help' for usage\n");
      return 2;
    }
    if (
      error instanceof RangeError &&
      /Array buffer allocation|Invalid typed array length|Invalid array length/.test(error.message)
    ) {
      process.stderr.write(`moe-lab: the file is too large for this process's memory (${error.message})\n`);
      return 2;
    }
    process.stderr.write(`moe-lab: internal error, please report it: ${(error as Error).stack ?? error}\n`);
    return 1;
  }
}
