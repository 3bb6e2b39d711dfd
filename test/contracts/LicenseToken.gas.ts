/**
 * Gas per license for single and batch issue, and the largest batch that fits one transaction/block on
 * Hardhat's default network. The figures are deterministic (fixed calldata, fresh licensees), and
 * docs/contracts.md holds them between the `gas:begin`/`gas:end` markers; this test fails when they drift.
 * Regenerate the block with:
 *
 *   UPDATE_GAS_DOCS=1 npx hardhat test mocha test/contracts/LicenseToken.gas.ts
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { network } from "hardhat";
import * as prettier from "prettier";
import { ZERO_HASH, deployLicenseToken, mined, type LicenseTokenContract, type Terms } from "./helpers.js";

const { ethers, networkHelpers } = await network.create();

const DOCS = new URL("../../docs/contracts.md", import.meta.url);
const BEGIN = "<!-- gas:begin -->";
const END = "<!-- gas:end -->";
/** EIP-7825 (Osaka) caps a transaction's gas at 2^24. */
const EIP_7825_CAP = 16_777_216n;

async function deployed() {
  return deployLicenseToken(ethers);
}

/** Distinct licensees that have never held a license (the costly case: their balance goes 0 -> 1). */
function licensee(i: number): string {
  return ethers.getAddress(ethers.dataSlice(ethers.id(`licensee-${i}`), 12));
}

/** Realistic terms: a 2100-01-01 expiry, 5 seats, a terms digest and (optionally) a request reference. */
function gasTerms(i: number, withRef: boolean, round = 0): Terms {
  return {
    productId: BigInt(1000 + i),
    expiresAt: 4_102_444_800n,
    seats: 5n,
    locked: false,
    termsHash: ethers.id(`terms-${round}-${i}`),
    requestRef: withRef ? ethers.id(`request-${round}-${i}`) : ZERO_HASH,
  };
}

function batchArgs(n: number, withRef: boolean, round = 0): [string[], Terms[]] {
  const indexes = Array.from({ length: n }, (_, i) => i);
  return [indexes.map(licensee), indexes.map((i) => gasTerms(i, withRef, round))];
}

async function gasOfBatch(
  token: LicenseTokenContract,
  issuer: unknown,
  n: number,
  withRef: boolean,
  round = 0,
): Promise<bigint> {
  const receipt = await mined(token.connect(issuer as never).issueBatch(...batchArgs(n, withRef, round)));
  return receipt.gasUsed;
}

/** The largest gas a single transaction may use here: the block gas limit, or EIP-7825's cap if enforced. */
async function transactionGasLimit(): Promise<{ blockGasLimit: bigint; txLimit: bigint }> {
  const block = await ethers.provider.getBlock("latest");
  const blockGasLimit = block!.gasLimit;
  const [sender] = await ethers.getSigners();
  let capped = false;
  try {
    const tx = await sender!.sendTransaction({ to: sender!.address, gasLimit: EIP_7825_CAP + 1n });
    await tx.wait();
  } catch {
    capped = true;
  }
  return { blockGasLimit, txLimit: capped && EIP_7825_CAP < blockGasLimit ? EIP_7825_CAP : blockGasLimit };
}

function fmt(n: bigint | number): string {
  return n.toLocaleString("en-US");
}

describe("LicenseToken: gas per license (docs/contracts.md)", function () {
  this.timeout(300_000);

  it("measures single and batch issue and checks the documented figures", async function () {
    const rows: string[] = [];
    const perLicense = new Map<string, bigint>();

    const deployment = await networkHelpers.loadFixture(deployed);
    const deployReceipt = await deployment.token.deploymentTransaction()!.wait();
    const deployGas = deployReceipt!.gasUsed;

    for (const withRef of [true, false]) {
      const { token, issuer } = await networkHelpers.loadFixture(deployed);
      const gas = await mined(token.connect(issuer).issue(licensee(0), gasTerms(0, withRef)));
      const label = `issue (single)`;
      perLicense.set(`${label}/${withRef}`, gas.gasUsed);
      rows.push(`| ${label} | ${withRef ? "yes" : "no"} | 1 | ${fmt(gas.gasUsed)} | ${fmt(gas.gasUsed)} |`);
    }
    for (const withRef of [true, false]) {
      for (const n of [1, 10, 100]) {
        const { token, issuer } = await networkHelpers.loadFixture(deployed);
        const gas = await gasOfBatch(token, issuer, n, withRef);
        const each = gas / BigInt(n);
        perLicense.set(`batch ${n}/${withRef}`, each);
        rows.push(`| issueBatch | ${withRef ? "yes" : "no"} | ${n} | ${fmt(gas)} | ${fmt(each)} |`);
      }
    }

    // Licensees who already hold a license: their balance goes 1 -> 2 (a cheaper storage write).
    {
      const { token, issuer } = await networkHelpers.loadFixture(deployed);
      await gasOfBatch(token, issuer, 100, false, 1);
      const gas = await gasOfBatch(token, issuer, 100, true, 2);
      rows.push(`| issueBatch, existing licensees | yes | 100 | ${fmt(gas)} | ${fmt(gas / 100n)} |`);
    }

    // Largest batch (with request references) whose gas fits one transaction.
    const { blockGasLimit, txLimit } = await transactionGasLimit();
    const { token, issuer } = await networkHelpers.loadFixture(deployed);
    const fits = async (n: number): Promise<bigint | undefined> => {
      try {
        const estimate = await token.connect(issuer).issueBatch.estimateGas(...batchArgs(n, true));
        return estimate <= txLimit ? estimate : undefined;
      } catch {
        return undefined;
      }
    };
    let lo = 100; // fits (measured above)
    let hi = 1_000;
    expect(await fits(hi)).to.equal(undefined);
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (await fits(mid)) lo = mid;
      else hi = mid;
    }
    const maxBatch = lo;
    const maxGas = await gasOfBatch(token, issuer, maxBatch, true);
    expect(maxGas <= txLimit).to.equal(true);
    rows.push(
      `| issueBatch (largest) | yes | ${maxBatch} | ${fmt(maxGas)} | ${fmt(maxGas / BigInt(maxBatch))} |`,
    );
    const batchesPerBlock = blockGasLimit / maxGas;

    const table = [
      BEGIN,
      "| call | request ref | licenses | gas used (tx) | gas per license |",
      "| --- | --- | ---: | ---: | ---: |",
      ...rows,
      "",
      `- Deployment: ${fmt(deployGas)} gas.`,
      `- Block gas limit ${fmt(blockGasLimit)}; gas limit per transaction ${fmt(txLimit)}` +
        (txLimit < blockGasLimit ? " (EIP-7825 cap, Osaka)." : "."),
      `- Largest batch in one transaction: ${maxBatch} licenses (${maxBatch + 1} exceeds the limit).`,
      `- One block holds ${batchesPerBlock} such batches: ${fmt(batchesPerBlock * BigInt(maxBatch))} licenses.`,
      END,
    ].join("\n");
    console.log(`\n${table}\n`);

    // Batching must pay off: the per-license cost drops with the batch size.
    expect(perLicense.get("batch 100/true")! < perLicense.get("batch 10/true")!).to.equal(true);
    expect(perLicense.get("batch 10/true")! < perLicense.get("issue (single)/true")!).to.equal(true);

    // Compare in the repository's format (prettier), which the docs must follow anyway.
    const docs = readFileSync(DOCS, "utf8");
    const block = (text: string): string => {
      const start = text.indexOf(BEGIN);
      const end = text.indexOf(END);
      expect(start, `docs/contracts.md lacks ${BEGIN}`).to.be.greaterThan(-1);
      expect(end, `docs/contracts.md lacks ${END}`).to.be.greaterThan(start);
      return text.slice(start, end + END.length);
    };
    const current = block(docs);
    const options = { ...(await prettier.resolveConfig(fileURLToPath(DOCS))), parser: "markdown" };
    const updated = await prettier.format(docs.replace(current, table), options);
    if (process.env.UPDATE_GAS_DOCS === "1") {
      writeFileSync(DOCS, updated);
    } else {
      expect(current, "gas figures in docs/contracts.md are stale: rerun with UPDATE_GAS_DOCS=1").to.equal(
        block(updated),
      );
    }
  });
});
