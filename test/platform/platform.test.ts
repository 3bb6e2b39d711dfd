/**
 * The whole platform without Docker (the README's run command): the scenario in `--once` mode, and
 * lookups served by datacenter dc2's replica while dc1's licensing service is down.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { runScenario } from "../../platform/scenario.js";
import { startPlatform, type Platform } from "../../platform/topology.js";
import { ROOT } from "../support/procs.js";

describe("platform (no Docker)", function () {
  this.timeout(600_000);

  it("plays the scenario end to end with `--once` and exits 0", async function () {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--disable-warning=TimeoutNegativeWarning",
        "platform/cli.ts",
        "--once",
        "--licenses",
        "20",
      ],
      { cwd: ROOT, env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: "1" } },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, output).to.equal(0);
    expect(output).to.contain("Summary: 4/4 steps ok");
    expect(output).to.match(/20 licenses accepted and confirmed as NFTs/);
    expect(output).to.match(/all 20 issued events seen in dc2/);
    expect(output).to.match(/discovered and all 100 records replicated to dc2/);
    // Keys are written to files, never printed.
    expect(output).to.not.match(/lpk_[0-9a-f]{48}/);
  });

  describe("with dc1's licensing service stopped", function () {
    let platform: Platform | undefined;
    let workDir: string;

    before(async function () {
      workDir = mkdtempSync(path.join(os.tmpdir(), "lp-platform-test-"));
      platform = await startPlatform({ workDir });
    });

    after(async function () {
      await platform?.stop();
      rmSync(workDir, { recursive: true, force: true });
    });

    it("the replica in dc2 still answers lookups and verify for licenses issued before", async function () {
      const sink = Object.assign(new PassThrough(), { isTTY: false });
      sink.resume();
      const result = await runScenario(platform!, {
        licenses: 12,
        out: sink as unknown as NodeJS.WriteStream,
      });
      expect(result.steps.map((s) => [s.name.slice(0, 2), s.ok, s.detail])).to.deep.equal(
        result.steps.map((s) => [s.name.slice(0, 2), true, s.detail]),
      );
      expect(result.licenseIds).to.have.length(12);

      // the dashboard's key (platform:read) reads both replicators through dc1's service
      const viewer = { authorization: `Bearer ${platform!.apiKeys.dashboard}` };
      const replication = (await (
        await fetch(`${platform!.primary.url}/v1/replication`, { headers: viewer })
      ).json()) as { replicators: { datacenter: string; reachable: boolean; pipelines: unknown[] }[] };
      expect(replication.replicators.map((r) => [r.datacenter, r.reachable])).to.deep.equal([
        ["dc1", true],
        ["dc2", true],
      ]);
      expect(replication.replicators[1]!.pipelines).to.not.have.length(0);
      expect((await fetch(`${platform!.primary.url}/dashboard`)).status).to.equal(200);

      await platform!.primary.process.stop();
      const primaryDown = await fetch(`${platform!.primary.url}/healthz`).then(
        () => false,
        () => true,
      );
      expect(primaryDown, "dc1's licensing service is down").to.equal(true);

      const auth = { authorization: `Bearer ${platform!.apiKeys.client}` };
      for (const id of result.licenseIds) {
        const response = await fetch(`${platform!.replica.url}/v1/licenses/${id}`, { headers: auth });
        expect(response.status).to.equal(200);
        const body = (await response.json()) as { id: string; status: string; tokenId?: string };
        expect(body.id).to.equal(id);
        expect(body.status).to.equal("confirmed");
        expect(body.tokenId).to.be.a("string");
      }
      const list = await fetch(`${platform!.replica.url}/v1/licenses?limit=100`, { headers: auth });
      const page = (await list.json()) as { items: { id: string }[] };
      expect(page.items.map((l) => l.id)).to.include.members(result.licenseIds);

      const verify = await fetch(`${platform!.replica.url}/v1/licenses/${result.licenseIds[0]}/verify`, {
        headers: auth,
      });
      expect(verify.status).to.equal(200);
      expect(((await verify.json()) as { code: string }).code).to.equal("VALID");

      // The replica is read-only: writes are refused with a machine-readable code.
      const write = await fetch(`${platform!.replica.url}/v1/licenses`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json", "idempotency-key": "x" },
        body: JSON.stringify({ productId: 1, licensee: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" }),
      });
      expect(write.status).to.equal(405);
      expect(((await write.json()) as { code: string }).code).to.equal("READ_ONLY_REPLICA");
    });
  });
});
