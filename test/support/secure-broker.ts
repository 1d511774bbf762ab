/**
 * A private local broker with a SASL_SSL listener (SCRAM over TLS) beside its
 * PLAINTEXT one, as managed Kafka services run: the certificates are made here
 * with openssl (a CA, a broker certificate for 127.0.0.1 signed by it, and an
 * unrelated CA that must not be trusted), and the SCRAM users are created by
 * Kafka's own StorageTool when the storage is formatted.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { packageRoot } from "../../src/paths.js";

const run = promisify(execFile);

export const SCRAM_USER = "reluwatch";
export const SCRAM_PASSWORD = "scram-secret-for-tests";

export interface SecureBroker {
  /** The SASL_SSL bootstrap address. */
  secure: string;
  /** The PLAINTEXT bootstrap address of the same broker, for test set-up only. */
  plaintext: string;
  /** PEM of the CA that signed the broker's certificate. */
  caFile: string;
  /** PEM of a CA that signed nothing the broker presents. */
  untrustedCaFile: string;
  stop(): Promise<void>;
}

/** Ports nothing listens on now: each is bound once by the OS and released. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import("node:net").Server>((resolve, reject) => {
          const server = createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as import("node:net").AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await run("openssl", args, { cwd: dir, timeout: 60_000 });
}

async function makeCertificates(dir: string): Promise<void> {
  const days = ["-days", "2"];
  await openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    ...days,
    "-subj",
    "/CN=reluwatch test CA",
  ]);
  await openssl(dir, [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "broker.key",
    "-out",
    "broker.csr",
    "-subj",
    "/CN=localhost",
  ]);
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    "broker.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "broker.pem",
    ...days,
    "-extfile",
    "san.ext",
  ]);
  await openssl(dir, [
    "pkcs12",
    "-export",
    "-in",
    "broker.pem",
    "-inkey",
    "broker.key",
    "-certfile",
    "ca.pem",
    "-out",
    "broker.p12",
    "-passout",
    "pass:changeit",
    "-name",
    "broker",
  ]);
  await openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "other.key",
    "-out",
    "other.pem",
    ...days,
    "-subj",
    "/CN=some other CA",
  ]);
}

export async function startSecureBroker(): Promise<SecureBroker> {
  const dir = mkdtempSync(join(tmpdir(), "reluwatch-secure-broker-"));
  await makeCertificates(dir);
  const [plain, controller, secure] = (await freePorts(3)) as [number, number, number];
  const scram = `name=${SCRAM_USER},password=${SCRAM_PASSWORD}`;
  writeFileSync(
    join(dir, "extra.properties"),
    [
      `listeners=PLAINTEXT://127.0.0.1:${plain},CONTROLLER://127.0.0.1:${controller},SASL_SSL://127.0.0.1:${secure}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${plain},SASL_SSL://127.0.0.1:${secure}`,
      "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
      "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
      ...["scram-sha-256", "scram-sha-512"].map(
        (m) =>
          `listener.name.sasl_ssl.${m}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
      ),
      "listener.name.sasl_ssl.ssl.keystore.type=PKCS12",
      `listener.name.sasl_ssl.ssl.keystore.location=${join(dir, "broker.p12")}`,
      "listener.name.sasl_ssl.ssl.keystore.password=changeit",
      "listener.name.sasl_ssl.ssl.key.password=changeit",
      "",
    ].join("\n"),
  );
  const env = {
    ...process.env,
    KAFKA_PORT: String(plain),
    KAFKA_CONTROLLER_PORT: String(controller),
    KAFKA_STATE_DIR: join(dir, "state"),
    KAFKA_EXTRA_PROPERTIES: join(dir, "extra.properties"),
    KAFKA_FORMAT_ARGS: `--add-scram 'SCRAM-SHA-256=[${scram}]' --add-scram 'SCRAM-SHA-512=[${scram}]'`,
  };
  const kafkaSh = join(packageRoot, "deploy/kafka-local/kafka.sh");
  try {
    await run(kafkaSh, ["up"], { env, timeout: 600_000 });
  } catch (err) {
    const log = (() => {
      try {
        return readFileSync(join(dir, "state", "broker.log"), "utf8").slice(-4000);
      } catch {
        return "(no broker log)";
      }
    })();
    throw new Error(`the SASL_SSL broker did not start: ${(err as Error).message}\n${log}`);
  }
  return {
    secure: `127.0.0.1:${secure}`,
    plaintext: `127.0.0.1:${plain}`,
    caFile: join(dir, "ca.pem"),
    untrustedCaFile: join(dir, "other.pem"),
    async stop() {
      await run(kafkaSh, ["down"], { env, timeout: 120_000 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
