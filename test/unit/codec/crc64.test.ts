import assert from "node:assert/strict";
import { test } from "node:test";
import { canonicalForm, crc64Avro, fingerprintBytes, fingerprintOf } from "../../../src/codec/index.js";

// Schema, Parsing Canonical Form and fingerprint (as Java's signed long), from
// the Avro project's published schema test vectors (share/test/data/schema-tests.txt).
const VECTORS: [string, string, bigint][] = [
  ['"null"', '"null"', 7195948357588979594n],
  ['{"type":"null"}', '"null"', 7195948357588979594n],
  ['"boolean"', '"boolean"', -6970731678124411036n],
  ['"int"', '"int"', 8247732601305521295n],
  ['"long"', '"long"', -3434872931120570953n],
  ['"float"', '"float"', 5583340709985441680n],
  ['"double"', '"double"', -8181574048448539266n],
  ['"bytes"', '"bytes"', 5746618253357095269n],
  ['"string"', '"string"', -8142146995180207161n],
  ['[ "int"  ]', '["int"]', -5232228896498058493n],
  ['[ "int" , {"type":"boolean"} ]', '["int","boolean"]', 5392556393470105090n],
  [
    '{"fields":[], "type":"record", "name":"foo"}',
    '{"name":"foo","type":"record","fields":[]}',
    -4824392279771201922n,
  ],
  [
    '{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}',
    '{"name":"x.y.foo","type":"record","fields":[]}',
    5916914534497305771n,
  ],
  [
    '{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}',
    '{"name":"a.b.foo","type":"record","fields":[]}',
    -4616218487480524110n,
  ],
  [
    '{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}',
    '{"name":"foo","type":"record","fields":[]}',
    -4824392279771201922n,
  ],
  [
    '{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}',
    '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
    7843277075252814651n,
  ],
  [
    '{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":true},{"order":"descending","name":"f2","doc":"Hello","type":"int"}], "type":"record", "name":"foo"}',
    '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}',
    -4860222112080293046n,
  ],
  [
    '{"type":"enum", "name":"foo", "symbols":["A1"]}',
    '{"name":"foo","type":"enum","symbols":["A1"]}',
    -6342190197741309591n,
  ],
  [
    '{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}',
    '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}',
    -4448647247586288245n,
  ],
  [
    '{"name":"foo","type":"fixed","size":15}',
    '{"name":"foo","type":"fixed","size":15}',
    1756455273707447556n,
  ],
  [
    '{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}',
    '{"name":"x.y.z.foo","type":"fixed","size":32}',
    -3064184465700546786n,
  ],
  ['{ "items":{"type":"null"}, "type":"array"}', '{"type":"array","items":"null"}', -589620603366471059n],
  ['{ "values":"string", "type":"map"}', '{"type":"map","values":"string"}', -8732877298790414990n],
  [
    '{"name":"PigValue","type":"record","fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}',
    '{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
    -1759257747318642341n,
  ],
];

test("CRC-64-AVRO of the specification's canonical forms matches the published fingerprints", () => {
  for (const [, canonical, expected] of VECTORS) {
    assert.equal(BigInt.asIntN(64, crc64Avro(canonical)), expected, canonical);
  }
});

test("canonicalForm reduces each published input schema to its published canonical form", () => {
  for (const [input, canonical, expected] of VECTORS) {
    assert.equal(canonicalForm(JSON.parse(input)), canonical, input);
    assert.equal(BigInt.asIntN(64, fingerprintOf(JSON.parse(input))), expected, input);
  }
});

test("the empty input fingerprints to the algorithm's seed, and bytes equal a string's UTF-8", () => {
  assert.equal(crc64Avro(""), 0xc15d213aa4d7a795n);
  assert.equal(crc64Avro(new TextEncoder().encode('"null"')), crc64Avro('"null"'));
});

test("fingerprintBytes lays the 64 bits out little-endian, as the single-object header carries them", () => {
  const fp = crc64Avro('"null"');
  const bytes = fingerprintBytes(fp);
  assert.equal(bytes.length, 8);
  assert.equal(bytes.readBigUInt64LE(), fp);
  assert.equal(bytes[0], Number(fp & 0xffn));
});
