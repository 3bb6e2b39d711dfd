/**
 * The licensing domain: accepts issue requests (persist first, then hand to the chain's worker),
 * selects the chain, fails over before send, reads licenses back from the chains, renews and revokes.
 */
import { createHash, randomFillSync } from "node:crypto";
import { encodeBytes32String } from "ethers";
import type { Logger } from "pino";
import { ChainClient, LICENSE_INTERFACE, withTimeout } from "./chain.js";
import { keccakHex } from "./keccak.js";
import type { Config } from "./config.js";
import { AppError } from "./errors.js";
import type { Metrics } from "./metrics.js";
import { selectChain, type ChainView } from "./policies.js";
import type { InsertResult, LicenseRecord, ListFilter, NewLicenseItem, Product, Store } from "./store.js";
import { ChainWorker } from "./worker.js";

export interface IssueInput {
  productId: number;
  licensee: string;
  durationSeconds?: number;
  seats?: number;
  /** Chain ids the client asks for, in order of preference. */
  chains?: number[];
}

/** One item's outcome in a bulk accept: its license (new or replayed) or its own error. */
export type BulkItemResult = { license: LicenseRecord; created: boolean } | { error: AppError };

export interface Client {
  id: string;
  scopes: readonly string[];
}

export type VerifyCode = "VALID" | "EXPIRED" | "REVOKED" | "NOT_FOUND" | "NOT_ISSUED" | "CHAIN_UNAVAILABLE";

export interface VerifyResult {
  code: VerifyCode;
  valid: boolean;
  chainId: number;
  contract: string;
  tokenId?: string;
  owner?: string;
  expiresAt?: number;
  revoked?: boolean;
  blockNumber?: number;
  blockTimestamp?: number;
}

export class LicenseService {
  readonly clients: Map<number, ChainClient>;
  readonly workers = new Map<number, ChainWorker>();
  private sequence = 0;
  /** Inserts waiting for the next group commit. */
  private group: {
    item: NewLicenseItem;
    resolve: (result: InsertResult) => void;
    reject: (error: unknown) => void;
  }[] = [];
  /** Cancels the scheduled commit of the current group. */
  private cancelGroupTimer: (() => void) | undefined;
  /** Products by id (read once from the store; products are only ever added). */
  private readonly products_ = new Map<number, Product>();
  private timers: NodeJS.Timeout[] = [];
  private probing = false;

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
    for (const product of config.products) this.store.addProduct(product);
  }

  /** First health probe, then workers, periodic probes and failover. */
  async start(): Promise<void> {
    await this.probeAll();
    for (const worker of this.workers.values()) worker.start();
    this.timers.push(
      setInterval(() => {
        void this.probeAll();
      }, this.config.health.intervalMs),
    );
  }

  async stop(): Promise<void> {
    this.commitGroup();
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
    for (const client of this.clients.values()) client.destroy();
  }

  async probeAll(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await Promise.all(
        [...this.clients.values()].map(async (client) => {
          const before = client.health.healthy;
          const health = await client.probe(this.config.health.timeoutMs, this.config.health.failuresToDown);
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
    if (this.options.readOnly) return;
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

  private usable(chainId: number): boolean {
    const client = this.clients.get(chainId);
    return !!client && client.config.enabled && client.health.healthy;
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

  chainsReport(): Record<string, unknown>[] {
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
      signer: this.options.readOnly ? null : c.wallet.address,
      signerBalanceWei: c.health.signerBalanceWei?.toString() ?? null,
      feePerGasWei: c.health.feePerGasWei?.toString() ?? null,
    }));
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

  /**
   * Persists the request (or returns the one stored under the idempotency key). Validation, chain
   * selection and hashing run at once (their errors are thrown synchronously); the insert joins the
   * current group commit, and the promise settles once that transaction committed.
   */
  accept(
    client: Client,
    input: IssueInput,
    idempotencyKey?: string,
  ): Promise<{ license: LicenseRecord; created: boolean }> {
    this.writable();
    const product = this.checkInput(input, "");
    const prepared = this.prepare(client, product, input, idempotencyKey);
    if ("license" in prepared) return Promise.resolve(prepared);
    return this.enqueue(prepared.item).then((result) => this.settled(result));
  }

  /**
   * Accepts many requests at once (`POST /v1/licenses/batch`). Every item is validated first: an
   * invalid item (unknown product or chain, an idempotency key repeated within the request) throws
   * `VALIDATION_FAILED` naming `items.<index>.<field>` and nothing is accepted. Then each item is
   * accepted on its own terms, all in one group commit: its result is the license (`created` or an
   * idempotent replay) or its own error (`IDEMPOTENCY_CONFLICT`, `NO_CHAIN_AVAILABLE`, `INTERNAL`).
   */
  acceptMany(
    client: Client,
    items: readonly { input: IssueInput; idempotencyKey?: string }[],
  ): Promise<BulkItemResult[]> {
    this.writable();
    const keys = new Map<string, number>();
    const products = items.map(({ input, idempotencyKey }, i) => {
      if (idempotencyKey !== undefined) {
        const first = keys.get(idempotencyKey);
        if (first !== undefined) {
          throw new AppError(
            "VALIDATION_FAILED",
            `items.${i}.idempotencyKey: repeats the key of item ${first}`,
            { field: `items.${i}.idempotencyKey` },
          );
        }
        keys.set(idempotencyKey, i);
      }
      return this.checkInput(input, `items.${i}.`);
    });
    return this.acceptChunks(client, items, products);
  }

  /**
   * The items of a bulk request in chunks of {@link BULK_CHUNK}, at most one chunk (of all bulk requests)
   * per event-loop turn: under a full bulk load the handlers would otherwise take the one thread for all
   * their hashing and inserts, and each step of the chain workers (send, receipt, settle), which keeps the
   * chains busy, would wait behind them (measured: about 500 confirmations/s while accepting, against
   * about 2,000/s with this).
   */
  private async acceptChunks(
    client: Client,
    items: readonly { input: IssueInput; idempotencyKey?: string }[],
    products: readonly Product[],
  ): Promise<BulkItemResult[]> {
    const results: Promise<BulkItemResult>[] = [];
    for (let start = 0; start < items.length; start += BULK_CHUNK) {
      await this.turn();
      for (let i = start; i < Math.min(items.length, start + BULK_CHUNK); i++) {
        const { input, idempotencyKey } = items[i]!;
        try {
          const prepared = this.prepare(client, products[i]!, input, idempotencyKey);
          results.push(
            "license" in prepared
              ? Promise.resolve(prepared)
              : this.enqueue(prepared.item)
                  .then((result) => this.settled(result))
                  .catch((error: unknown) => ({ error: this.itemError(error) })),
          );
        } catch (error) {
          results.push(Promise.resolve({ error: this.itemError(error) }));
        }
      }
    }
    return Promise.all(results);
  }

  /** Bulk chunks waiting for their turn; one is let through per event-loop turn. */
  private readonly turns: (() => void)[] = [];
  private turnScheduled = false;

  private turn(): Promise<void> {
    return new Promise((resolve) => {
      this.turns.push(resolve);
      this.scheduleTurn();
    });
  }

  private scheduleTurn(): void {
    if (this.turnScheduled || this.turns.length === 0) return;
    this.turnScheduled = true;
    setImmediate(() => {
      this.turnScheduled = false;
      this.turns.shift()?.();
      this.scheduleTurn();
    });
  }

  /** A bulk item's error as a catalogue error; unexpected ones are logged and become `INTERNAL`. */
  private itemError(error: unknown): AppError {
    if (error instanceof AppError) return error;
    this.logger.error({ err: error }, "bulk item failed");
    return new AppError("INTERNAL", "internal error", { cause: error });
  }

  /** Product and chains of a request; `prefix` names the item in a bulk request. */
  private checkInput(input: IssueInput, prefix: string): Product {
    const product = this.products_.get(input.productId) ?? this.store.getProduct(input.productId);
    if (!product) {
      throw new AppError("VALIDATION_FAILED", `unknown product ${input.productId}`, {
        field: `${prefix}productId`,
      });
    }
    this.products_.set(product.id, product);
    for (const [i, id] of (input.chains ?? []).entries()) {
      if (!this.clients.has(id)) {
        const field = `${prefix}${input.chains!.length > 1 ? `chain.${i}` : "chain"}`;
        throw new AppError("VALIDATION_FAILED", `unknown chain id ${id}`, { field });
      }
    }
    return product;
  }

  /** Idempotent replay, or the new license row to insert (selection and hashes done). */
  private prepare(
    client: Client,
    product: Product,
    input: IssueInput,
    idempotencyKey: string | undefined,
  ): { license: LicenseRecord; created: false } | { item: NewLicenseItem } {
    const bodyHash = createHash("sha256").update(canonicalJson(input)).digest("hex");
    if (idempotencyKey) {
      // a retry must not need a healthy chain
      const existing = this.peekIdempotent(client.id, idempotencyKey, bodyHash);
      if (existing) return existing;
    }
    const selection = selectChain(this.config.policy, {
      chains: this.chainViews(),
      productId: product.id,
      ...(product.chains ? { productChains: product.chains } : {}),
      ...(input.chains ? { preferredChains: input.chains } : {}),
      sequence: this.sequence++,
    });
    if (!selection)
      throw new AppError("NO_CHAIN_AVAILABLE", "no enabled, healthy chain is allowed for this request");
    const id = uuidV7();
    const duration = input.durationSeconds ?? product.defaultDurationSeconds;
    const expiresAt = duration === 0 ? 0 : Math.floor(Date.now() / 1000) + duration;
    const seats = input.seats ?? 1;
    // Buffer.from(s, "utf8") gives the bytes of ethers' toUtf8Bytes(s) for well-formed strings (these are:
    // canonical JSON escapes lone surrogates), without its per-character JavaScript loop.
    const termsHash = keccakHex(
      Buffer.from(
        canonicalJson({
          id,
          productId: product.id,
          licensee: input.licensee.toLowerCase(),
          expiresAt,
          seats,
        }),
        "utf8",
      ),
    );
    return {
      item: {
        license: {
          id,
          clientId: client.id,
          productId: product.id,
          licensee: input.licensee,
          expiresAt,
          seats,
          requestRef: requestRefOf(id),
          termsHash,
          chainId: selection.chainId,
          policy: selection.policy,
          reason: selection.reason,
          candidates: selection.ordered,
        },
        ...(idempotencyKey ? { idempotency: { key: idempotencyKey, bodyHash } } : {}),
      },
    };
  }

  /** The outcome of a committed insert (new license, replay, or a conflicting key). */
  private settled(result: InsertResult): { license: LicenseRecord; created: boolean } {
    if (!result.created) {
      if (!result.sameBody)
        throw new AppError("IDEMPOTENCY_CONFLICT", "Idempotency-Key reused with another body", {
          field: "Idempotency-Key",
        });
      return { license: result.license, created: false };
    }
    return { license: result.license, created: true };
  }

  /** Joins the current group commit; resolves after its transaction committed. */
  private enqueue(item: NewLicenseItem): Promise<InsertResult> {
    return new Promise((resolve, reject) => {
      this.group.push({ item, resolve, reject });
      if (this.group.length >= this.config.database.groupCommitMaxSize) this.commitGroup();
      else if (!this.cancelGroupTimer) {
        const wait = this.config.database.groupCommitMs;
        if (wait === 0) {
          const immediate = setImmediate(() => this.commitGroup());
          this.cancelGroupTimer = () => clearImmediate(immediate);
        } else {
          const timer = setTimeout(() => this.commitGroup(), wait);
          this.cancelGroupTimer = () => clearTimeout(timer);
        }
      }
    });
  }

  /** Commits the collected inserts in one transaction, then answers each of them. */
  commitGroup(): void {
    this.cancelGroupTimer?.();
    this.cancelGroupTimer = undefined;
    const group = this.group.splice(0);
    if (group.length === 0) return;
    let results: (InsertResult | { error: unknown })[];
    try {
      results = this.store.insertLicenses(group.map((g) => g.item));
    } catch (error) {
      for (const g of group) g.reject(error);
      return;
    }
    const notify = new Set<number>();
    for (const [i, g] of group.entries()) {
      const result = results[i]!;
      if ("error" in result) {
        g.reject(result.error);
        continue;
      }
      if (result.created) {
        this.metrics.accepted.inc({ chain: this.clients.get(result.license.chainId)!.config.name });
        notify.add(result.license.chainId);
      }
      g.resolve(result);
    }
    for (const chainId of notify) this.workers.get(chainId)?.notify();
  }

  private peekIdempotent(
    clientId: string,
    key: string,
    bodyHash: string,
  ): { license: LicenseRecord; created: false } | undefined {
    const found = this.store.findIdempotent(clientId, key);
    if (!found) return undefined;
    if (found.bodyHash !== bodyHash) {
      throw new AppError("IDEMPOTENCY_CONFLICT", "Idempotency-Key reused with another body", {
        field: "Idempotency-Key",
      });
    }
    return { license: found.license, created: false };
  }

  /** The license, if the client may see it (404 for other clients' licenses unless admin). */
  get(client: Client, id: string): LicenseRecord {
    const license = this.store.getLicense(id);
    if (!license || (license.clientId !== client.id && !client.scopes.includes("admin"))) {
      throw new AppError("NOT_FOUND", `no license ${id}`);
    }
    return license;
  }

  list(client: Client, filter: Omit<ListFilter, "clientId">): { items: LicenseRecord[]; next?: number } {
    return this.store.listLicenses(
      client.scopes.includes("admin") ? filter : { ...filter, clientId: client.id },
    );
  }

  /** Polls the store until the license is confirmed or failed, or `timeoutMs` passes. */
  async waitFor(id: string, timeoutMs: number): Promise<LicenseRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const license = this.store.getLicense(id)!;
      if (license.status === "confirmed" || license.status === "failed" || Date.now() >= deadline)
        return license;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Reads the license from its chain. */
  async verify(client: Client, id: string): Promise<VerifyResult> {
    const license = this.get(client, id);
    const chain = this.clients.get(license.chainId)!;
    const base = { chainId: license.chainId, contract: chain.config.contract };
    if (license.status !== "confirmed") return { ...base, code: "NOT_ISSUED", valid: false };
    const tokenId = BigInt(license.tokenId);
    try {
      return await withTimeout(
        (async (): Promise<VerifyResult> => {
          const block = await chain.provider.getBlock("latest");
          if (!block) throw new Error("no latest block");
          const tag = { blockTag: block.number };
          // the token must be the one issued for this request (not another token with the same id)
          const issuedFor = (await chain.contract.getFunction("tokenOfRequest")(
            license.requestRef,
            tag,
          )) as bigint;
          if (issuedFor !== tokenId) {
            return {
              ...base,
              code: "NOT_FOUND",
              valid: false,
              tokenId: license.tokenId,
              blockNumber: block.number,
            };
          }
          let owner: string;
          try {
            owner = (await chain.contract.getFunction("ownerOf")(tokenId, tag)) as string;
          } catch (error) {
            if (
              /ERC721NonexistentToken|0x7e273289/.test(
                String((error as Error).message) + JSON.stringify((error as { data?: unknown }).data ?? ""),
              )
            ) {
              return {
                ...base,
                code: "NOT_FOUND",
                valid: false,
                tokenId: license.tokenId,
                blockNumber: block.number,
              };
            }
            throw error;
          }
          const record = (await chain.contract.getFunction("license")(tokenId, tag)) as {
            expiresAt: bigint;
            revoked: boolean;
          };
          const valid = (await chain.contract.getFunction("isValid")(tokenId, tag)) as boolean;
          const expiresAt = Number(record.expiresAt);
          const code: VerifyCode = record.revoked
            ? "REVOKED"
            : expiresAt !== 0 && expiresAt <= block.timestamp
              ? "EXPIRED"
              : valid
                ? "VALID"
                : "NOT_FOUND";
          return {
            ...base,
            code,
            valid,
            tokenId: license.tokenId,
            owner,
            expiresAt,
            revoked: record.revoked,
            blockNumber: block.number,
            blockTimestamp: block.timestamp,
          };
        })(),
        this.config.health.timeoutMs,
      );
    } catch (error) {
      this.logger.warn(
        { license: id, chain: chain.config.name, err: String(error).slice(0, 200) },
        "verify failed",
      );
      return { ...base, code: "CHAIN_UNAVAILABLE", valid: false, tokenId: license.tokenId };
    }
  }

  private confirmedOrThrow(client: Client, id: string): LicenseRecord & { status: "confirmed" } {
    const license = this.get(client, id);
    if (license.status !== "confirmed")
      throw new AppError("INVALID_STATE", `license ${id} is ${license.status}, not confirmed`);
    return license;
  }

  async revoke(client: Client, id: string, reason: string): Promise<LicenseRecord> {
    this.writable();
    const license = this.confirmedOrThrow(client, id);
    if (license.revoked) return license;
    const data = LICENSE_INTERFACE.encodeFunctionData("revoke", [
      license.tokenId,
      encodeBytes32String(reason.slice(0, 31)),
    ]);
    await this.sendAction(license.chainId, data);
    this.store.setRevoked(id);
    return this.store.getLicense(id)!;
  }

  async renew(client: Client, id: string, durationSeconds: number): Promise<LicenseRecord> {
    this.writable();
    const license = this.confirmedOrThrow(client, id);
    if (license.revoked) throw new AppError("INVALID_STATE", `license ${id} is revoked`);
    if (license.expiresAt === 0) throw new AppError("INVALID_STATE", `license ${id} is perpetual`);
    const data = LICENSE_INTERFACE.encodeFunctionData("renewSubscription", [
      license.tokenId,
      durationSeconds,
    ]);
    await this.sendAction(license.chainId, data);
    const chain = this.clients.get(license.chainId)!;
    const record = (await chain.contract.getFunction("license")(BigInt(license.tokenId))) as {
      expiresAt: bigint;
    };
    this.store.setExpiry(id, Number(record.expiresAt));
    return this.store.getLicense(id)!;
  }

  private writable(): void {
    if (this.options.readOnly)
      throw new AppError("READ_ONLY_REPLICA", "this instance is a read-only replica; write to the primary");
  }

  private async sendAction(chainId: number, data: string): Promise<void> {
    if (!this.usable(chainId)) throw new AppError("CHAIN_UNAVAILABLE", `chain ${chainId} is unavailable`);
    await this.workers.get(chainId)!.sendAction(data);
  }

  ready(): boolean {
    return [...this.clients.values()].some((c) => c.config.enabled && c.health.healthy);
  }
}

const uuidPool = Buffer.alloc(16 * 256);
let uuidPoolAt = uuidPool.length;

/**
 * A time-ordered UUID (RFC 9562 version 7: 48-bit Unix milliseconds, then random bits) for license ids:
 * consecutive licenses land next to each other in the id index, so a group commit of many accepts
 * writes a few index pages instead of one random page per license (random v4 ids did).
 */
export function uuidV7(now: number = Date.now()): string {
  if (uuidPoolAt + 16 > uuidPool.length) {
    // random bytes fetched 256 ids at a time (one call per id cost more than the rest of the id)
    randomFillSync(uuidPool);
    uuidPoolAt = 0;
  }
  const bytes = Buffer.from(uuidPool.subarray(uuidPoolAt, uuidPoolAt + 16));
  uuidPoolAt += 16;
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Items of a bulk request handled per event-loop turn (see `acceptChunks`). */
const BULK_CHUNK = 100;

/** The on-chain request reference of a license: keccak256 of the UTF-8 bytes of `license:<id>`. */
export function requestRefOf(id: string): string {
  return keccakHex(Buffer.from(`license:${id}`, "utf8"));
}

/** JSON with sorted keys (stable body hashes). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
