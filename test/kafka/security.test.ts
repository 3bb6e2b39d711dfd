/** The shared security fragment (kafka/security.ts) and its use in both services' configs (pure). */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KafkaError } from "../../kafka/errors.js";
import { kafkaSecuritySchema, resolveKafkaSecurity } from "../../kafka/security.js";
import { datacenterSecurity, parseConfig as parseReplicatorConfig } from "../../replicator/config.js";
import { ConfigError } from "../../replicator/errors.js";
import { kafkaSecurityOf, parseConfig as parseServerConfig, sha256Hex } from "../../server/config.js";
import { AppError } from "../../server/errors.js";

const SASL_SSL = {
  protocol: "SASL_SSL",
  tls: { ca: { file: "/etc/kafka/ca.pem" } },
  sasl: { mechanism: "scram-sha-512", username: "replicator", password: { env: "DC1_KAFKA_PASSWORD" } },
};

function replicatorConfig(security: unknown): unknown {
  return {
    datacenters: [
      { name: "dc1", brokers: ["127.0.0.1:9092"], security },
      { name: "dc2", brokers: ["127.0.0.1:9093"] },
    ],
    replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
  };
}

/** The issues of a rejected replicator config. */
function replicatorIssues(security: unknown): string[] {
  try {
    parseReplicatorConfig(replicatorConfig(security));
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  return expect.fail("configuration was accepted");
}

function serverConfig(events: Record<string, unknown>): unknown {
  return {
    database: { path: ":memory:" },
    chains: [
      {
        name: "a",
        chainId: 1,
        rpcUrl: "http://127.0.0.1:8545",
        contract: "0x" + "11".repeat(20),
        signer: { env: "KEY_A" },
      },
    ],
    events: { brokers: ["127.0.0.1:9092"], datacenter: "dc1", ...events },
    apiKeys: [{ id: "admin", sha256: sha256Hex("k"), scopes: ["admin"] }],
  };
}

describe("kafka security settings (kafka/security.ts)", () => {
  it("accepts SASL_SSL with a CA file and a password from the environment; defaults verify the broker", () => {
    const config = parseReplicatorConfig(replicatorConfig(SASL_SSL)) as {
      datacenters: { security?: unknown }[];
    };
    expect(config.datacenters[0]?.security).to.deep.equal({
      ...SASL_SSL,
      tls: { ca: { file: "/etc/kafka/ca.pem" }, rejectUnauthorized: true },
    });
    expect(kafkaSecuritySchema.parse({})).to.deep.equal({ protocol: "PLAINTEXT" });
  });

  it("rejects an inline password, naming the field", () => {
    const issues = replicatorIssues({ ...SASL_SSL, sasl: { ...SASL_SSL.sasl, password: "hunter2" } });
    expect(issues).to.have.length(1);
    expect(issues[0]).to.match(/^datacenters\[0\]\.security\.sasl\.password: inline values are not allowed/);
    expect(issues[0]).not.to.include("hunter2");
  });

  it("rejects an inline private key and key passphrase, naming each field", () => {
    const issues = replicatorIssues({
      protocol: "SSL",
      tls: { cert: { file: "c.pem" }, key: "-----BEGIN PRIVATE KEY-----", keyPassword: "pw" },
    });
    expect(issues.join("\n")).to.match(/datacenters\[0\]\.security\.tls\.key: inline values/);
    expect(issues.join("\n")).to.match(/datacenters\[0\]\.security\.tls\.keyPassword: inline values/);
  });

  it("cross-field checks: sasl iff SASL_*, tls only with SSL/SASL_SSL, cert with key", () => {
    expect(replicatorIssues({ protocol: "SASL_SSL" })).to.deep.equal([
      "datacenters[0].security.sasl: required with protocol SASL_SSL",
    ]);
    expect(replicatorIssues({ protocol: "SSL", sasl: SASL_SSL.sasl })).to.deep.equal([
      "datacenters[0].security.sasl: only allowed with protocol SASL_PLAINTEXT or SASL_SSL (not SSL)",
    ]);
    expect(
      replicatorIssues({
        protocol: "SASL_PLAINTEXT",
        sasl: SASL_SSL.sasl,
        tls: { rejectUnauthorized: false },
      }),
    ).to.deep.equal([
      "datacenters[0].security.tls: only allowed with protocol SSL or SASL_SSL (not SASL_PLAINTEXT)",
    ]);
    expect(replicatorIssues({ protocol: "SSL", tls: { cert: { file: "c.pem" } } })).to.deep.equal([
      "datacenters[0].security.tls.key: cert and key go together (mutual TLS)",
    ]);
    expect(replicatorIssues({ protocol: "TLS" })[0]).to.match(/^datacenters\[0\]\.security\.protocol: /);
    expect(replicatorIssues({ ...SASL_SSL, sasl: { ...SASL_SSL.sasl, mechanism: "gssapi" } })[0]).to.match(
      /^datacenters\[0\]\.security\.sasl\.mechanism: /,
    );
    expect(replicatorIssues({ ...SASL_SSL, extra: 1 })[0]).to.match(/^datacenters\[0\]\.security: /);
  });

  it("resolves references at client creation: env, files, a password file's trailing newline", () => {
    const dir = mkdtempSync(join(tmpdir(), "lp-security-test-"));
    try {
      writeFileSync(join(dir, "ca.pem"), "CA-PEM");
      writeFileSync(join(dir, "password"), "s3cret\n");
      const security = kafkaSecuritySchema.parse({
        protocol: "SASL_SSL",
        tls: { ca: { file: join(dir, "ca.pem") }, servername: "kafka.dc1" },
        sasl: { mechanism: "scram-sha-256", username: "u", password: { file: join(dir, "password") } },
      });
      expect(resolveKafkaSecurity(security, "x.security")).to.deep.equal({
        ssl: { ca: "CA-PEM", rejectUnauthorized: true, servername: "kafka.dc1" },
        sasl: { mechanism: "scram-sha-256", username: "u", password: "s3cret" },
      });
      expect(resolveKafkaSecurity(kafkaSecuritySchema.parse({ protocol: "SSL" }), "x")).to.deep.equal({
        ssl: true,
      });
      expect(resolveKafkaSecurity(undefined, "x")).to.deep.equal({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a missing environment variable or file is a config error naming the field (replicator)", () => {
    const config = parseReplicatorConfig(replicatorConfig(SASL_SSL));
    expect(() => datacenterSecurity(config, 0, {}))
      .to.throw(ConfigError)
      .with.property("field", "datacenters[0].security.tls.ca");
    const withCa = parseReplicatorConfig(replicatorConfig({ ...SASL_SSL, tls: { ca: { env: "DC1_CA" } } }));
    let error: unknown;
    try {
      datacenterSecurity(withCa, 0, { DC1_CA: "pem" });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as ConfigError).field).to.equal("datacenters[0].security.sasl.password");
    expect((error as ConfigError).issues).to.deep.equal([
      "datacenters[0].security.sasl.password: environment variable DC1_KAFKA_PASSWORD is not set",
    ]);
    expect(datacenterSecurity(withCa, 1, {})).to.deep.equal({});
    expect(() => resolveKafkaSecurity(withCa.datacenters[0]?.security, "f", { env: {} }))
      .to.throw(KafkaError)
      .with.property("code", "SECURITY_UNRESOLVED");
  });

  it("the licensing service: events.security and replica.security, CONFIG_INVALID naming the field", () => {
    const config = parseServerConfig(serverConfig({ security: SASL_SSL }));
    expect(config.events?.security?.protocol).to.equal("SASL_SSL");
    let error: unknown;
    try {
      kafkaSecurityOf(config.events?.security, "events.security", {});
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(AppError);
    expect(error).to.include({ code: "CONFIG_INVALID", field: "events.security.tls.ca" });
    expect(() =>
      parseServerConfig(
        serverConfig({ security: { ...SASL_SSL, sasl: { ...SASL_SSL.sasl, password: "pw" } } }),
      ),
    )
      .to.throw(AppError)
      .with.property("field", "events.security.sasl.password");
  });
});
