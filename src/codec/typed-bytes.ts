/**
 * Little-endian byte strings ⇄ typed arrays. On a little-endian host an
 * aligned byte string is viewed in place; an unaligned one (avsc hands out
 * slices of a shared pool) is copied once. A big-endian host always copies,
 * swapping bytes through a DataView.
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

export function uint32FromLE(bytes: Uint8Array): Uint32Array {
  const count = elements(bytes);
  if (HOST_LE) {
    if (bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, count);
    return new Uint32Array(copyOf(bytes).buffer, 0, count);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}

export function float32FromLE(bytes: Uint8Array): Float32Array {
  const count = elements(bytes);
  if (HOST_LE) {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, count);
    return new Float32Array(copyOf(bytes).buffer, 0, count);
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
