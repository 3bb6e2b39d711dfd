/**
 * A concurrent burst of 500 issue requests over HTTP to the server running as its own process
 * (`server/main.ts`) on the three shared chains (signer: dev account 11, fresh contracts): exactly 500
 * tokens on-chain, no nonce error. Prints throughput (licenses/s confirmed) and accept latency p50/p99.
 */
import { expect } from "chai";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { getChains } from "../fixtures/infra.js";
import { sha256Hex } from "../../server/config.js";
import {
  KEYS,
  deployOnChains,
  devKey,
  mintedCount,
  randomAddress,
  sleep,
  startServer,
  tempDir,
  type Started,
  type TestChain,
} from "./helpers.js";

const SIGNER = devKey(11);
const BURST = Number(process.env.LICENSE_BURST ?? 500);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Sum of a Prometheus series over its label sets (those containing `label` when given). */
function sumOf(metrics: string, name: string, label?: string): number {
  let sum = 0;
  for (const line of metrics.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (label && !line.includes(label)) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

describe("server: concurrent burst", function () {
  this.timeout(240_000);
  let server: Started | undefined;
  let chains: TestChain[];
  let tmp: ReturnType<typeof tempDir>;

  before(async function () {
    const set = await getChains();
    chains = await deployOnChains(set.chains, SIGNER);
    tmp = tempDir();
    const configFile = path.join(tmp.dir, "config.json");
    writeFileSync(
      configFile,
      JSON.stringify({
        database: { path: path.join(tmp.dir, "licenses.sqlite") },
        chains: chains.map((c) => ({ ...c, signer: { env: "BURST_SIGNER" } })),
        products: [{ id: 1, name: "Pro" }],
        batching: { maxSize: 100, maxWaitMs: 50 },
        server: { rateLimit: { perSecond: 100_000, burst: 100_000 } },
        apiKeys: [
          { id: "client", sha256: sha256Hex(KEYS.client), scopes: ["licenses:write", "licenses:read"] },
        ],
      }),
    );
    server = await startServer(configFile, { BURST_SIGNER: SIGNER });
  });

  after(async function () {
    if (server && server.child.exitCode === null) {
      const exited = new Promise((resolve) => server!.child.once("exit", resolve));
      server.child.kill("SIGTERM");
      await exited;
    }
    tmp?.cleanup();
  });

  it(`issues ${BURST} concurrent requests exactly once each, on-chain, without nonce errors`, async function () {
    const base = server!.base;
    const started = performance.now();
    const latencies: number[] = [];
    const responses = await Promise.all(
      Array.from({ length: BURST }, async (_, i) => {
        const t0 = performance.now();
        const res = await fetch(`${base}/v1/licenses`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${KEYS.client}`,
            "idempotency-key": `burst-${i}`,
          },
          body: JSON.stringify({ productId: 1, licensee: randomAddress(), durationSeconds: 86_400 }),
        });
        const body = (await res.json()) as { id: string };
        latencies.push(performance.now() - t0);
        return { status: res.status, body };
      }),
    );
    const acceptedAt = performance.now();
    expect(responses.map((r) => r.status).filter((s) => s !== 202)).to.deep.equal([]);
    expect(new Set(responses.map((r) => r.body.id)).size).to.equal(BURST);

    // wait until the service reports every license issued
    const deadline = Date.now() + 180_000;
    let issued = 0;
    while (Date.now() < deadline) {
      const res = await fetch(`${base}/v1/chains`, { headers: { authorization: `Bearer ${KEYS.client}` } });
      const body = (await res.json()) as { items: { issued: number }[] };
      issued = body.items.reduce((sum, c) => sum + c.issued, 0);
      if (issued === BURST) break;
      await sleep(50);
    }
    const done = performance.now();
    expect(issued).to.equal(BURST);

    let onChain = 0;
    for (const c of chains) onChain += await mintedCount(c.rpcUrl, c.contract);
    expect(onChain).to.equal(BURST);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).to.match(/license_confirmed_total\{chain="chain-31337"\} [1-9]/);
    expect(metrics).to.not.match(/license_tx_errors_total\{[^}]*\} [1-9]/);
    expect(metrics).to.not.match(/license_failed_total\{[^}]*\} [1-9]/);
    // JSON-RPC calls of the hot path (automine: a receipt exists as soon as the send returned): one send
    // and one receipt read per batch, the head only from the probe's block, no fee data beyond the cache
    const rpc = (method: string): number =>
      sumOf(metrics, "license_rpc_requests_total", `method="${method}"`);
    const batches = sumOf(metrics, "license_batch_size_count");
    expect(batches).to.be.greaterThan(0);
    expect(rpc("eth_sendRawTransaction")).to.equal(batches);
    expect(rpc("eth_getTransactionReceipt")).to.equal(batches);
    expect(rpc("eth_blockNumber")).to.equal(0);
    expect(rpc("eth_getTransactionByHash")).to.equal(0);
    expect(rpc("eth_getTransactionCount")).to.be.at.most(chains.length); // once per chain, at start

    latencies.sort((a, b) => a - b);
    const seconds = (done - started) / 1000;
    console.log(
      `      burst ${BURST}: accepted in ${((acceptedAt - started) / 1000).toFixed(2)} s, all confirmed in ${seconds.toFixed(2)} s ` +
        `(${(BURST / seconds).toFixed(0)} licenses/s); accept latency p50 ${percentile(latencies, 50).toFixed(0)} ms, ` +
        `p99 ${percentile(latencies, 99).toFixed(0)} ms`,
    );
  });
});
