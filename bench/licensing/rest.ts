/**
 * Licensing through the project's REST service (`server/main.ts`, docs/server.md): a fresh service per
 * run on the benchmark's chains, `licenses` requested at fixed concurrency — one per `POST /v1/licenses`,
 * or `bulkSize` per `POST /v1/licenses/batch`; accept latency per HTTP request and licenses/s until the
 * service reports every license confirmed (its `license_confirmed_total`), checked against the chains
 * afterwards.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Interface } from "ethers";
import { startManaged, waitUntil, type ManagedProcess } from "../../launchers/process.js";
import { request, rpcCall } from "../lib/http.js";
import { percentile } from "../lib/stats.js";
import type { LicensingRun, Progress } from "./chain.js";
import { randomLicensee } from "./chain.js";
import { ACCOUNTS, devKey, type BenchChains } from "./setup.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const SERVER_MAIN = path.join(ROOT, "server/main.ts");

export interface RestOptions {
  licenses: number;
  /** Concurrent HTTP clients (each with one request in flight). */
  concurrency: number;
  /** Licenses per request through the bulk endpoint; undefined = the single endpoint. */
  bulkSize?: number;
  /** The service's `batching.maxSize` (licenses per `issueBatch`). */
  batchSize: number;
  timeoutSeconds: number;
  /** Extra Node options for the service process, e.g. `--cpu-prof` to profile it. */
  serverNodeOptions?: string[];
}

/**
 * Extra Node options for the service from the environment (profiling, not a methodology change), e.g.
 * `BENCH_SERVER_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof-lic"`.
 */
export function serverNodeOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const value = env.BENCH_SERVER_NODE_OPTIONS?.trim();
  return value ? value.split(/\s+/) : undefined;
}

/** CPU seconds (user + system) of `root` and all its descendants, from /proc (0 where /proc is missing). */
export function treeCpuSeconds(root: number, exclude: readonly number[] = []): number {
  let entries: string[];
  try {
    entries = readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  } catch {
    return 0;
  }
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of entries) {
    try {
      const text = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
      // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15
      stats.set(Number(entry), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // exited meanwhile
    }
  }
  const excluded = new Set(exclude);
  const inTree = (pid: number): boolean => {
    for (let p = pid, depth = 0; p > 1 && depth < 64; depth++) {
      if (excluded.has(p)) return false;
      if (p === root) return true;
      p = stats.get(p)?.ppid ?? 0;
    }
    return false;
  };
  let ticks = 0;
  for (const [pid, stat] of stats) if (inTree(pid)) ticks += stat.ticks;
  return ticks / 100; // USER_HZ
}

/** Null when the service can run here, else why not. */
export function restUnavailable(): string | null {
  return existsSync(SERVER_MAIN) ? null : `${path.relative(ROOT, SERVER_MAIN)} does not exist`;
}

/** The service configuration of one run (schema: server/config.ts). */
export function serviceConfig(bench: BenchChains, dbPath: string, apiKey: string, batchSize: number): object {
  return {
    server: { port: 0, rateLimit: { perSecond: 1_000_000, burst: 1_000_000 } },
    database: { path: dbPath },
    chains: bench.chains.map((chain) => ({
      name: `chain-${chain.chainId}`,
      chainId: chain.chainId,
      rpcUrl: chain.rpcUrl,
      contract: chain.address,
      signer: { env: "BENCH_SIGNER_KEY" },
    })),
    products: [{ id: 1, name: "Benchmark" }],
    policy: "round-robin",
    batching: { maxSize: batchSize, maxWaitMs: 100 },
    apiKeys: [
      {
        id: "bench",
        sha256: createHash("sha256").update(apiKey).digest("hex"),
        scopes: ["licenses:write", "licenses:read"],
      },
    ],
  };
}

/** Sum of a Prometheus counter over all its label sets. */
export function counterSum(metrics: string, name: string): number {
  let sum = 0;
  for (const line of metrics.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
    }
  }
  return sum;
}

/** The service's `license_rpc_requests_total` summed over chains, by method (empty if it has none). */
export function rpcByMethod(metrics: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of metrics.split("\n")) {
    if (!line.startsWith("license_rpc_requests_total{")) continue;
    const method = /method="([^"]*)"/.exec(line)?.[1];
    if (method)
      out.set(method, (out.get(method) ?? 0) + (Number(line.slice(line.lastIndexOf(" ") + 1)) || 0));
  }
  return out;
}

async function onChainTotal(bench: BenchChains): Promise<number> {
  const iface = new Interface(bench.artifact.abi);
  const data = iface.encodeFunctionData("nextTokenId");
  const ids = await Promise.all(
    bench.chains.map((c) => rpcCall<string>(c.rpcUrl, "eth_call", [{ to: c.address, data }, "latest"])),
  );
  return ids.reduce((sum, id) => sum + Number(BigInt(id)), 0);
}

export async function runRest(
  bench: BenchChains,
  options: RestOptions,
  progress: Progress,
): Promise<LicensingRun> {
  const workDir = await mkdtemp(path.join(tmpdir(), "lp-bench-server-"));
  const apiKey = randomBytes(16).toString("hex");
  const configFile = path.join(workDir, "server.json");
  await writeFile(
    configFile,
    JSON.stringify(
      serviceConfig(bench, path.join(workDir, "licenses.sqlite"), apiKey, options.batchSize),
      null,
      2,
    ),
  );
  let server: ManagedProcess | undefined;
  let failed = false;
  try {
    server = startManaged({
      name: "license-server",
      command: process.execPath,
      args: [
        ...(options.serverNodeOptions ?? serverNodeOptionsFromEnv() ?? []),
        "--import",
        "tsx",
        SERVER_MAIN,
        "--config",
        configFile,
      ],
      cwd: ROOT,
      env: { ...process.env, BENCH_SIGNER_KEY: devKey(ACCOUNTS.service), LOG_LEVEL: "warn", NO_COLOR: "1" },
      logFile: path.join(workDir, "server.log"),
      graceSeconds: 10,
    });
    const proc = server;
    let port = 0;
    await waitUntil(
      async () => {
        const match = /"ready":true,"port":(\d+)/.exec(proc.tail(200));
        if (match?.[1]) port = Number(match[1]);
        return port > 0;
      },
      { what: "license server", timeoutMs: 60_000, process: proc },
    );
    const base = `http://127.0.0.1:${port}`;
    const metrics = async (): Promise<{ confirmed: number; failed: number }> => {
      const reply = await request(`${base}/metrics`);
      return {
        confirmed: counterSum(reply.body, "license_confirmed_total"),
        failed: counterSum(reply.body, "license_failed_total"),
      };
    };
    const before = await metrics();
    const rpcBefore = rpcByMethod((await request(`${base}/metrics`)).body);
    const chainBefore = await onChainTotal(bench);
    const bulk = options.bulkSize;
    progress(
      `    REST: ${options.licenses} licenses at concurrency ${options.concurrency}` +
        `${bulk ? `, ${bulk} per POST /v1/licenses/batch` : ", one per POST /v1/licenses"} (${base})`,
    );
    const latencies: number[] = [];
    let next = 0;
    const cpu = (): { server: number; client: number; others: number } => {
      const own = process.cpuUsage();
      return {
        server: treeCpuSeconds(proc.pid),
        client: (own.user + own.system) / 1e6,
        others: treeCpuSeconds(process.pid, [proc.pid]),
      };
    };
    const cpuBefore = cpu();
    const started = performance.now();
    // One keep-alive connection per client (node:http; `fetch` cost 0.65 ms of CPU per request here, about
    // as much as the service spent on it, on the same 2 cores).
    const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
    const post = async (path: string, body: unknown, key?: string): Promise<string> => {
      const reply = await request(`${base}${path}`, {
        method: "POST",
        agent,
        headers: {
          authorization: `Bearer ${apiKey}`,
          "content-type": "application/json",
          ...(key ? { "idempotency-key": key } : {}),
        },
        body: JSON.stringify(body),
      });
      if (reply.status !== 202 && reply.status !== 201) {
        throw new Error(`POST ${path}: HTTP ${reply.status} ${reply.body.slice(0, 300)}`);
      }
      return reply.body;
    };
    const worker = async (): Promise<void> => {
      while (next < options.licenses) {
        const count = bulk ? Math.min(bulk, options.licenses - next) : 1;
        next += count;
        const t = performance.now();
        if (bulk) {
          const items = Array.from({ length: count }, () => ({
            productId: 1,
            licensee: randomLicensee(),
            idempotencyKey: randomBytes(12).toString("hex"),
          }));
          const reply = JSON.parse(await post("/v1/licenses/batch", { items })) as { accepted: number };
          if (reply.accepted !== count)
            throw new Error(`POST /v1/licenses/batch: ${reply.accepted} of ${count} accepted`);
        } else {
          await post(
            "/v1/licenses",
            { productId: 1, licensee: randomLicensee() },
            randomBytes(12).toString("hex"),
          );
        }
        latencies.push(performance.now() - t);
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker)).finally(() => agent.destroy());
    const acceptedAt = performance.now();
    progress(
      `    REST: all accepted in ${((acceptedAt - started) / 1000).toFixed(2)} s; waiting for confirmations`,
    );
    let confirmed = 0;
    await waitUntil(
      async () => {
        const now = await metrics();
        confirmed = now.confirmed - before.confirmed;
        if (now.failed > before.failed) throw new Error(`${now.failed - before.failed} licenses failed`);
        return confirmed >= options.licenses;
      },
      {
        what: "REST licenses confirmed",
        timeoutMs: options.timeoutSeconds * 1000,
        intervalMs: 50,
        process: proc,
      },
    );
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = cpu();
    const client = cpuAfter.client - cpuBefore.client;
    progress(
      `    REST: CPU s over ${seconds.toFixed(2)} s wall: service ${(cpuAfter.server - cpuBefore.server).toFixed(2)}, ` +
        `HTTP clients ${client.toFixed(2)}, chains ${(cpuAfter.others - cpuBefore.others - client).toFixed(2)}`,
    );
    const rpcAfter = rpcByMethod((await request(`${base}/metrics`)).body);
    const rpcLine = [...rpcAfter]
      .map(([method, n]) => [method, n - (rpcBefore.get(method) ?? 0)] as const)
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([method, n]) => `${method} ${n} (${((n / options.licenses) * 100).toFixed(2)})`);
    if (rpcLine.length > 0)
      progress(`    REST: service JSON-RPC calls (per 100 licenses): ${rpcLine.join(", ")}`);
    const onChainIssued = (await onChainTotal(bench)) - chainBefore;
    progress(`    REST: ${confirmed} confirmed in ${seconds.toFixed(2)} s (${onChainIssued} found on-chain)`);
    return {
      licenses: options.licenses,
      seconds,
      licensesPerSec: options.licenses / seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      onChainIssued,
      transactions: 0,
    };
  } catch (error) {
    failed = true;
    if (server) progress(`    REST failed; server log tail:\n${server.tail(15)}`);
    throw error;
  } finally {
    await server?.stop();
    if (!failed) await rm(workDir, { recursive: true, force: true });
    else progress(`    server files kept in ${workDir}`);
  }
}
