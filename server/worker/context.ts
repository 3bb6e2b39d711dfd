/** What the stages of a chain worker share: the chain, the store, the options, logs and metrics. */
import type { Logger } from "pino";
import type { ChainClient } from "../chain.js";
import type { Config } from "../config.js";
import type { Metrics } from "../metrics.js";
import type { LicenseStore, TxOutboxStore } from "../store/types.js";

/**
 * The worker's options: `batching` and `transactions` of the config (their defaults are in config.ts),
 * and how often a receipt is polled at first.
 */
export type WorkerOptions = Config["batching"] &
  Config["transactions"] & {
    /** First receipt poll interval (then backing off up to 500 ms); default 50 ms. */
    receiptPollMs?: number;
  };

export interface WorkerContext {
  readonly client: ChainClient;
  readonly store: Pick<LicenseStore, "acceptedFor" | "oldestAcceptedAt" | "getLicense" | "fail"> &
    TxOutboxStore;
  readonly options: WorkerOptions;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The chain's name, the metrics label. */
  readonly label: string;
  /** The worker is stopping: waits end early. */
  stopped(): boolean;
}

/** Gas limit for an estimate: 20 % headroom plus 10k. */
export function gasLimitFor(estimate: bigint): bigint {
  return (estimate * 12n) / 10n + 10_000n;
}
