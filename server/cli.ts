/**
 * Command-line client for the licensing REST API (clients and operators).
 * The API key comes from LICENSE_API_KEY (never from the command line); the URL from --url or LICENSE_API_URL.
 */
import { readFileSync } from "node:fs";
import { AppError } from "./errors.js";
import { errorText } from "../common/log.js";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
const HELP = `usage: license <command> [options]

commands:
  issue --product <id> --licensee <address> [--duration <s>] [--seats <n>] [--chain <id|name>] [--key <idempotency key>] [--wait]
  issue-batch --file <items.json|->              many at once: a JSON array of items (or {"items": [...]}),
                                                 each {productId, licensee, durationSeconds?, seats?, chain?, idempotencyKey?}
  get <license id>
  list [--licensee <address>] [--product <id>] [--status <status>] [--chain <id>] [--limit <n>] [--cursor <c>]
  verify <license id>
  renew <license id> --duration <s>
  revoke <license id> [--reason <text>]          (admin)
  chains
  products

options:
  --url <base url>   default: $LICENSE_API_URL or http://127.0.0.1:8080
  --json             print the raw JSON response
  -h, --help         this help

environment:
  LICENSE_API_KEY    the API key (required)
  LICENSE_API_URL    the base URL`;

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

function parseArgs(argv: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h") flags.set("help", true);
    else if (arg.startsWith("--")) {
      const name = arg.slice(2);
      const next = argv[i + 1];
      if (["wait", "json", "help"].includes(name) || next === undefined || next.startsWith("--"))
        flags.set(name, true);
      else {
        flags.set(name, next);
        i++;
      }
    } else positional.push(arg);
  }
  return { positional, flags };
}

function str(flags: Parsed["flags"], name: string): string | undefined {
  const value = flags.get(name);
  return typeof value === "string" ? value : undefined;
}

function num(flags: Parsed["flags"], name: string): number | undefined {
  const value = str(flags, name);
  return value === undefined ? undefined : Number(value);
}

function printLicense(l: Record<string, unknown>): void {
  const rows: [string, unknown][] = [
    ["id", l.id],
    ["status", l.status],
    ["product", l.productId],
    ["licensee", l.licensee],
    ["chain", `${l.chainId} (${l.policy}: ${l.reason})`],
    ["contract", l.contract],
    ["token id", l.tokenId ?? "-"],
    ["tx", l.txHash ?? "-"],
    ["expires", l.expiresAt === null ? "never" : new Date(Number(l.expiresAt) * 1000).toISOString()],
    ["revoked", l.revoked],
  ];
  if (l.error) rows.push(["error", JSON.stringify(l.error)]);
  for (const [k, v] of rows) console.log(`${k.padEnd(9)} ${String(v)}`);
}

export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { positional, flags } = parseArgs(argv);
  const [command, arg] = positional;
  if (!command || flags.has("help")) {
    console.log(HELP);
    return command || flags.has("help") ? 0 : 2;
  }
  const key = env.LICENSE_API_KEY;
  if (!key) {
    console.error("LICENSE_API_KEY is not set");
    return 2;
  }
  const base = (str(flags, "url") ?? env.LICENSE_API_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const needId = (): string => {
    if (!arg)
      throw new AppError("VALIDATION_FAILED", `${command}: a license id is required`, { field: "id" });
    return encodeURIComponent(arg);
  };

  let result: { status: number; body: Record<string, unknown> };
  switch (command) {
    case "issue": {
      const chain = str(flags, "chain");
      const body = {
        productId: num(flags, "product"),
        licensee: str(flags, "licensee"),
        ...(num(flags, "duration") === undefined ? {} : { durationSeconds: num(flags, "duration") }),
        ...(num(flags, "seats") === undefined ? {} : { seats: num(flags, "seats") }),
        ...(chain === undefined ? {} : { chain: /^\d+$/.test(chain) ? Number(chain) : chain }),
      };
      const idem = str(flags, "key");
      result = await call(
        "POST",
        `/v1/licenses${flags.has("wait") ? "?wait=true" : ""}`,
        body,
        idem ? { "idempotency-key": idem } : {},
      );
      break;
    }
    case "issue-batch": {
      const file = str(flags, "file");
      if (!file)
        throw new AppError("VALIDATION_FAILED", "issue-batch: --file <items.json|-> is required", {
          field: "file",
        });
      const text = file === "-" ? await readStdin() : readFileSync(file, "utf8");
      const parsed = JSON.parse(text) as unknown;
      result = await call("POST", "/v1/licenses/batch", Array.isArray(parsed) ? { items: parsed } : parsed);
      break;
    }
    case "get":
      result = await call("GET", `/v1/licenses/${needId()}`);
      break;
    case "list": {
      const query = new URLSearchParams();
      for (const [flag, param] of [
        ["licensee", "licensee"],
        ["product", "productId"],
        ["status", "status"],
        ["chain", "chainId"],
        ["limit", "limit"],
        ["cursor", "cursor"],
      ] as const) {
        const value = str(flags, flag);
        if (value !== undefined) query.set(param, value);
      }
      result = await call("GET", `/v1/licenses${query.size ? `?${query}` : ""}`);
      break;
    }
    case "verify":
      result = await call("GET", `/v1/licenses/${needId()}/verify`);
      break;
    case "renew":
      result = await call("POST", `/v1/licenses/${needId()}/renew`, {
        durationSeconds: num(flags, "duration"),
      });
      break;
    case "revoke":
      result = await call(
        "POST",
        `/v1/licenses/${needId()}/revoke`,
        str(flags, "reason") ? { reason: str(flags, "reason") } : {},
      );
      break;
    case "chains":
      result = await call("GET", "/v1/chains");
      break;
    case "products":
      result = await call("GET", "/v1/products");
      break;
    default:
      console.error(`unknown command ${command}\n\n${HELP}`);
      return 2;
  }

  if (flags.has("json")) console.log(JSON.stringify(result.body, null, 2));
  else if (result.status >= 400)
    console.error(
      `error ${result.status} ${String(result.body.code)}: ${String(result.body.message)}${result.body.field ? ` (field ${String(result.body.field)})` : ""}`,
    );
  else if (command === "chains") {
    console.log(`policy: ${String(result.body.policy)}`);
    console.log("chain id  name            healthy  head      queue  issued  weight");
    for (const c of result.body.items as Record<string, unknown>[]) {
      console.log(
        `${String(c.chainId).padEnd(9)} ${String(c.name).padEnd(15)} ${String(c.healthy).padEnd(8)} ${String(c.headBlock).padEnd(9)} ${String(c.queueDepth).padEnd(6)} ${String(c.issued).padEnd(7)} ${String(c.weight)}`,
      );
    }
  } else if (command === "verify") {
    const v = result.body;
    console.log(
      `${String(v.code)}  valid=${String(v.valid)} chain=${String(v.chainId)} token=${String(v.tokenId ?? "-")} owner=${String(v.owner ?? "-")} block=${String(v.blockNumber ?? "-")}`,
    );
  } else if (command === "list") {
    for (const l of result.body.items as Record<string, unknown>[]) {
      console.log(
        `${String(l.id)}  ${String(l.status).padEnd(9)} chain ${String(l.chainId)} token ${String(l.tokenId ?? "-")}  ${String(l.licensee)}`,
      );
    }
    if (result.body.nextCursor) console.log(`more: --cursor ${String(result.body.nextCursor)}`);
  } else if (command === "issue-batch") {
    const b = result.body;
    console.log(`accepted ${String(b.accepted)}, replayed ${String(b.replayed)}, failed ${String(b.failed)}`);
    for (const item of b.items as Record<string, unknown>[]) {
      const license = item.license as Record<string, unknown> | undefined;
      const error = item.error as Record<string, unknown> | undefined;
      console.log(
        license
          ? `${String(item.index).padEnd(5)} ${String(license.id)}  ${item.replayed ? "replayed" : "accepted"} chain ${String(license.chainId)}`
          : `${String(item.index).padEnd(5)} error ${String(item.status)} ${String(error?.code)}: ${String(error?.message)}${error?.field ? ` (field ${String(error.field)})` : ""}`,
      );
    }
  } else if (command === "products") {
    for (const p of result.body.items as Record<string, unknown>[])
      console.log(`${String(p.id).padEnd(6)} ${String(p.name)}`);
  } else printLicense(result.body);
  return result.status >= 400 ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(errorText(error));
      process.exit(1);
    },
  );
}
