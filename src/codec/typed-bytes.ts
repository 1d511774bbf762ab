/**
 * Little-endian byte strings ⇄ typed arrays. On a little-endian host an
 * aligned byte string is viewed in place; an unaligned one (a message inside a
 * fetch response starts wherever the records before it end) is copied once,
 * because a Uint32Array or Float32Array must start at a multiple of 4 bytes. A
 * big-endian host always copies, swapping bytes through a DataView.
 */

const HOST_LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Whole elements only: a ragged tail is dropped, and validation then reports the length mismatch. */
function elements(bytes: Uint8Array): number {
  return Math.floor(bytes.byteLength / 4);
}

/** A fresh, offset-0 copy. Not `bytes.slice()`: on a Buffer that is a view, not a copy. */
function copyOf(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out;
}

/**
 * Room for the copies of one decode's misaligned arrays, reused by the next
 * decode: a decoder that hands its snapshot on before decoding another (the
 * service's processor) then makes no garbage for them. Its arrays are valid
 * only until `reset`.
 */
export class CopyArena {
  private room = new ArrayBuffer(0);
  private used = 0;

  /** Starts a decode: every copy handed out before is from now on overwritten. */
  reset(): void {
    this.used = 0;
  }

  /** `bytes` copied to a 4-aligned place of the arena. */
  copy(bytes: Uint8Array): Uint8Array {
    const start = (this.used + 3) & ~3;
    if (start + bytes.byteLength > this.room.byteLength) {
      // The copies already handed out this decode stay in the old room, which their arrays keep alive.
      this.room = new ArrayBuffer(Math.max(2 * this.room.byteLength, bytes.byteLength + 64));
      this.used = 0;
      return this.copy(bytes);
    }
    const out = new Uint8Array(this.room, start, bytes.byteLength);
    out.set(bytes);
    this.used = start + bytes.byteLength;
    return out;
  }
}

/**
 * `byteLength` bytes of `buf` from `start` as a Uint32Array or Float32Array:
 * what uint32FromLE and float32FromLE give for that range, without first
 * making a Buffer of it (a decoder reads several such ranges per message).
 */
export function uint32At(buf: Uint8Array, start: number, byteLength: number, arena?: CopyArena): Uint32Array {
  const at = buf.byteOffset + start;
  if (HOST_LE && at % 4 === 0) return new Uint32Array(buf.buffer, at, byteLength >>> 2);
  return uint32FromLE(new Uint8Array(buf.buffer, at, byteLength), arena);
}

export function float32At(
  buf: Uint8Array,
  start: number,
  byteLength: number,
  arena?: CopyArena,
): Float32Array {
  const at = buf.byteOffset + start;
  if (HOST_LE && at % 4 === 0) return new Float32Array(buf.buffer, at, byteLength >>> 2);
  return float32FromLE(new Uint8Array(buf.buffer, at, byteLength), arena);
}

/** An aligned copy: into the arena when there is one, else a fresh buffer. */
function alignedCopy(bytes: Uint8Array, arena: CopyArena | undefined): Uint8Array {
  return arena ? arena.copy(bytes) : copyOf(bytes);
}

export function uint32FromLE(bytes: Uint8Array, arena?: CopyArena): Uint32Array {
  const count = elements(bytes);
  if (HOST_LE) {
    if (bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, count);
    const copy = alignedCopy(bytes, arena);
    return new Uint32Array(copy.buffer, copy.byteOffset, count);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}

export function float32FromLE(bytes: Uint8Array, arena?: CopyArena): Float32Array {
  const count = elements(bytes);
  if (HOST_LE) {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, count);
    const copy = alignedCopy(bytes, arena);
    return new Float32Array(copy.buffer, copy.byteOffset, count);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** The little-endian bytes of a Uint32Array or Float32Array, as a Buffer (a view on little-endian hosts). */
export function toLEBytes(values: Uint32Array | Float32Array): Buffer {
  if (HOST_LE) return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const out = Buffer.alloc(values.byteLength);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < values.length; i++) {
    if (values instanceof Uint32Array) view.setUint32(i * 4, values[i]!, true);
    else view.setFloat32(i * 4, values[i]!, true);
  }
  return out;
}
