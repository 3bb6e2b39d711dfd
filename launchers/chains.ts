/**
 * Real local EVM chains on demand: N `hardhat node` processes on 127.0.0.1, each with its own
 * chain id and port, ready once they answer `eth_chainId`.
 */
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { LaunchError } from "./errors.js";
import { freePort } from "./ports.js";
import { startManaged, waitUntil, type ManagedProcess } from "./process.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const require = createRequire(import.meta.url);

export interface ChainInfo {
  /** e.g. `chain-31337`. */
  name: string;
  chainId: number;
  port: number;
  rpcUrl: string;
}

export interface ChainSet {
  chains: ChainInfo[];
  /** Pids of the guard processes (each chain node runs under one). */
  pids: number[];
  stop(): Promise<void>;
}

export interface StartChainsOptions {
  /** One chain per id; ids must be distinct. */
  chainIds: readonly number[];
  /** Explicit ports (same length as chainIds); free ports are picked when omitted. */
  ports?: readonly number[];
  /** Interface to bind; loopback unless told otherwise. */
  hostname?: string;
  /** Directory for one log file per node; logs are only kept in memory when omitted. */
  logDir?: string;
  /** How long to wait for each node to answer. */
  readyTimeoutMs?: number;
}

/** Hardhat's CLI entry, so that we start `node <cli> node ...` without npx in between. */
function hardhatCli(): string {
  const pkg = require.resolve("hardhat/package.json");
  return path.join(path.dirname(pkg), "dist/src/cli.js");
}

/** Sends one JSON-RPC request; resolves with its `result`. */
export async function rpc<T = unknown>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(5_000),
  });
  const body = (await response.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new LaunchError("CHAIN_RPC_FAILED", `${method}: ${body.error.message}`);
  return body.result as T;
}

export async function startChains(options: StartChainsOptions): Promise<ChainSet> {
  const { chainIds } = options;
  if (chainIds.length === 0)
    throw new LaunchError("LAUNCH_INVALID_OPTIONS", "startChains: chainIds is empty");
  if (new Set(chainIds).size !== chainIds.length) {
    throw new LaunchError(
      "LAUNCH_INVALID_OPTIONS",
      `startChains: chain ids must be distinct, got ${chainIds.join(", ")}`,
    );
  }
  if (options.ports && options.ports.length !== chainIds.length) {
    throw new LaunchError("LAUNCH_INVALID_OPTIONS", "startChains: ports must have one entry per chain id");
  }
  const hostname = options.hostname ?? "127.0.0.1";
  if (options.logDir) mkdirSync(options.logDir, { recursive: true });
  const cli = hardhatCli();

  const processes: ManagedProcess[] = [];
  const chains: ChainInfo[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(processes.map((p) => p.stop()));
  };

  try {
    for (const [index, chainId] of chainIds.entries()) {
      const port = options.ports?.[index] ?? (await freePort());
      const name = `chain-${chainId}`;
      const proc = startManaged({
        name,
        command: process.execPath,
        args: [cli, "node", "--hostname", hostname, "--port", String(port), "--chain-id", String(chainId)],
        cwd: ROOT,
        env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1" },
        logFile: options.logDir ? path.join(options.logDir, `${name}.log`) : undefined,
        graceSeconds: 5,
      });
      processes.push(proc);
      const host = hostname === "0.0.0.0" ? "127.0.0.1" : hostname;
      chains.push({ name, chainId, port, rpcUrl: `http://${host}:${port}` });
    }
    await Promise.all(
      chains.map((chain, index) =>
        waitUntil(async () => Number(await rpc<string>(chain.rpcUrl, "eth_chainId")) === chain.chainId, {
          what: `${chain.name} at ${chain.rpcUrl}`,
          timeoutMs: options.readyTimeoutMs ?? 60_000,
          intervalMs: 250,
          process: processes[index],
        }),
      ),
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { chains, pids: processes.map((p) => p.pid), stop };
}
