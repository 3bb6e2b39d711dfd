/**
 * Property-based conformance of the running service to its own OpenAPI document (what Schemathesis
 * checks): for every operation, seeded valid and invalid requests generated from the document's
 * schemas, with the admin, a client, a read-only and no API key, over real HTTP against real chains.
 * Every answer: no 5xx, a status the operation documents, a JSON body valid against the documented
 * schema, the rate-limit headers; invalid input is refused (400, or 401/403 first), valid input is not
 * refused except for the documented semantic checks (unknown product or chain). `CONFORMANCE_SEED`
 * reproduces a run; `CONFORMANCE_RUNS` sets the requests per operation.
 */
import { expect } from "chai";
import type { Server } from "node:http";
import path from "node:path";
import { getChains } from "../fixtures/infra.js";
import { listen, type Runtime } from "../../server/index.js";
import {
  check,
  invalidValue,
  SchemaContext,
  validValue,
  type Rng,
  type Schema,
} from "../support/jsonschema.js";
import { prng } from "../support/prng.js";
import {
  KEYS,
  deployOnChains,
  devKey,
  startRuntime,
  tempDir,
  testConfig,
  type TestChain,
} from "./helpers.js";

const SIGNER = devKey(15);
const SEED = Number(process.env.CONFORMANCE_SEED ?? 20_231);
const RUNS = Number(process.env.CONFORMANCE_RUNS ?? 120);

interface Parameter {
  name: string;
  in: "path" | "query" | "header";
  required?: boolean;
  schema: Schema;
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> };
  responses: Record<
    string,
    { content?: Record<string, { schema: Schema }>; headers?: Record<string, unknown> }
  >;
  security?: unknown[];
  "x-required-scope"?: string;
}

const WHO = {
  admin: { key: KEYS.admin, scopes: ["admin"] },
  client: { key: KEYS.client, scopes: ["licenses:write", "licenses:read"] },
  reader: { key: KEYS.reader, scopes: ["licenses:read"] },
  none: { key: undefined, scopes: [] },
} as const;
type Who = keyof typeof WHO;

interface Sample {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /**
   * undefined: a valid request; else what was made invalid and the status it must get. A body that is
   * not JSON, too large or of another type is refused before the scope check, a schema violation after it.
   */
  invalid?: { why: string; status: number; beforeScope?: boolean };
  who: Who;
}

// a 400 on a schema-valid request is legitimate only for these checks the schema cannot make
const SEMANTIC_FIELDS = /^(?:items\.\d+\.)?(?:productId|chain(?:\.\d+)?|chains\.\d+|idempotencyKey)$/;
const RATE_LIMIT = /^"default";r=\d+;t=\d+$/;
const RATE_POLICY = /^"default";q=\d+;w=\d+$/;

describe("server: property-based conformance to the generated OpenAPI document", function () {
  this.timeout(180_000);
  let runtime: Runtime;
  let server: Server;
  let base: string;
  let chains: TestChain[];
  let tmp: ReturnType<typeof tempDir>;
  const ids: string[] = [];

  before(async function () {
    const set = await getChains();
    chains = await deployOnChains(set.chains, SIGNER);
    tmp = tempDir();
    runtime = await startRuntime(testConfig(chains, { dbPath: path.join(tmp.dir, "db.sqlite") }), SIGNER);
    ({ server, port: base } = await listen(runtime.app, 0).then((r) => ({
      server: r.server,
      port: `http://127.0.0.1:${r.port}`,
    })));
    // a few confirmed subscription licenses, so renew, revoke and verify reach their success paths
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${base}/v1/licenses?wait=true`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEYS.client}`, "content-type": "application/json" },
        body: JSON.stringify({
          productId: 1,
          licensee: `0x${(i + 1).toString(16).padStart(40, "a")}`,
          durationSeconds: 86_400,
        }),
      });
      expect(res.status).to.equal(201);
      ids.push(((await res.json()) as { id: string }).id);
    }
  });

  after(async function () {
    server?.closeAllConnections();
    server?.close();
    await runtime?.stop();
    tmp?.cleanup();
  });

  it(`answers every generated request as the document says (seed ${SEED}, ${RUNS} per operation)`, async function () {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, Operation>>;
    };
    const ctx = new SchemaContext(doc);
    const rng = prng(SEED);
    const chainIds = chains.map((c) => c.chainId);
    const hint = hints(
      rng,
      chainIds,
      chains.map((c) => c.name),
      ids,
    );

    const failures: string[] = [];
    const seen = new Map<string, Set<number>>();
    const samples: { op: string; operation: Operation; sample: Sample }[] = [];
    for (const [template, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        const op = `${method.toUpperCase()} ${template}`;
        seen.set(op, new Set());
        for (let i = 0; i < RUNS; i++) {
          const sample = generate(ctx, rng, hint, method, template, operation);
          if (sample) samples.push({ op, operation, sample });
        }
      }
    }
    const started = Date.now();
    await pool(samples, 6, async ({ op, operation, sample }) => {
      const res = await fetch(`${base}${sample.path}`, {
        method: sample.method,
        headers: sample.headers,
        ...(sample.body === undefined ? {} : { body: sample.body }),
      });
      const text = await res.text();
      seen.get(op)!.add(res.status);
      const problems = judge(ctx, operation, sample, res, text);
      if (problems.length > 0) {
        failures.push(
          `${op} as ${sample.who}${sample.invalid ? ` (invalid: ${sample.invalid.why})` : ""}: ${problems.join("; ")}\n` +
            `    ${sample.method} ${sample.path} ${JSON.stringify(sample.headers)} ${sample.body?.slice(0, 300) ?? ""}\n` +
            `    → ${res.status} ${text.slice(0, 300)}`,
        );
      }
    });
    const elapsed = Date.now() - started;
    expect(
      failures,
      `seed ${SEED}: ${failures.length} non-conformances\n${failures.slice(0, 15).join("\n")}`,
    ).to.deep.equal([]);
    // the generator reached every operation's success path (a run that only produced errors proves little)
    for (const [op, statuses] of seen) {
      expect(
        [...statuses].some((s) => s >= 200 && s < 300),
        `${op}: statuses ${[...statuses].join(",")}`,
      ).to.equal(true);
    }
    expect(samples.length).to.be.greaterThan(10 * 12);
    expect(elapsed, "runtime of the property run").to.be.below(60_000);
  });
});

/** Known-good values by property or parameter name, so valid requests reach the success paths. */
function hints(rng: Rng, chainIds: number[], names: string[], ids: string[]): (name: string) => unknown {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
  const hex = (): string => Array.from({ length: 40 }, () => pick([..."0123456789abcdef"])).join("");
  return (name) => {
    switch (name) {
      case "productId":
        return pick([1, 1, 2]);
      case "chain":
        return pick([pick(chainIds), pick(names), [pick(chainIds), pick(names)]]);
      case "chainId":
        return String(pick(chainIds));
      case "chains":
        return [pick(chainIds)];
      case "licensee":
        return `0x${hex()}`;
      case "id":
        return ids.length > 0 && rng() < 0.7 ? pick(ids) : undefined;
      case "wait":
        return pick(["false", "0", "300", "true"]);
      case "Prefer":
        return pick(["wait=1", "respond-async", "return=minimal"]);
      case "durationSeconds":
        return pick([60, 3600, 86_400]);
      case "idempotencyKey":
      case "Idempotency-Key":
        return rng() < 0.3 ? pick(["conf-a", "conf-b"]) : undefined;
      default:
        return undefined;
    }
  };
}

/** A parameter's string form; undefined when it cannot travel (a header value with control characters). */
function serialize(value: unknown, where: Parameter["in"]): string | undefined {
  if (value === null || typeof value === "object") return undefined;
  const text = String(value);
  if (where === "header" && (!/^[\x20-\x7e]*$/.test(text) || text !== text.trim())) return undefined;
  if (where === "path" && text === "") return undefined;
  return text;
}

/** The value the server sees for a query/path/header string: numbers where the schema wants a number. */
function parsed(ctx: SchemaContext, schema: Schema, text: string): unknown {
  const type = ctx.resolve(schema).type;
  if ((type === "integer" || type === "number") && /^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  return text;
}

function generate(
  ctx: SchemaContext,
  rng: Rng,
  hint: (name: string) => unknown,
  method: string,
  template: string,
  operation: Operation,
): Sample | undefined {
  const whoList = Object.keys(WHO) as Who[];
  const who = whoList[Math.floor(rng() * whoList.length)]!;
  const params = operation.parameters ?? [];
  const values = new Map<Parameter, string>();
  for (const p of params) {
    if (!p.required && rng() < 0.5) continue;
    const hinted = hint(p.name);
    const raw =
      hinted !== undefined && check(ctx, p.schema, parsed(ctx, p.schema, String(hinted))).length === 0
        ? hinted
        : validValue(ctx, p.schema, rng, hint);
    const text = serialize(raw, p.in);
    if (text !== undefined) values.set(p, text);
    else if (p.required) return undefined;
  }
  const bodySchema = operation.requestBody?.content["application/json"]?.schema;
  let body: string | undefined;
  let contentType = "application/json";
  if (bodySchema && (operation.requestBody?.required || rng() < 0.8))
    body = JSON.stringify(validValue(ctx, bodySchema, rng, hint));

  // an invalid request breaks exactly one thing: a parameter, the body's schema, or the body itself
  let invalid: Sample["invalid"];
  const secured = operation.security === undefined || operation.security.length > 0;
  if (secured && rng() < 0.5) {
    const targets: (() => Sample["invalid"])[] = [];
    for (const p of params) {
      targets.push(() => {
        for (let tries = 0; tries < 10; tries++) {
          const bad = invalidValue(ctx, p.schema, rng, hint);
          if (!bad) return undefined;
          const text = serialize(bad.value, p.in);
          if (text === undefined || check(ctx, p.schema, parsed(ctx, p.schema, text)).length === 0) continue;
          values.set(p, text);
          return { why: `${p.in} ${p.name}: ${bad.why}`, status: 400 };
        }
        return undefined;
      });
    }
    if (bodySchema) {
      targets.push(() => {
        const bad = invalidValue(ctx, bodySchema, rng, hint);
        if (!bad) return undefined;
        body = JSON.stringify(bad.value);
        // strict JSON parsing refuses a top-level scalar or null (INVALID_JSON) before the scope check
        const scalar = bad.value === null || typeof bad.value !== "object";
        return { why: `body ${bad.why}`, status: 400, ...(scalar ? { beforeScope: true } : {}) };
      });
      targets.push(() => {
        body = '{"productId": 1,';
        return { why: "malformed JSON", status: 400, beforeScope: true };
      });
      targets.push(() => {
        contentType = "text/plain";
        body = "hello";
        return { why: "text/plain body", status: 415, beforeScope: true };
      });
      targets.push(() => {
        body = JSON.stringify({ pad: "x".repeat(template.endsWith("/batch") ? 1_100_000 : 5000) });
        return { why: "oversize body", status: 413, beforeScope: true };
      });
    }
    for (let tries = 0; tries < 5 && targets.length > 0 && !invalid; tries++)
      invalid = targets[Math.floor(rng() * targets.length)]!();
  }

  let url = template;
  const query = new URLSearchParams();
  const headers: Record<string, string> = {};
  for (const [p, text] of values) {
    if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(text));
    else if (p.in === "query") query.set(p.name, text);
    else headers[p.name] = text;
  }
  const key = WHO[who].key;
  if (key) headers.authorization = `${["Bearer", "bearer", "BEARER"][Math.floor(rng() * 3)]} ${key}`;
  if (body !== undefined) headers["content-type"] = contentType;
  const qs = query.toString();
  return {
    method: method.toUpperCase(),
    path: qs ? `${url}?${qs}` : url,
    headers,
    ...(body === undefined ? {} : { body }),
    ...(invalid ? { invalid } : {}),
    who,
  };
}

/** What is wrong with an answer (empty: it conforms). */
function judge(
  ctx: SchemaContext,
  operation: Operation,
  sample: Sample,
  res: Response,
  text: string,
): string[] {
  const problems: string[] = [];
  const status = res.status;
  if (status >= 500) problems.push(`a ${status}`);
  const documented = operation.responses[String(status)];
  if (!documented)
    problems.push(`status ${status} not documented (${Object.keys(operation.responses).join(",")})`);
  const secured = operation.security === undefined || operation.security.length > 0;
  const scope = operation["x-required-scope"];
  const scopes: readonly string[] = WHO[sample.who].scopes;
  const allowed = scope === undefined || scopes.includes("admin") || scopes.includes(scope);
  let body: unknown;
  const type = res.headers.get("content-type") ?? "";
  if (type.startsWith("application/json")) {
    try {
      body = JSON.parse(text);
    } catch {
      problems.push("a JSON content type with a body that is not JSON");
    }
  }
  // the order of the checks: the key (401), the body's type, size and syntax, the scope (403), the schema
  const expected = !secured
    ? undefined
    : sample.who === "none"
      ? 401
      : sample.invalid?.beforeScope
        ? sample.invalid.status
        : !allowed
          ? 403
          : sample.invalid?.status;
  if (expected !== undefined && status !== expected) problems.push(`expected ${expected}`);
  if (expected === undefined && status === 400) {
    const field = (body as { field?: string } | undefined)?.field ?? "";
    if (!SEMANTIC_FIELDS.test(field)) problems.push(`a valid request refused (field ${field})`);
  }
  if (documented?.content) {
    const [media, { schema }] = Object.entries(documented.content)[0]!;
    if (!type.startsWith(media)) problems.push(`content type ${type}, documented ${media}`);
    else if (media === "application/json") {
      const errors = check(ctx, schema, body);
      if (errors.length > 0) problems.push(`body: ${errors.slice(0, 3).join(", ")}`);
    }
  }
  if (secured && status !== 401) {
    if (!RATE_LIMIT.test(res.headers.get("ratelimit") ?? "")) problems.push("no RateLimit header");
    if (!RATE_POLICY.test(res.headers.get("ratelimit-policy") ?? ""))
      problems.push("no RateLimit-Policy header");
  }
  if (status === 429 && !res.headers.get("retry-after")) problems.push("429 without Retry-After");
  return problems;
}

async function pool<T>(items: T[], size: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: size }, async () => {
      while (next < items.length) await run(items[next++]!);
    }),
  );
}
