/**
 * The security settings of one Kafka cluster (TLS, SASL), shared by every config that names a cluster:
 * the replicator's datacenters, the licensing service's events and replica, the benchmark's clients.
 * MirrorMaker 2 / librdkafka vocabulary in camelCase. Secrets (SASL password, private key, key
 * passphrase) are never inline: only `{ env: NAME }` or `{ file: path }` references, resolved when a
 * client is created ({@link resolveKafkaSecurity}); what is resolved goes to kafkajs and nowhere else.
 */
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import type { SASLOptions } from "kafkajs";
import { z } from "zod";
import { KafkaError } from "./errors.js";

export const SECURITY_PROTOCOLS = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] as const;
export const SASL_MECHANISMS = ["plain", "scram-sha-256", "scram-sha-512"] as const;
export type SecurityProtocol = (typeof SECURITY_PROTOCOLS)[number];
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "must be an environment variable name");

/** Where a value comes from: an environment variable or a file, never the config itself. */
const reference = z.union(
  [z.object({ env: envName }).strict(), z.object({ file: z.string().min(1) }).strict()],
  {
    errorMap: (issue, ctx) => ({
      message:
        issue.code === "invalid_union"
          ? typeof ctx.data === "string"
            ? "inline values are not allowed here: use { env: NAME } or { file: path }"
            : "expected { env: NAME } or { file: path }"
          : ctx.defaultError,
    }),
  },
);
export type ValueReference = z.infer<typeof reference>;

const tlsSchema = z
  .object({
    /** The CA certificates (PEM) that sign the brokers' certificates; the system's CAs when omitted. */
    ca: reference.optional(),
    /** Client certificate (PEM) for mutual TLS, with `key`. */
    cert: reference.optional(),
    /** Client private key (PEM): a secret. */
    key: reference.optional(),
    /** Passphrase of an encrypted `key`: a secret. */
    keyPassword: reference.optional(),
    /** Verify the broker's certificate and host name (default true). */
    rejectUnauthorized: z.boolean().default(true),
    /** The name the broker certificate is checked against (SNI), when it is not the broker's host. */
    servername: z.string().min(1).optional(),
  })
  .strict();

const saslSchema = z
  .object({
    mechanism: z.enum(SASL_MECHANISMS),
    username: z.string().min(1),
    /** A secret: `{ env: NAME }` or `{ file: path }` (the file's content, trailing newline removed). */
    password: reference,
  })
  .strict();

export const kafkaSecuritySchema = z
  .object({
    protocol: z.enum(SECURITY_PROTOCOLS).default("PLAINTEXT"),
    tls: tlsSchema.optional(),
    sasl: saslSchema.optional(),
  })
  .strict()
  .superRefine((security, ctx) => {
    const usesSasl = security.protocol.startsWith("SASL_");
    const usesTls = security.protocol.endsWith("SSL");
    if (usesSasl && !security.sasl)
      ctx.addIssue({
        code: "custom",
        path: ["sasl"],
        message: `required with protocol ${security.protocol}`,
      });
    if (!usesSasl && security.sasl)
      ctx.addIssue({
        code: "custom",
        path: ["sasl"],
        message: `only allowed with protocol SASL_PLAINTEXT or SASL_SSL (not ${security.protocol})`,
      });
    if (!usesTls && security.tls)
      ctx.addIssue({
        code: "custom",
        path: ["tls"],
        message: `only allowed with protocol SSL or SASL_SSL (not ${security.protocol})`,
      });
    const tls = security.tls;
    if (tls && (tls.cert === undefined) !== (tls.key === undefined))
      ctx.addIssue({
        code: "custom",
        path: ["tls", tls.cert ? "key" : "cert"],
        message: "cert and key go together (mutual TLS)",
      });
    if (tls?.keyPassword && !tls.key)
      ctx.addIssue({ code: "custom", path: ["tls", "keyPassword"], message: "only allowed with key" });
  });

export type KafkaSecurity = z.infer<typeof kafkaSecuritySchema>;
export type KafkaSecurityInput = z.input<typeof kafkaSecuritySchema>;

/** What kafkajs takes: `ssl` and `sasl` client options, secrets resolved. Never logged. */
export interface ResolvedKafkaSecurity {
  ssl?: ConnectionOptions | true;
  sasl?: SASLOptions;
}

/** What a reference is resolved against (the process's environment and file system by default). */
export interface SecretSources {
  env?: NodeJS.ProcessEnv;
  readFile?: (file: string) => string;
}

function resolveReference(ref: ValueReference, field: string, sources: Required<SecretSources>): string {
  if ("env" in ref) {
    const value = sources.env[ref.env];
    if (value === undefined || value === "")
      throw new KafkaError("SECURITY_UNRESOLVED", `${field}: environment variable ${ref.env} is not set`, {
        field,
      });
    return value;
  }
  let text: string;
  try {
    text = sources.readFile(ref.file);
  } catch (err) {
    // The message names the file and the reason (ENOENT, EACCES), never a content.
    const reason = (err as NodeJS.ErrnoException).code ?? "unreadable";
    throw new KafkaError("SECURITY_UNRESOLVED", `${field}: cannot read file ${ref.file} (${reason})`, {
      field,
    });
  }
  return text;
}

/**
 * Resolves the references of `security` into kafkajs options. `field` is where the settings sit in
 * their config (`datacenters[0].security`): an error names the reference at fault
 * (`datacenters[0].security.sasl.password: environment variable DC1_PASSWORD is not set`).
 */
export function resolveKafkaSecurity(
  security: KafkaSecurity | undefined,
  field: string,
  sources: SecretSources = {},
): ResolvedKafkaSecurity {
  if (!security || security.protocol === "PLAINTEXT") return {};
  const all: Required<SecretSources> = {
    env: sources.env ?? process.env,
    readFile: sources.readFile ?? ((file) => readFileSync(file, "utf8")),
  };
  const value = (ref: ValueReference | undefined, at: string): string | undefined =>
    ref === undefined ? undefined : resolveReference(ref, `${field}.${at}`, all);
  const resolved: ResolvedKafkaSecurity = {};
  if (security.protocol === "SSL" || security.protocol === "SASL_SSL") {
    const tls = security.tls;
    if (!tls) resolved.ssl = true;
    else {
      const ssl: ConnectionOptions = { rejectUnauthorized: tls.rejectUnauthorized };
      const ca = value(tls.ca, "tls.ca");
      const cert = value(tls.cert, "tls.cert");
      const key = value(tls.key, "tls.key");
      const passphrase = value(tls.keyPassword, "tls.keyPassword");
      if (ca !== undefined) ssl.ca = ca;
      if (cert !== undefined) ssl.cert = cert;
      if (key !== undefined) ssl.key = key;
      if (passphrase !== undefined) ssl.passphrase = passphrase;
      if (tls.servername !== undefined) ssl.servername = tls.servername;
      resolved.ssl = ssl;
    }
  }
  if (security.sasl) {
    const { mechanism, username } = security.sasl;
    // A password file's trailing newline (`echo secret > file`) is not part of the password.
    const password = (value(security.sasl.password, "sasl.password") as string).replace(/\r?\n$/, "");
    resolved.sasl = { mechanism, username, password } as SASLOptions;
  }
  return resolved;
}

/**
 * The message of a failed connection, with what the security settings suggest: a plaintext client whose
 * connection the broker closed most likely met a TLS listener (kafkajs says only "Closed connection"),
 * a TLS client cut off before the handshake most likely met a plaintext one.
 */
export function explainConnectionError(message: string, security: KafkaSecurity | undefined): string {
  const protocol = security?.protocol ?? "PLAINTEXT";
  const tls = protocol.endsWith("SSL");
  if (!tls && /Closed connection|ECONNRESET|socket hang up/i.test(message)) {
    return `${message} (the broker closed the connection: is its listener TLS (SSL or SASL_SSL)? this client's security.protocol is ${protocol})`;
  }
  if (tls && /before secure TLS connection|wrong version number|packet length too long/i.test(message)) {
    return `${message} (no TLS handshake: is the broker's listener plaintext? this client's security.protocol is ${protocol})`;
  }
  return message;
}
