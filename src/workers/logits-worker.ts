/**
 * Parses a dropped file of router logits off the page's thread: the header
 * first (to ask for top_k when the file cannot say it), then every row in
 * chunks into a routing summary and a replay of expert-bias balancing.
 * Nothing leaves the browser: the file is read from the user's disk only.
 */
import { LabInputError } from "../lib/types.js";
import { BiasReplayBuilder } from "../lib/loss-free.js";
import { probabilitiesWarning } from "../lib/conventions.js";
import { parseBiasJson, resolveConvention } from "../lib/routing-options.js";
import { AuxMapCounter } from "../lib/aux-map.js";
import { planLogits, streamLogits, summaryForPlan, type ByteSource, type LogitsPlan } from "../lib/io/stream.js";
import type { LogitsWorkerMessage, LogitsWorkerRequest } from "./logits-protocol.js";
import { describeReadError as describe } from "../lib/io/read-error.js";
import { blobSource } from "./blob-source.js";

let source: ByteSource | null = null;
let plan: LogitsPlan | null = null;
/** The newest request: a stream started for an older one stops at its next chunk. */
let newest = 0;
const post = (message: LogitsWorkerMessage) => (self as unknown as Worker).postMessage(message);

class Superseded extends Error {}

self.onmessage = async (event: MessageEvent<LogitsWorkerRequest>) => {
  const request = event.data;
  const { id } = request;
  newest = Math.max(newest, id);
  if (request.type === "cancel") return;
  try {
    if (request.type === "inspect") {
      source = null;
      plan = null;
      const candidate = blobSource(request.file, request.name);
      const candidatePlan = await planLogits(candidate);
      if (id !== newest) return; // a newer file arrived while this header was read
      [source, plan] = [candidate, candidatePlan];
      const { format, dtype, layers, tokens, experts, topK, sequenceLengths, microBatchSequences } = plan;
      post({
        id,
        type: "described",
        file: {
          name: request.name,
          bytes: candidate.size,
          format,
          dtype,
          layers,
          tokens,
          experts,
          topK,
          sequenceLengths,
          microBatchSequences,
          whole: candidatePlan.whole !== undefined,
          ...(candidatePlan.selectionBiasSource ? { biasSource: candidatePlan.selectionBiasSource } : {}),
        },
      });
    } else {
      if (!source || !plan) throw new LabInputError("no file has been read yet");
      const [reading, readingPlan] = [source, plan];
      const started = performance.now();
      const sequenceLengths = request.sequenceLengths ?? readingPlan.sequenceLengths ?? [readingPlan.tokens];
      // The same resolution and bias parsing as `moe-lab losses --preset … --bias FILE`.
      const convention = resolveConvention(request.routing, request.topK, readingPlan.experts);
      // The file's own bias unless told otherwise; a pasted one beside it is refused, as the CLI refuses --bias.
      const fileBias = request.ignoreFileBias ? undefined : readingPlan.selectionBias;
      if (fileBias && request.biasJson !== null)
        throw new LabInputError(
          `${reading.name} carries its own expert bias (${readingPlan.selectionBiasSource}) and one was pasted: clear the pasted bias, or tick "ignore the file's expert bias"`,
        );
      const bias =
        request.biasJson === null
          ? fileBias
          : parseBiasJson(request.biasJson, readingPlan.layers, readingPlan.experts, "the expert bias");
      // One routing pass per row: the replay takes each row's probabilities
      // and plain top-k from the summary and adds only its biased choice. It
      // replays the lab's softmax router, so it runs only when that router does.
      const replay =
        convention || bias
          ? null
          : new BiasReplayBuilder(readingPlan, request.topK, request.biasRate, request.biasBatchTokens);
      // With a convention or a bias, the map an aux loss counts rides on the same pass (as in the CLI).
      const auxMap = convention || bias ? new AuxMapCounter(readingPlan, request.topK) : null;
      const layers = request.layers ?? { first: 0, end: readingPlan.layers };
      const summary = summaryForPlan(readingPlan, request.topK, sequenceLengths, {
        ...(replay ? { onRow: replay.onRow } : {}),
        ...(auxMap ? { onRow: auxMap.onRow } : {}),
        ...(convention ? { convention } : {}),
        ...(bias ? { selectionBias: bias } : {}),
        layers,
      });
      let warning: string | null = null;
      let first = true;
      await streamLogits(
        reading,
        readingPlan,
        (values, count) => {
          if (id !== newest) throw new Superseded();
          if (first && convention)
            warning = probabilitiesWarning(
              values.subarray(0, count * readingPlan.experts),
              readingPlan.experts,
              convention.score,
            );
          first = false;
          try {
            summary.addRows(values, 0, count);
          } catch (error) {
            // the summary's check names the place; the page's sentence also names the file, as the stream's does
            if (error instanceof LabInputError) throw new LabInputError(`${reading.name}: ${error.message}`);
            throw error;
          }
        },
        (done, total) => post({ id, type: "progress", done, total }),
        // The softmax path checks each value as it reads the row (one pass, not two); a convention's router does not.
        { layers, consumerChecksValues: !convention },
      );
      const finished = summary.finish();
      post({
        id,
        type: "summarized",
        summary: finished,
        replay: replay ? replay.replay : null,
        routing: convention ?? null,
        auxMap: auxMap ? auxMap.finish(finished).slice(layers.first, layers.end) : null,
        warning,
        ms: performance.now() - started,
      });
    }
  } catch (error) {
    if (error instanceof Superseded || id !== newest) return; // nobody is waiting for this answer any more
    post({ id, type: "error", message: describe(error) });
  }
};
