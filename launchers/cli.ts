/**
 * `launch` — start local EVM chains and Kafka datacenters and print their endpoints until Ctrl-C.
 *
 *   tsx launchers/cli.ts up [--chains 3] [--datacenters 2] [--json]
 *   tsx launchers/cli.ts chains [--count 3] [--first-chain-id 31337]
 *   tsx launchers/cli.ts kafka [--datacenters 2] [--keep-data] [--sasl-ssl]
 */
import { parseArgs } from "node:util";
import { startChains, type ChainSet } from "./chains.js";
import { LaunchError } from "./errors.js";
import { startKafkaClusters, type KafkaSet } from "./kafka.js";

const HELP = `Usage: launch <command> [options]

Starts real local infrastructure on 127.0.0.1 and prints its endpoints; runs until Ctrl-C
(SIGINT/SIGTERM), then stops everything it started.

Commands:
  up        local EVM chains and Kafka datacenters together
  chains    local EVM chains only (hardhat node)
  kafka     local Kafka datacenters only (single-node KRaft clusters)

Options:
  --chains <n>           number of chains for 'up' (default 3)
  --count <n>            number of chains for 'chains' (default 3)
  --first-chain-id <id>  chain id of the first chain; the others count up (default 31337)
  --datacenters <n>      number of Kafka datacenters (default 2)
  --keep-data            keep Kafka data directories on exit
  --sasl-ssl             Kafka client listeners SASL_SSL only (SCRAM-SHA-512; CA file and password
                         file printed per datacenter)
  --json                 print one JSON line with endpoints and pids instead of a table
  --once                 stop right after everything is ready (smoke test)
  -h, --help             show this help
`;

interface Args {
  command: string | undefined;
  chains: number;
  datacenters: number;
  firstChainId: number;
  keepData: boolean;
  json: boolean;
  once: boolean;
  saslSsl: boolean;
}

function parse(argv: string[]): Args | "help" {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      chains: { type: "string" },
      count: { type: "string" },
      "first-chain-id": { type: "string", default: "31337" },
      datacenters: { type: "string", default: "2" },
      "keep-data": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      once: { type: "boolean", default: false },
      "sasl-ssl": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  const int = (name: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min)
      throw new LaunchError(
        "LAUNCH_INVALID_OPTIONS",
        `--${name} must be an integer >= ${min}, got '${raw}'`,
        {
          field: `--${name}`,
        },
      );
    return n;
  };
  return {
    command: positionals[0],
    chains: int(values.count ? "count" : "chains", values.count ?? values.chains, 3, 1),
    datacenters: int("datacenters", values.datacenters, 2, 1),
    firstChainId: int("first-chain-id", values["first-chain-id"], 31337, 1),
    keepData: values["keep-data"] ?? false,
    json: values.json ?? false,
    once: values.once ?? false,
    saslSsl: values["sasl-ssl"] ?? false,
  };
}

async function main(): Promise<number> {
  let args: Args | "help";
  try {
    args = parse(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (args === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  if (!args.command || !["up", "chains", "kafka"].includes(args.command)) {
    process.stderr.write(`${args.command ? `unknown command '${args.command}'\n\n` : ""}${HELP}`);
    return 2;
  }
  const wantChains = args.command !== "kafka";
  const wantKafka = args.command !== "chains";
  const log = (line: string): void => {
    if (!args.json) process.stderr.write(`${line}\n`);
  };

  let chains: ChainSet | undefined;
  let kafka: KafkaSet | undefined;
  let stopping: Promise<void> | undefined;
  const stopAll = (): Promise<void> => {
    stopping ??= (async () => {
      log("stopping ...");
      await Promise.all([chains?.stop(), kafka?.stop()]);
      log("stopped");
    })();
    return stopping;
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => void stopAll().then(() => process.exit(0)));
  }

  try {
    const started = Date.now();
    const chainIds = Array.from({ length: args.chains }, (_, i) => args.firstChainId + i);
    const names = Array.from({ length: args.datacenters }, (_, i) => `dc${i + 1}`);
    if (wantChains) log(`starting ${chainIds.length} chain(s): ${chainIds.join(", ")} ...`);
    if (wantKafka) log(`starting ${names.length} Kafka datacenter(s): ${names.join(", ")} ...`);
    [chains, kafka] = await Promise.all([
      wantChains ? startChains({ chainIds }) : undefined,
      wantKafka
        ? startKafkaClusters({
            names,
            keepData: args.keepData,
            ...(args.saslSsl ? { security: "sasl_ssl" as const } : {}),
          })
        : undefined,
    ]);
    const endpoints = {
      chains: chains?.chains ?? [],
      datacenters:
        kafka?.clusters.map((c) => ({
          name: c.name,
          brokers: c.brokers,
          dataDir: c.dataDir,
          ...(c.security ? { security: c.security } : {}),
        })) ?? [],
      pids: [...(chains?.pids ?? []), ...(kafka?.pids ?? [])],
    };
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ ready: true, ...endpoints })}\n`);
    } else {
      const lines = [
        `ready in ${((Date.now() - started) / 1000).toFixed(1)} s`,
        ...endpoints.chains.map((c) => `  chain ${c.chainId.toString().padEnd(8)} ${c.rpcUrl}`),
        ...endpoints.datacenters.map(
          (d) =>
            `  kafka ${d.name.padEnd(8)} ${d.brokers.join(",")}` +
            (d.security
              ? ` ${d.security.protocol} ${d.security.mechanism} user ${d.security.username}, CA ${d.security.caFile}, password file ${d.security.passwordFile}`
              : ""),
        ),
        args.once ? "" : "Ctrl-C stops everything.",
      ];
      process.stdout.write(`${lines.join("\n")}\n`);
    }
    if (args.once) {
      await stopAll();
      return 0;
    }
    await new Promise<never>(() => setInterval(() => undefined, 1 << 30));
    return 0;
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n`);
    await stopAll();
    return 1;
  }
}

process.exitCode = await main();
