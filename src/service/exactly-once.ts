/**
 * `processing_guarantee: exactly_once`: one commit of the stream task as one
 * Kafka transaction. The events and dead letters (as KafkaSinks would write
 * them), the state-topic chunks due at that commit (each to the state
 * partition of its input partition) and the group's offsets go into one
 * transaction, so a reader with isolation.level=read_committed sees all of a
 * commit or none of it.
 */
import { changelogSends } from "../sink/changelog-writer.js";
import type { KafkaSinks } from "../sink/kafka-sinks.js";
import type { TransactionalProducer } from "../sink/transactional-producer.js";
import type { CommitContent, TransactionalCommitter } from "./stream-task.js";

export interface ExactlyOnceOptions {
  group: string;
  /** The snapshot topic, whose offsets are committed. */
  topic: string;
  stateTopic: string;
}

export class ExactlyOnceCommitter implements TransactionalCommitter {
  constructor(
    private readonly producer: TransactionalProducer,
    private readonly sinks: Pick<KafkaSinks, "transactionalSends">,
    private readonly options: ExactlyOnceOptions,
  ) {}

  commit(content: CommitContent): Promise<void> {
    const sends = [
      ...this.sinks.transactionalSends(content.transitions, content.deadLetters),
      // State after the events: the same order as at_least_once, though the transaction makes it moot.
      ...content.state.flatMap((s) => changelogSends(this.options.stateTopic, s.partition, s.records)),
    ];
    return this.producer.commit({
      sends,
      offsets: {
        group: this.options.group,
        topic: this.options.topic,
        partitions: content.offsets.map((o) => ({ partition: o.partition, offset: o.offset.toString() })),
      },
    });
  }
}
