import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeLayerMap, encodeLayerMap, mapByteLength } from "../../../src/ui/map-format.js";

describe("the layer map's wire format", () => {
  const map = {
    units: 3,
    step: 123_456_789_012,
    firing_rate: Float32Array.from([0, 0.25, 1e-4]),
    rate_upper_bound: Float32Array.from([0.000987, 1, 1]),
    flags: Uint8Array.from([3 | 8, 1, 2 | 4]),
  };

  test("round-trips every column in 16 + 9 bytes a unit, little-endian", () => {
    const bytes = encodeLayerMap(map);
    assert.equal(bytes.byteLength, mapByteLength(3));
    assert.equal(bytes.byteLength, 16 + 27);
    assert.deepEqual([...bytes.subarray(0, 4)], [0x52, 0x57, 0x4d, 0x31], "RWM1");
    const back = decodeLayerMap(bytes.buffer.slice(0) as ArrayBuffer);
    assert.equal(back.units, 3);
    assert.equal(back.step, map.step);
    assert.deepEqual([...back.firing_rate], [...map.firing_rate]);
    assert.deepEqual([...back.rate_upper_bound], [...map.rate_upper_bound]);
    assert.deepEqual([...back.flags], [...map.flags]);
  });

  test("refuses what is not a whole layer map", () => {
    const bytes = encodeLayerMap(map);
    assert.throws(() => decodeLayerMap(bytes.buffer.slice(0, 10) as ArrayBuffer), /truncated/);
    assert.throws(
      () => decodeLayerMap(bytes.buffer.slice(0, bytes.byteLength - 1) as ArrayBuffer),
      /needs 43 bytes/,
    );
    const bad = bytes.slice();
    bad[0] = 0;
    assert.throws(() => decodeLayerMap(bad.buffer as ArrayBuffer), /bad magic/);
  });
});
