/**
 * The routing convention a reader asks for, from a preset and/or explicit
 * options (the CLI's --preset, --score, --groups, --topk-groups,
 * --group-rule, --scaling-factor, --pre-softmax; the same fields on the "Your
 * router logits" page). A preset fixes every field; an explicit option that
 * disagrees with it is refused rather than silently winning, so a command
 * line never means two things. Top-k is the batch's: a preset's own top-k is
 * only its default.
 */
import { validateConvention, type GroupRule, type RoutingConvention, type ScoreFunction } from "./conventions.js";
import { isPresetName, presetNames, routingPresets } from "./presets.js";
import { LabInputError } from "./types.js";

export interface RoutingRequest {
  readonly preset?: string;
  readonly score?: ScoreFunction;
  readonly groups?: number;
  readonly topkGroups?: number;
  readonly groupRule?: GroupRule;
  readonly scalingFactor?: number;
  readonly preSoftmax?: boolean;
  readonly normalizeGates?: boolean;
}

export const scoreFunctions: readonly ScoreFunction[] = ["softmax", "sigmoid", "sqrtsoftplus"];
export const groupRules: readonly GroupRule[] = ["max", "top2-sum", "deepseek-v3", "megatron"];

/** True when the request names no convention at all: the lab's own router applies. */
export function isDefaultRouting(request: RoutingRequest): boolean {
  return Object.values(request).every((v) => v === undefined);
}

/**
 * The convention for a batch of `experts` experts and top-`topK`; undefined
 * when nothing was asked (the lab's softmax router, the fast path).
 */
export function resolveConvention(
  request: RoutingRequest,
  topK: number,
  experts: number,
): RoutingConvention | undefined {
  if (isDefaultRouting(request)) return undefined;
  if (request.score !== undefined && !scoreFunctions.includes(request.score)) {
    throw new LabInputError(`unknown score function '${request.score}'; known: ${scoreFunctions.join(", ")}`);
  }
  if (request.groupRule !== undefined && !groupRules.includes(request.groupRule)) {
    throw new LabInputError(`unknown group rule '${request.groupRule}'; known: ${groupRules.join(", ")}`);
  }
  if ((request.groups === undefined) !== (request.topkGroups === undefined) && request.preset === undefined) {
    throw new LabInputError("group-limited routing needs both the number of groups and the groups kept per token");
  }
  let convention: RoutingConvention;
  if (request.preset !== undefined) {
    if (!isPresetName(request.preset))
      throw new LabInputError(`unknown preset '${request.preset}'; known: ${presetNames.join(", ")}`);
    const preset = routingPresets[request.preset];
    convention = preset.convention(topK);
    const given: [string, unknown, unknown][] = [
      ["score function", request.score, convention.score],
      ["number of groups", request.groups, convention.groups?.count],
      ["groups kept", request.topkGroups, convention.groups?.keep],
      ["group rule", request.groupRule, convention.groups?.rule],
      ["scaling factor", request.scalingFactor, convention.scalingFactor],
      ["pre-softmax", request.preSoftmax, convention.preSoftmax],
      ["gate normalisation", request.normalizeGates, convention.normalizeGates],
    ];
    for (const [name, asked, fixed] of given) {
      if (asked !== undefined && asked !== fixed) {
        throw new LabInputError(
          `the ${preset.label} preset has ${name} ${fixed ?? "none"}, but ${asked} was asked: drop one of them`,
        );
      }
    }
  } else {
    const score = request.score ?? "softmax";
    convention = {
      score,
      topK,
      preSoftmax: request.preSoftmax ?? true,
      // sigmoid and sqrt(softplus) scores do not sum to 1: every such router renormalises its gates
      normalizeGates: request.normalizeGates ?? score !== "softmax",
      scalingFactor: request.scalingFactor ?? 1,
      ...(request.groups !== undefined && request.topkGroups !== undefined
        ? {
            groups: {
              count: request.groups,
              keep: request.topkGroups,
              rule: request.groupRule ?? (score === "softmax" ? "megatron" : "deepseek-v3"),
            },
          }
        : {}),
    };
  }
  validateConvention(convention, experts);
  return convention;
}

/** The expert bias from JSON: one number per expert (every layer), or one array of E per layer. */
export function parseBiasJson(text: string, layers: number, experts: number, name = "the bias file"): Float64Array {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new LabInputError(`${name} is not valid JSON (${(error as Error).message})`);
  }
  const isNumbers = (a: unknown): a is number[] => Array.isArray(a) && a.every((v) => typeof v === "number");
  let flat: number[];
  if (isNumbers(value)) {
    if (value.length !== experts)
      throw new LabInputError(`${name} holds ${value.length} numbers; the logits have ${experts} experts`);
    flat = Array.from({ length: layers }, () => value).flat();
  } else if (Array.isArray(value) && value.every(isNumbers)) {
    if (value.length !== layers)
      throw new LabInputError(`${name} holds ${value.length} layers; the logits have ${layers}`);
    const bad = value.findIndex((row) => row.length !== experts);
    if (bad >= 0)
      throw new LabInputError(
        `${name}: layer ${bad} has ${value[bad].length} numbers; the logits have ${experts} experts`,
      );
    flat = value.flat();
  } else {
    throw new LabInputError(`${name} must hold a JSON array of ${experts} numbers, or one such array per layer`);
  }
  const bias = Float64Array.from(flat);
  const bad = bias.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0)
    throw new LabInputError(`${name} is not finite at layer ${Math.floor(bad / experts)}, expert ${bad % experts}`);
  return bias;
}
