/**
 * Accepting issue requests: validation, idempotent replay (by `Idempotency-Key` and body hash), chain
 * selection, ids and hashes, then the insert joins the group commit. Bulk requests are handled in
 * chunks, one chunk per event-loop turn.
 */
import type { Logger } from "pino";
import type { Config } from "../config.js";
import type {
  BulkItemResult,
  Client,
  InsertResult,
  IssueInput,
  LicenseRecord,
  NewLicenseItem,
  Product,
} from "../domain.js";
import { errorFields } from "../../common/log.js";
import { AppError } from "../errors.js";
import { bodyHash, canonicalJson, requestRefOf, uuidV7 } from "../ids.js";
import { keccakHex } from "../keccak.js";
import { selectChain, type ChainView } from "../policies.js";
import type { LicenseStore, ProductStore } from "../store/types.js";
import type { GroupCommit } from "./group-commit.js";

/** Items of a bulk request handled per event-loop turn (see `acceptChunks`). */
const BULK_CHUNK = 100;

type Accepted = { license: LicenseRecord; created: boolean };

export class Acceptor {
  /** Round-robin position of the selection policies. */
  private sequence = 0;
  /** Products by id (read once from the store; products are only ever added). */
  private readonly products = new Map<number, Product>();
  /** Bulk chunks waiting for their turn; one is let through per event-loop turn. */
  private readonly turns: (() => void)[] = [];
  private turnScheduled = false;

  constructor(
    private readonly store: Pick<LicenseStore, "findIdempotent"> & Pick<ProductStore, "getProduct">,
    private readonly group: GroupCommit,
    private readonly chains: { has(chainId: number): boolean; views(): ChainView[] },
    private readonly policy: Config["policy"],
    private readonly logger: Logger,
  ) {}

  /**
   * Persists the request (or returns the one stored under the idempotency key). Validation, chain
   * selection and hashing run at once (their errors are thrown synchronously); the insert joins the
   * current group commit, and the promise settles once that transaction committed.
   */
  accept(client: Client, input: IssueInput, idempotencyKey?: string): Promise<Accepted> {
    const product = this.checkInput(input, "");
    const prepared = this.prepare(client, product, input, idempotencyKey);
    if ("license" in prepared) return Promise.resolve(prepared);
    return this.group.enqueue(prepared.item).then((result) => this.settled(result));
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
              : this.group
                  .enqueue(prepared.item)
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
    this.logger.error({ err: errorFields(error) }, "bulk item failed");
    return new AppError("INTERNAL", "internal error", { cause: error });
  }

  /** Product and chains of a request; `prefix` names the item in a bulk request. */
  private checkInput(input: IssueInput, prefix: string): Product {
    const product = this.products.get(input.productId) ?? this.store.getProduct(input.productId);
    if (!product) {
      throw new AppError("VALIDATION_FAILED", `unknown product ${input.productId}`, {
        field: `${prefix}productId`,
      });
    }
    this.products.set(product.id, product);
    for (const [i, id] of (input.chains ?? []).entries()) {
      if (!this.chains.has(id)) {
        const field = `${prefix}${input.chains!.length > 1 ? `chain.${i}` : "chain"}`;
        throw new AppError("VALIDATION_FAILED", `unknown chain id ${id}`, { field });
      }
    }
    // asking only for chains the product is not offered on can never succeed: the client's error, not a 503
    if (product.chains && input.chains && !input.chains.some((id) => product.chains!.includes(id))) {
      throw new AppError(
        "VALIDATION_FAILED",
        `product ${product.id} is issued only on chains ${product.chains.join(", ")}`,
        { field: `${prefix}chain` },
      );
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
    const inputHash = bodyHash(input);
    if (idempotencyKey) {
      // a retry must not need a healthy chain
      const existing = this.peekIdempotent(client.id, idempotencyKey, inputHash);
      if (existing) return existing;
    }
    const selection = selectChain(this.policy, {
      chains: this.chains.views(),
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
        ...(idempotencyKey ? { idempotency: { key: idempotencyKey, bodyHash: inputHash } } : {}),
      },
    };
  }

  /** The outcome of a committed insert (new license, replay, or a conflicting key). */
  private settled(result: InsertResult): Accepted {
    if (!result.created) {
      if (!result.sameBody)
        throw new AppError("IDEMPOTENCY_CONFLICT", "Idempotency-Key reused with another body", {
          field: "Idempotency-Key",
        });
      return { license: result.license, created: false };
    }
    return { license: result.license, created: true };
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
}
