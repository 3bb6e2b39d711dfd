/**
 * `platform` — the README's run command: the whole platform on this machine (no Docker), a short
 * scenario a person can follow, then it keeps running until Ctrl-C.
 */
import { errorText } from "../common/log.js";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { runScenario } from "./scenario.js";
import { startPlatform, type Platform } from "./topology.js";

const HELP = `Usage: ./scripts/run [options]

Starts the whole platform on 127.0.0.1 through the project's launchers — three local EVM chains,
two Kafka datacenters (dc1, dc2), the license contract deployed to every chain, one replicator per
datacenter, the licensing service in dc1 and its read-only replica in dc2 — plays a short scenario,
then keeps running until Ctrl-C, which stops everything it started.

Options:
  --once               exit after the scenario: status 0 if every step passed, 1 otherwise
  --licenses <n>       licenses to issue in the scenario (default 60)
  --work-dir <dir>     configs, databases, logs and API key files (default: a new temp dir)
  --keep-work-dir      keep the work dir on exit (default: kept unless --once)
  --sasl-ssl           Kafka datacenters on SASL_SSL only (SCRAM-SHA-512, generated CA); every
                       replicator, service and scenario client connects with it
  -h, --help           show this help
`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        once: { type: "boolean", default: false },
        licenses: { type: "string", default: "60" },
        "work-dir": { type: "string" },
        "keep-work-dir": { type: "boolean", default: false },
        "sasl-ssl": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const licenses = Number(values.licenses);
  if (!Number.isInteger(licenses) || licenses < 1 || licenses > 10_000) {
    process.stderr.write(`--licenses must be an integer from 1 to 10000, got '${values.licenses}'\n`);
    return 2;
  }
  const once = values.once ?? false;
  const workDir = values["work-dir"] ?? mkdtempSync(path.join(os.tmpdir(), "license-platform-"));
  const keep = values["keep-work-dir"] || !once || values["work-dir"] !== undefined;
  const say = (line: string): void => void process.stdout.write(`${line}\n`);

  let platform: Platform | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      say("stopping the platform ...");
      await platform?.stop();
      if (!keep) rmSync(workDir, { recursive: true, force: true });
      say("stopped");
    })();
    return stopping;
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => void stop().then(() => process.exit(once ? 1 : 0)));
  }

  try {
    const started = Date.now();
    platform = await startPlatform({
      workDir,
      log: say,
      ...(values["sasl-ssl"] ? { security: "sasl_ssl" as const } : {}),
    });
    say(`platform up in ${((Date.now() - started) / 1000).toFixed(1)} s (work dir ${workDir})`);
    const result = await runScenario(platform, { licenses });
    if (once) {
      await stop();
      return result.ok ? 0 : 1;
    }
    say("");
    say("The platform keeps running. Try it (API keys are in files readable only by you):");
    say(`  KEY=$(cat ${platform.apiKeyFiles.client})`);
    say(`  curl -s ${platform.primary.url}/v1/chains -H "Authorization: Bearer $KEY"`);
    say(
      `  curl -s -X POST "${platform.primary.url}/v1/licenses?wait=true" -H "Authorization: Bearer $KEY" ` +
        `-H 'Content-Type: application/json' -d '{"productId":1,"licensee":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}'`,
    );
    say(
      `  curl -s "${platform.replica.url}/v1/licenses?limit=5" -H "Authorization: Bearer $KEY"   # replica in dc2`,
    );
    for (const r of platform.replicators) say(`  curl -s ${r.url}/status   # ${r.name}`);
    say("In a browser (loopback only):");
    say(
      `  dashboard: ${platform.primary.url}/dashboard   (key: the contents of ${platform.apiKeyFiles.dashboard})`,
    );
    say(`  API docs:  ${platform.primary.url}/docs   ("Authorize" with the client key, then "Try it out")`);
    say(`  logs: ${path.join(workDir, "logs")}`);
    say("Ctrl-C stops everything.");
    await new Promise<never>(() => setInterval(() => undefined, 1 << 30));
    return 0;
  } catch (error) {
    process.stderr.write(`error: ${errorText(error)}\n`);
    await stop();
    return 1;
  }
}

process.exitCode = await main();
