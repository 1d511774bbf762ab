/**
 * The contract's Avro types, parsed once from schemas/*.avsc, with their
 * Parsing Canonical Forms and CRC-64-AVRO fingerprints.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import avro from "avsc";
import { schemasDir } from "../paths.js";
import { crc64Avro } from "./crc64.js";

export type AvroSchema = avro.Schema;

export function readSchemaFile(name: string): AvroSchema {
  return JSON.parse(readFileSync(join(schemasDir, name), "utf8")) as AvroSchema;
}

/** Parses a schema the way every reluwatch type is parsed (unions of records stay wrapped). */
export function parseType(schema: AvroSchema | avro.Type): avro.Type {
  return avro.Type.isType(schema)
    ? (schema as avro.Type)
    : avro.Type.forSchema(schema, { wrapUnions: "auto" });
}

/**
 * Parsing Canonical Form: full names, only the attributes that affect the
 * binary encoding (no doc, default, aliases or logicalType), fixed key order.
 * avsc's attribute-free schema export produces exactly this form; the unit
 * tests hold it to the specification's canonical-form vectors.
 */
export function canonicalForm(schema: AvroSchema | avro.Type): string {
  return JSON.stringify(parseType(schema).schema());
}

/** CRC-64-AVRO fingerprint of a schema's canonical form. */
export function fingerprintOf(schema: AvroSchema | avro.Type): bigint {
  return crc64Avro(canonicalForm(schema));
}

export const snapshotSchema: AvroSchema = readSchemaFile("ActivationSnapshot.avsc");
/**
 * Earlier shipped versions of ActivationSnapshot, oldest first. Their writers
 * are still in the field, so every reader of the current schema knows them.
 */
export const previousSnapshotSchemas: readonly AvroSchema[] = [
  readSchemaFile("previous/ActivationSnapshot.v1.avsc"),
];
export const transitionSchema: AvroSchema = readSchemaFile("UnitTransition.avsc");
