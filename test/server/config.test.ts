import { expect } from "chai";
import { readFileSync } from "node:fs";
import { parseConfig, parseDeployments, resolveContracts, sha256Hex } from "../../server/config.js";
import { AppError, ERROR_CATALOGUE, errorBody } from "../../server/errors.js";

const KEY_HASH = sha256Hex("secret-key");

function base(): Record<string, unknown> {
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
      {
        name: "b",
        chainId: 2,
        rpcUrl: "http://127.0.0.1:8546",
        signer: { keystore: "ks.json", passwordEnv: "PW" },
      },
    ],
    products: [{ id: 1, name: "Pro", chains: [2] }],
    apiKeys: [{ id: "admin", sha256: KEY_HASH, scopes: ["admin"] }],
  };
}

function fieldOf(raw: unknown): string | undefined {
  try {
    parseConfig(raw);
  } catch (error) {
    expect(error).to.be.instanceOf(AppError);
    expect((error as AppError).code).to.equal("CONFIG_INVALID");
    return (error as AppError).field;
  }
  return undefined;
}

describe("server: config schema", function () {
  it("accepts a valid config and fills defaults", function () {
    const config = parseConfig(base());
    expect(config.policy).to.equal("round-robin");
    expect(config.server.host).to.equal("127.0.0.1");
    expect(config.chains[0]!.weight).to.equal(1);
    expect(config.chains[0]!.confirmations).to.equal(1);
    expect(config.chains[0]!.enabled).to.equal(true);
    expect(config.batching.maxSize).to.equal(50);
  });

  it("names the offending field", function () {
    const cfg = base();
    (cfg.chains as Record<string, unknown>[])[1]!.rpcUrl = "not a url";
    expect(fieldOf(cfg)).to.equal("chains[1].rpcUrl");

    const cfg2 = base();
    (cfg2.chains as Record<string, unknown>[])[0]!.signer = { env: "lower-case" };
    expect(fieldOf(cfg2)).to.match(/^chains\[0\]\.signer/);

    const cfg3 = base();
    (cfg3.apiKeys as Record<string, unknown>[])[0]!.sha256 = "abc";
    expect(fieldOf(cfg3)).to.equal("apiKeys[0].sha256");

    const cfg4 = base();
    cfg4.policy = "random";
    expect(fieldOf(cfg4)).to.equal("policy");

    const cfg5 = base();
    cfg5.server = { host: "example.com; rm -rf /" };
    expect(fieldOf(cfg5)).to.equal("server.host");

    const cfg6 = base();
    cfg6.extra = 1;
    expect(fieldOf(cfg6)).to.equal("(root)");
  });

  it("rejects duplicate chain ids and products pinned to unknown chains", function () {
    const cfg = base();
    (cfg.chains as Record<string, unknown>[])[1]!.chainId = 1;
    expect(fieldOf(cfg)).to.equal("chains[1].chainId");
    const cfg2 = base();
    cfg2.products = [{ id: 1, name: "x", chains: [7] }];
    expect(fieldOf(cfg2)).to.equal("products[0].chains[0]");
  });

  it("takes missing contract addresses from the deployments file", function () {
    const config = parseConfig(base());
    const deployments = parseDeployments({
      chains: { "2": { address: "0x" + "22".repeat(20), blockNumber: 5 } },
    });
    const chains = resolveContracts(config, deployments);
    expect(chains[0]!.contract).to.equal("0x" + "11".repeat(20));
    expect(chains[1]!.contract).to.equal("0x" + "22".repeat(20));
    expect(chains[1]!.deployBlock).to.equal(5);
    try {
      resolveContracts(config, new Map());
      expect.fail("should throw");
    } catch (error) {
      expect((error as AppError).field).to.equal("chains[1].contract");
    }
    expect(() => parseDeployments({ chains: { "2": { address: "nope" } } })).to.throw(
      AppError,
      /chains\.2\.address/,
    );
  });
});

describe("server: error catalogue", function () {
  it("gives every code an HTTP status and maps errors to bodies without internals", function () {
    for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
      expect(spec.httpStatus, code).to.be.within(400, 599);
      expect(spec.description, code).to.not.equal("");
    }
    const error = new AppError("VALIDATION_FAILED", "bad licensee", {
      field: "licensee",
      cause: new Error("x"),
    });
    expect(error.httpStatus).to.equal(400);
    expect(error.retriable).to.equal(false);
    expect(error.cause).to.be.instanceOf(Error);
    expect(errorBody(error)).to.deep.equal({
      status: 400,
      body: { code: "VALIDATION_FAILED", message: "bad licensee", field: "licensee" },
    });
    expect(errorBody(new TypeError("secret internals"))).to.deep.equal({
      status: 500,
      body: { code: "INTERNAL", message: "internal error" },
    });
    expect(new AppError("RATE_LIMITED", "slow down").retriable).to.equal(true);
  });

  it("docs/server.md lists every code of the catalogue with its status", function () {
    const doc = readFileSync(new URL("../../docs/server.md", import.meta.url), "utf8");
    const documented = [...doc.matchAll(/^\| `([A-Z_]+)` +\| (\d{3}) +\| (yes|no) +\|/gm)].map((m) => [
      m[1],
      Number(m[2]),
      m[3] === "yes",
    ]);
    const catalogue = Object.entries(ERROR_CATALOGUE).map(([code, spec]) => [
      code,
      spec.httpStatus,
      spec.retriable,
    ]);
    expect(documented).to.deep.equal(catalogue);
  });
});
