import { expect } from "chai";
import { selectChain, type ChainView, type SelectionInput } from "../../server/policies.js";
import type { PolicyName } from "../../server/config.js";

function chain(chainId: number, extra: Partial<ChainView> = {}): ChainView {
  return {
    chainId,
    name: `c${chainId}`,
    enabled: true,
    healthy: true,
    weight: 1,
    queueDepth: 0,
    issueGasPerLicense: 100_000,
    ...extra,
  };
}

/** Runs `n` selections and counts the chosen chain ids. */
function distribution(
  policy: PolicyName,
  n: number,
  base: Omit<SelectionInput, "sequence">,
): Map<number, number> {
  const counts = new Map<number, number>();
  for (let sequence = 0; sequence < n; sequence++) {
    const selection = selectChain(policy, { ...base, sequence });
    if (!selection) throw new Error("no selection");
    counts.set(selection.chainId, (counts.get(selection.chainId) ?? 0) + 1);
  }
  return counts;
}

describe("server: chain selection policies", function () {
  const three = [chain(1), chain(2), chain(3)];

  it("round-robin spreads evenly and cycles in chain id order", function () {
    const picks = [0, 1, 2, 3].map(
      (sequence) => selectChain("round-robin", { chains: three, productId: 1, sequence })!.chainId,
    );
    expect(picks).to.deep.equal([1, 2, 3, 1]);
    expect([...distribution("round-robin", 300, { chains: three, productId: 1 })]).to.have.deep.members([
      [1, 100],
      [2, 100],
      [3, 100],
    ]);
  });

  it("weighted gives each chain exactly its weight share per window, interleaved", function () {
    const chains = [chain(1, { weight: 5 }), chain(2, { weight: 3 }), chain(3, { weight: 2 })];
    const counts = distribution("weighted", 1000, { chains, productId: 1 });
    expect(counts.get(1)).to.equal(500);
    expect(counts.get(2)).to.equal(300);
    expect(counts.get(3)).to.equal(200);
    // smooth: the heaviest chain is never picked more than twice in a row for 5:3:2
    const picks = Array.from(
      { length: 10 },
      (_, sequence) => selectChain("weighted", { chains, productId: 1, sequence })!.chainId,
    );
    expect(picks.join("")).to.not.contain("111");
  });

  it("weighted never picks a weight-0 chain", function () {
    const chains = [chain(1, { weight: 0 }), chain(2, { weight: 1 })];
    expect(distribution("weighted", 10, { chains, productId: 1 }).get(1)).to.equal(undefined);
  });

  it("least-loaded picks the shortest queue and keeps queues level", function () {
    const chains = [chain(1, { queueDepth: 7 }), chain(2, { queueDepth: 2 }), chain(3, { queueDepth: 5 })];
    const s = selectChain("least-loaded", { chains, productId: 1, sequence: 0 })!;
    expect(s.chainId).to.equal(2);
    expect(s.ordered).to.deep.equal([2, 3, 1]);
    // simulate: each pick adds one to the chosen queue; after 86 picks all queues hold 100/3 ± 1
    const live = chains.map((c) => ({ ...c }));
    for (let sequence = 0; sequence < 86; sequence++) {
      const pick = selectChain("least-loaded", { chains: live, productId: 1, sequence })!;
      live.find((c) => c.chainId === pick.chainId)!.queueDepth++;
    }
    const depths = live.map((c) => c.queueDepth);
    expect(Math.max(...depths) - Math.min(...depths)).to.be.at.most(1);
  });

  it("lowest-cost picks the cheapest fee × gas and puts unknown fees last", function () {
    const chains = [
      chain(1, { feePerGasWei: 10n, issueGasPerLicense: 100 }),
      chain(2, { feePerGasWei: 3n, issueGasPerLicense: 200 }),
      chain(3, { issueGasPerLicense: 1 }),
    ];
    const s = selectChain("lowest-cost", { chains, productId: 1, sequence: 0 })!;
    expect(s.chainId).to.equal(2);
    expect(s.ordered).to.deep.equal([2, 1, 3]);
    expect(s.reason).to.contain("600 wei");
    expect(distribution("lowest-cost", 50, { chains, productId: 1 }).get(2)).to.equal(50);
  });

  it("lowest-cost spreads equal costs by queue depth then rotation", function () {
    const chains = [chain(1, { feePerGasWei: 1n }), chain(2, { feePerGasWei: 1n })];
    const counts = distribution("lowest-cost", 10, { chains, productId: 1 });
    expect(counts.get(1)).to.equal(5);
    expect(counts.get(2)).to.equal(5);
  });

  it("product-pinned uses only the product's chains, in the product's order", function () {
    const input = { chains: three, productId: 9, productChains: [3, 2] };
    expect(distribution("product-pinned", 20, input).get(3)).to.equal(20);
    expect(selectChain("product-pinned", { ...input, sequence: 0 })!.ordered).to.deep.equal([3, 2]);
    // an unpinned product is spread round-robin
    expect(distribution("product-pinned", 30, { chains: three, productId: 1 }).get(1)).to.equal(10);
  });

  it("client-preference follows the client's order and falls back to round-robin", function () {
    const input = { chains: three, productId: 1, preferredChains: [2, 1] };
    expect(distribution("client-preference", 10, input).get(2)).to.equal(10);
    expect(selectChain("client-preference", { ...input, sequence: 0 })!.ordered).to.deep.equal([2, 1]);
    expect(distribution("client-preference", 30, { chains: three, productId: 1 }).get(3)).to.equal(10);
  });

  it("every policy skips unhealthy and disabled chains and returns them as no fallback", function () {
    const chains = [
      chain(1, { healthy: false }),
      chain(2, { enabled: false }),
      chain(3, { feePerGasWei: 1n }),
    ];
    for (const policy of [
      "round-robin",
      "weighted",
      "least-loaded",
      "lowest-cost",
      "product-pinned",
      "client-preference",
    ] as const) {
      const counts = distribution(policy, 12, { chains, productId: 1 });
      expect([...counts.keys()], policy).to.deep.equal([3]);
      expect(selectChain(policy, { chains, productId: 1, sequence: 5 })!.ordered, policy).to.deep.equal([3]);
    }
  });

  it("returns undefined when nothing is eligible and records policy and reason", function () {
    const down = three.map((c) => ({ ...c, healthy: false }));
    expect(selectChain("round-robin", { chains: down, productId: 1, sequence: 0 })).to.equal(undefined);
    expect(
      selectChain("round-robin", { chains: three, productId: 1, preferredChains: [99], sequence: 0 }),
    ).to.equal(undefined);
    const s = selectChain("round-robin", { chains: three, productId: 1, sequence: 1 })!;
    expect(s.policy).to.equal("round-robin");
    expect(s.reason).to.contain("slot 1 of 3");
    expect(s.ordered).to.deep.equal([2, 3, 1]);
  });
});
