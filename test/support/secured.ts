/** Clients of the secured test datacenters (test/fixtures/infra.ts `getSecuredKafka`). */
import type { Kafka } from "kafkajs";
import { createKafka, SILENT_LOGGER } from "../../kafka/client.js";
import { kafkaSecuritySchema, resolveKafkaSecurity, type KafkaSecurityInput } from "../../kafka/security.js";
import { clientSecurityConfig, type KafkaCluster } from "../../launchers/kafka.js";
import { getSecuredKafka } from "../fixtures/infra.js";

/** A secured test datacenter (`sec1`, `sec2`) with its client settings. */
export async function securedCluster(
  name: string,
): Promise<KafkaCluster & { security: NonNullable<KafkaCluster["security"]> }> {
  const set = await getSecuredKafka();
  const cluster = set.clusters.find((c) => c.name === name);
  if (!cluster?.security) throw new Error(`no secured datacenter ${name}`);
  return cluster as KafkaCluster & { security: NonNullable<KafkaCluster["security"]> };
}

/** The `security` config of a secured cluster (CA file, SCRAM-SHA-512, password file), with overrides. */
export function securityConfig(
  cluster: KafkaCluster,
  overrides: Parameters<typeof clientSecurityConfig>[1] = {},
): KafkaSecurityInput {
  const config = clientSecurityConfig(cluster.security, overrides);
  if (!config) throw new Error(`${cluster.name} is not secured`);
  return config;
}

/**
 * A kafkajs client of the platform's factory for `cluster` with `security` (default: its own settings;
 * `null`: plaintext).
 */
export function securedClient(
  cluster: KafkaCluster,
  security: KafkaSecurityInput | null = securityConfig(cluster),
  options: { retries?: number } = {},
): Kafka {
  return createKafka(
    {
      clientId: `test-${cluster.name}`,
      brokers: cluster.brokers,
      connectionTimeoutMs: 3000,
      requestTimeoutMs: 10_000,
      retry: { retries: options.retries ?? 3, initialRetryTime: 100, maxRetryTime: 1000 },
      security: resolveKafkaSecurity(security ? kafkaSecuritySchema.parse(security) : undefined, "test"),
    },
    SILENT_LOGGER,
  );
}
