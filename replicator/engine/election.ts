/**
 * Leader election through Kafka: replicators with the same id join the consumer group
 * `lp.replicator.<id>.election` on a one-partition topic of their home datacenter; the member assigned
 * partition 0 is the leader, the only one that creates target topics and partitions. The sitting leader
 * keeps the lead when a member joins (`stickyLeaderAssigner`: with kafkajs's round robin, an engine
 * starting a second later took it over and created the same targets again).
 */
import kafkajs, { type Consumer } from "kafkajs";
import { OWN_TOPIC_PREFIX } from "../config.js";
import { stickyLeaderAssigner } from "../assignment.js";
import { errorFields } from "../../common/log.js";
import { sleep } from "../../common/time.js";
import { connectAdmin, type Datacenter } from "./datacenters.js";
import { ELECTION_FIRST_JOIN_MS } from "./tuning.js";
import type { EngineContext } from "./types.js";

// kafkajs is CommonJS: under plain Node ESM only its default export is reliable.
const { PartitionAssigners } = kafkajs;

export const ELECTION_TOPIC = `${OWN_TOPIC_PREFIX}election`;

export class Election {
  private consumer?: Consumer;
  private leading = false;
  /** Ends the wait of a start() for its first join (stop()). */
  private endFirstJoin: () => void = () => undefined;

  /** `home` is the datacenter of the election group (undefined: no datacenter configured). */
  constructor(
    private readonly ctx: EngineContext,
    private readonly home: () => Datacenter | undefined,
  ) {}

  /** Whether this instance is the elected leader now. */
  get leader(): boolean {
    return this.leading;
  }

  /** Whether the election consumer exists (started, starting, or restarted by kafkajs). */
  get started(): boolean {
    return this.consumer !== undefined;
  }

  /** Joins the election group; resolves after the first assignment (or ELECTION_FIRST_JOIN_MS). */
  async start(): Promise<void> {
    const dc = this.home();
    if (dc === undefined) return;
    const { ctx } = this;
    const config = ctx.config().replicator;
    const groupId = `${OWN_TOPIC_PREFIX}${config.id}.election`;
    const consumer = dc.kafka.consumer({
      groupId,
      sessionTimeout: config.sessionTimeoutMs,
      rebalanceTimeout: config.rebalanceTimeoutMs,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 500,
      allowAutoTopicCreation: false,
      // The sitting leader keeps the lead when another instance or engine joins (no needless handover);
      // round robin is what members of an earlier version speak (the group takes what all of them do).
      partitionAssigners: [stickyLeaderAssigner(() => this.leading), PartitionAssigners.roundRobin],
    });
    this.consumer = consumer;
    let joined: () => void = () => undefined;
    const firstJoin = new Promise<void>((resolve) => (joined = resolve));
    this.endFirstJoin = joined;
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const lead = (event.payload.memberAssignment[ELECTION_TOPIC] ?? []).includes(0);
      if (lead !== this.leading)
        ctx.logger.info({ groupId, leader: lead }, lead ? "elected leader" : "follower");
      this.leading = lead;
      joined();
      if (lead) ctx.wake();
    });
    consumer.on(consumer.events.CRASH, (event) => {
      const restart = (event.payload as { restart?: boolean }).restart === true;
      this.leading = false;
      ctx.logger.warn({ err: errorFields(event.payload.error), restart }, "election consumer crashed");
      // kafkajs gave up on it: forget it, so that the next round joins the election again.
      if (!restart && this.consumer === consumer) {
        this.consumer = undefined;
        void consumer.disconnect().catch(() => undefined);
      }
    });
    try {
      await connectAdmin(dc);
      if (!(await dc.admin.listTopics()).includes(ELECTION_TOPIC)) {
        // kafkajs answers false, not an error, when another instance created it meanwhile.
        await dc.admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic: ELECTION_TOPIC, numPartitions: 1 }],
        });
      }
      await consumer.connect();
      await consumer.subscribe({ topics: [ELECTION_TOPIC] });
      if (this.consumer !== consumer) return void (await consumer.disconnect()); // stopped meanwhile
      await consumer.run({ eachMessage: async () => undefined });
      await Promise.race([firstJoin, sleep(ELECTION_FIRST_JOIN_MS, { unref: true })]);
    } catch (err) {
      ctx.metrics.errors.inc({ kind: "election" });
      ctx.logger.warn({ err: errorFields(err) }, "leader election failed to start; retrying next round");
      if (this.consumer === consumer) this.consumer = undefined;
      await consumer.disconnect().catch(() => undefined);
    }
  }

  /** Leaves the group: another instance becomes the leader. */
  async stop(): Promise<void> {
    this.endFirstJoin(); // a start() still waiting for its first join returns
    const consumer = this.consumer;
    this.consumer = undefined;
    this.leading = false;
    await consumer?.disconnect().catch(() => undefined);
  }
}
