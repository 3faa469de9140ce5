/** Small reductions shared by the loss modules. */
export function mean(values: readonly number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total / values.length;
}

/** Squared coefficient of variation with the population variance (÷ n). */
export function cv2Population(values: ArrayLike<number>): number {
  const n = values.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += values[i];
  const mu = total / n;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (values[i] - mu) ** 2;
  return squares / n / (mu * mu);
}

/** The same with the unbiased variance (÷ n−1), as `torch.Tensor.var()` computes it. */
export function cv2Unbiased(values: ArrayLike<number>): number {
  const n = values.length;
  return (cv2Population(values) * n) / (n - 1);
}
