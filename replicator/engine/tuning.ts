/**
 * Tuning constants of the engine. Each says what it bounds and why; the measurements behind the values
 * are in docs/bench.md ("Tuning constants of the replicator: how they were chosen").
 */

/** Room left in a record batch for its own header. */
export const BATCH_OVERHEAD = 512;
/** A target topic's max.message.bytes when the broker does not report it (Kafka's default). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
/** Fetch size per partition and per fetch, above kafkajs's 1 MiB / 10 MiB: fewer, larger fetch rounds. */
export const FETCH_MAX_BYTES_PER_PARTITION = 4 * 1024 * 1024;
export const FETCH_MAX_BYTES = 32 * 1024 * 1024;
/** At-least-once: produce requests in flight per target topic; partitions ready meanwhile share the next one. */
export const DIRECT_REQUESTS_IN_FLIGHT = 2;
/** At-least-once: slices of one source partition queued or in flight before the fetch loop waits. */
export const ALO_SENDS_PER_PARTITION = 2;
/** Exactly-once: the source group's best-effort copy of the positions is committed this long after a transaction, coalesced. */
export const EOS_SOURCE_COMMIT_MS = 1000;
/** The commits of a datacenter pair's flows made within this window go to the group together. */
export const LINK_COMMIT_BATCH_MS = 5;
/** Topics per commit request of a link (kafkajs's commitOffsets is quadratic in the topics of one call). */
export const COMMIT_TOPICS_PER_REQUEST = 200;
/** At-least-once: a failed commit is tried again after this delay. */
export const ALO_COMMIT_RETRY_MS = 200;
/** At-least-once: how long a rebalance seen by a heartbeat waits for the sends in flight (well within the rebalance timeout). */
export const ALO_REBALANCE_DRAIN_MS = 1000;
/** At-least-once: how long a stopping pipeline waits for its sends in flight before it commits. */
export const ALO_STOP_DRAIN_MS = 10_000;
/**
 * How long a round waits for the targets it created to appear with leaders in the destination's
 * metadata; those that are not ready by then start in a later round.
 */
export const TARGET_READY_WAIT_MS = 1000;
/** How long a non-leader waits for the leader to create a target topic (capped at two discovery intervals). */
export const LEADER_TARGET_WAIT_MS = 5000;
/**
 * A slice: the records of one partition sent and acknowledged together. At-least-once: one produce
 * request, at most 1,000 records; exactly-once: up to 4 requests, 4,000 records, in one transaction.
 */
export const SLICE_LIMITS = {
  "at-least-once": { records: 1000, requests: 1 },
  "exactly-once": { records: 4000, requests: 4 },
} as const;
/**
 * Exactly-once producer retries: a fast first retry of CONCURRENT_TRANSACTIONS (KAFKA-5477), at most 1 s
 * apart (a destination back after an outage is written to within about a second), about 35 s in all.
 */
export const TRANSACTIONAL_RETRY = { retries: 50, initialRetryTime: 5, multiplier: 1.3, maxRetryTime: 1000 };
/** The other producers' retries: about 39 s in all before a broker outage fails a send. */
export const PRODUCER_RETRY = { retries: 10, initialRetryTime: 300, maxRetryTime: 5000 };
/**
 * The probes of an unreachable datacenter: 250 ms, then every 500 ms however long the outage (two
 * connection attempts a second; the pipelines resume within about a second of its return, the probe's
 * wait included: with probes 1 s apart exactly-once took up to 1.3 s).
 */
export const DISCOVERY_BACKOFF = { initialMs: 250, maxMs: 500 };
/**
 * The probes of a datacenter that answers but refuses this client (authentication, TLS, authorisation):
 * 500 ms doubling to 30 s. Only a configuration change fixes that (hot reload reconnects at once), and
 * each refused attempt costs the broker a handshake and the log kafkajs's lines.
 */
export const REFUSED_BACKOFF = { initialMs: 500, maxMs: 30_000 };
/**
 * At-least-once: the first wait before a send is tried again inside the destination sender, doubling
 * (jittered) up to DIRECT_MAX_RETRY_MS. A target created a moment ago answers NOT_LEADER_OR_FOLLOWER
 * until its broker has loaded it: with 300 ms, 1,000 new targets finished 3 s after their first records.
 */
export const DIRECT_INITIAL_RETRY_MS = 50;
/** At-least-once: the longest wait between two attempts of a send inside the destination sender (its retries). */
export const DIRECT_MAX_RETRY_MS = 1000;
/** How long start() waits for the first election result before it goes on as a follower. */
export const ELECTION_FIRST_JOIN_MS = 15_000;
