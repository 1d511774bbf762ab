/** UnitTransition ⇄ single-object-encoded Avro, for the consumer's events topic. */
import type avro from "avsc";
import type { UnitState, UnitTransition } from "../core/snapshot.js";
import { CodecError } from "./errors.js";
import { type AvroSchema, transitionSchema } from "./schemas.js";
import { SingleObjectType } from "./single-object.js";

const STATES: readonly UnitState[] = ["UNKNOWN", "ACTIVE", "MOSTLY_SILENT", "DEAD"];

const transitionType = new SingleObjectType(transitionSchema);

export const transitionFingerprint: bigint = transitionType.fingerprint;

/** Throws the first violation of the transition's contract as a CodecError. */
export function validateTransition(t: UnitTransition): UnitTransition {
  if (!t.run_id) throw new CodecError("EMPTY_NAME", "must not be empty", "run_id");
  if (!t.layer) throw new CodecError("EMPTY_NAME", "must not be empty", "layer");
  for (const field of ["unit", "step", "time", "fires", "samples"] as const) {
    const v = t[field];
    if (!Number.isSafeInteger(v)) throw new CodecError("MALFORMED", `must be an integer, got ${v}`, field);
    if (v < 0) throw new CodecError("NEGATIVE", `must be >= 0, got ${v}`, field);
  }
  if (t.fires > t.samples) {
    throw new CodecError("FIRES_EXCEED_SAMPLES", `${t.fires} fires in ${t.samples} samples`, "fires");
  }
  for (const field of ["from", "to"] as const) {
    if (!STATES.includes(t[field])) {
      throw new CodecError("MALFORMED", `${String(t[field])} is not one of ${STATES.join(", ")}`, field);
    }
  }
  if (t.last_fire_step !== null && !(Number.isSafeInteger(t.last_fire_step) && t.last_fire_step >= 0)) {
    throw new CodecError("MALFORMED", `must be null or a step, got ${t.last_fire_step}`, "last_fire_step");
  }
  return t;
}

export function encodeTransition(t: UnitTransition): Buffer {
  validateTransition(t);
  return transitionType.encode(t);
}

export function decodeTransition(buf: Uint8Array): UnitTransition {
  const rec = transitionType.decode(buf) as UnitTransition;
  return validateTransition({ ...rec });
}

export function registerTransitionWriterSchema(schema: AvroSchema | avro.Type): bigint {
  return transitionType.addWriterSchema(schema);
}
