/**
 * Expected broker conditions, told apart from bugs. kafkajs and
 * @platformatic/kafka report a broker that is down, a topic that does not
 * exist yet or refused credentials as errors whose cause chain (or, for
 * @platformatic/kafka, the errors it aggregates) holds the telling part (a
 * socket code, a protocol error type); this module turns them into a `KafkaError` with a stable code
 * and a one-line message that names what to fix. The codes are listed in
 * docs/errors.md.
 */

export const KAFKA_ERROR_CODES = [
  "BROKER_UNREACHABLE",
  "TOPIC_NOT_FOUND",
  "TOPIC_NOT_READY",
  "TOPIC_INVALID",
  "KAFKA_AUTH_FAILED",
  "KAFKA_NOT_AUTHORIZED",
  "KAFKA_TLS_FAILED",
  "KAFKA_ERROR",
] as const;
export type KafkaErrorCode = (typeof KAFKA_ERROR_CODES)[number];

/**
 * Conditions that go away by themselves once someone else acts (the broker is
 * started, the trainer creates the topic): a service waits them out; every
 * other code needs the operator to change something.
 */
const WAITABLE: ReadonlySet<KafkaErrorCode> = new Set([
  "BROKER_UNREACHABLE",
  "TOPIC_NOT_FOUND",
  "TOPIC_NOT_READY",
]);

export interface KafkaErrorContext {
  brokers: readonly string[];
  topic?: string;
  group?: string;
}

export class KafkaError extends Error {
  constructor(
    readonly code: KafkaErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "KafkaError";
  }

  /** True when waiting (and trying again) can end the condition without anyone changing a setting. */
  get waitable(): boolean {
    return WAITABLE.has(this.code);
  }
}

/** Socket codes of a peer that is not there (yet): nothing listens, no route, name not resolved. */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
]);

/** kafkajs error names that mean the broker did not answer. */
const UNREACHABLE_NAMES = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
  "KafkaJSBrokerNotFound",
  "KafkaJSNoBrokerAvailableError",
  "KafkaJSGroupCoordinatorNotFound",
]);

const NOT_AUTHORIZED_TYPES = new Set([
  "TOPIC_AUTHORIZATION_FAILED",
  "GROUP_AUTHORIZATION_FAILED",
  "CLUSTER_AUTHORIZATION_FAILED",
  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
]);

const AUTH_TYPES = new Set([
  "SASL_AUTHENTICATION_FAILED",
  "UNSUPPORTED_SASL_MECHANISM",
  "ILLEGAL_SASL_STATE",
]);

interface ErrorLike {
  name?: string;
  message?: string;
  code?: unknown;
  type?: unknown;
  /** @platformatic/kafka's name for a protocol error type. */
  apiId?: unknown;
  cause?: unknown;
  originalError?: unknown;
  /** @platformatic/kafka's MultipleErrors (an AggregateError): the errors of each attempt or broker. */
  errors?: unknown;
}

/** The error and every error it wraps or aggregates, outermost first, each attempt's last cause last. */
function chain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  const visit = (e: unknown) => {
    while (e && typeof e === "object" && out.length < 30 && !out.includes(e as ErrorLike)) {
      const x = e as ErrorLike;
      out.push(x);
      if (Array.isArray(x.errors)) for (const inner of x.errors) visit(inner);
      e = x.cause ?? x.originalError;
    }
  };
  visit(err);
  return out;
}

/** @platformatic/kafka error codes that mean the broker did not answer. */
const PLATFORMATIC_UNREACHABLE = new Set(["PLT_KFK_NETWORK", "PLT_KFK_TIMEOUT"]);

function isKafkaClient(e: ErrorLike): boolean {
  return (
    (typeof e.name === "string" && e.name.startsWith("KafkaJS")) ||
    (typeof e.code === "string" && e.code.startsWith("PLT_KFK_"))
  );
}

/**
 * What a loop that waits out failures reports: the broker condition behind
 * `err`, or KAFKA_ERROR with its message when it is none that kafkaErrorOf knows.
 */
export function kafkaConditionOf(err: unknown, ctx: KafkaErrorContext): KafkaError {
  return kafkaErrorOf(err, ctx) ?? new KafkaError("KAFKA_ERROR", String(err), { cause: err });
}

/**
 * The expected broker condition behind `err`, or undefined when `err` did not
 * come from Kafka (a bug, shown as such). Any other kafkajs error becomes
 * `KAFKA_ERROR` with kafkajs's own message, still on one line.
 */
export function kafkaErrorOf(err: unknown, ctx: KafkaErrorContext): KafkaError | undefined {
  if (err instanceof KafkaError) return err;
  const errors = chain(err);
  if (!errors.some(isKafkaClient)) return undefined;
  const brokers =
    ctx.brokers.join(",") ||
    errors.map((e) => (e as { broker?: unknown }).broker).find((b) => typeof b === "string") ||
    "the configured brokers";
  // Without a topic in context the error may concern any topic the command uses (a service writes events too).
  const topic = ctx.topic ? `topic ${ctx.topic}` : "a topic";
  const topicFlags = ctx.topic ? "--topic" : "--topic, --events-topic and --dead-letter-topic";
  const make = (code: KafkaErrorCode, message: string) => new KafkaError(code, message, { cause: err });
  const innermost = errors.at(-1)!;
  const detail = oneLine(innermost.message ?? String(innermost));

  for (const e of errors) {
    const type = typeof e.type === "string" ? e.type : typeof e.apiId === "string" ? e.apiId : undefined;
    const code = typeof e.code === "string" ? e.code : undefined;
    if (
      e.name === "KafkaJSSASLAuthenticationError" ||
      code === "PLT_KFK_AUTHENTICATION" ||
      (type && AUTH_TYPES.has(type))
    )
      return make(
        "KAFKA_AUTH_FAILED",
        `Kafka at ${brokers} refused the credentials (${detail}); check --sasl-mechanism, --sasl-username and --sasl-password`,
      );
    if (type && NOT_AUTHORIZED_TYPES.has(type)) {
      const what = type.startsWith("GROUP") ? `consumer group ${ctx.group ?? ""}`.trim() : topic;
      return make(
        "KAFKA_NOT_AUTHORIZED",
        `Kafka at ${brokers} denies access to ${what} (${type}); grant the client's principal the ACLs listed in docs/deploy.md`,
      );
    }
    if (type === "UNKNOWN_TOPIC_OR_PARTITION")
      return make(
        "TOPIC_NOT_FOUND",
        `${topic} does not exist on ${brokers}; create it (or let the trainer create it) or check ${topicFlags}`,
      );
    if (type === "LEADER_NOT_AVAILABLE" || type === "NOT_LEADER_FOR_PARTITION")
      return make("TOPIC_NOT_READY", `${topic} on ${brokers} has no partition leader yet (${type})`);
    if (type === "INVALID_TOPIC_EXCEPTION")
      return make(
        "TOPIC_INVALID",
        `Kafka at ${brokers} refuses the name of ${topic} (${type}); check ${topicFlags}: letters, digits, '.', '_' and '-' only`,
      );
    if (code && /CERT|SSL|TLS/.test(code))
      return make(
        "KAFKA_TLS_FAILED",
        `TLS with Kafka at ${brokers} failed (${code}); check --ssl-ca-file, --ssl-cert-file and --ssl-key-file`,
      );
  }
  for (const e of errors) {
    const code = typeof e.code === "string" ? e.code : undefined;
    if ((code && UNREACHABLE_CODES.has(code)) || (e.name && UNREACHABLE_NAMES.has(e.name))) {
      return make(
        "BROKER_UNREACHABLE",
        `cannot reach Kafka at ${brokers} (${code ?? detail}); check --brokers and that the broker is running`,
      );
    }
  }
  // @platformatic/kafka's network errors do not always keep the socket's code (a timeout has none).
  const network = errors.find((e) => typeof e.code === "string" && PLATFORMATIC_UNREACHABLE.has(e.code));
  if (network)
    return make(
      "BROKER_UNREACHABLE",
      `cannot reach Kafka at ${brokers} (${oneLine(network.message ?? "no answer")}); check --brokers and that the broker is running`,
    );
  return make("KAFKA_ERROR", `Kafka at ${brokers}: ${detail}`);
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}
