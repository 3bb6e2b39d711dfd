/**
 * Exactly-once group commit: slices of several source partitions replicated at the same time share one
 * destination transaction, which holds their records and their source positions and commits once. One
 * group serves every topic of a datacenter pair (./engine/link.ts): slices of many topics share a transaction.
 *
 * A kafkajs transactional producer has one open transaction at a time, and it sends one request per
 * broker at a time. Giving each partition's slice a transaction of its own (add partitions, produce, add
 * offsets, commit offsets, end: five round trips) made exactly-once replicate one partition after
 * another. Here slices hand over their records (already cut into requests within the destination's batch
 * limit) and their source positions; whatever arrives while a transaction is being committed, or in the
 * same turn of the event loop, goes into the next one. A transaction then sends the records of all its
 * slices together — one produce request (every target topic) per "wave", the n-th request of every slice in the n-th wave, so
 * each partition keeps its order — then the positions of all slices (`sendOffsets`), then `commit`.
 * If anything fails, the transaction is aborted and every slice in it gets the error (its records are
 * replicated again; a `read_committed` reader never sees the aborted copy). A slice sent `alone` (the
 * bisection after a refusal, ./engine/faults.ts) has a transaction of its own; an empty one commits
 * only its position (past a record that went to the dead-letter topic).
 */
import type { Message, Producer, Transaction } from "kafkajs";
import { errorText } from "../common/log.js";
import { ReplicatorError } from "./errors.js";

export interface SourcePosition {
  topic: string;
  partition: number;
  /** The next source offset to replicate (the last replicated offset + 1). */
  offset: string;
}

/** One request's records of one target topic (within the destination's batch limit). */
export interface TopicRequest {
  topic: string;
  messages: Message[];
}

/**
 * Sends one produce request inside the transaction — the records of one wave, by target topic — and
 * checks that every partition acknowledged.
 */
export type TransactionalSend = (txn: Transaction, topicMessages: TopicRequest[]) => Promise<void>;

interface Round {
  positions: SourcePosition[];
  /** Per slice, its requests in order (each within the destination's batch limit). */
  requests: TopicRequest[][];
  done: Promise<void>;
  settle: (error?: unknown) => void;
}

function newRound(): Round {
  let settle!: (error?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (error) => (error === undefined ? resolve() : reject(error));
  });
  // Every slice awaits `done`; this keeps a rejection from being reported as unhandled in between.
  done.catch(() => undefined);
  return { positions: [], requests: [], done, settle };
}

export class TransactionGroup {
  /** Rounds waiting, in order; the last takes new slices unless it is a slice's own. */
  private readonly queue: (Round & { alone: boolean })[] = [];
  private committing = false;
  private scheduled = false;
  /** A round failed and the producer could not be renewed then (destination out of reach): renew first. */
  private stale = false;

  constructor(
    private producer: Pick<Producer, "transaction">,
    /** The consumer group (in the destination cluster) that stores the source positions. */
    private readonly groupId: string,
    private readonly sendRequest: TransactionalSend,
    /**
     * A new producer of the same transactional id, after an aborted transaction. kafkajs 2.2.4 winds back
     * the sequence numbers of every partition of a failed produce request, also of those the broker
     * wrote; the broker would then take the next records of such a partition for duplicates of the
     * aborted ones and drop them. A new producer id and epoch start the sequences afresh.
     */
    private readonly renew?: () => Promise<Pick<Producer, "transaction">>,
  ) {}

  /**
   * Adds one slice — its records, cut into requests, and the source position after it — to the next
   * transaction; resolves once that transaction is committed and rejects if it was aborted. A caller
   * waits for this before it adds the next slice of the same partition.
   */
  run(
    position: SourcePosition | undefined,
    requests: TopicRequest[],
    options: { alone?: boolean } = {},
  ): Promise<void> {
    const alone = options.alone === true;
    let round = this.queue[this.queue.length - 1];
    if (!round || round.alone || alone) {
      // A slice retried after a refusal gets a transaction of its own: another slice's records cannot
      // fail it, and it cannot fail theirs.
      round = { ...newRound(), alone };
      this.queue.push(round);
    }
    if (position) round.positions.push(position);
    round.requests.push(requests);
    this.schedule();
    return round.done;
  }

  /**
   * Resolves once a turn of its own ran on a producer initialised since the last failure (a failed round
   * renews the producer, now or before the next round; the new one's first transaction initialises the
   * id). The broker answers that initialisation only after it completed or aborted a transaction of the
   * earlier producer still pending — a commit whose answer was lost when the destination went away may
   * have gone through — so positions read from the destination group afterwards are final.
   */
  settled(): Promise<void> {
    return this.run(undefined, [], { alone: true });
  }

  private schedule(): void {
    if (this.committing || this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    // Let the other partitions ready in this turn of the event loop join first.
    setImmediate(() => {
      this.scheduled = false;
      void this.commitNext();
    });
  }

  private async commitNext(): Promise<void> {
    if (this.committing) return;
    const round = this.queue.shift();
    if (!round) return;
    this.committing = true;
    let txn: Transaction | undefined;
    try {
      // The producer of a failed round may think its id initialised; only a new one's first transaction
      // initialises it again, which waits for a pending commit of the old one (settled() relies on it).
      if (this.stale && this.renew) {
        this.producer = await this.renew();
        this.stale = false;
      }
      txn = await this.producer.transaction();
      const waves = Math.max(0, ...round.requests.map((r) => r.length));
      for (let wave = 0; wave < waves; wave++) {
        const byTarget = new Map<string, Message[]>();
        for (const slice of round.requests) {
          const request = slice[wave];
          if (!request || request.messages.length === 0) continue;
          const messages = byTarget.get(request.topic);
          if (messages) messages.push(...request.messages);
          else byTarget.set(request.topic, [...request.messages]);
        }
        if (byTarget.size > 0)
          await this.sendRequest(
            txn,
            [...byTarget].map(([topic, messages]) => ({ topic, messages })),
          );
      }
      const byTopic = new Map<string, { partition: number; offset: string }[]>();
      for (const p of round.positions) {
        byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), { partition: p.partition, offset: p.offset }]);
      }
      try {
        if (byTopic.size > 0)
          await txn.sendOffsets({
            consumerGroupId: this.groupId,
            topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
          });
        await txn.commit(); // nothing added (settled()): no request
      } catch (error) {
        // Every record was sent: whatever the error says (kafkajs throws TypeErrors on a lost
        // connection too), it is not the records', and the commit may have gone through.
        throw new ReplicatorError(
          "TRANSACTION_OUTCOME_UNKNOWN",
          `transaction not confirmed: ${errorText(error)}`,
          {
            cause: error,
          },
        );
      }
      round.settle();
    } catch (error) {
      await txn?.abort().catch(() => undefined);
      this.stale = true;
      if (this.renew) {
        try {
          this.producer = await this.renew();
          this.stale = false;
        } catch {
          // renewed before the next round (which fails and is retried while the destination is away)
        }
      }
      round.settle(error ?? new ReplicatorError("TRANSACTION_FAILED", "transaction failed"));
    } finally {
      this.committing = false;
      this.schedule();
    }
  }
}
