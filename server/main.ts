/**
 * Server entry: `node --import tsx server/main.ts [--config file]` (or LICENSE_CONFIG=file). Prints one
 * JSON line `{"ready":true,"port":N}` on stdout when it listens on 127.0.0.1.
 */
import { errorFields, errorText } from "../common/log.js";
import { installKafkajsPatches } from "../kafka/patches/index.js";
import { loadConfigFile } from "./config.js";
import { AppError } from "./errors.js";
import { buildRuntime, listen } from "./index.js";

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    console.log(
      "usage: server/main.ts [--config <file>] [--port <n>]   (env: LICENSE_CONFIG, HOST, PORT, LOG_LEVEL)",
    );
    return;
  }
  const at = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const file = at("--config") ?? process.env.LICENSE_CONFIG;
  if (!file)
    throw new AppError("CONFIG_INVALID", "no config: pass --config <file> or set LICENSE_CONFIG", {
      field: "(file)",
    });
  const { config, chains } = loadConfigFile(file);
  installKafkajsPatches();
  const runtime = await buildRuntime(config, chains, { defaultMetrics: true });
  const port = Number(at("--port") ?? process.env.PORT ?? config.server.port);
  const { server, port: bound } = await listen(runtime.app, port, process.env.HOST ?? config.server.host);
  const shutdown = (signal: NodeJS.Signals): void => {
    server.close();
    // a stop that fails is logged with its fields and ends the process non-zero (not as an unhandled rejection)
    runtime.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        runtime.logger.error({ err: errorFields(error), signal }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  // handlers first: a supervisor may signal the moment it reads the ready line
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
  process.stdout.write(`${JSON.stringify({ ready: true, port: bound })}\n`);
}

main().catch((error: unknown) => {
  const field = error instanceof AppError && error.field ? ` (field ${error.field})` : "";
  process.stderr.write(`license server: ${errorText(error)}${field}\n`);
  process.exit(1);
});
