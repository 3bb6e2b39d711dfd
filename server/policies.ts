/**
 * Chain selection policies: small pure functions. Each gets the chains that may take the request
 * (enabled, healthy, allowed for the product and by the client) and returns them in order of
 * preference; the first is the choice, the rest the fallbacks used when the choice fails before send.
 */
import type { PolicyName } from "./config.js";

export interface ChainView {
  chainId: number;
  name: string;
  enabled: boolean;
  healthy: boolean;
  weight: number;
  /** Requests accepted or submitted but not yet confirmed on this chain. */
  queueDepth: number;
  /** Current fee per gas in wei (EIP-1559 maxFeePerGas or gasPrice); undefined when unknown. */
  feePerGasWei?: bigint;
  issueGasPerLicense: number;
}

export interface SelectionInput {
  chains: readonly ChainView[];
  productId: number;
  /** Chains the product may use, in order of preference; all when undefined. */
  productChains?: readonly number[];
  /** Chains named by the client, in order of preference; no preference when undefined. */
  preferredChains?: readonly number[];
  /** A counter that increases by one per selection (round-robin and weighted position). */
  sequence: number;
}

export interface Selection {
  chainId: number;
  policy: PolicyName;
  reason: string;
  /** Every eligible chain in order of preference, the choice first. */
  ordered: number[];
}

type Ordering = (eligible: ChainView[], input: SelectionInput) => { ordered: ChainView[]; reason: string };

function rotate<T>(items: T[], by: number): T[] {
  if (items.length === 0) return items;
  const k = ((by % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

const byId = (a: ChainView, b: ChainView): number => a.chainId - b.chainId;

export const roundRobin: Ordering = (eligible, input) => {
  const sorted = [...eligible].sort(byId);
  const ordered = rotate(sorted, input.sequence);
  return {
    ordered,
    reason: `round-robin slot ${input.sequence % sorted.length} of ${sorted.length} eligible chains`,
  };
};

/**
 * Smooth weighted round-robin (as in nginx), made pure: position `sequence mod totalWeight` of the
 * deterministic interleaved sequence, so over every window of totalWeight selections each chain is
 * chosen exactly `weight` times.
 */
export const weighted: Ordering = (eligible, input) => {
  const sorted = [...eligible].filter((c) => c.weight > 0).sort(byId);
  if (sorted.length === 0) return { ordered: [], reason: "weighted: every eligible chain has weight 0" };
  const total = sorted.reduce((sum, c) => sum + c.weight, 0);
  const position = input.sequence % total;
  const current = sorted.map(() => 0);
  let picked = 0;
  for (let step = 0; step <= position; step++) {
    sorted.forEach((c, i) => (current[i]! += c.weight));
    picked = current.reduce((best, value, i) => (value > current[best]! ? i : best), 0);
    current[picked]! -= total;
  }
  const chosen = sorted[picked]!;
  const rest = sorted.filter((c) => c !== chosen).sort((a, b) => b.weight - a.weight || byId(a, b));
  return {
    ordered: [chosen, ...rest],
    reason: `weighted ${chosen.weight}/${total}, position ${position} of the smooth weighted sequence`,
  };
};

export const leastLoaded: Ordering = (eligible, input) => {
  // Ties are broken by a rotation so that idle chains share the load evenly.
  const rotated = rotate([...eligible].sort(byId), input.sequence);
  const ordered = rotated
    .map((c, i) => ({ c, i }))
    .sort((a, b) => a.c.queueDepth - b.c.queueDepth || a.i - b.i)
    .map(({ c }) => c);
  return { ordered, reason: `least-loaded: queue depth ${ordered[0]?.queueDepth ?? 0}` };
};

export function issueCostWei(chain: ChainView): bigint | undefined {
  return chain.feePerGasWei === undefined ? undefined : chain.feePerGasWei * BigInt(chain.issueGasPerLicense);
}

export const lowestCost: Ordering = (eligible, input) => {
  const rotated = rotate([...eligible].sort(byId), input.sequence);
  const ordered = rotated
    .map((c, i) => ({ c, i, cost: issueCostWei(c) }))
    .sort((a, b) => {
      // Unknown fees go last; equal costs go to the less loaded chain, then by rotation.
      if (a.cost === undefined || b.cost === undefined)
        return (a.cost === undefined ? 1 : 0) - (b.cost === undefined ? 1 : 0) || a.i - b.i;
      return a.cost < b.cost ? -1 : a.cost > b.cost ? 1 : a.c.queueDepth - b.c.queueDepth || a.i - b.i;
    })
    .map(({ c }) => c);
  const cost = ordered[0] ? issueCostWei(ordered[0]) : undefined;
  return {
    ordered,
    reason: `lowest-cost: ${cost === undefined ? "fee unknown" : `${cost} wei per license`}`,
  };
};

/** The product's chain list in its own order of preference. */
export const productPinned: Ordering = (eligible, input) => {
  if (!input.productChains) {
    const fallback = roundRobin(eligible, input);
    return {
      ordered: fallback.ordered,
      reason: `product-pinned: product ${input.productId} not pinned, ${fallback.reason}`,
    };
  }
  const rank = new Map(input.productChains.map((id, i) => [id, i]));
  const ordered = [...eligible].sort((a, b) => (rank.get(a.chainId) ?? 1e9) - (rank.get(b.chainId) ?? 1e9));
  return {
    ordered,
    reason: `product-pinned: product ${input.productId} prefers chains ${input.productChains.join(",")}`,
  };
};

/** The client's chain list in the client's order; round-robin when the client names none. */
export const clientPreference: Ordering = (eligible, input) => {
  if (!input.preferredChains) {
    const fallback = roundRobin(eligible, input);
    return { ordered: fallback.ordered, reason: `client-preference: none given, ${fallback.reason}` };
  }
  const rank = new Map(input.preferredChains.map((id, i) => [id, i]));
  const ordered = [...eligible].sort((a, b) => (rank.get(a.chainId) ?? 1e9) - (rank.get(b.chainId) ?? 1e9));
  return { ordered, reason: `client-preference: client asked for ${input.preferredChains.join(",")}` };
};

export const POLICIES: Record<PolicyName, Ordering> = {
  "round-robin": roundRobin,
  weighted,
  "least-loaded": leastLoaded,
  "lowest-cost": lowestCost,
  "product-pinned": productPinned,
  "client-preference": clientPreference,
};

/**
 * Eligible chains: enabled, healthy, allowed for the product and (when the client names chains) named
 * by the client. Product pins and client choices are hard constraints under every policy.
 */
export function eligibleChains(input: SelectionInput): ChainView[] {
  return input.chains.filter(
    (c) =>
      c.enabled &&
      c.healthy &&
      (!input.productChains || input.productChains.includes(c.chainId)) &&
      (!input.preferredChains || input.preferredChains.includes(c.chainId)),
  );
}

/** Runs `policy`; undefined when no chain is eligible. */
export function selectChain(policy: PolicyName, input: SelectionInput): Selection | undefined {
  const eligible = eligibleChains(input);
  if (eligible.length === 0) return undefined;
  const { ordered, reason } = POLICIES[policy](eligible, input);
  const first = ordered[0];
  if (!first) return undefined;
  return { chainId: first.chainId, policy, reason, ordered: ordered.map((c) => c.chainId) };
}
