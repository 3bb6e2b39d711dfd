/**
 * Exactly-once group commit: slices of several source partitions replicated at the same time share one
 * destination transaction, which holds their records and their source positions and commits once.
 *
 * A kafkajs transactional producer has one open transaction at a time. Giving each partition's slice a
 * transaction of its own (begin, produce, add offsets, commit: five round trips) made exactly-once
 * replicate one partition after another. Here every slice that starts while a transaction is open joins
 * it; the last member to finish its sends seals the transaction, and the positions of all members are
 * committed with the records (`sendOffsets`) in one `commit`. If any member fails, the whole
 * transaction is aborted and every member gets the error (its records are replicated again, and a
 * `read_committed` reader never sees the aborted copy). Slices that arrive after the seal wait for the
 * commit and open the next transaction.
 */
import type { Producer, Transaction } from "kafkajs";

export interface SourcePosition {
  topic: string;
  partition: number;
  /** The next source offset to replicate (the last replicated offset + 1). */
  offset: string;
}

interface Round {
  txn: Transaction;
  members: number;
  sealed: boolean;
  positions: SourcePosition[];
  failure?: { error: unknown };
  done: Promise<void>;
  settle: (error?: unknown) => void;
}

export class TransactionGroup {
  private current?: Round;
  private opening?: Promise<void>;
  private committing: Promise<void> = Promise.resolve();

  constructor(
    private readonly producer: Pick<Producer, "transaction">,
    /** The consumer group (in the destination cluster) that stores the source positions. */
    private readonly groupId: string,
  ) {}

  /**
   * Runs `work` (the sends of one slice) inside the shared transaction; resolves once the transaction,
   * with `position`, is committed, and rejects if it was aborted.
   */
  async run(position: SourcePosition, work: (txn: Transaction) => Promise<void>): Promise<void> {
    const round = await this.join();
    try {
      await work(round.txn);
      round.positions.push(position);
    } catch (error) {
      round.failure ??= { error };
    } finally {
      round.members--;
      if (round.members === 0) this.finish(round);
    }
    return round.done;
  }

  private async join(): Promise<Round> {
    for (;;) {
      const open = this.current;
      if (open && !open.sealed) {
        open.members++;
        return open;
      }
      this.opening ??= this.open().finally(() => {
        this.opening = undefined;
      });
      await this.opening;
    }
  }

  private async open(): Promise<void> {
    await this.committing;
    const txn = await this.producer.transaction();
    let settle!: (error?: unknown) => void;
    const done = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    // Members await `done`; this keeps a rejection that settles first from being reported as unhandled.
    done.catch(() => undefined);
    this.current = { txn, members: 0, sealed: false, positions: [], done, settle };
  }

  private finish(round: Round): void {
    round.sealed = true;
    if (this.current === round) this.current = undefined;
    this.committing = (async () => {
      try {
        if (round.failure) throw round.failure.error;
        const byTopic = new Map<string, { partition: number; offset: string }[]>();
        for (const p of round.positions) {
          byTopic.set(p.topic, [
            ...(byTopic.get(p.topic) ?? []),
            { partition: p.partition, offset: p.offset },
          ]);
        }
        await round.txn.sendOffsets({
          consumerGroupId: this.groupId,
          topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
        });
        await round.txn.commit();
        round.settle();
      } catch (error) {
        await round.txn.abort().catch(() => undefined);
        round.settle(error ?? new Error("transaction failed"));
      }
    })();
  }
}
