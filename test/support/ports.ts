/**
 * Free TCP ports for the processes a test starts and has to tell a port (Kafka,
 * Prometheus, Alertmanager): several checkouts may test on one machine at once,
 * so no test uses a fixed port.
 *
 * Why not simply the port the kernel hands out for port 0: those come from the
 * ephemeral range, the same range outgoing connections take their local port
 * from. A broker a test stops and restarts, or a server polled before it
 * listens, could then find its port held by a client socket; on loopback a
 * client dialling a free ephemeral port can even connect to itself. Below that
 * range a port is only ever taken by an explicit bind, which the check here
 * sees. Servers a test binds itself in-process still listen on port 0.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";

/** Ports below this are left to the fixed defaults of services (9092, 9464, ...). */
const LOWEST = 20_000;
const ATTEMPTS = 500;

/** The first port of the kernel's ephemeral range (32768 on Linux unless tuned). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > LOWEST + 1000) return low;
  } catch {
    // not Linux, or not readable: assume the default
  }
  return 32_768;
}

function bind(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(undefined));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => resolve(server));
  });
}

/**
 * `count` distinct ports on 127.0.0.1, each free when checked, drawn at random
 * between 20000 and the ephemeral range so that two runs rarely even try the
 * same one. All are held until all are found, so none is handed out twice.
 */
export async function freePorts(count: number, exclude: readonly number[] = []): Promise<number[]> {
  const high = ephemeralLow();
  const held: Server[] = [];
  try {
    for (let attempt = 0; held.length < count; attempt++) {
      if (attempt >= ATTEMPTS) {
        throw new Error(
          `found only ${held.length} of ${count} free ports in ${LOWEST}-${high - 1} on 127.0.0.1`,
        );
      }
      const candidate = LOWEST + Math.floor(Math.random() * (high - LOWEST));
      if (exclude.includes(candidate)) continue;
      const server = await bind(candidate);
      if (server) held.push(server);
    }
    return held.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** One free port (see freePorts). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}
