/**
 * Every loss variant the lab knows, in the order of the output record. Adding
 * a variant: one file in `variants/` and one line here (docs/adding-a-loss.md).
 */
import type { LossDescriptor, NameOf } from "./descriptor.js";
import { lblSwitch } from "./variants/lbl-switch.js";
import { lblHf } from "./variants/lbl-hf.js";
import { lblSequence } from "./variants/lbl-sequence.js";
import { lblMicroBatch } from "./variants/lbl-micro-batch.js";
import { lblGlobal } from "./variants/lbl-global.js";
import { zLossStMoe } from "./variants/z-loss-st-moe.js";
import { zLossOlmoe } from "./variants/z-loss-olmoe.js";
import { cv2Importance } from "./variants/cv2-importance.js";
import { cv2Load } from "./variants/cv2-load.js";
import { maxVioGlobal } from "./variants/max-vio-global.js";
import { maxVioMicroBatch } from "./variants/max-vio-micro-batch.js";

export const lossDescriptors = [
  lblSwitch,
  lblHf,
  lblSequence,
  lblMicroBatch,
  lblGlobal,
  zLossStMoe,
  zLossOlmoe,
  cv2Importance,
  cv2Load,
  maxVioGlobal,
  maxVioMicroBatch,
] as const;

export type RegisteredLoss = (typeof lossDescriptors)[number];

/** `"lbl.switch" | … | "max_vio.micro_batch"`. */
export type LossName = NameOf<RegisteredLoss>;

/** The registered descriptors that have a gradient. */
export type DifferentiableDescriptor = Extract<RegisteredLoss, { readonly gradient: object }>;
export type DifferentiableLoss = NameOf<DifferentiableDescriptor>;

export function isDifferentiable(descriptor: LossDescriptor): boolean {
  return descriptor.gradient !== undefined;
}
