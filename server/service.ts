/**
 * The licensing service: accepts issue requests (persist first, then hand to the chain's worker),
 * reads licenses back from the store and the chains, renews and revokes. The stages live in
 * `service/`: accept + group commit, chain health and failover, verify; ids in `ids.ts`.
 */
import { encodeBytes32String } from "ethers";
import type { Logger } from "pino";
import { errorFields } from "../common/log.js";
import { sleep } from "../common/time.js";
import { seesAllClients } from "./auth.js";
import type { ChainClient } from "./chain.js";
import type { Config } from "./config.js";
import { LICENSE_INTERFACE } from "./contract.js";
import type { BulkItemResult, Client, IssueInput, LicenseRecord, ListFilter, Product } from "./domain.js";
import { AppError } from "./errors.js";
import type { Metrics } from "./metrics.js";
import type { ChainView } from "./policies.js";
import { Acceptor } from "./service/accept.js";
import { KeyedActions, type ActionResult } from "./service/actions.js";
import { ChainPool } from "./service/chain-pool.js";
import { GroupCommit } from "./service/group-commit.js";
import { verifyOnChain, type VerifyResult } from "./service/verify.js";
import type { Store } from "./store.js";
import { ChainWorker } from "./worker.js";

export type { BulkItemResult, Client, IssueInput } from "./domain.js";
export type { VerifyCode, VerifyResult } from "./service/verify.js";
export { canonicalJson, requestRefOf, uuidV7 } from "./ids.js";

export class LicenseService {
  readonly clients: Map<number, ChainClient>;
  readonly workers = new Map<number, ChainWorker>();
  private readonly chains: ChainPool;
  private readonly group: GroupCommit;
  private readonly acceptor: Acceptor;
  private readonly keyed: KeyedActions;

  constructor(
    readonly config: Config,
    clients: ChainClient[],
    readonly store: Store,
    readonly logger: Logger,
    readonly metrics: Metrics,
    /** A read-only replica: no workers, no failover, every write is `READ_ONLY_REPLICA`. */
    readonly options: { readOnly?: boolean } = {},
  ) {
    this.clients = new Map(clients.map((c) => [c.chainId, c]));
    for (const client of clients) {
      const counters = new Map<string, { inc(): void }>();
      client.onRpc = (method) => {
        let counter = counters.get(method);
        if (!counter) {
          counter = metrics.rpcRequests.labels({ chain: client.config.name, method });
          counters.set(method, counter);
        }
        counter.inc();
      };
    }
    for (const client of options.readOnly ? [] : clients) {
      this.workers.set(
        client.chainId,
        new ChainWorker(
          client,
          store,
          { ...config.batching, ...config.transactions },
          logger.child({ chain: client.config.name }),
          metrics,
        ),
      );
    }
    this.chains = new ChainPool(
      this.clients,
      this.workers,
      store,
      config.health,
      logger,
      metrics,
      options.readOnly ?? false,
    );
    this.group = new GroupCommit(store, config.database, {
      created: (license) =>
        this.metrics.accepted.inc({ chain: this.clients.get(license.chainId)!.config.name }),
      committed: (chainIds) => {
        for (const chainId of chainIds) this.workers.get(chainId)?.notify();
      },
    });
    this.acceptor = new Acceptor(
      store,
      this.group,
      { has: (chainId) => this.clients.has(chainId), views: () => this.chains.chainViews() },
      config.policy,
      logger,
    );
    this.keyed = new KeyedActions(store, {
      client: (chainId) => this.clients.get(chainId)!,
      worker: (chainId) => this.workers.get(chainId)!,
      usable: (chainId) => this.chains.usable(chainId),
    });
    for (const product of config.products) this.store.addProduct(product);
  }

  /** First health probe, then workers, periodic probes and failover. */
  async start(): Promise<void> {
    await this.chains.probeAll();
    for (const worker of this.workers.values()) worker.start();
    this.chains.schedule();
  }

  async stop(): Promise<void> {
    this.group.commit();
    this.chains.stop();
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
    for (const client of this.clients.values()) client.destroy();
  }

  probeAll(): Promise<void> {
    return this.chains.probeAll();
  }

  /** Accepted (unsent) licenses on a down or disabled chain move to their next eligible chain. */
  failover(): void {
    this.chains.failover();
  }

  queueDepths(): Map<number, number> {
    return this.chains.queueDepths();
  }

  chainViews(): ChainView[] {
    return this.chains.chainViews();
  }

  chainsReport(): Record<string, unknown>[] {
    return this.chains.report();
  }

  ready(): boolean {
    return this.chains.ready();
  }

  products(): Product[] {
    return this.store.products();
  }

  addProduct(product: Product): Product {
    this.writable();
    for (const [i, id] of (product.chains ?? []).entries()) {
      if (!this.clients.has(id))
        throw new AppError("VALIDATION_FAILED", `unknown chain id ${id}`, { field: `chains.${i}` });
    }
    if (!this.store.addProduct(product))
      throw new AppError("PRODUCT_EXISTS", `product ${product.id} exists`, { field: "id" });
    return product;
  }

  /** See {@link Acceptor.accept}: settles once the insert's group commit committed. */
  accept(
    client: Client,
    input: IssueInput,
    idempotencyKey?: string,
  ): Promise<{ license: LicenseRecord; created: boolean }> {
    this.writable();
    return this.acceptor.accept(client, input, idempotencyKey);
  }

  /** See {@link Acceptor.acceptMany} (`POST /v1/licenses/batch`). */
  acceptMany(
    client: Client,
    items: readonly { input: IssueInput; idempotencyKey?: string }[],
  ): Promise<BulkItemResult[]> {
    this.writable();
    return this.acceptor.acceptMany(client, items);
  }

  /**
   * The license, if the client may see it (404 for other clients' licenses unless admin or platform:read);
   * `forChange`: if it may change it (only admin changes other clients' licenses).
   */
  get(client: Client, id: string, forChange = false): LicenseRecord {
    const license = this.store.getLicense(id);
    const others = forChange ? client.scopes.includes("admin") : seesAllClients(client);
    if (!license || (license.clientId !== client.id && !others)) {
      throw new AppError("NOT_FOUND", `no license ${id}`);
    }
    return license;
  }

  list(client: Client, filter: Omit<ListFilter, "clientId">): { items: LicenseRecord[]; next?: number } {
    return this.store.listLicenses(seesAllClients(client) ? filter : { ...filter, clientId: client.id });
  }

  /** Polls the store until the license is confirmed or failed, or `timeoutMs` passes. */
  async waitFor(id: string, timeoutMs: number): Promise<LicenseRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const license = this.store.getLicense(id)!;
      if (license.status === "confirmed" || license.status === "failed" || Date.now() >= deadline)
        return license;
      await sleep(50);
    }
  }

  /** Reads the license from its chain (`CHAIN_UNAVAILABLE` when the chain does not answer in time). */
  async verify(client: Client, id: string): Promise<VerifyResult> {
    const license = this.get(client, id);
    const chain = this.clients.get(license.chainId)!;
    const base = { chainId: license.chainId, contract: chain.config.contract };
    if (license.status !== "confirmed") return { ...base, code: "NOT_ISSUED", valid: false };
    try {
      return await verifyOnChain(chain, license, this.config.health.timeoutMs);
    } catch (error) {
      this.logger.warn({ license: id, chain: chain.config.name, err: errorFields(error) }, "verify failed");
      return { ...base, code: "CHAIN_UNAVAILABLE", valid: false, tokenId: license.tokenId };
    }
  }

  private confirmedOrThrow(client: Client, id: string): LicenseRecord & { status: "confirmed" } {
    const license = this.get(client, id, true);
    if (license.status !== "confirmed")
      throw new AppError("INVALID_STATE", `license ${id} is ${license.status}, not confirmed`);
    return license;
  }

  /**
   * Revokes on-chain. With an `idempotencyKey` (see {@link KeyedActions}): one revoke per key, a retry
   * answers the same license (`replayed`); without, a revoked license is answered as it is.
   */
  async revoke(client: Client, id: string, reason: string, idempotencyKey?: string): Promise<ActionResult> {
    this.writable();
    const license = this.get(client, id, true);
    const data = (): string => {
      const confirmed = this.confirmedOrThrow(client, id);
      return LICENSE_INTERFACE.encodeFunctionData("revoke", [
        confirmed.tokenId,
        encodeBytes32String(reason.slice(0, 31)),
      ]);
    };
    if (idempotencyKey !== undefined) {
      const seen = this.store.getAction(client.id, idempotencyKey);
      // revoked before (without this key): nothing to send, nothing to claim, as without a key
      if (!seen && license.revoked) return { license, replayed: false };
      return this.keyed.run(client, idempotencyKey, "revoke", license, { reason }, data);
    }
    const confirmed = this.confirmedOrThrow(client, id);
    if (confirmed.revoked) return { license: confirmed, replayed: false };
    await this.sendAction(license.chainId, data());
    this.store.setRevoked(id);
    return { license: this.store.getLicense(id)!, replayed: false };
  }

  /**
   * Extends a subscription on-chain (the contract adds `durationSeconds` on every call). With an
   * `idempotencyKey`: one renewal per key (see {@link KeyedActions}); without, every call renews.
   */
  async renew(
    client: Client,
    id: string,
    durationSeconds: number,
    idempotencyKey?: string,
  ): Promise<ActionResult> {
    this.writable();
    const data = (): string => {
      const license = this.confirmedOrThrow(client, id);
      if (license.revoked) throw new AppError("INVALID_STATE", `license ${id} is revoked`);
      if (license.expiresAt === 0) throw new AppError("INVALID_STATE", `license ${id} is perpetual`);
      return LICENSE_INTERFACE.encodeFunctionData("renewSubscription", [license.tokenId, durationSeconds]);
    };
    if (idempotencyKey !== undefined) {
      const license = this.get(client, id, true);
      return this.keyed.run(client, idempotencyKey, "renew", license, { durationSeconds }, data);
    }
    const license = this.confirmedOrThrow(client, id);
    await this.sendAction(license.chainId, data());
    const chain = this.clients.get(license.chainId)!;
    const record = (await chain.contract.getFunction("license")(BigInt(license.tokenId))) as {
      expiresAt: bigint;
    };
    this.store.setExpiry(id, Number(record.expiresAt));
    return { license: this.store.getLicense(id)!, replayed: false };
  }

  private writable(): void {
    if (this.options.readOnly)
      throw new AppError("READ_ONLY_REPLICA", "this instance is a read-only replica; write to the primary");
  }

  private async sendAction(chainId: number, data: string): Promise<void> {
    if (!this.chains.usable(chainId))
      throw new AppError("CHAIN_UNAVAILABLE", `chain ${chainId} is unavailable`);
    await this.workers.get(chainId)!.sendAction(data);
  }
}
