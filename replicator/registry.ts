/**
 * Discovery by registration (as CorfuDB's registry table): an application announces its stream on the
 * compacted registry topic of its datacenter (key = topic name, value = JSON registration, a tombstone
 * unregisters) and the replicators act on it.
 */
import type { Kafka } from "kafkajs";
import { z } from "zod";
import { OWN_TOPIC_PREFIX } from "./config.js";
import { fieldPath } from "../common/errors.js";
import { NAMING_POLICIES } from "./policy.js";
import { ConfigError } from "./errors.js";

export const REGISTRY_TOPIC = `${OWN_TOPIC_PREFIX}registry`;

export const registrationSchema = z
  .object({
    topic: z.string().min(1),
    /** Logical group the application belongs to (reported in /status). */
    group: z.string().min(1).optional(),
    model: z.enum(["full", "routing"]).default("full"),
    destinations: z.array(z.string().min(1)).min(1),
    defaultDestinations: z.array(z.string()).default([]),
    naming: z.enum(NAMING_POLICIES).optional(),
  })
  .strict();

export type Registration = z.infer<typeof registrationSchema>;
export type RegistrationInput = z.input<typeof registrationSchema>;

/**
 * Parses one registry record. Returns `{ topic, registration: null }` for a tombstone; throws ConfigError
 * naming the field for an invalid registration.
 */
export function parseRegistration(
  key: string,
  value: Buffer | string | null,
): { topic: string; registration: Registration | null } {
  if (value === null) return { topic: key, registration: null };
  let data: unknown;
  try {
    data = JSON.parse(value.toString());
  } catch (err) {
    throw new ConfigError([`registration '${key}': not JSON: ${(err as Error).message}`], { cause: err });
  }
  const result = registrationSchema.safeParse(data);
  if (!result.success) {
    const paths = result.error.issues.map((i) => fieldPath(i.path) || "(root)");
    throw new ConfigError(
      result.error.issues.map((i, n) => `registration '${key}'.${paths[n]}: ${i.message}`),
      { cause: result.error, ...(paths[0] !== undefined ? { field: paths[0] } : {}) },
    );
  }
  if (result.data.topic !== key) {
    throw new ConfigError(
      [`registration '${key}'.topic: '${result.data.topic}' differs from the record key`],
      { field: "topic" },
    );
  }
  return { topic: key, registration: result.data };
}

async function ensureRegistryTopic(kafka: Kafka): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if ((await admin.listTopics()).includes(REGISTRY_TOPIC)) return;
    // kafkajs answers false, not an error, when another client created it meanwhile.
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic: REGISTRY_TOPIC,
          numPartitions: 1,
          configEntries: [{ name: "cleanup.policy", value: "compact" }],
        },
      ],
    });
  } finally {
    await admin.disconnect();
  }
}

async function write(kafka: Kafka, key: string, value: string | null): Promise<void> {
  await ensureRegistryTopic(kafka);
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  try {
    await producer.send({ topic: REGISTRY_TOPIC, acks: -1, messages: [{ key, value }] });
  } finally {
    await producer.disconnect();
  }
}

/** Client helper for applications: announce a stream to the replicators of this datacenter. */
export async function registerApplication(kafka: Kafka, input: RegistrationInput): Promise<Registration> {
  const registration = registrationSchema.parse(input);
  await write(kafka, registration.topic, JSON.stringify(registration));
  return registration;
}

/** Client helper: withdraw a registration (a tombstone on the compacted registry topic). */
export async function unregisterApplication(kafka: Kafka, topic: string): Promise<void> {
  await write(kafka, topic, null);
}
