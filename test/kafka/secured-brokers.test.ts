/**
 * kafkajs clients of the platform's factory (kafka/client.ts) against a real secured cluster (SASL_SSL
 * only, launchers/kafka-secured.ts): every enabled mechanism, the DirectProducer on the same client,
 * host name and CA verification, a wrong password, a plaintext client at the TLS listener.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Kafka } from "kafkajs";
import { DirectProducer } from "../../kafka/direct-producer.js";
import { explainConnectionError } from "../../kafka/security.js";
import { randomTopic } from "../fixtures/infra.js";
import { securedClient, securedCluster, securityConfig } from "../support/secured.js";

/** The error of connecting an admin and listing topics, or undefined when that works. */
async function failure(kafka: Kafka): Promise<Error | undefined> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return undefined;
  } catch (err) {
    return err as Error;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

describe("kafka clients over SASL_SSL (a real secured broker)", function () {
  this.timeout(120_000);
  let dir: string;

  before(async () => {
    await securedCluster("sec1");
    dir = mkdtempSync(join(tmpdir(), "lp-secured-test-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("the launcher hands out the client settings; the certificate is for 127.0.0.1 and localhost; SASL_SSL is the one broker listener", async () => {
    const cluster = await securedCluster("sec1");
    expect(cluster.security).to.deep.include({
      protocol: "SASL_SSL",
      mechanism: "scram-sha-512",
      username: "admin",
      caFile: join(cluster.dataDir!, "ca.pem"),
      passwordFile: join(cluster.dataDir!, "sasl-password"),
    });
    for (const file of ["sasl-password", "broker.pem", "ca.key"]) {
      expect(statSync(join(cluster.dataDir!, file)).mode & 0o077, `${file} private`).to.equal(0);
    }
    const text = execFileSync(
      "openssl",
      ["x509", "-in", join(cluster.dataDir!, "broker.crt"), "-noout", "-text"],
      {
        encoding: "utf8",
      },
    );
    expect(text).to.match(/IP Address:127\.0\.0\.1, DNS:localhost/);
    const properties = readFileSync(join(cluster.dataDir!, "server.properties"), "utf8");
    // SASL_SSL is the only broker listener (clients and the broker's own connections); CONTROLLER is
    // the KRaft quorum's, on loopback
    expect(properties).to.match(/^listeners=SASL_SSL:\/\/127\.0\.0\.1:\d+,CONTROLLER:\/\/127\.0\.0\.1:\d+$/m);
    expect(properties).to.match(/^advertised\.listeners=SASL_SSL:\/\/127\.0\.0\.1:\d+$/m);
    expect(properties).to.include("inter.broker.listener.name=SASL_SSL");
    expect(properties).to.include("listener.name.sasl_ssl.ssl.keystore.type=PEM");
    expect(properties).to.include("sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN");
    expect(cluster.brokers[0]).to.equal(
      `127.0.0.1:${/SASL_SSL:\/\/127\.0\.0\.1:(\d+)/.exec(properties)?.[1]}`,
    );
  });

  it("SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN: produce and consume through the TLS listener", async () => {
    const cluster = await securedCluster("sec1");
    for (const mechanism of ["scram-sha-512", "scram-sha-256", "plain"] as const) {
      const kafka = securedClient(cluster, securityConfig(cluster, { mechanism }));
      const topic = randomTopic(`sec-${mechanism}`);
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ key: "k", value: mechanism }] });
      await producer.disconnect();
      const offsets = await admin.fetchTopicOffsets(topic);
      await admin.disconnect();
      expect(offsets[0]?.high, mechanism).to.equal("1");
    }
  });

  it("the DirectProducer (replicator, at-least-once) inherits TLS and SASL from the kafkajs client", async () => {
    const cluster = await securedCluster("sec1");
    const kafka = securedClient(cluster);
    const topic = randomTopic("sec-direct");
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2 }] });
    const direct = DirectProducer.create(kafka, topic, { maxInFlightRequests: 2 });
    expect(direct, "kafkajs internals available").to.be.instanceOf(DirectProducer);
    await direct!.connect();
    await Promise.all([direct!.send(0, [{ value: "a" }, { value: "b" }]), direct!.send(1, [{ value: "c" }])]);
    await direct!.disconnect();
    const offsets = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    expect(offsets.map((o) => o.high).sort()).to.deep.equal(["1", "2"]);
    // and without the cluster's settings the same sender cannot connect
    const plain = DirectProducer.create(securedClient(cluster, null, { retries: 0 }), topic, {
      maxInFlightRequests: 1,
    });
    let error: unknown;
    await plain!.connect().catch((err: unknown) => (error = err));
    await plain!.disconnect().catch(() => undefined);
    expect(String((error as Error | undefined)?.message)).to.match(/Closed connection/);
  });

  it("verifies the broker: without the CA, or for another host name, the TLS handshake fails", async () => {
    const cluster = await securedCluster("sec1");
    const noCa = { ...securityConfig(cluster), tls: {} };
    expect((await failure(securedClient(cluster, noCa, { retries: 0 })))?.message).to.match(
      /self-signed certificate in certificate chain/,
    );
    const otherHost = {
      ...securityConfig(cluster),
      tls: { ca: { file: cluster.security.caFile }, servername: "kafka.example" },
    };
    expect((await failure(securedClient(cluster, otherHost, { retries: 0 })))?.message).to.match(
      /Hostname\/IP does not match certificate's altnames: Host: kafka\.example/,
    );
    // rejectUnauthorized: false is the operator's explicit choice (no CA at hand): it connects
    const unverified = { ...securityConfig(cluster), tls: { rejectUnauthorized: false } };
    expect(await failure(securedClient(cluster, unverified, { retries: 0 }))).to.equal(undefined);
  });

  it("a wrong password is an authentication error", async () => {
    const cluster = await securedCluster("sec1");
    writeFileSync(join(dir, "wrong-password"), "not-the-password\n");
    const error = await failure(
      securedClient(cluster, securityConfig(cluster, { passwordFile: join(dir, "wrong-password") }), {
        retries: 0,
      }),
    );
    expect(error?.name).to.equal("KafkaJSSASLAuthenticationError");
    expect(error?.message).to.match(/^SASL SCRAM SHA512 authentication failed: .*invalid credentials/);
  });

  it("a plaintext client at the TLS listener fails, and the message says what to check", async () => {
    const cluster = await securedCluster("sec1");
    const error = await failure(securedClient(cluster, null, { retries: 0 }));
    expect(error?.message).to.equal("Closed connection");
    expect(explainConnectionError(error!.message, undefined)).to.equal(
      "Closed connection (the broker closed the connection: is its listener TLS (SSL or SASL_SSL)? this client's security.protocol is PLAINTEXT)",
    );
  });
});
