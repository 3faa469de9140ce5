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

const usage = `usage: moe-lab losses FILE [--top-k K] [--micro-batch M]
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
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const equals = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const [flag, inline] = equals >= 0 ? [arg.slice(0, equals), arg.slice(equals + 1)] : [arg, undefined];
    if (flag === "--per-token-loss") {
      if (inline !== undefined) throw new UsageError("--per-token-loss takes no value");
      options.perTokenLoss = true;
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
    const summary = summaryForPlan(plan, topK, sequenceLengths);
    // A framework's terms need every row (its micro-batches, buffers and
    // gradients): keep them, in the file's precision, as they stream by.
    const kept = options.framework === undefined ? null : keptLogits(plan);
    let at = 0;
    await streamLogits(source, plan, (values, count) => {
      summary.addRows(values, 0, count);
      if (kept) {
        kept.set(values.subarray(0, count * plan.experts), at);
        at += count * plan.experts;
      }
    });
    const microBatch = options.microBatch ?? plan.microBatchSequences ?? 1;
    const record: Record<string, unknown> = { ...lossRecord(summary.finish(), microBatch) };
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
