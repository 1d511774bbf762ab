/**
 * Colours of the layer map, chosen to stay distinguishable with the common
 * colour-vision deficiencies: the Okabe–Ito qualitative palette for states,
 * and viridis (perceptually uniform, monotone in lightness) for firing rates.
 */
import type { UnitState } from "./api.js";

export type Rgb = readonly [number, number, number];

function hex(s: string): Rgb {
  return [
    Number.parseInt(s.slice(1, 3), 16),
    Number.parseInt(s.slice(3, 5), 16),
    Number.parseInt(s.slice(5, 7), 16),
  ];
}

export const STATE_COLOURS: Record<UnitState, string> = {
  ACTIVE: "#0072b2",
  MOSTLY_SILENT: "#e69f00",
  DEAD: "#d55e00",
  UNKNOWN: "#bbbbbb",
};
export const STATE_RGB: Record<UnitState, Rgb> = {
  ACTIVE: hex(STATE_COLOURS.ACTIVE),
  MOSTLY_SILENT: hex(STATE_COLOURS.MOSTLY_SILENT),
  DEAD: hex(STATE_COLOURS.DEAD),
  UNKNOWN: hex(STATE_COLOURS.UNKNOWN),
};

/** Marks drawn in the middle of a cell. */
export const BORN_DEAD_MARK = "#ffffff";
export const CONSTANT_MARK = "#000000";
export const BORN_DEAD_RGB = hex(BORN_DEAD_MARK);
export const CONSTANT_RGB = hex(CONSTANT_MARK);

/** A rate of exactly 0: no fire in the window. */
export const ZERO_RATE_COLOUR = "#000000";
export const ZERO_RATE_RGB = hex(ZERO_RATE_COLOUR);

/** The log scale of the rate colouring: rates at or below RATE_MIN share the first colour. */
export const RATE_MIN_LOG10 = -5;

// Viridis sampled at nine even points, from its dark end (skipped below 0.15, too close to black) to yellow.
const VIRIDIS = [
  "#440154",
  "#482878",
  "#3e4989",
  "#31688e",
  "#26828e",
  "#1f9e89",
  "#35b779",
  "#6ece58",
  "#fde725",
].map(hex);

function viridis(t: number): Rgb {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = VIRIDIS[i]!;
  const b = VIRIDIS[i + 1]!;
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f].map(
    Math.round,
  ) as unknown as Rgb;
}

/** Colour of a firing rate on the log scale [1e-5, 1]. */
export function rateRgb(rate: number): Rgb {
  if (rate <= 0) return ZERO_RATE_RGB;
  const t = (Math.log10(rate) - RATE_MIN_LOG10) / -RATE_MIN_LOG10;
  return viridis(0.15 + 0.85 * Math.min(1, Math.max(0, t)));
}

export function rgbCss(c: Rgb): string {
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}
