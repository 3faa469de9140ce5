/**
 * Observable Inputs, with one change: an input whose value did not change
 * does not re-run the cells that read it. Inputs.select (and the forms built
 * on it) re-sends each `change` as an `input` event, so one selection arrives
 * twice and every cell downstream ran twice: on the ablation page, a second
 * full routing of the sample by four checkpoints. `distinct` drops an `input`
 * event whose value equals the last one let through, before Framework's
 * `view()` sees it. (A reader's click is a trusted event, after which
 * Inputs stops re-sending; scripted selections, as in tests and automation,
 * are not.) Buttons are left alone: pressing one again must run again.
 */
import * as ObservableInputs from "@observablehq/inputs";

/** Equal values: the same primitive, or arrays / plain objects / dates with equal members (one level deep). */
export function sameValue(a, b) {
  if (Object.is(a, b)) return true;
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => sameValue(a[k], b[k]));
  }
  return false;
}

/**
 * Stops `input` events that carry the value already sent. It listens on the
 * input itself, in the bubble phase: after the input's own listener has
 * updated its value (registered when it was made) and before view()'s
 * (registered when the cell displays it), listeners running in that order.
 */
export function distinct(input) {
  let last = input.value;
  input.addEventListener("input", (event) => {
    const value = input.value;
    if (sameValue(value, last)) event.stopImmediatePropagation();
    else last = value;
  });
  return input;
}

const wrap =
  (make) =>
  (...args) =>
    distinct(make(...args));

export const Inputs = {
  ...ObservableInputs,
  select: wrap(ObservableInputs.select),
  radio: wrap(ObservableInputs.radio),
  checkbox: wrap(ObservableInputs.checkbox),
  toggle: wrap(ObservableInputs.toggle),
  range: wrap(ObservableInputs.range),
  number: wrap(ObservableInputs.number),
  text: wrap(ObservableInputs.text),
  textarea: wrap(ObservableInputs.textarea),
  search: wrap(ObservableInputs.search),
  form: wrap(ObservableInputs.form),
};
