/** Puts a simulated fleet's snapshots on a topic and computes what the detector must conclude from them. */
import type { Kafka } from "kafkajs";
import { encodeSnapshot } from "../../src/codec/index.js";
import {
  type ActivationSnapshot,
  Detector,
  type DetectorConfig,
  layerKey,
  type UnitTransition,
} from "../../src/core/index.js";
import { generateFleet, resolveScenario, type Scenario } from "../../src/sim/index.js";
import { DEFAULT_EVENT_POLICY, type EventPolicy, selectEvents } from "../../src/sink/event-policy.js";

export function scenarioSnapshots(name: string, overrides: Partial<Scenario> = {}): ActivationSnapshot[] {
  return [...generateFleet(resolveScenario(name, overrides))];
}

export async function produceSnapshots(
  kafka: Kafka,
  topic: string,
  snapshots: readonly ActivationSnapshot[],
): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < snapshots.length; i += 200) {
      const messages = snapshots.slice(i, i + 200).map((s) => ({
        key: layerKey(s.run_id, s.layer),
        value: encodeSnapshot(s),
        timestamp: String(Date.now()),
      }));
      await producer.send({ topic, messages, acks: -1 });
    }
  } finally {
    await producer.disconnect();
  }
}

export interface Reference {
  detector: Detector;
  /** Every transition the detector decided. */
  transitions: UnitTransition[];
  /** The transitions the consumer must write to the events topic under the policy. */
  events: UnitTransition[];
}

/** The offline oracle: the same snapshots through a detector in this process, in the same per-layer order. */
export function referenceDetector(
  snapshots: readonly ActivationSnapshot[],
  config: Partial<DetectorConfig> = {},
  policy: EventPolicy = DEFAULT_EVENT_POLICY,
): Reference {
  const detector = new Detector(config);
  const transitions: UnitTransition[] = [];
  for (const s of snapshots) transitions.push(...detector.apply(s, s.time).transitions);
  return { detector, transitions, events: selectEvents(policy, transitions) };
}
