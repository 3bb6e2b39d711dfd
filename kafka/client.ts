/**
 * The one Kafka client factory of the platform: brokers, client id, timeouts, retries and the one
 * kafkajs log adapter, and the cluster's security (TLS, SASL; see ./security.ts). Every process builds
 * its kafkajs clients here.
 */
import kafkajs from "kafkajs";
import type { Kafka, RetryOptions } from "kafkajs";
import { pino, type Logger } from "pino";
import type { ResolvedKafkaSecurity } from "./security.js";

// kafkajs is CommonJS: under plain Node ESM only its default export is reliable.
const { Kafka: KafkaClient, logLevel } = kafkajs;

export interface KafkaClientOptions {
  brokers: string[];
  clientId: string;
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
  retry?: RetryOptions;
  /** TLS and SASL, secrets resolved (`resolveKafkaSecurity`); plaintext when absent. */
  security?: ResolvedKafkaSecurity;
}

/** kafkajs log lines that say nothing an operator can act on. */
const QUIET_PREFIXES = [
  // Bounded retries are deliberate: a failed send is not committed and is retried from the source.
  "Limiting retries for the idempotent producer",
];

/**
 * A broker that does not answer, as kafkajs logs it on every attempt at error level: at debug, since the
 * callers report a datacenter's state once ("datacenter unreachable" and "datacenter reachable again" in
 * the replicator; "events publishing failed", "replica consumer: Kafka not reachable" in the service).
 */
export const CONNECTION_FAILURE_PREFIXES: readonly string[] = [
  "Connection error:",
  "Connection timeout",
  "Failed to connect to seed broker",
];

/**
 * Broker answers kafkajs logs at error level although they are routine and retried (a rebalance, a
 * coordinator still loading or moved, the previous transaction still completing): logged at debug, so
 * that error lines are what an operator must act on. kafkajs 2.2.4's messages for codes 27, 14, 15, 16
 * and 51 (test/kafka/client.test.ts checks them against kafkajs's own table).
 */
export const ROUTINE_BROKER_ANSWERS: ReadonlySet<string> = new Set([
  "The group is rebalancing, so a rejoin is needed",
  "The coordinator is loading and hence can't process requests for this group",
  "The group coordinator is not available",
  "This is not the correct coordinator for this group",
  "The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing",
]);

/** The one kafkajs log adapter: kafkajs's levels onto pino's, messages prefixed `kafkajs:`. */
export function kafkaLogCreator(logger: Logger) {
  return () =>
    ({ level, log }: { level: number; log: { message: string; [k: string]: unknown } }) => {
      const { message, timestamp: _t, logger: _l, ...extra } = log;
      if (QUIET_PREFIXES.some((prefix) => message.startsWith(prefix))) return;
      const routine =
        ROUTINE_BROKER_ANSWERS.has(message) ||
        ROUTINE_BROKER_ANSWERS.has(String(extra.error)) ||
        CONNECTION_FAILURE_PREFIXES.some((prefix) => message.startsWith(prefix));
      if (routine) logger.debug(extra, `kafkajs: ${message}`);
      else if (level === logLevel.ERROR) logger.error(extra, `kafkajs: ${message}`);
      else if (level === logLevel.WARN) logger.warn(extra, `kafkajs: ${message}`);
      else logger.debug(extra, `kafkajs: ${message}`);
    };
}

/** A logger for clients whose failures their caller reports itself (launcher probes, the scenario). */
export const SILENT_LOGGER: Logger = pino({ level: "silent" });

/** A kafkajs client logging through `logger` (warnings and errors; debug lines at pino's debug). */
export function createKafka(options: KafkaClientOptions, logger: Logger): Kafka {
  return new KafkaClient({
    clientId: options.clientId,
    brokers: options.brokers,
    ...(options.connectionTimeoutMs !== undefined ? { connectionTimeout: options.connectionTimeoutMs } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestTimeout: options.requestTimeoutMs } : {}),
    ...(options.retry !== undefined ? { retry: options.retry } : {}),
    // Host name verification stays on: kafkajs connects with servername = the broker's host name (an IP
    // address is checked against the certificate's IP SANs), and rejectUnauthorized defaults to true.
    ...(options.security?.ssl !== undefined ? { ssl: options.security.ssl } : {}),
    ...(options.security?.sasl !== undefined ? { sasl: options.security.sasl } : {}),
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(logger),
  });
}
