/**
 * Strict flag parsing of the licensing CLI (pure): `node:util` `parseArgs` with `strict: true`, the flags
 * each command takes, numbers checked, required flags required. Every mistake is a `UsageError` with one
 * line naming the flag (the CLI prints it and exits 2, as the repository's other CLIs do).
 */
import { parseArgs } from "node:util";

export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose help to point at. */
    readonly command?: string,
  ) {
    super(message);
  }
}

const STRING = { type: "string" } as const;
const BOOL = { type: "boolean" } as const;
/** Every flag of every command (so that one strict parse finds the command wherever the flags stand). */
const OPTIONS = {
  url: STRING,
  json: BOOL,
  help: { type: "boolean", short: "h" },
  product: STRING,
  licensee: STRING,
  duration: STRING,
  seats: STRING,
  chain: STRING,
  key: STRING,
  wait: BOOL,
  file: STRING,
  out: STRING,
  "chunk-size": STRING,
  status: STRING,
  limit: STRING,
  cursor: STRING,
  reason: STRING,
  "idempotency-key": STRING,
} as const;
type Flag = keyof typeof OPTIONS;
const GLOBAL: readonly Flag[] = ["url", "json", "help"];

interface CommandSpec {
  flags: readonly Flag[];
  /** Whether the command takes a license id. */
  id?: true;
  usage: string;
}

export const COMMANDS: Record<string, CommandSpec> = {
  issue: {
    flags: ["product", "licensee", "duration", "seats", "chain", "key", "wait", "file", "out", "chunk-size"],
    usage: `license issue --product <id> --licensee <address> [--duration <s>] [--seats <n>] [--chain <id|name>] [--key <idempotency key>] [--wait]
license issue --file <licensees.csv> [--out <results.csv|.jsonl>] [--chunk-size <n>] [--duration <s>] [--seats <n>] [--chain <id|name>]
  --file: a CSV with a header row (licensee, productId; optional seats, durationSeconds, chain), issued through
  POST /v1/licenses/batch in chunks; each row's idempotency key comes from the file's content and the row's line,
  so issuing the same file again replays instead of issuing twice. --duration/--seats/--chain fill empty cells.
  Results (line, licensee, productId, status, licenseId, chainId, code, message) go to --out
  (default <file>.results.csv). Exit status 1 when any row failed.`,
  },
  "issue-batch": {
    flags: ["file"],
    usage: `license issue-batch --file <items.json|->
  a JSON array of items (or {"items": [...]}), each {productId, licensee, durationSeconds?, seats?, chain?, idempotencyKey?}`,
  },
  get: { flags: [], id: true, usage: "license get <license id>" },
  list: {
    flags: ["licensee", "product", "status", "chain", "limit", "cursor"],
    usage:
      "license list [--licensee <address>] [--product <id>] [--status <status>] [--chain <id>] [--limit <n>] [--cursor <c>]",
  },
  verify: { flags: [], id: true, usage: "license verify <license id>" },
  renew: {
    flags: ["duration", "idempotency-key"],
    id: true,
    usage: `license renew <license id> --duration <s> [--idempotency-key <key>]
  The contract adds --duration on every renew: give the same --idempotency-key when running it again
  (e.g. after a timeout) and the service renews once and answers the first result again.`,
  },
  revoke: {
    flags: ["reason", "idempotency-key"],
    id: true,
    usage: "license revoke <license id> [--reason <text>] [--idempotency-key <key>]   (admin)",
  },
  chains: { flags: [], usage: "license chains" },
  products: { flags: [], usage: "license products" },
};

export type Values = { [K in Flag]?: (typeof OPTIONS)[K]["type"] extends "boolean" ? boolean : string };

export interface Parsed {
  command?: string;
  id?: string;
  values: Values;
}

/** The command, its license id and its flags; throws `UsageError`. `help` set: print the usage only. */
export function parseCommandLine(argv: readonly string[]): Parsed {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: OPTIONS,
      strict: true,
      allowPositionals: true,
      tokens: true,
    });
  } catch (error) {
    const guess = argv.find((a) => Object.hasOwn(COMMANDS, a));
    throw new UsageError(parseError(error), guess);
  }
  const { values, positionals, tokens } = parsed;
  const [command, ...rest] = positionals;
  if (command === undefined) return { values };
  const spec = COMMANDS[command];
  if (!spec)
    throw new UsageError(`unknown command '${command}' (commands: ${Object.keys(COMMANDS).join(", ")})`);
  if (values.help) return { command, values };
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== "option") continue;
    const name = token.name as Flag;
    if (!GLOBAL.includes(name) && !spec.flags.includes(name))
      throw new UsageError(`unknown flag --${name} for '${command}'`, command);
    if (seen.has(name)) throw new UsageError(`--${name} is given twice`, command);
    seen.add(name);
  }
  const wanted = spec.id ? 1 : 0;
  if (rest.length > wanted)
    throw new UsageError(`unexpected argument '${rest[wanted]}' for '${command}'`, command);
  if (spec.id && rest.length === 0) throw new UsageError(`'${command}' needs a license id`, command);
  return { command, ...(spec.id ? { id: rest[0]! } : {}), values };
}

/** One line for a `parseArgs` error (its own messages run over several lines and suggest `--`). */
function parseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code;
  const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag) return `unknown flag ${flag}`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && flag) {
    return /does not take an argument/.test(message) ? `${flag} takes no value` : `${flag} needs a value`;
  }
  return message.split("\n")[0]!;
}

/** A required flag's value. */
export function required(
  values: Values,
  flag: "product" | "licensee" | "duration" | "file",
  command: string,
): string {
  const value = values[flag];
  if (value === undefined || value === "") throw new UsageError(`'${command}' needs --${flag}`, command);
  return value;
}

/** A flag holding a whole number >= `min` (undefined when absent). */
export function int(values: Values, flag: Flag, command: string, min = 1): number | undefined {
  const raw = values[flag];
  if (raw === undefined || typeof raw === "boolean") return undefined;
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min)) throw new UsageError(`--${flag} must be a whole number >= ${min}, got '${raw}'`, command);
  return n;
}

/** `--chain`: a chain id (a number) or a chain's name. */
export function chainRef(values: Values): number | string | undefined {
  const raw = values.chain;
  return raw === undefined ? undefined : /^\d{1,15}$/.test(raw) ? Number(raw) : raw;
}

/** `--status` of `list`: one of the license states. */
export function status(values: Values): string | undefined {
  const raw = values.status;
  const states = ["accepted", "submitted", "confirmed", "failed"];
  if (raw !== undefined && !states.includes(raw))
    throw new UsageError(`--status must be one of ${states.join(", ")}, got '${raw}'`, "list");
  return raw;
}
