/**
 * Command-line client for the licensing REST API (clients and operators).
 * The API key comes from LICENSE_API_KEY (never from the command line); the URL from --url or LICENSE_API_URL.
 */
import { readFileSync } from "node:fs";
import { errorText } from "../common/log.js";
import {
  chainRef,
  COMMANDS,
  int,
  parseCommandLine,
  required,
  status,
  UsageError,
  type Parsed,
} from "./cli/args.js";
import { issueFile } from "./cli/issue-file.js";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
const HELP = `usage: license <command> [options]     (license <command> --help: that command's flags)

commands:
${Object.values(COMMANDS)
  .flatMap((c) => c.usage.split("\n").filter((l) => l.startsWith("license ")))
  .map((l) => `  ${l.replace(/^license /, "")}`)
  .join("\n")}

options:
  --url <base url>   default: $LICENSE_API_URL or http://127.0.0.1:8080
  --json             print the raw JSON response
  -h, --help         this help

Flags are strict: an unknown flag, a missing value or a non-number where a number belongs is a usage
error (exit status 2).

environment:
  LICENSE_API_KEY    the API key (required)
  LICENSE_API_URL    the base URL`;

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

/** A usage error: one line naming the flag, exit status 2 (as the repository's other CLIs). */
function usage(error: UsageError): number {
  console.error(
    `license: ${error.message} (see 'license ${error.command ? `${error.command} ` : ""}--help')`,
  );
  return 2;
}

export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    if (error instanceof UsageError) return usage(error);
    throw error;
  }
  const { command, values } = parsed;
  if (!command) {
    if (values.help) console.log(HELP);
    else console.error(HELP);
    return values.help ? 0 : 2;
  }
  if (values.help) {
    console.log(`usage: ${COMMANDS[command]!.usage}`);
    return 0;
  }
  const key = env.LICENSE_API_KEY;
  if (!key) {
    console.error("LICENSE_API_KEY is not set");
    return 2;
  }
  const base = (values.url ?? env.LICENSE_API_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
  try {
    return await execute({ ...parsed, command }, base, key);
  } catch (error) {
    if (error instanceof UsageError) return usage(error);
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    if (error instanceof TypeError && cause) {
      console.error(`cannot reach ${base}: ${cause.code ?? cause.message}`);
      return 1;
    }
    throw error;
  }
}

/** `--idempotency-key` of renew / revoke as the header (none generated: a new key per run would renew again). */
function keyHeader(values: Parsed["values"]): Record<string, string> {
  const key = values["idempotency-key"];
  return key === undefined ? {} : { "idempotency-key": key };
}

async function execute(parsed: Parsed & { command: string }, base: string, key: string): Promise<number> {
  const { command, values } = parsed;
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
  const id = encodeURIComponent(parsed.id ?? "");

  let result: { status: number; body: Record<string, unknown> };
  switch (command) {
    case "issue": {
      const duration = int(values, "duration", command);
      const seats = int(values, "seats", command);
      const chain = chainRef(values);
      if (values.file !== undefined) {
        for (const flag of ["product", "licensee", "key", "wait"] as const)
          if (values[flag] !== undefined)
            throw new UsageError(`--file cannot be combined with --${flag} (the file names them)`, command);
        return issueFile({
          base,
          key,
          file: required(values, "file", command),
          ...(values.out === undefined ? {} : { out: values.out }),
          ...(values["chunk-size"] === undefined ? {} : { chunkSize: int(values, "chunk-size", command)! }),
          defaults: {
            ...(duration === undefined ? {} : { durationSeconds: duration }),
            ...(seats === undefined ? {} : { seats }),
            ...(chain === undefined ? {} : { chain }),
          },
          json: values.json ?? false,
          progress: process.stderr,
        });
      }
      for (const flag of ["out", "chunk-size"] as const)
        if (values[flag] !== undefined) throw new UsageError(`--${flag} goes with --file`, command);
      required(values, "product", command);
      const body = {
        productId: int(values, "product", command),
        licensee: required(values, "licensee", command),
        ...(duration === undefined ? {} : { durationSeconds: duration }),
        ...(seats === undefined ? {} : { seats }),
        ...(chain === undefined ? {} : { chain }),
      };
      result = await call(
        "POST",
        `/v1/licenses${values.wait ? "?wait=true" : ""}`,
        body,
        values.key ? { "idempotency-key": values.key } : {},
      );
      break;
    }
    case "issue-batch": {
      const file = required(values, "file", command);
      let items: unknown;
      try {
        items = JSON.parse(file === "-" ? await readStdin() : readFileSync(file, "utf8")) as unknown;
      } catch (error) {
        throw new UsageError(`--file ${file}: ${errorText(error)}`, command);
      }
      result = await call("POST", "/v1/licenses/batch", Array.isArray(items) ? { items } : items);
      break;
    }
    case "get":
      result = await call("GET", `/v1/licenses/${id}`);
      break;
    case "list": {
      const query = new URLSearchParams();
      for (const [param, value] of [
        ["licensee", values.licensee],
        ["productId", int(values, "product", command)],
        ["status", status(values)],
        ["chainId", int(values, "chain", command)],
        ["limit", int(values, "limit", command)],
        ["cursor", values.cursor],
      ] as const) {
        if (value !== undefined) query.set(param, String(value));
      }
      result = await call("GET", `/v1/licenses${query.size ? `?${query}` : ""}`);
      break;
    }
    case "verify":
      result = await call("GET", `/v1/licenses/${id}/verify`);
      break;
    case "renew":
      required(values, "duration", command);
      result = await call(
        "POST",
        `/v1/licenses/${id}/renew`,
        { durationSeconds: int(values, "duration", command) },
        keyHeader(values),
      );
      break;
    case "revoke":
      result = await call(
        "POST",
        `/v1/licenses/${id}/revoke`,
        values.reason ? { reason: values.reason } : {},
        keyHeader(values),
      );
      break;
    case "chains":
      result = await call("GET", "/v1/chains");
      break;
    default:
      result = await call("GET", "/v1/products");
  }

  if (values.json) console.log(JSON.stringify(result.body, null, 2));
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
