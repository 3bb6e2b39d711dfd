/**
 * Crash recovery: the server (`server/main.ts`, a separate process) is killed with SIGKILL while a
 * burst is being accepted and issued in batches, then restarted on the same database: every request
 * whose key the client sent (retried after the restart) is issued exactly once, counted on-chain.
 * Signer: dev account 13, fresh contracts on the three shared chains, read from a deployments file.
 */
import { expect } from "chai";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { sha256Hex } from "../../server/config.js";
import {
  KEYS,
  childServiceSetup,
  devKey,
  mintedCount,
  randomAddress,
  sleep,
  startServer,
  type ChildServiceSetup,
  type TestChain,
} from "./helpers.js";

const SIGNER = devKey(13);
const TOTAL = 300;

async function post(base: string, key: string, licensee: string): Promise<{ status: number; id?: string }> {
  try {
    const res = await fetch(`${base}/v1/licenses`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${KEYS.client}`,
        "idempotency-key": key,
      },
      body: JSON.stringify({ productId: 1, licensee }),
    });
    const body = (await res.json()) as { id?: string };
    return { status: res.status, ...(body.id ? { id: body.id } : {}) };
  } catch {
    return { status: 0 };
  }
}

describe("server: crash recovery", function () {
  this.timeout(240_000);
  let chains: TestChain[];
  let tmp: ChildServiceSetup["tmp"];
  let configFile: string;
  const children: ChildProcessWithoutNullStreams[] = [];
  const env: NodeJS.ProcessEnv = { CRASH_TEST_SIGNER: SIGNER };

  before(async function () {
    ({ tmp, chains, configFile } = await childServiceSetup(SIGNER, "CRASH_TEST_SIGNER", {
      products: [{ id: 1, name: "Pro" }],
      apiKeys: [
        { id: "client", sha256: sha256Hex(KEYS.client), scopes: ["licenses:write", "licenses:read"] },
        { id: "admin", sha256: sha256Hex(KEYS.admin), scopes: ["admin"] },
      ],
    }));
  });

  after(function () {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    tmp?.cleanup();
  });

  it("SIGKILL during batches, restart: every request issued exactly once on-chain", async function () {
    const first = await startServer(configFile, env);
    children.push(first.child);
    const requests = Array.from({ length: TOTAL }, (_, i) => ({
      key: `crash-${i}`,
      licensee: randomAddress(),
    }));

    // fire everything; kill once some licenses are confirmed on-chain and requests are still coming in
    const inflight = requests.map((r) => post(first.base, r.key, r.licensee));
    const killDeadline = Date.now() + 60_000;
    let mintedBeforeKill = 0;
    while (Date.now() < killDeadline) {
      mintedBeforeKill = 0;
      for (const c of chains) mintedBeforeKill += await mintedCount(c.rpcUrl, c.contract);
      if (mintedBeforeKill >= 20) break;
      await sleep(20);
    }
    first.child.kill("SIGKILL");
    const results = await Promise.all(inflight);
    const acceptedBeforeKill = results.filter((r) => r.status === 202).length;
    expect(mintedBeforeKill).to.be.greaterThan(0);
    expect(mintedBeforeKill, "the kill should come before everything was issued").to.be.lessThan(TOTAL);

    const second = await startServer(configFile, env);
    children.push(second.child);
    // the client retries every request with its key (the accepted ones come back as the same license)
    const retried = await Promise.all(requests.map((r) => post(second.base, r.key, r.licensee)));
    expect(retried.every((r) => r.status === 202 || r.status === 201)).to.equal(true);
    for (const [i, r] of results.entries()) {
      if (r.status === 202) expect(retried[i]!.id, "same license after restart").to.equal(r.id);
    }

    const ids = new Set(retried.map((r) => r.id));
    expect(ids.size).to.equal(TOTAL);
    const deadline = Date.now() + 120_000;
    let confirmed = 0;
    while (Date.now() < deadline) {
      const res = await fetch(`${second.base}/v1/licenses?status=confirmed&limit=200`, {
        headers: { authorization: `Bearer ${KEYS.admin}` },
      });
      let page = (await res.json()) as { items: unknown[]; nextCursor: string | null };
      confirmed = page.items.length;
      while (page.nextCursor) {
        page = (await (
          await fetch(`${second.base}/v1/licenses?status=confirmed&limit=200&cursor=${page.nextCursor}`, {
            headers: { authorization: `Bearer ${KEYS.admin}` },
          })
        ).json()) as typeof page;
        confirmed += page.items.length;
      }
      if (confirmed === TOTAL) break;
      await sleep(200);
    }
    expect(confirmed).to.equal(TOTAL);
    let onChain = 0;
    for (const c of chains) onChain += await mintedCount(c.rpcUrl, c.contract);
    expect(onChain, `accepted before kill: ${acceptedBeforeKill}`).to.equal(TOTAL);
    console.log(
      `      killed after ${mintedBeforeKill} minted, ${acceptedBeforeKill} accepted; on restart: ${second.logs.join(", ") || "no open outbox batch"}`,
    );
    second.child.kill("SIGTERM");
    await new Promise((resolve) => second.child.once("exit", resolve));
  });
});
