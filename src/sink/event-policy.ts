/**
 * Which unit transitions become events on the events topic (the `events`
 * setting). The detector decides every transition and the metrics count every
 * one (`reluwatch_unit_transitions_total{from,to}`); the topic carries what a
 * person or a pipeline acts on. A new layer of 16k units yields 16k first
 * verdicts at once, and units near silent_rate move between ACTIVE and
 * MOSTLY_SILENT: neither asks anything of anyone, so by default they stay out.
 *
 *   policy  | UNKNOWN→ACTIVE | ACTIVE→MOSTLY_SILENT | UNKNOWN→DEAD (born dead) | ACTIVE→DEAD | DEAD→ACTIVE
 *   deaths  |       -        |          -           |            ✓             |      ✓      |      ✓
 *   all     |       ✓        |          ✓           |            ✓             |      ✓      |      ✓
 */
import type { UnitState, UnitTransition } from "../core/snapshot.js";

export const EVENT_POLICIES = ["deaths", "all"] as const;
export type EventPolicy = (typeof EVENT_POLICIES)[number];
export const DEFAULT_EVENT_POLICY: EventPolicy = "deaths";

/** Whether a transition from `from` to `to` is an event under `policy`: with "deaths", only moves into or out of DEAD. */
export function emitsEvent(policy: EventPolicy, from: UnitState, to: UnitState): boolean {
  return policy === "all" || from === "DEAD" || to === "DEAD";
}

/** The transitions that go to the events topic under `policy`, in their order. */
export function selectEvents(policy: EventPolicy, transitions: readonly UnitTransition[]): UnitTransition[] {
  return transitions.filter((t) => emitsEvent(policy, t.from, t.to));
}
