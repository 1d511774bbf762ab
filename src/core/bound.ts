/**
 * The statistics of a dead verdict.
 *
 * A unit that fired on none of n independent samples has, at confidence
 * 1 − α, a firing rate below the one-sided upper bound
 *
 *     p̂(n) = 1 − α^(1/n)          (solve (1 − p)^n = α for p)
 *
 * because a unit firing at rate p stays silent n times with probability
 * (1 − p)^n, which is at most α exactly when p ≥ p̂(n).
 *
 * Worked example, α = 0.001 (99.9 % confidence):
 *
 *     n silent samples   bound p̂(n)   verdict at dead_rate = 0.001
 *                  100   0.0667        no: could still fire on 6.7 % of inputs
 *                 1000   0.00688       no
 *                 6904   0.00100004    no: just above dead_rate
 *                 6905   0.00099990    DEAD: "< 0.1 % of inputs, 99.9 % confidence"
 *                50000   0.000138      DEAD
 *
 * so the samples a verdict needs are n_min = ⌊ln α / ln(1 − dead_rate)⌋ + 1
 * = ⌊6904.3⌋ + 1 = 6905.
 */

/** One-sided upper confidence bound of the firing rate after n silent samples; 1 when n is 0. */
export function deadBound(nSilent: number, alpha: number): number {
  if (!(nSilent > 0)) return 1;
  // -expm1(x) is 1 − e^x without cancellation, which matters for large n.
  return -Math.expm1(Math.log(alpha) / nSilent);
}

/** The fewest silent samples whose bound is strictly below deadRate (6905 for α = dead_rate = 0.001). */
export function samplesNeeded(alpha: number, deadRate: number): number {
  const exact = Math.log(alpha) / Math.log1p(-deadRate);
  let n = Math.floor(exact) + 1;
  // Guard the floating-point edge: the returned n must satisfy the bound and n − 1 must not.
  while (deadBound(n, alpha) >= deadRate) n++;
  while (n > 1 && deadBound(n - 1, alpha) < deadRate) n--;
  return n;
}
