/**
 * Datasets generated in code from a seed, so the demo needs no download and
 * every rank of a run regenerates exactly the same points.
 */
import { type Random, sampleIndices, seededRandom } from "../publisher/seeded-random.js";

export type DatasetKind = "spirals" | "regression";
export const DATASET_KINDS: readonly DatasetKind[] = ["spirals", "regression"];

export interface Dataset {
  kind: DatasetKind;
  /** Row-major [size × inputDim]. */
  x: Float32Array;
  /** Spirals: class index 0/1 per row. Regression: the target per row. */
  y: Float32Array;
  size: number;
  inputDim: number;
  /** Spirals: 2 classes (logits out). Regression: 1 output. */
  outputDim: number;
}

export class DatasetError extends Error {
  override name = "DatasetError";
}

function gaussian(random: Random): number {
  // Box–Muller; 1 - u keeps the log's argument in (0, 1].
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Two interleaved spirals in [-1, 1]², half the points each, with a little Gaussian noise. */
export function twoSpirals(size: number, seed: number, turns = 1.75, noise = 0.03): Dataset {
  checkSize(size);
  const random = seededRandom(seed);
  const x = new Float32Array(size * 2);
  const y = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const cls = i % 2;
    const t = random();
    const angle = t * turns * 2 * Math.PI + cls * Math.PI;
    x[2 * i] = t * Math.cos(angle) + noise * gaussian(random);
    x[2 * i + 1] = t * Math.sin(angle) + noise * gaussian(random);
    y[i] = cls;
  }
  return { kind: "spirals", x, y, size, inputDim: 2, outputDim: 2 };
}

/** A smooth nonlinear target of two inputs uniform in [-1, 1]², with noise. */
export function regression(size: number, seed: number, noise = 0.05): Dataset {
  checkSize(size);
  const random = seededRandom(seed);
  const x = new Float32Array(size * 2);
  const y = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const a = random() * 2 - 1;
    const b = random() * 2 - 1;
    x[2 * i] = a;
    x[2 * i + 1] = b;
    y[i] = Math.sin(3 * a) * Math.cos(2 * b) + 0.5 * a * b + noise * gaussian(random);
  }
  return { kind: "regression", x, y, size, inputDim: 2, outputDim: 1 };
}

export function makeDataset(kind: DatasetKind, size: number, seed: number): Dataset {
  if (kind === "spirals") return twoSpirals(size, seed);
  if (kind === "regression") return regression(size, seed);
  throw new DatasetError(`unknown dataset ${String(kind)}; expected one of ${DATASET_KINDS.join(", ")}`);
}

/** Row indices of rank `rank` of `ranks`: a seeded shuffle shared by all ranks, dealt round-robin. */
export function shardIndices(size: number, rank: number, ranks: number, seed: number): Int32Array {
  if (!Number.isInteger(ranks) || ranks < 1) throw new DatasetError(`ranks must be >= 1, got ${ranks}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= ranks)
    throw new DatasetError(`rank must be in [0, ${ranks}), got ${rank}`);
  const order = sampleIndices(size, size, seededRandom(seed));
  const mine: number[] = [];
  for (let i = rank; i < size; i += ranks) mine.push(order[i]!);
  if (mine.length === 0) throw new DatasetError(`rank ${rank} of ${ranks} gets no rows of ${size}`);
  return Int32Array.from(mine);
}

/** The rows of `data` at `indices`, as a new dataset. */
export function subset(data: Dataset, indices: Int32Array): Dataset {
  const x = new Float32Array(indices.length * data.inputDim);
  const y = new Float32Array(indices.length);
  indices.forEach((row, i) => {
    x.set(data.x.subarray(row * data.inputDim, (row + 1) * data.inputDim), i * data.inputDim);
    y[i] = data.y[row]!;
  });
  return { ...data, x, y, size: indices.length };
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 2)
    throw new DatasetError(`dataset size must be an integer >= 2, got ${size}`);
}
