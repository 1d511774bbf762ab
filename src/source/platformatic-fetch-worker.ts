/**
 * The worker thread of platformatic-fetch-thread.ts: a consumer that never
 * joins the group, used only to fetch. The client parses each response and
 * inflates its batches here, off the thread that decodes and counts; the
 * records go back packed (packResponse), the inflated batches moved, not copied.
 */
import { parentPort, workerData } from "node:worker_threads";
import { ConnectionPool, Consumer } from "@platformatic/kafka";
import { FETCH_LIMITS } from "./platformatic-client.js";
import { fetchFailureOf, fetchResponse, packFailure, packResponse } from "./platformatic-fetch.js";
import type { FetchThreadData, FromFetchThread, ToFetchThread } from "./platformatic-fetch-thread.js";

const port = parentPort;
if (!port) throw new Error("platformatic-fetch-worker runs as a worker thread only");
const { connection, topic, group } = workerData as FetchThreadData;
const context = { brokers: connection.bootstrapBrokers, topic, group };

const consumer = new Consumer({
  ...connection,
  groupId: group,
  autocommit: false,
  autocreateTopics: false,
  ...FETCH_LIMITS,
});
consumer.topics.track(topic);
// Metadata requests go over the consumer's connections and so never queue behind a long poll.
const pool = new ConnectionPool(connection.clientId, {
  ...(connection.tls ? { tls: connection.tls } : {}),
  ...(connection.sasl ? { sasl: connection.sasl } : {}),
});

const post = (message: FromFetchThread, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

port.on("message", (message: ToFetchThread) => {
  if (message.kind === "close") {
    void Promise.allSettled([pool.close(), consumer.close()]).then(() => port.close());
    return;
  }
  const { id, request } = message;
  fetchResponse(consumer, request, { context, pool }).then(
    (response) => {
      const { packed, transfer } = packResponse(response, request);
      post({ id, fetched: packed }, transfer);
    },
    (err: unknown) => post({ id, failure: packFailure(fetchFailureOf(err, context)) }),
  );
});
