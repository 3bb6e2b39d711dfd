/**
 * The generated OpenAPI document against the app (every API route documented, every operation served,
 * routes read from Express's router stack), the drifts Schemathesis found in the hand-written one, and
 * HTTP conformance: 405 + Allow, OPTIONS, the bulk route's 413, the auth scheme's case, oversize
 * headers in the error format, RateLimit headers. Real chains, real HTTP (signer: dev account 16).
 */
import { expect } from "chai";
import express from "express";
import type { Server } from "node:http";
import { connect } from "node:net";
import path from "node:path";
import request from "supertest";
import { getChains } from "../fixtures/infra.js";
import { createApp } from "../../server/app.js";
import { ApiKeys, RateLimiter } from "../../server/auth.js";
import { listen, type Runtime } from "../../server/index.js";
import { listRoutes, matchTemplate } from "../../server/routes.js";
import {
  KEYS,
  auth,
  deployOnChains,
  devKey,
  randomAddress,
  startRuntime,
  tempDir,
  testConfig,
} from "./helpers.js";

const SIGNER = devKey(16);
const ZERO = `0x${"0".repeat(40)}`;

/** The API's paths (the rest, e.g. `/docs`, `/dashboard` and static assets, are pages, not operations). */
const isApiPath = (p: string): boolean =>
  p.startsWith("/v1/") || ["/healthz", "/readyz", "/metrics", "/openapi.json"].includes(p);

type Doc = {
  paths: Record<
    string,
    Record<
      string,
      { responses: Record<string, unknown>; parameters?: { name: string; schema: Record<string, unknown> }[] }
    >
  >;
  components: { schemas: Record<string, Record<string, unknown>>; securitySchemes: Record<string, unknown> };
};

/** A raw HTTP exchange (what a client library would refuse to send): the whole answer as text. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.end(text));
    let out = "";
    socket.on("data", (chunk: Buffer) => (out += chunk.toString()));
    socket.on("end", () => resolve(out));
    socket.on("error", reject);
  });
}

describe("server: the generated OpenAPI document and HTTP conformance", function () {
  this.timeout(120_000);
  let runtime: Runtime;
  let tmp: ReturnType<typeof tempDir>;
  let doc: Doc;

  before(async function () {
    const chains = await deployOnChains((await getChains()).chains, SIGNER);
    tmp = tempDir();
    runtime = await startRuntime(testConfig(chains, { dbPath: path.join(tmp.dir, "db.sqlite") }), SIGNER);
    doc = (await request(runtime.app).get("/openapi.json")).body as Doc;
  });

  after(async function () {
    await runtime?.stop();
    tmp?.cleanup();
  });

  it("reads the routes from the router stack, mounted routers included", function () {
    const app = express();
    const sub = express.Router();
    sub.get("/things/:id", (_req, res) => void res.end());
    sub.post("/things", (_req, res) => void res.end());
    app.use("/v9", sub);
    app.get("/ping", (_req, res) => void res.end());
    expect(listRoutes(app)).to.deep.equal([
      { path: "/v9/things/{id}", methods: ["GET"] },
      { path: "/v9/things", methods: ["POST"] },
      { path: "/ping", methods: ["GET"] },
    ]);
    // a literal segment wins over a parameter, whatever the order
    expect(matchTemplate(["/v1/licenses/{id}", "/v1/licenses/batch"], "/v1/licenses/batch")).to.equal(
      "/v1/licenses/batch",
    );
    expect(matchTemplate(["/v1/licenses/{id}", "/v1/licenses/batch"], "/v1/licenses/abc/")).to.equal(
      "/v1/licenses/{id}",
    );
    expect(matchTemplate(["/v1/licenses/{id}"], "/v1/licenses//")).to.equal(undefined);
  });

  it("documents exactly the operations the app serves: every API route, nothing more", function () {
    const served = new Set(
      listRoutes(runtime.app)
        .filter((r) => isApiPath(r.path))
        .flatMap((r) => r.methods.map((m) => `${m} ${r.path}`)),
    );
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([p, item]) =>
        Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`),
      ),
    );
    expect(
      [...served].filter((op) => !documented.has(op)),
      "routes the document lacks",
    ).to.deep.equal([]);
    expect(
      [...documented].filter((op) => !served.has(op)),
      "operations no route serves",
    ).to.deep.equal([]);
    expect(served.size).to.equal(15);
  });

  it("is OpenAPI 3.1 with the bearer scheme and the one error schema on every error status", function () {
    expect(doc).to.have.property("openapi", "3.1.0");
    expect(doc.components.securitySchemes.bearer).to.include({ type: "http", scheme: "bearer" });
    const error = { content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        for (const [status, response] of Object.entries(op.responses)) {
          if (Number(status) >= 400 && p.startsWith("/v1/"))
            expect(response, `${method} ${p} ${status}`).to.deep.include(error);
        }
        // every /v1 operation: validation, key, scope, body size and type, rate limit (the /v1/chains 401 drift)
        if (p.startsWith("/v1/"))
          expect(op.responses, `${method} ${p}`).to.include.keys("400", "401", "403", "413", "415", "429");
      }
    }
    expect(doc.components.schemas.Error).to.deep.include({
      required: ["code", "message"],
      additionalProperties: false,
    });
  });

  it("fixes the drifts Schemathesis found: zero address, typed filters, closed bodies, product id minimum", async function () {
    const { schemas } = doc.components;
    const licensee = (schemas.IssueRequest!.properties as Record<string, { pattern: string }>).licensee!;
    expect(new RegExp(licensee.pattern).test(ZERO)).to.equal(false);
    expect(new RegExp(licensee.pattern).test(randomAddress().toLowerCase())).to.equal(true);
    const item = schemas.BulkIssueItem!;
    expect(item).to.not.have.property("allOf");
    expect(item).to.include({ additionalProperties: false });
    expect(item.properties).to.include.keys("productId", "licensee", "idempotencyKey");
    const list = Object.fromEntries(
      doc.paths["/v1/licenses"]!.get!.parameters!.map((p) => [p.name, p.schema]),
    );
    expect(list.productId).to.include({ type: "integer", exclusiveMinimum: 0 });
    expect(list.chainId).to.include({ type: "integer" });
    expect(list.limit).to.include({ type: "integer", minimum: 1, maximum: 200 });
    expect(list.status!.enum).to.deep.equal(["accepted", "submitted", "confirmed", "failed"]);
    expect(schemas.RenewRequest).to.deep.include({
      required: ["durationSeconds"],
      additionalProperties: false,
    });
    expect(schemas.RevokeRequest).to.include({ additionalProperties: false });
    expect((schemas.ProductRequest!.properties as Record<string, unknown>).id).to.include({
      exclusiveMinimum: 0,
    });

    // and the service agrees with each of them
    const post = (url: string, body: unknown, key = KEYS.admin): request.Test =>
      request(runtime.app)
        .post(url)
        .set(...auth(key))
        .send(body as object);
    const some = "/v1/licenses/00000000-0000-4000-8000-000000000000";
    const cases: [request.Test, string][] = [
      [post("/v1/licenses", { productId: 1, licensee: ZERO }), "licensee"],
      [post("/v1/licenses/batch", { items: [{ productId: 1, licensee: ZERO }] }), "items.0.licensee"],
      [post("/v1/products", { id: 0, name: "zero" }), "id"],
      [post(`${some}/renew`, { durationSeconds: 60, extra: 1 }), "extra"],
      [post(`${some}/renew`, {}), "durationSeconds"],
      [post(`${some}/revoke`, { reason: "x", extra: 1 }), "extra"],
      [
        request(runtime.app)
          .get("/v1/licenses?productId=abc")
          .set(...auth(KEYS.admin)),
        "productId",
      ],
      [
        request(runtime.app)
          .get(`/v1/licenses?licensee=${randomAddress().slice(2)}`)
          .set(...auth(KEYS.admin)),
        "licensee",
      ],
      // only decimal digits are an integer (z.coerce took `0x10` as 16)
      [
        request(runtime.app)
          .get("/v1/licenses?limit=0x10")
          .set(...auth(KEYS.admin)),
        "limit",
      ],
    ];
    for (const [call, field] of cases) {
      const res = await call;
      expect(res.status, field).to.equal(400);
      expect(res.body, field).to.include({ code: "VALIDATION_FAILED", field });
    }
    // what the patterns allow is taken: an upper-case licensee and a list filter by address
    const upper = `0x${randomAddress().slice(2).toUpperCase()}`;
    expect((await post("/v1/licenses", { productId: 1, licensee: upper }, KEYS.client)).status).to.equal(202);
    const listed = await request(runtime.app)
      .get(`/v1/licenses?licensee=${upper}`)
      .set(...auth(KEYS.client));
    expect(listed.status).to.equal(200);
  });

  it("answers an unknown method on a known path 405 with Allow (TRACE included), OPTIONS 204 with Allow", async function () {
    const allowOf = (item: Record<string, unknown>): string => {
      const methods = new Set(Object.keys(item).map((m) => m.toUpperCase()));
      if (methods.has("GET")) methods.add("HEAD");
      methods.add("OPTIONS");
      return [...methods].sort().join(", ");
    };
    for (const [template, item] of Object.entries(doc.paths)) {
      const url = template.replace("{id}", "00000000-0000-4000-8000-000000000000");
      const allow = allowOf(item);
      for (const method of ["TRACE", "PUT", "DELETE", "PATCH", "POST", "GET"]) {
        if (item[method.toLowerCase()]) continue;
        // without a key: the method is a property of the path, not of the caller
        const res = await request(runtime.app)[method.toLowerCase() as "put"](url);
        expect(res.status, `${method} ${template}`).to.equal(405);
        expect(res.headers.allow, `${method} ${template}`).to.equal(allow);
        expect(res.body.code).to.equal("METHOD_NOT_ALLOWED");
      }
      const options = await request(runtime.app).options(url);
      expect(options.status, `OPTIONS ${template}`).to.equal(204);
      expect(options.headers.allow, `OPTIONS ${template}`).to.equal(allow);
    }
    // the bulk path is not the {id} path with id "batch"
    const batch = await request(runtime.app).options("/v1/licenses/batch");
    expect(batch.headers.allow).to.equal("OPTIONS, POST");
    const get = await request(runtime.app)
      .get("/v1/licenses/batch")
      .set(...auth(KEYS.client));
    expect(get.status).to.equal(405);
    // unknown paths are still 404 (after authentication)
    expect(
      (
        await request(runtime.app)
          .trace("/v1/nothing")
          .set(...auth(KEYS.client))
      ).status,
    ).to.equal(404);
    expect((await request(runtime.app).get("/nothing")).body.code).to.equal("NOT_FOUND");
  });

  it("cites the bulk route's own body limit in its 413, the configured one elsewhere", async function () {
    const big = (bytes: number) => ({
      items: [{ productId: 1, licensee: randomAddress(), pad: "x".repeat(bytes) }],
    });
    const bulk = await request(runtime.app)
      .post("/v1/licenses/batch")
      .set(...auth(KEYS.client))
      .send(big(1_100_000));
    expect(bulk.status).to.equal(413);
    expect(bulk.body).to.deep.equal({ code: "PAYLOAD_TOO_LARGE", message: "body larger than 1048576 bytes" });
    // 8 KiB is over the single route's 4 KiB limit but well within the bulk route's
    const single = await request(runtime.app)
      .post("/v1/licenses")
      .set(...auth(KEYS.client))
      .send(big(8192));
    expect(single.body).to.deep.equal({ code: "PAYLOAD_TOO_LARGE", message: "body larger than 4096 bytes" });
    const within = await request(runtime.app)
      .post("/v1/licenses/batch")
      .set(...auth(KEYS.client))
      .send(big(8192));
    expect(within.status).to.equal(400);
    expect(within.body.field).to.equal("items.0.pad");
  });

  it("takes the auth scheme in any case; other schemes are not a key", async function () {
    for (const scheme of ["Bearer", "bearer", "BEARER", "bEaReR"]) {
      const res = await request(runtime.app)
        .get("/v1/products")
        .set("Authorization", `${scheme} ${KEYS.reader}`);
      expect(res.status, scheme).to.equal(200);
    }
    const basic = await request(runtime.app).get("/v1/products").set("Authorization", `Basic ${KEYS.reader}`);
    expect(basic.status).to.equal(401);
    expect(basic.body.code).to.equal("UNAUTHENTICATED");
  });

  it("answers headers over 16 KiB and malformed requests in the error format, over a real socket", async function () {
    const { server, port }: { server: Server; port: number } = await listen(runtime.app, 0);
    try {
      const ok = await raw(
        port,
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${"a".repeat(15_000)}\r\nConnection: close\r\n\r\n`,
      );
      expect(ok).to.match(/^HTTP\/1\.1 200 /);
      const large = await raw(
        port,
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${"a".repeat(17_000)}\r\n\r\n`,
      );
      expect(large).to.match(/^HTTP\/1\.1 431 /);
      expect(large).to.match(/content-type: application\/json/i);
      expect(JSON.parse(large.slice(large.indexOf("\r\n\r\n") + 4))).to.deep.equal({
        code: "HEADERS_TOO_LARGE",
        message: "request headers larger than 16384 bytes",
      });
      const malformed = await raw(port, "GARBAGE\r\n\r\n");
      expect(malformed).to.match(/^HTTP\/1\.1 400 /);
      expect(JSON.parse(malformed.slice(malformed.indexOf("\r\n\r\n") + 4))).to.include({
        code: "VALIDATION_FAILED",
      });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("sends RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers) beside Retry-After", async function () {
    const app = createApp({
      service: runtime.service,
      apiKeys: new ApiKeys(runtime.service.config.apiKeys),
      rateLimiter: new RateLimiter(0.5, 3),
      logger: runtime.service.logger,
      metrics: runtime.service.metrics,
      bodyLimitBytes: 4096,
    });
    const seen: [number, string, string, string | undefined][] = [];
    for (let i = 0; i < 4; i++) {
      const res = await request(app)
        .get("/v1/products")
        .set(...auth(KEYS.reader));
      seen.push([
        res.status,
        String(res.headers["ratelimit-policy"]),
        String(res.headers.ratelimit),
        res.headers["retry-after"],
      ]);
    }
    const policy = '"default";q=3;w=6';
    expect(seen.map((s) => s[0])).to.deep.equal([200, 200, 200, 429]);
    expect(seen.map((s) => s[1])).to.deep.equal([policy, policy, policy, policy]);
    expect(seen.map((s) => s[2]!.replace(/;t=\d+$/, ""))).to.deep.equal([
      '"default";r=2',
      '"default";r=1',
      '"default";r=0',
      '"default";r=0',
    ]);
    // t: seconds until the bucket is full again (3 tokens at 0.5/s)
    expect(Number(/t=(\d+)$/.exec(seen[2]![2])![1])).to.be.within(5, 6);
    expect(seen.slice(0, 3).every((s) => s[3] === undefined)).to.equal(true);
    expect(Number(seen[3]![3])).to.be.within(1, 2);
  });
});
