/**
 * `moe-lab losses FILE [--top-k K] [--micro-batch M]`: every number of the
 * specification's output record for a file of router logits, as one JSON
 * object on stdout. Problems with the input end in one line on stderr and
 * exit status 2.
 */
import { readFile } from "node:fs/promises";
import { computeLosses } from "./lib/losses/index.js";
import { readLogits, supportedFormats } from "./lib/io/read.js";
import { LabInputError } from "./lib/types.js";

const usage = `usage: moe-lab losses FILE [--top-k K] [--micro-batch M]

Prints every load-balancing loss of FILE's router logits as one JSON object:
lbl.{switch,hf,sequence,micro_batch,global}, z_loss.{st_moe,olmoe},
cv2.{importance,load}, max_vio.{global,micro_batch} and load [L][E].
All values are unweighted (before the coefficients α and β).

FILE: ${supportedFormats}.
  JSON: {"router_logits": [L][T][E], "top_k": k, "sequence_lengths": [...],
         "micro_batch_sequences": m}; only router_logits and top_k are needed.
  .npy / .safetensors: shape [T,E], [L,T,E] or [L,B,S,E], or one [T,E]
         tensor per layer (safetensors, ordered by the numbers in the names).
--top-k K        experts per token (overrides the file)
--micro-batch M  sequences per micro-batch (overrides the file; default 1)`;

class UsageError extends Error {}

interface Options {
  file: string;
  topK?: number;
  microBatch?: number;
}

function parseArguments(args: string[]): Options | "help" {
  if (args.includes("--help") || args.includes("-h") || args.length === 0) return "help";
  const [command, ...rest] = args;
  if (command !== "losses") throw new UsageError(`unknown command '${command}'`);
  const options: Partial<Options> = {};
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const [flag, inline] = arg.startsWith("--") ? arg.split("=", 2) : [arg, undefined];
    if (flag === "--top-k" || flag === "--micro-batch") {
      const text = inline ?? rest[++i];
      const value = Number(text);
      if (text === undefined || !Number.isInteger(value)) throw new UsageError(`${flag} needs an integer, got ${text === undefined ? "nothing" : `'${text}'`}`);
      if (flag === "--top-k") options.topK = value;
      else options.microBatch = value;
    } else if (flag.startsWith("-")) {
      throw new UsageError(`unknown option '${flag}'`);
    } else if (options.file === undefined) {
      options.file = arg;
    } else {
      throw new UsageError(`one file at a time; got '${options.file}' and '${arg}'`);
    }
  }
  if (options.file === undefined) throw new UsageError("no FILE given");
  return options as Options;
}

async function losses(options: Options): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(options.file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : code === "EACCES" ? "permission denied" : (error as Error).message;
    throw new LabInputError(`cannot read ${options.file}: ${reason}`);
  }
  const input = readLogits(bytes, options.file);
  const topK = options.topK ?? input.topK;
  if (topK === undefined) throw new LabInputError(`${options.file} does not say top_k: pass --top-k K`);
  const microBatch = options.microBatch ?? input.microBatchSequences ?? 1;
  const record = computeLosses(input.logits, topK, input.sequenceLengths, microBatch);
  return JSON.stringify(record, null, 2);
}

export async function main(args: string[]): Promise<number> {
  try {
    const options = parseArguments(args);
    if (options === "help") {
      process.stdout.write(usage + "\n");
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
    if (error instanceof RangeError && /Array buffer allocation|Invalid typed array length/.test(error.message)) {
      process.stderr.write(`moe-lab: the file is too large for this process's memory (${error.message})\n`);
      return 2;
    }
    process.stderr.write(`moe-lab: internal error, please report it: ${(error as Error).stack ?? error}\n`);
    return 1;
  }
}
