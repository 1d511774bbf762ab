/**
 * A Fetcher whose fetches run in a worker thread (platformatic-fetch-worker.ts).
 * On the calling thread a fetch costs as much CPU as decoding and counting
 * its snapshots (the client parses the response and inflates gzip
 * synchronously), so one thread can at best alternate the two; with the
 * fetches in a worker, the next batches are fetched while the last are
 * counted, on a second core when there is one.
 *
 * The thread starts on open() (the source opens it as it joins the group), or
 * with the first fetch. If it fails or exits, the fetches in
 * flight fail as Kafka errors (the source waits and fetches again) and the
 * next fetch starts a new thread.
 */
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { KafkaError } from "./kafka-errors.js";
import type { PlatformaticConnection } from "./platformatic-client.js";
import {
  type FetchedPartition,
  type Fetcher,
  FetchFailure,
  type FetchRequest,
  type PackedFailure,
  type PackedFetch,
  unpackFailure,
  unpackFetched,
} from "./platformatic-fetch.js";

/** What the worker needs to reach the brokers; structured-cloneable (no callbacks). */
export interface FetchThreadData {
  connection: PlatformaticConnection;
  topic: string;
  group: string;
}

export type ToFetchThread = { kind: "fetch"; id: number; request: FetchRequest } | { kind: "close" };
export type FromFetchThread = { id: number; fetched: PackedFetch } | { id: number; failure: PackedFailure };

/** How long close() lets the thread close its connections before it is terminated. */
const CLOSE_GRACE_MS = 5_000;

export class ThreadFetcher implements Fetcher {
  private worker: Worker | undefined;
  private readonly pending = new Map<
    number,
    { resolve: (fetched: FetchedPartition[]) => void; reject: (failure: FetchFailure) => void }
  >();
  private nextId = 0;
  private closed = false;

  constructor(private readonly data: FetchThreadData) {}

  open(): void {
    if (!this.closed && !this.worker) this.startThread();
  }

  fetch(request: FetchRequest): Promise<FetchedPartition[]> {
    if (this.closed) return Promise.reject(failure("the fetch thread is closed"));
    const worker = this.worker ?? this.startThread();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ kind: "fetch", id, request } satisfies ToFetchThread);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (!worker) return;
    const exited = once(worker, "exit");
    worker.postMessage({ kind: "close" } satisfies ToFetchThread);
    const grace = new AbortController();
    await Promise.race([
      exited,
      sleep(CLOSE_GRACE_MS, undefined, { signal: grace.signal }).then(
        () => worker.terminate(),
        () => {},
      ),
    ]);
    grace.abort();
  }

  private startThread(): Worker {
    const worker = new Worker(new URL("./platformatic-fetch-worker.js", import.meta.url), {
      workerData: this.data,
    });
    worker.on("message", (message: FromFetchThread) => {
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      if ("fetched" in message) waiting.resolve(unpackFetched(message.fetched, this.data.topic));
      else waiting.reject(unpackFailure(message.failure));
    });
    const lost = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      const waiting = [...this.pending.values()];
      this.pending.clear();
      for (const { reject } of waiting) reject(failure(why));
    };
    worker.on("error", (err) => lost(`the fetch thread failed: ${err.message}`));
    worker.on("exit", (code) => lost(`the fetch thread exited with code ${code}`));
    this.worker = worker;
    return worker;
  }
}

function failure(message: string): FetchFailure {
  return new FetchFailure(new KafkaError("KAFKA_ERROR", message), new Map());
}
