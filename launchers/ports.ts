/**
 * The one port allocator of the platform: free TCP ports on 127.0.0.1, never the same port twice from
 * one process (a port handed out but not yet bound by its user looks free to the OS again).
 */
import { createServer, type Server } from "node:net";
import { LaunchError } from "./errors.js";

/** Ports handed out by this process, so two quick calls never return the same one. */
const handedOut = new Set<number>();

function listening(host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * Reserves `count` distinct free ports (all listening at once, so the OS cannot hand out one twice,
 * then released), none handed out before by this process.
 */
export async function freePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const ports: number[] = [];
  for (let attempt = 0; ports.length < count; attempt++) {
    if (attempt >= 20)
      throw new LaunchError("NO_FREE_PORT", `freePorts: no ${count} fresh free ports on ${host}`);
    const servers = await Promise.all(Array.from({ length: count - ports.length }, () => listening(host)));
    for (const server of servers) {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      if (port > 0 && !handedOut.has(port)) {
        handedOut.add(port);
        ports.push(port);
      }
    }
    await Promise.all(servers.map(close));
  }
  return ports;
}

/** A TCP port that is free on `host` right now and not handed out before by this process. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return (await freePorts(1, host))[0]!;
}
