/**
 * Two fixes for kafkajs 2.2.4's transactions, which took 9 round trips and a metadata refresh each where
 * 5 round trips do (400 transactions of 8 records with offsets on one local broker: p50 13.5–14.6 ms
 * before, 8.4–11 ms after; docs/replicator.md "Throughput").
 *
 * **Coordinator cache.** kafkajs asks a broker for the coordinator before every coordinator request.
 *
 * `Cluster.findGroupCoordinator()` sends a FindCoordinator request each time it is called, and the
 * transactional producer calls it before AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit (the group
 * coordinator) and EndTxn: four extra round trips in every transaction, nine instead of five, each
 * queued on a broker connection shared with the produce requests. The Java client looks a coordinator
 * up once and keeps it until a request to it fails with a coordinator error; this does the same:
 *
 * - `findGroupCoordinator` answers from the cache (coordinator type, group or transactional id → node
 *   id) when it holds a fresh entry and that broker is still known, and asks the broker otherwise;
 * - a coordinator request (transactions, consumer groups) that fails with a coordinator error
 *   (`COORDINATOR_LOAD_IN_PROGRESS`, `COORDINATOR_NOT_AVAILABLE`, `NOT_COORDINATOR`: codes 14–16) or
 *   without a protocol error code (connection lost, timeout) drops every entry naming that node id, so
 *   kafkajs's own retry looks the coordinator up again; other errors (e.g. `CONCURRENT_TRANSACTIONS`)
 *   keep it;
 * - an entry lives at most {@link COORDINATOR_TTL_MS} in any case.
 *
 * Node ids are the same across clusters (every single-node cluster has node 1): a failure drops the
 * node's entries of every cluster, which costs at most one more look-up elsewhere.
 *
 * **CONCURRENT_TRANSACTIONS at the broker call.** The transaction coordinator answers
 * `CONCURRENT_TRANSACTIONS` to AddPartitionsToTxn and AddOffsetsToTxn while it still writes the previous
 * transaction's commit markers: normal, and here the case of nearly every transaction, since they follow
 * each other closely. kafkajs's producer treats it as any retriable error of a send: it refreshes the
 * cluster metadata (one Metadata request per transaction) and retries the whole send after the
 * producer's retry backoff. {@link retryingConcurrentTransactions} retries just that request after
 * {@link CONCURRENT_TRANSACTIONS_BACKOFF_MS} (1 ms, growing; about 1 s in all) as the Java producer does;
 * only if the coordinator is still busy after that does the error reach kafkajs's own retry.
 *
 * Installed process-wide by patching kafkajs's prototypes, only for the verified kafkajs version;
 * `LP_KAFKAJS_TRANSACTIONS=kafkajs` keeps kafkajs's own behaviour.
 */
import { createRequire } from "node:module";
import { sleep } from "../../common/time.js";
import { CONCURRENT_TRANSACTIONS, protocolErrorCode } from "../protocol.js";
import { installPatch, type PatchState } from "../version.js";

const require = createRequire(import.meta.url);

/** An entry's longest life even without a failure (ms). */
export const COORDINATOR_TTL_MS = 30_000;
/** Kafka error codes that mean "ask for the coordinator again". */
export const COORDINATOR_ERROR_CODES: ReadonlySet<number> = new Set([14, 15, 16]);
/** Broker methods that talk to a group or transaction coordinator. */
export const COORDINATOR_METHODS = [
  "addPartitionsToTxn",
  "addOffsetsToTxn",
  "txnOffsetCommit",
  "endTxn",
  "joinGroup",
  "syncGroup",
  "heartbeat",
  "leaveGroup",
  "offsetCommit",
  "offsetFetch",
] as const;

/** Waits before each retry of a request answered CONCURRENT_TRANSACTIONS (ms; 1,022 ms in all). */
export const CONCURRENT_TRANSACTIONS_BACKOFF_MS: readonly number[] = [
  1, 1, 2, 2, 4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256,
];
/** The broker requests of a transaction that the coordinator answers CONCURRENT_TRANSACTIONS. */
export const CONCURRENT_TRANSACTIONS_METHODS = ["addPartitionsToTxn", "addOffsetsToTxn"] as const;

/**
 * A broker request retried, after the waits of `backoffMs`, while it fails with CONCURRENT_TRANSACTIONS;
 * the last failure (or any other error) is thrown.
 */
export function retryingConcurrentTransactions<T, A extends unknown[], R>(
  original: (this: T, ...args: A) => Promise<R>,
  backoffMs: readonly number[] = CONCURRENT_TRANSACTIONS_BACKOFF_MS,
  wait: (ms: number) => Promise<void> = sleep,
): (this: T, ...args: A) => Promise<R> {
  return async function (this: T, ...args: A): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await original.apply(this, args);
      } catch (error) {
        if (protocolErrorCode(error) !== CONCURRENT_TRANSACTIONS || attempt >= backoffMs.length) throw error;
        await wait(backoffMs[attempt]!);
      }
    }
  };
}

/** Whether a failed coordinator request means the cached coordinator may be wrong. */
export function invalidatesCoordinator(error: unknown): boolean {
  const code = protocolErrorCode(error);
  return code === undefined || COORDINATOR_ERROR_CODES.has(code);
}

/**
 * Coordinator node ids by key. A failure of node n bumps n's generation; an entry is valid only while
 * its node's generation is the one it was stored with, so one failure drops all the node's entries
 * without visiting them.
 */
export class CoordinatorCache {
  private readonly entries = new Map<string, { nodeId: number; at: number; generation: number }>();

  constructor(
    private readonly generations: Map<number, number>,
    private readonly ttlMs = COORDINATOR_TTL_MS,
  ) {}

  get(key: string, now: number): number | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (now - entry.at > this.ttlMs || (this.generations.get(entry.nodeId) ?? 0) !== entry.generation) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.nodeId;
  }

  set(key: string, nodeId: number, now: number): void {
    this.entries.set(key, { nodeId, at: now, generation: this.generations.get(nodeId) ?? 0 });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}

/** Marks every cached entry naming `nodeId` as stale (in all caches sharing `generations`). */
export function invalidateNode(generations: Map<number, number>, nodeId: number): void {
  generations.set(nodeId, (generations.get(nodeId) ?? 0) + 1);
}

interface BrokerLike {
  nodeId: number;
}
interface ClusterLike {
  findBroker(args: { nodeId: number }): Promise<BrokerLike>;
  findGroupCoordinator(args: { groupId: string; coordinatorType?: number }): Promise<BrokerLike>;
}
type FindCoordinator = ClusterLike["findGroupCoordinator"];

const GENERATIONS = new Map<number, number>();
const CACHE = Symbol("lp.coordinatorCache");

/** kafkajs's findGroupCoordinator with the cache in front of it. */
export function cachedFindGroupCoordinator(
  original: FindCoordinator,
  generations: Map<number, number> = GENERATIONS,
): FindCoordinator {
  return async function (this: ClusterLike & { [CACHE]?: CoordinatorCache }, args) {
    const cache = (this[CACHE] ??= new CoordinatorCache(generations));
    const key = `${args.coordinatorType ?? 0}:${args.groupId}`;
    const nodeId = cache.get(key, Date.now());
    if (nodeId !== undefined) {
      try {
        return await this.findBroker({ nodeId });
      } catch {
        cache.delete(key); // the broker left the cluster: ask again
      }
    }
    const broker = await original.call(this, args);
    cache.set(key, broker.nodeId, Date.now());
    return broker;
  };
}

/** A broker method that drops its node's cached coordinator entries when it fails with a coordinator error. */
export function invalidatingOnFailure<A extends unknown[], R>(
  original: (this: BrokerLike, ...args: A) => Promise<R>,
  generations: Map<number, number> = GENERATIONS,
): (this: BrokerLike, ...args: A) => Promise<R> {
  return async function (this: BrokerLike, ...args: A): Promise<R> {
    try {
      return await original.apply(this, args);
    } catch (error) {
      if (invalidatesCoordinator(error)) invalidateNode(generations, this.nodeId);
      throw error;
    }
  };
}

export type TransactionFixesState = PatchState;
let installed: TransactionFixesState | undefined;

/** Patches kafkajs in this process (idempotent); returns whether the fixes are active and why not. */
export function installTransactionFixes(env: NodeJS.ProcessEnv = process.env): TransactionFixesState {
  installed ??= installPatch(env, "LP_KAFKAJS_TRANSACTIONS", "kafkajs", () => {
    const Cluster = require("kafkajs/src/cluster/index.js") as { prototype?: Partial<ClusterLike> };
    const Broker = require("kafkajs/src/broker/index.js") as {
      prototype?: Record<string, ((...args: unknown[]) => Promise<unknown>) | undefined>;
    };
    const find = Cluster.prototype?.findGroupCoordinator;
    const brokerProto = Broker.prototype;
    const missing = COORDINATOR_METHODS.filter((m) => typeof brokerProto?.[m] !== "function");
    if (typeof find !== "function" || !brokerProto || missing.length > 0) {
      return {
        active: false,
        reason: `kafkajs Cluster.findGroupCoordinator or Broker.${missing.join("/") || "?"} not found`,
      };
    }
    Cluster.prototype!.findGroupCoordinator = cachedFindGroupCoordinator(find);
    for (const method of CONCURRENT_TRANSACTIONS_METHODS) {
      brokerProto[method] = retryingConcurrentTransactions(
        brokerProto[method] as (this: BrokerLike, ...args: unknown[]) => Promise<unknown>,
      );
    }
    for (const method of COORDINATOR_METHODS) {
      brokerProto[method] = invalidatingOnFailure(
        brokerProto[method] as (this: BrokerLike, ...args: unknown[]) => Promise<unknown>,
      ) as (...args: unknown[]) => Promise<unknown>;
    }
    return { active: true };
  });
  return installed;
}
