/**
 * How one slice reaches the destination when something refuses it (the MirrorMaker 2 `MirrorSourceTask`
 * send path, with Kafka Connect's `errors.tolerance` / dead-letter queue role): a refusal is narrowed to
 * its record by bisection (./faults.ts), the record gets the pipeline's error policy — dead-letter
 * (./dead-letter.ts) and go on, or stop — and a failure says where its partition resumes.
 */
import type { KafkaMessage, Message } from "kafkajs";
import type { Logger } from "pino";
import type { Pipeline } from "../plan.js";
import { ReplicatorError } from "../errors.js";
import type { TopicRequest, TransactionGroup } from "../transactions.js";
import { errorFields, errorText } from "../../common/log.js";
import { DeadLetterWriter, deadLetterMessage, deadLetterTopicOf, errorPolicyOf } from "./dead-letter.js";
import type { Datacenters } from "./datacenters.js";
import { bisect, classifyFailure, PartialDelivery, RefusedRecord } from "./faults.js";
import { unitRequests, type Slice, type SliceUnit } from "./slicing.js";
import type { EngineContext } from "./types.js";

/** A failed slice: the first offset not acknowledged (where its partition resumes) and why. */
export class SliceFailure extends Error {
  constructor(
    readonly resumeAt: string | undefined,
    override readonly cause: unknown,
  ) {
    super(errorText(cause));
  }
}

export class SliceDelivery {
  private deadLetter?: DeadLetterWriter;

  constructor(
    private readonly ctx: EngineContext,
    private readonly dcs: Datacenters,
    private readonly pipeline: Pipeline,
    private readonly log: Logger,
    /** The destination's batch limit (known once the pipeline started). */
    private readonly maxBatchBytes: () => number,
  ) {}

  async close(): Promise<void> {
    await this.deadLetter?.close();
  }

  /**
   * At-least-once: sends a slice. A refusal is narrowed to its record (./faults.ts `bisect`); under the
   * dead-letter policy that record goes to the dead-letter topic and the slice goes on. Rejects with a
   * {@link SliceFailure}: where the partition resumes, and whether it stops.
   */
  async atLeastOnce(
    partition: number,
    slice: Slice,
    firstOffset: string,
    deliver: (messages: Message[]) => Promise<void>,
  ): Promise<void> {
    const sendUnits = async (group: readonly SliceUnit[]) => {
      let done = 0;
      for (const request of unitRequests(slice, group, this.maxBatchBytes())) {
        try {
          await deliver(request.messages);
        } catch (error) {
          throw new PartialDelivery(done, error);
        }
        done = request.units;
      }
    };
    const at = { resumeAt: firstOffset };
    try {
      if (slice.unsendable) await this.refuseUnsendable(partition, slice.unsendable);
      await this.narrowing(partition, slice.units, sendUnits, async () => undefined, at);
    } catch (error) {
      throw new SliceFailure(at.resumeAt, error);
    }
  }

  /**
   * Sends `units` by bisection; a refused record gets the error policy and, dead-lettered, `afterRefused`
   * runs and the units after it go on. `at.resumeAt` follows the first unit not delivered.
   */
  private async narrowing(
    partition: number,
    units: readonly SliceUnit[],
    send: (group: readonly SliceUnit[]) => Promise<void>,
    afterRefused: (unit: SliceUnit) => Promise<void>,
    at: { resumeAt: string },
  ): Promise<void> {
    let rest = units;
    while (rest.length > 0) {
      try {
        await bisect(rest, send);
        return;
      } catch (error) {
        const delivered =
          error instanceof RefusedRecord || error instanceof PartialDelivery ? error.delivered : 0;
        at.resumeAt = rest[delivered]?.message.offset ?? at.resumeAt;
        if (!(error instanceof RefusedRecord)) throw error;
        await this.refused(partition, error.unit.message, error);
        await afterRefused(error.unit as SliceUnit);
        rest = rest.slice(delivered + 1);
        at.resumeAt = rest[0]?.message.offset ?? at.resumeAt;
      }
    }
  }

  /**
   * Exactly-once: one slice in the shared transaction; after a refusal, in transactions of its own,
   * narrowed to the refused record (an aborted transaction shows nothing to read_committed readers).
   * Rejects with a {@link SliceFailure}, as {@link atLeastOnce}.
   */
  async exactlyOnce(
    partition: number,
    slice: Slice,
    firstOffset: string,
    next: string,
    transactions: TransactionGroup,
  ): Promise<void> {
    // The position is kept under the target topic's name in the destination group (../engine/link.ts).
    const topic = this.pipeline.targetTopic;
    const afterUnit = (unit: SliceUnit | undefined) =>
      unit ? (BigInt(unit.message.offset) + 1n).toString() : next;
    const at = { resumeAt: firstOffset };
    try {
      if (slice.unsendable) {
        // The records before it are in the previous slice: the position past it, with nothing to send.
        await this.refuseUnsendable(partition, slice.unsendable);
        await transactions.run({ topic, partition, offset: next }, [], { alone: true });
        return;
      }
      try {
        await transactions.run({ topic, partition, offset: next }, this.topicRequests(slice, slice.units));
        return;
      } catch (error) {
        if (classifyFailure(error).kind !== "record") throw error;
      }
      await this.narrowing(
        partition,
        slice.units,
        (group) =>
          transactions.run(
            { topic, partition, offset: afterUnit(group[group.length - 1]) },
            this.topicRequests(slice, group),
            { alone: true },
          ),
        // dead-lettered: its position committed on its own, then the rest of the slice
        (unit) => transactions.run({ topic, partition, offset: afterUnit(unit) }, [], { alone: true }),
        at,
      );
      at.resumeAt = next;
      // the position after the slice (records skipped at its end)
      await transactions.run({ topic, partition, offset: next }, [], { alone: true });
    } catch (error) {
      throw new SliceFailure(at.resumeAt, error);
    }
  }

  /** The units' produce requests, within the destination's batch limit, for the target topic. */
  private topicRequests(slice: Slice, units: readonly SliceUnit[]): TopicRequest[] {
    const topic = this.pipeline.targetTopic;
    return unitRequests(slice, units, this.maxBatchBytes()).map((r) => ({ topic, messages: r.messages }));
  }

  /** A record cut to no size (key and headers over the limit): refused like one the destination refuses. */
  private async refuseUnsendable(
    partition: number,
    unsendable: NonNullable<Slice["unsendable"]>,
  ): Promise<void> {
    const failure = { kind: "record" as const, reason: "RECORD_TOO_LARGE_TO_CHUNK" };
    await this.refused(
      partition,
      unsendable.message,
      new RefusedRecord(unsendable.message, 0, failure, unsendable.error),
    );
  }

  /**
   * The error policy for a refused record: dead-letter it (resolves: the partition goes on) or stop
   * (rejects with the refusal: the partition stops there).
   */
  private async refused(
    partition: number,
    message: KafkaMessage,
    refusal: RefusedRecord<unknown>,
  ): Promise<void> {
    const config = this.ctx.config();
    const reason = refusal.failure.reason;
    if (errorPolicyOf(config, this.pipeline) !== "dead-letter") throw refusal;
    const dst = this.dcs.get(this.pipeline.destinationDc);
    this.deadLetter ??= new DeadLetterWriter(dst.kafka, dst.admin, deadLetterTopicOf(config, this.pipeline));
    const error = errorText(refusal.cause);
    try {
      await this.deadLetter.write(
        deadLetterMessage(this.pipeline, message, partition, { reason, message: error }),
      );
    } catch (err) {
      // the dead-letter topic refused it too, or is out of reach: retried with the partition's backoff
      throw new ReplicatorError("DEAD_LETTER_FAILED", `dead-letter write failed: ${errorText(err)}`, {
        cause: err,
      });
    }
    this.ctx.metrics.recordsFailed.inc({ pipeline: this.pipeline.id, reason, action: "dead-lettered" });
    this.log.warn(
      {
        partition,
        offset: message.offset,
        reason,
        err: errorFields(refusal.cause),
        deadLetterTopic: this.deadLetter.topic,
      },
      "record refused by the destination; written to the dead-letter topic",
    );
  }
}
