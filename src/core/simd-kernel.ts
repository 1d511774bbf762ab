/**
 * A WebAssembly SIMD kernel for the raw-activation reduction, the one loop in
 * the core that plain JavaScript cannot run fast enough (about 150M values/s
 * against a target of 300M: three read-modify-writes per value). The module is
 * assembled here from its instructions, so there is no binary blob and no
 * build step; it is pure computation on its own memory, without imports.
 *
 * For every 4 adjacent units it walks down the rows (samples) with vector
 * accumulators: fires += (h > 0), Σ|h| and Σh² in float64 (each float32 value
 * is widened before it is squared or added, so the sums equal a scalar
 * float64 loop over the rows in order), and a checksum Σ(h − h) that is NaN
 * exactly when some value was NaN or ±Inf.
 *
 * Memory layout: [values: samples × units float32][fires: units u32][abs: units f64][sq: units f64]
 */

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (small constants only). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (n: number) => [0x41, ...sleb(n)],
  i32GeU: [0x4f],
  i32Add: [0x6a],
  i32Mul: [0x6c],
  i32Shl: [0x74],
  simd: (code: number) => [0xfd, ...uleb(code)],
};
const V = {
  load: (offset: number) => [...op.simd(0x00), 0x00, ...uleb(offset)],
  store: (offset: number) => [...op.simd(0x0b), 0x00, ...uleb(offset)],
  zero: [...op.simd(0x0c), ...new Array<number>(16).fill(0)],
  /** Lanes 2 and 3 of an f32x4 moved to lanes 0 and 1. */
  high: [...op.simd(0x0d), 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7],
  f32Gt: op.simd(0x44),
  f32Ne: op.simd(0x42),
  f32Add: op.simd(0xe4),
  f32Sub: op.simd(0xe5),
  i32Add: op.simd(0xae),
  i32Sub: op.simd(0xb1),
  anyTrue: op.simd(0x53),
  promoteLow: op.simd(0x5f),
  f64Abs: op.simd(0xec),
  f64Add: op.simd(0xf0),
  f64Mul: op.simd(0xf2),
};

// Parameters: x, samples, units, units4 (units rounded down to a multiple of 4), fires, abs, sq.
const [X, SAMPLES, UNITS, UNITS4, FIRES, ABS, SQ] = [0, 1, 2, 3, 4, 5, 6];
// i32 locals
const [J, P, END, STRIDE, O] = [7, 8, 9, 10, 11];
// v128 locals
const [VAL, FC, ALO, AHI, QLO, QHI, CHK, WLO, WHI] = [12, 13, 14, 15, 16, 17, 18, 19, 20];

function body(): number[] {
  const accumulate = (acc: number, widened: number, square: boolean) => [
    ...op.get(acc),
    ...op.get(widened),
    ...(square ? [...op.get(widened), ...V.f64Mul] : V.f64Abs),
    ...V.f64Add,
    ...op.set(acc),
  ];
  const flush = (ptr: number, shift: number, parts: Array<[number, number, number[]]>) => [
    ...op.get(ptr),
    ...op.get(J),
    ...op.i32(shift),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.set(O),
    ...parts.flatMap(([acc, offset, add]) => [
      ...op.get(O),
      ...op.get(O),
      ...V.load(offset),
      ...op.get(acc),
      ...add,
      ...V.store(offset),
    ]),
  ];
  return [
    ...op.get(UNITS),
    ...op.i32(2),
    ...op.i32Shl,
    ...op.set(STRIDE),
    ...V.zero,
    ...op.set(CHK),
    ...op.i32(0),
    ...op.set(J),
    ...op.block,
    ...op.loop,
    ...op.get(J),
    ...op.get(UNITS4),
    ...op.i32GeU,
    ...op.brIf(1),
    ...[FC, ALO, AHI, QLO, QHI].flatMap((l) => [...V.zero, ...op.set(l)]),
    // p = x + 4j; end = p + samples × stride
    ...op.get(X),
    ...op.get(J),
    ...op.i32(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.tee(P),
    ...op.get(SAMPLES),
    ...op.get(STRIDE),
    ...op.i32Mul,
    ...op.i32Add,
    ...op.set(END),
    ...op.block,
    ...op.loop,
    ...op.get(P),
    ...op.get(END),
    ...op.i32GeU,
    ...op.brIf(1),
    ...op.get(P),
    ...V.load(0),
    ...op.set(VAL),
    ...op.get(CHK),
    ...op.get(VAL),
    ...op.get(VAL),
    ...V.f32Sub,
    ...V.f32Add,
    ...op.set(CHK),
    // The comparison mask is −1 per firing lane, so subtracting it counts.
    ...op.get(FC),
    ...op.get(VAL),
    ...V.zero,
    ...V.f32Gt,
    ...V.i32Sub,
    ...op.set(FC),
    ...op.get(VAL),
    ...V.promoteLow,
    ...op.set(WLO),
    ...op.get(VAL),
    ...op.get(VAL),
    ...V.high,
    ...V.promoteLow,
    ...op.set(WHI),
    ...accumulate(ALO, WLO, false),
    ...accumulate(AHI, WHI, false),
    ...accumulate(QLO, WLO, true),
    ...accumulate(QHI, WHI, true),
    ...op.get(P),
    ...op.get(STRIDE),
    ...op.i32Add,
    ...op.set(P),
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...flush(FIRES, 2, [[FC, 0, V.i32Add]]),
    ...flush(ABS, 3, [
      [ALO, 0, V.f64Add],
      [AHI, 16, V.f64Add],
    ]),
    ...flush(SQ, 3, [
      [QLO, 0, V.f64Add],
      [QHI, 16, V.f64Add],
    ]),
    ...op.get(J),
    ...op.i32(4),
    ...op.i32Add,
    ...op.set(J),
    ...op.br(0),
    ...op.end,
    ...op.end,
    // Result: 1 when some value was not finite.
    ...op.get(CHK),
    ...op.get(CHK),
    ...V.f32Ne,
    ...V.anyTrue,
    ...op.end,
  ];
}

function moduleBytes(): Uint8Array {
  const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
  const section = (id: number, content: number[]) => [id, ...uleb(content.length), ...content];
  const name = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
  const locals = [...uleb(2), ...uleb(5), I32, ...uleb(9), V128];
  const code = body();
  const fn = [...uleb(locals.length + code.length), ...locals, ...code];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec([[0x60, ...uleb(7), I32, I32, I32, I32, I32, I32, I32, 1, I32]])),
    ...section(3, vec([[0]])),
    ...section(5, vec([[0x00, ...uleb(1)]])),
    ...section(
      7,
      vec([
        [...name("reduce"), 0x00, 0],
        [...name("memory"), 0x02, 0],
      ]),
    ),
    ...section(10, vec([fn])),
  ]);
}

/** Largest input the kernel takes; bigger snapshots use the JavaScript loop. */
const MAX_BYTES = 1 << 30;
const PAGE = 65536;

export interface SimdKernel {
  /** A view of kernel memory for n float32 values, to copy or decode the snapshot into. */
  input(n: number, units: number): Float32Array | null;
  /**
   * Reduces the values in `input` for units [0, units4) (units4 = units rounded
   * down to a multiple of 4) into the given arrays, which it overwrites there;
   * returns false when some value was not finite.
   */
  run(samples: number, units: number, fires: Uint32Array, abs: Float64Array, sq: Float64Array): boolean;
}

/** The slice of the WebAssembly JS API this module uses (the core's type set has no DOM or WebAssembly lib). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

let kernel: SimdKernel | null | undefined;

/** The kernel, or null where WebAssembly SIMD is unavailable. */
export function simdKernel(): SimdKernel | null {
  if (kernel !== undefined) return kernel;
  kernel = null;
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined) return kernel;
  let exports: Record<string, unknown>;
  try {
    exports = new wasm.Instance(new wasm.Module(moduleBytes()), {}).exports;
  } catch {
    return kernel;
  }
  const memory = exports.memory as WasmMemory;
  const reduce = exports.reduce as (...args: number[]) => number;
  let layout = { n: 0, units: 0, fires: 0, abs: 0, sq: 0 };
  kernel = {
    input(n, units) {
      const fires = n * 4;
      const abs = (fires + units * 4 + 15) & ~15;
      const sq = abs + units * 8;
      const need = sq + units * 8;
      if (need > MAX_BYTES) return null;
      if (need > memory.buffer.byteLength) memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
      layout = { n, units, fires, abs, sq };
      return new Float32Array(memory.buffer, 0, n);
    },
    run(samples, units, fires, abs, sq) {
      const units4 = units & ~3;
      const buf = memory.buffer;
      new Uint8Array(buf, layout.fires, units * 4).fill(0);
      new Float64Array(buf, layout.abs, units).fill(0);
      new Float64Array(buf, layout.sq, units).fill(0);
      const bad = reduce(0, samples, units, units4, layout.fires, layout.abs, layout.sq);
      fires.set(new Uint32Array(buf, layout.fires, units4));
      abs.set(new Float64Array(buf, layout.abs, units4));
      sq.set(new Float64Array(buf, layout.sq, units4));
      return bad === 0;
    },
  };
  return kernel;
}
