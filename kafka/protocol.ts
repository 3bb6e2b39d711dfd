/** Kafka protocol error codes the platform acts on, and the code of a kafkajs protocol error. */

/** REBALANCE_IN_PROGRESS: the group is rebalancing (a heartbeat or commit was refused). */
export const REBALANCE_IN_PROGRESS = 27;
/** CONCURRENT_TRANSACTIONS: the coordinator is still completing the previous transaction. */
export const CONCURRENT_TRANSACTIONS = 51;

/** The Kafka error code of a kafkajs protocol error; undefined for any other error (connection, timeout). */
export function protocolErrorCode(error: unknown): number | undefined {
  const e = error as { name?: unknown; code?: unknown } | null;
  return e?.name === "KafkaJSProtocolError" && typeof e.code === "number" ? e.code : undefined;
}
