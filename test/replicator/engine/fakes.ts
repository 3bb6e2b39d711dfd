/** Fakes for the engine's unit tests (no Kafka): a context, a kafkajs consumer that emits events on demand. */
import { pino } from "pino";
import { parseConfig, type ReplicatorConfig } from "../../../replicator/config.js";
import { createMetrics } from "../../../replicator/metrics.js";
import type { EngineContext } from "../../../replicator/engine/types.js";

export function fakeContext(overrides: Partial<EngineContext> = {}): EngineContext & { wakes: number } {
  const config: ReplicatorConfig = parseConfig({
    datacenters: [{ name: "dc1", brokers: ["127.0.0.1:1"] }],
    replication: [],
  });
  const ctx = {
    wakes: 0,
    config: () => config,
    logger: pino({ level: "silent" }),
    metrics: createMetrics(),
    engine: { index: 0, count: 1 },
    delivery: config.replicator.delivery,
    running: () => true,
    wake: () => {
      ctx.wakes++;
    },
    isLeader: () => true,
    ...overrides,
  };
  return ctx;
}

const EVENTS = {
  CRASH: "consumer.crash",
  GROUP_JOIN: "consumer.group_join",
  REBALANCING: "consumer.rebalancing",
} as const;

/** A kafkajs consumer stand-in: records its calls; `emit` plays an instrumentation event. */
export class FakeConsumer {
  readonly events = EVENTS;
  readonly calls: string[] = [];
  private readonly listeners = new Map<string, ((event: { payload: unknown }) => void)[]>();
  /** Emitted by run(): the group assignment of the first join. */
  constructor(private readonly joinAssignment?: Record<string, number[]>) {}

  on(event: string, listener: (event: { payload: unknown }) => void): () => void {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return () => undefined;
  }
  emit(event: string, payload: unknown): void {
    for (const l of this.listeners.get(event) ?? []) l({ payload });
  }
  async connect(): Promise<void> {
    this.calls.push("connect");
  }
  async subscribe(): Promise<void> {
    this.calls.push("subscribe");
  }
  async run(): Promise<void> {
    this.calls.push("run");
    if (this.joinAssignment) this.emit(EVENTS.GROUP_JOIN, { memberAssignment: this.joinAssignment });
  }
  async disconnect(): Promise<void> {
    this.calls.push("disconnect");
  }
}

/** A kafkajs client whose consumer() hands out the given fake consumers in turn. */
export function fakeKafka(consumers: FakeConsumer[]) {
  return {
    consumer: () => {
      const next = consumers.shift();
      if (!next) throw new Error("no more fake consumers");
      return next;
    },
  };
}
