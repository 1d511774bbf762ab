/**
 * Detector settings and their validation. Settings are checked once, when a
 * Detector is built, so the hot path never re-validates them.
 */

export interface DetectorConfig {
  /** Length of the rolling window, in training steps. */
  window_steps: number;
  /** Buckets the window is kept in; must divide window_steps. Classification runs when a bucket closes. */
  window_buckets: number;
  /** 1 − confidence of a dead verdict. */
  alpha: number;
  /** A dead verdict claims the firing rate is below this, with confidence 1 − alpha. */
  dead_rate: number;
  /** Living units with a windowed rate below this are MOSTLY_SILENT. */
  silent_rate: number;
  /**
   * Relative half-width of the band around silent_rate in which a living unit
   * keeps its state: ACTIVE turns MOSTLY_SILENT below silent_rate × (1 − h),
   * MOSTLY_SILENT turns ACTIVE at or above silent_rate × (1 + h).
   */
  silent_hysteresis: number;
  /** Fires a DEAD unit needs after its verdict (at a rate >= dead_rate) to be revived. */
  revive_min_fires: number;
  /** Share of samples counted as independent evidence (tokens of one sequence are correlated). */
  effective_sample_fraction: number;
  /** A living unit whose windowed coefficient of variation is below this is flagged constant. */
  constant_cv: number;
  /** How many living units closest to death the layer summary lists. */
  closest_k: number;
  /** A rank is stale when its newest step is this many steps behind the layer's newest. */
  stale_after_steps: number;
}

export const MAX_CLOSEST_K = 1000;

export const DEFAULT_DETECTOR_CONFIG: Readonly<DetectorConfig> = Object.freeze({
  window_steps: 1000,
  window_buckets: 10,
  alpha: 0.001,
  dead_rate: 0.001,
  silent_rate: 0.01,
  silent_hysteresis: 0.25,
  revive_min_fires: 3,
  effective_sample_fraction: 1,
  constant_cv: 1e-3,
  closest_k: 10,
  stale_after_steps: 1000,
});

export class DetectorConfigError extends Error {
  readonly field: string;
  constructor(field: string, rule: string, value: unknown) {
    super(`detector config: ${field} ${rule} (got ${JSON.stringify(value) ?? String(value)})`);
    this.name = "DetectorConfigError";
    this.field = field;
  }
}

const KEYS = Object.keys(DEFAULT_DETECTOR_CONFIG) as Array<keyof DetectorConfig>;

function check(ok: boolean, field: keyof DetectorConfig, rule: string, value: unknown): void {
  if (!ok) throw new DetectorConfigError(field, rule, value);
}

function isInt(v: number, min: number): boolean {
  return Number.isSafeInteger(v) && v >= min;
}

/**
 * Fills unset fields from the defaults and validates the result. When
 * window_steps is set but stale_after_steps is not, a rank is stale after one
 * window, whatever that window is.
 */
export function resolveDetectorConfig(partial: Partial<DetectorConfig> = {}): DetectorConfig {
  for (const key of Object.keys(partial)) {
    if (!(KEYS as string[]).includes(key))
      throw new DetectorConfigError(key, "is not a detector setting", key);
  }
  const defined = Object.fromEntries(
    Object.entries(partial).filter(([, v]) => v !== undefined),
  ) as Partial<DetectorConfig>;
  const c: DetectorConfig = { ...DEFAULT_DETECTOR_CONFIG, ...defined };
  if (defined.stale_after_steps === undefined) c.stale_after_steps = c.window_steps;
  for (const key of KEYS) {
    check(typeof c[key] === "number" && Number.isFinite(c[key]), key, "must be a finite number", c[key]);
  }
  check(isInt(c.window_steps, 1), "window_steps", "must be an integer >= 1", c.window_steps);
  check(isInt(c.window_buckets, 1), "window_buckets", "must be an integer >= 1", c.window_buckets);
  check(
    c.window_steps % c.window_buckets === 0,
    "window_buckets",
    `must divide window_steps (${c.window_steps})`,
    c.window_buckets,
  );
  check(c.window_buckets <= 1000, "window_buckets", "must be <= 1000", c.window_buckets);
  check(c.alpha > 0 && c.alpha < 1, "alpha", "must be in (0, 1)", c.alpha);
  check(c.dead_rate > 0 && c.dead_rate < 1, "dead_rate", "must be in (0, 1)", c.dead_rate);
  check(
    c.silent_rate > c.dead_rate && c.silent_rate < 1,
    "silent_rate",
    `must be > dead_rate (${c.dead_rate}) and < 1`,
    c.silent_rate,
  );
  check(
    c.silent_hysteresis >= 0 && c.silent_hysteresis < 1,
    "silent_hysteresis",
    "must be in [0, 1)",
    c.silent_hysteresis,
  );
  check(isInt(c.revive_min_fires, 1), "revive_min_fires", "must be an integer >= 1", c.revive_min_fires);
  check(
    c.effective_sample_fraction > 0 && c.effective_sample_fraction <= 1,
    "effective_sample_fraction",
    "must be in (0, 1]",
    c.effective_sample_fraction,
  );
  check(c.constant_cv >= 0, "constant_cv", "must be >= 0", c.constant_cv);
  check(
    isInt(c.closest_k, 0) && c.closest_k <= MAX_CLOSEST_K,
    "closest_k",
    `must be an integer in [0, ${MAX_CLOSEST_K}]`,
    c.closest_k,
  );
  check(isInt(c.stale_after_steps, 1), "stale_after_steps", "must be an integer >= 1", c.stale_after_steps);
  return c;
}
