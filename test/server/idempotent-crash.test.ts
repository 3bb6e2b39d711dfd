/**
 * Idempotent renew across a crash: the server (`server/main.ts`, a separate process) is killed with
 * SIGKILL while renews with an `Idempotency-Key` are in flight (some claimed, some sent, some done),
 * restarted on the same database, and every renew is retried with its key: each license is renewed
 * exactly once on-chain, wherever the kill caught it. Signer: dev account 19, fresh contracts.
 */
import { expect } from "chai";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { Contract } from "ethers";
import { sha256Hex } from "../../server/config.js";
import { LICENSE_INTERFACE } from "../../server/contract.js";
import {
  KEYS,
  childServiceSetup,
  devKey,
  provider,
  randomAddress,
  sleep,
  startServer,
  type ChildServiceSetup,
  type TestChain,
} from "./helpers.js";

const SIGNER = devKey(19);
const LICENSES = 12;
const DURATION = 777;

type License = { id: string; tokenId: string; chainId: number; expiresAt: number };

async function post(
  base: string,
  route: string,
  body: unknown,
  key?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  try {
    const res = await fetch(`${base}${route}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${KEYS.client}`,
        ...(key ? { "idempotency-key": key } : {}),
      },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  } catch {
    return { status: 0, body: {} };
  }
}

describe("server: idempotent renew across a SIGKILL", function () {
  this.timeout(240_000);
  let chains: TestChain[];
  let tmp: ChildServiceSetup["tmp"];
  let configFile: string;
  const children: ChildProcessWithoutNullStreams[] = [];
  const env: NodeJS.ProcessEnv = { IDEMPOTENT_CRASH_SIGNER: SIGNER };

  before(async function () {
    ({ tmp, chains, configFile } = await childServiceSetup(SIGNER, "IDEMPOTENT_CRASH_SIGNER", {
      products: [{ id: 1, name: "Pro", defaultDurationSeconds: 86_400 }],
      apiKeys: [
        { id: "client", sha256: sha256Hex(KEYS.client), scopes: ["licenses:write", "licenses:read"] },
      ],
    }));
  });

  after(function () {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    tmp?.cleanup();
  });

  const contractOf = (license: License): Contract => {
    const chain = chains.find((c) => c.chainId === license.chainId)!;
    return new Contract(chain.contract, LICENSE_INTERFACE, provider(chain.rpcUrl));
  };
  const chainExpiry = async (license: License): Promise<number> =>
    Number(
      ((await contractOf(license).getFunction("license")(BigInt(license.tokenId))) as { expiresAt: bigint })
        .expiresAt,
    );

  it("every renew retried with its key after the kill renews its license exactly once", async function () {
    const first = await startServer(configFile, env);
    children.push(first.child);
    const licenses: License[] = [];
    for (let i = 0; i < LICENSES; i++) {
      const res = await post(first.base, "/v1/licenses?wait=20000", {
        productId: 1,
        licensee: randomAddress(),
      });
      expect(res.status).to.equal(201);
      licenses.push(res.body as unknown as License);
    }
    const before = await Promise.all(licenses.map(chainExpiry));

    // fire every renew (one key each); kill once some renewals are on-chain and others are not yet
    const inflight = licenses.map((l, i) =>
      post(first.base, `/v1/licenses/${l.id}/renew`, { durationSeconds: DURATION }, `crash-renew-${i}`),
    );
    const deadline = Date.now() + 60_000;
    let renewedBeforeKill = 0;
    while (Date.now() < deadline) {
      const now = await Promise.all(licenses.map(chainExpiry));
      renewedBeforeKill = now.filter((e, i) => e !== before[i]).length;
      if (renewedBeforeKill >= 2) break;
      await sleep(5);
    }
    first.child.kill("SIGKILL");
    const answered = (await Promise.all(inflight)).filter((r) => r.status === 200).length;
    expect(renewedBeforeKill, "the kill comes after some renewals").to.be.greaterThan(0);
    expect(answered, "the kill comes before every renew was answered").to.be.lessThan(LICENSES);

    const second = await startServer(configFile, env);
    children.push(second.child);
    const retried = await Promise.all(
      licenses.map((l, i) =>
        post(second.base, `/v1/licenses/${l.id}/renew`, { durationSeconds: DURATION }, `crash-renew-${i}`),
      ),
    );
    for (const [i, res] of retried.entries()) {
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(res.body.expiresAt).to.equal(before[i]! + DURATION);
    }
    const after = await Promise.all(licenses.map(chainExpiry));
    expect(after).to.deep.equal(before.map((e) => e + DURATION));
    // and once more: nothing changes
    const again = await Promise.all(
      licenses.map((l, i) =>
        post(second.base, `/v1/licenses/${l.id}/renew`, { durationSeconds: DURATION }, `crash-renew-${i}`),
      ),
    );
    for (const [i, res] of again.entries()) {
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal(retried[i]!.body);
    }
    expect(await Promise.all(licenses.map(chainExpiry))).to.deep.equal(after);
  });
});
