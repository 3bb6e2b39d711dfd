/**
 * The chains as the service sees them: periodic health probes, failover of accepted (unsent) licenses
 * off a down or disabled chain, the views the selection policies read, and the `/v1/chains` report.
 */
import type { Logger } from "pino";
import type { ChainClient } from "../chain.js";
import type { Config } from "../config.js";
import type { Metrics } from "../metrics.js";
import type { ChainView } from "../policies.js";
import type { LicenseStore } from "../store/types.js";

/** What the pool needs of a chain's worker. */
export interface PoolWorker {
  /** New work for the chain. */
  notify(): void;
  /** The chain came back after being down. */
  healthRestored(): void;
}

export class ChainPool {
  private timer: NodeJS.Timeout | undefined;
  private probing = false;

  constructor(
    readonly clients: ReadonlyMap<number, ChainClient>,
    private readonly workers: ReadonlyMap<number, PoolWorker>,
    private readonly store: Pick<
      LicenseStore,
      "acceptedFor" | "reassign" | "queueDepths" | "confirmedCounts"
    >,
    private readonly config: Config["health"],
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    /** A read-only replica: no failover, no signer shown. */
    private readonly readOnly: boolean,
  ) {}

  /** Probes every `intervalMs` from now on (the first probe is the caller's, before the workers start). */
  schedule(): void {
    this.timer ??= setInterval(() => {
      void this.probeAll();
    }, this.config.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  async probeAll(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await Promise.all(
        [...this.clients.values()].map(async (client) => {
          const before = client.health.healthy;
          const health = await client.probe(this.config.timeoutMs, this.config.failuresToDown);
          this.metrics.chainUp.set({ chain: client.config.name }, health.healthy ? 1 : 0);
          if (before !== health.healthy) {
            this.logger.warn(
              { chain: client.config.name, healthy: health.healthy, error: health.error },
              "chain health changed",
            );
            if (health.healthy) this.workers.get(client.chainId)?.healthRestored();
          }
        }),
      );
      for (const [chain, depth] of this.queueDepths()) {
        this.metrics.queueDepth.set({ chain: this.clients.get(chain)?.config.name ?? String(chain) }, depth);
      }
      this.failover();
    } finally {
      this.probing = false;
    }
  }

  /** Accepted (unsent) licenses on a down or disabled chain move to their next eligible chain. */
  failover(): void {
    if (this.readOnly) return;
    for (const client of this.clients.values()) {
      if (client.health.healthy && client.config.enabled) continue;
      const stranded = this.store.acceptedFor(client.chainId, 10_000);
      for (const license of stranded) {
        const next = license.candidates.find((id) => id !== client.chainId && this.usable(id));
        if (next === undefined) continue;
        const reason = `failover from chain ${client.chainId} (${client.health.error ?? "down"}); ${license.reason}`;
        if (this.store.reassign(license.id, next, reason)) {
          this.logger.info({ license: license.id, from: client.chainId, to: next }, "license failed over");
          this.workers.get(next)?.notify();
        }
      }
    }
  }

  /** Enabled and healthy. */
  usable(chainId: number): boolean {
    const client = this.clients.get(chainId);
    return !!client && client.config.enabled && client.health.healthy;
  }

  /** At least one chain can take licenses. */
  ready(): boolean {
    return [...this.clients.values()].some((c) => c.config.enabled && c.health.healthy);
  }

  queueDepths(): Map<number, number> {
    return this.store.queueDepths();
  }

  /**
   * The chains as the policies see them. Queue depths cost a count over the store, and only some
   * policies read them: they are counted on the first read of any view's `queueDepth` (one snapshot
   * for all views of this call), so a policy that never reads them never counts.
   */
  chainViews(): ChainView[] {
    let depths: Map<number, number> | undefined;
    const depthOf = (chainId: number): number => (depths ??= this.queueDepths()).get(chainId) ?? 0;
    return [...this.clients.values()].map((c) => ({
      chainId: c.chainId,
      name: c.config.name,
      enabled: c.config.enabled,
      healthy: c.health.healthy,
      weight: c.config.weight,
      get queueDepth(): number {
        return depthOf(c.chainId);
      },
      issueGasPerLicense: c.config.issueGasPerLicense,
      ...(c.health.feePerGasWei === undefined ? {} : { feePerGasWei: c.health.feePerGasWei }),
    }));
  }

  report(): Record<string, unknown>[] {
    const depths = this.queueDepths();
    const issued = this.store.confirmedCounts();
    return [...this.clients.values()].map((c) => ({
      name: c.config.name,
      chainId: c.chainId,
      contract: c.config.contract,
      enabled: c.config.enabled,
      healthy: c.health.healthy,
      weight: c.config.weight,
      confirmations: c.config.confirmations,
      headBlock: c.health.headBlock ?? null,
      latencyMs: c.health.latencyMs ?? null,
      lastCheckedAt: c.health.lastCheckedAt ? new Date(c.health.lastCheckedAt).toISOString() : null,
      error: c.health.healthy ? null : (c.health.error ?? null),
      queueDepth: depths.get(c.chainId) ?? 0,
      issued: issued.get(c.chainId) ?? 0,
      signer: this.readOnly ? null : c.wallet.address,
      signerBalanceWei: c.health.signerBalanceWei?.toString() ?? null,
      feePerGasWei: c.health.feePerGasWei?.toString() ?? null,
    }));
  }
}
