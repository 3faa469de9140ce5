/**
 * `exp(x)` for x ≤ 0, faster than `Math.exp` in V8 and accurate to ~1e-13
 * relative (tested against `Math.exp`): the softmax of the loss engine calls
 * it once per logit, so it sets the engine's speed.
 *
 * Range reduction `x = (n/64)·ln2 + f`, |f| ≤ ln2/128, then a degree-5 Taylor
 * polynomial for `e^f` (its error, f⁶/720, is below 4e-17 there) and two
 * tables: 2^(n div 64) and 2^((n mod 64)/64). The first version reduced by
 * whole powers of two (|f| ≤ ln2/2) and needed degree 10: twice the
 * multiplications for a thousand times less accuracy. Results below 2^-1022
 * (x < −708) flush to 0, which a softmax cannot tell from the truth.
 */
/** 2^(i − 1080) for the integer part; the offset leaves room below −1022·64/64. */
const powersOfTwo = new Float64Array(1100);
for (let i = 0; i < powersOfTwo.length; i++) powersOfTwo[i] = 2 ** (i - 1080);
/** 2^(j/64), j = 0…63. */
const fractions = new Float64Array(64);
for (let j = 0; j < 64; j++) fractions[j] = 2 ** (j / 64);

// Adding and subtracting 1.5·2^52 rounds a double to the nearest integer
// without a call to Math.round.
const ROUND = 6755399441055744.0;
const SIXTY_FOUR_OVER_LN2 = 64 / Math.LN2;
const LN2_OVER_64 = Math.LN2 / 64;

export function expNonPositive(x: number): number {
  const y = x * SIXTY_FOUR_OVER_LN2;
  if (!(y >= -1022 * 64)) return 0;
  const n = y + ROUND - ROUND;
  const f = x - n * LN2_OVER_64;
  const poly = 1 + f * (1 + f * (0.5 + f * (1 / 6 + f * (1 / 24 + f * (1 / 120)))));
  const whole = n | 0; // ≥ −65408: an int32, and >> floors it
  return poly * powersOfTwo[(whole >> 6) + 1080] * fractions[whole & 63];
}
