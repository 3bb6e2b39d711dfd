/**
 * Secured local clusters (`StartKafkaOptions.security: "sasl_ssl"`): a CA and a broker certificate made
 * with openssl at start (PEM, SAN 127.0.0.1 and localhost) in the cluster's data dir (mkdtemp: mode 700),
 * the broker properties of a SASL_SSL listener with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN (the broker's
 * only listener: clients and the broker's own connections use it; the KRaft controller listener stays
 * PLAINTEXT on loopback), the SCRAM users created at storage-format time (`--add-scram`), and the client
 * settings handed out with the cluster.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { KafkaSecurityInput } from "../kafka/security.js";
import { KafkaLaunchError } from "./kafka-setup.js";
import type { KafkaClientSecurity } from "./kafka-types.js";

/** The one SASL user of a secured local cluster. */
export const SECURED_USER = "admin";
/** Listener names of a secured cluster's broker properties. */
const CLIENT_LISTENER = "SASL_SSL";

const run = promisify(execFile);
/** EC P-256 keys: generated in milliseconds (RSA 2048 takes about 0.4 s each here); Kafka's PEM store reads PKCS#8 EC keys. */
const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

async function openssl(args: string[], dir: string): Promise<void> {
  try {
    await run("openssl", args, { cwd: dir, timeout: 30_000 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new KafkaLaunchError(`openssl ${args[0]} failed: ${(error as Error).message}\n${stderr}`, {
      cause: error,
    });
  }
}

/**
 * Writes into `dir`: `ca.pem` (the CA clients trust), `broker.pem` (the broker's PKCS#8 key and its
 * certificate, the PEM keystore), `sasl-password` (mode 600), and returns the client settings.
 */
export async function prepareSecuredCluster(dir: string): Promise<KafkaClientSecurity> {
  const days = "7";
  await openssl(
    [
      "req",
      "-x509",
      ...EC_KEY,
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      days,
      "-subj",
      "/CN=license-platform test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  await openssl(
    ["req", ...EC_KEY, "-nodes", "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=localhost"],
    dir,
  );
  await writeFile(
    join(dir, "broker.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n",
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      "broker.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "broker.crt",
      "-days",
      days,
      "-extfile",
      "broker.ext",
    ],
    dir,
  );
  // The PEM keystore: the private key, then the certificate chain (broker, CA).
  const [key, cert, ca] = await Promise.all(
    ["broker.key", "broker.crt", "ca.pem"].map((file) => readFile(join(dir, file), "utf8")),
  );
  await writeFile(join(dir, "broker.pem"), `${key}${cert}${ca}`, { mode: 0o600 });
  const passwordFile = join(dir, "sasl-password");
  await writeFile(passwordFile, randomBytes(18).toString("base64url"), { mode: 0o600 });
  await chmod(join(dir, "ca.key"), 0o600);
  return {
    protocol: "SASL_SSL",
    caFile: join(dir, "ca.pem"),
    mechanism: "scram-sha-512",
    mechanisms: ["scram-sha-512", "scram-sha-256", "plain"],
    username: SECURED_USER,
    passwordFile,
  };
}

/** Broker properties of a secured cluster: they replace the PLAINTEXT listener of the defaults. */
export function securedBrokerProperties(input: {
  brokerPort: number;
  controllerPort: number;
  dataDir: string;
  password: string;
}): Record<string, string> {
  const { brokerPort, controllerPort, dataDir, password } = input;
  const prefix = `listener.name.${CLIENT_LISTENER.toLowerCase()}`;
  const scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
  return {
    listeners: `${CLIENT_LISTENER}://127.0.0.1:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
    "advertised.listeners": `${CLIENT_LISTENER}://127.0.0.1:${brokerPort}`,
    // The broker's own connections (transaction markers, ...) use the same listener: SCRAM-SHA-512 as
    // `admin` (the login module's username/password), the certificate checked against the CA.
    "inter.broker.listener.name": CLIENT_LISTENER,
    "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
    "listener.security.protocol.map": `${CLIENT_LISTENER}:SASL_SSL,CONTROLLER:PLAINTEXT`,
    "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
    [`${prefix}.sasl.enabled.mechanisms`]: "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
    [`${prefix}.scram-sha-512.sasl.jaas.config`]: `org.apache.kafka.common.security.scram.ScramLoginModule required username="${SECURED_USER}" password="${password}";`,
    [`${prefix}.scram-sha-256.sasl.jaas.config`]: scram,
    [`${prefix}.plain.sasl.jaas.config`]: `org.apache.kafka.common.security.plain.PlainLoginModule required user_${SECURED_USER}="${password}";`,
    [`${prefix}.ssl.keystore.type`]: "PEM",
    [`${prefix}.ssl.keystore.location`]: join(dataDir, "broker.pem"),
    [`${prefix}.ssl.truststore.type`]: "PEM",
    [`${prefix}.ssl.truststore.location`]: join(dataDir, "ca.pem"),
    [`${prefix}.ssl.client.auth`]: "none",
  };
}

/** `kafka-storage format` arguments that create the SCRAM user (KRaft: credentials live in the metadata log). */
export function scramFormatArgs(password: string): string[] {
  return ["SCRAM-SHA-512", "SCRAM-SHA-256"].flatMap((mechanism) => [
    "--add-scram",
    `${mechanism}=[name=${SECURED_USER},password=${password}]`,
  ]);
}

/**
 * The security settings (../kafka/security.ts input) a client of a secured cluster uses: its CA file,
 * SCRAM-SHA-512 (or `mechanism`), the password from its file. Undefined for a plaintext cluster.
 */
export function clientSecurityConfig(
  security: KafkaClientSecurity | undefined,
  overrides: { mechanism?: KafkaClientSecurity["mechanisms"][number]; passwordFile?: string } = {},
): KafkaSecurityInput | undefined {
  if (!security) return undefined;
  return {
    protocol: security.protocol,
    tls: { ca: { file: security.caFile } },
    sasl: {
      mechanism: overrides.mechanism ?? security.mechanism,
      username: security.username,
      password: { file: overrides.passwordFile ?? security.passwordFile },
    },
  };
}
