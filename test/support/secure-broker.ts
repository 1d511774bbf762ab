/**
 * A private local broker with a SASL_SSL listener (SCRAM over TLS) beside its
 * PLAINTEXT one, as managed Kafka services run: the certificates are made here
 * with openssl (a CA, a broker certificate for 127.0.0.1 signed by it, and an
 * unrelated CA that must not be trusted), and the SCRAM users are created by
 * Kafka's own StorageTool when the storage is formatted.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPrivateBroker } from "./broker.js";
import { runFile } from "./child.js";
import { freePorts } from "./ports.js";

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

async function openssl(dir: string, args: string[]): Promise<void> {
  await runFile("openssl", args, { cwd: dir, timeout: 60_000 });
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
  const scram = `name=${SCRAM_USER},password=${SCRAM_PASSWORD}`;
  let secure = "";
  const broker = await startPrivateBroker({
    extraProperties: async (port, controllerPort) => {
      const [securePort] = await freePorts(1, [port, controllerPort]);
      secure = `127.0.0.1:${securePort}`;
      const file = join(dir, "extra.properties");
      writeFileSync(file, listenerProperties(dir, port, controllerPort, securePort!));
      return file;
    },
    formatArgs: `--add-scram 'SCRAM-SHA-256=[${scram}]' --add-scram 'SCRAM-SHA-512=[${scram}]'`,
  });
  return {
    secure,
    plaintext: broker.brokers[0]!,
    caFile: join(dir, "ca.pem"),
    untrustedCaFile: join(dir, "other.pem"),
    async stop() {
      await broker.remove();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** PLAINTEXT (set-up and the readiness probe), CONTROLLER, and SASL_SSL with SCRAM and the broker's keystore. */
function listenerProperties(dir: string, plain: number, controller: number, secure: number): string {
  return [
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
  ].join("\n");
}
