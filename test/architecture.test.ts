/**
 * The house rules, checked on the source (pure: reads files, runs nothing): the halves never import each
 * other, kafkajs internals are touched only in the Kafka home, no import cycle (type-only imports
 * included), no runtime file much over 500 lines.
 */
import { expect } from "chai";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RUNTIME_DIRS = ["common", "kafka", "server", "replicator", "launchers", "platform"];
const RUNTIME_FILES = ["scripts/deploy.ts"];
/** "About 500 lines is a sign to split": the check allows a little slack, and pure data files. */
const MAX_LINES = 550;
const DATA_FILES = new Set(["server/openapi.ts"]);

function walk(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return walk(path);
    return path.endsWith(".ts") && !path.endsWith(".d.ts") ? [path] : [];
  });
}

const files = [...RUNTIME_DIRS.flatMap(walk), ...RUNTIME_FILES].sort();

/** Every module specifier a file imports or re-exports, type-only and dynamic ones included. */
function specifiers(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(join(ROOT, file), "utf8"), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

/** The repository file a relative specifier names (`./x.js` → `dir/x.ts`), or undefined for packages. */
function resolveLocal(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  const target = relative(ROOT, resolve(ROOT, dirname(from), specifier)).replace(/\.js$/, ".ts");
  return target;
}

const graph = new Map(
  files.map((file) => [
    file,
    specifiers(file)
      .map((s) => resolveLocal(file, s))
      .filter((t): t is string => t !== undefined),
  ]),
);

const top = (file: string): string => file.split("/")[0]!;

describe("architecture: the house rules", () => {
  it("finds the runtime files (the check reads something)", () => {
    expect(files.length).to.be.greaterThan(60);
    expect(files).to.include.members(["replicator/cli.ts", "server/main.ts", "kafka/client.ts"]);
  });

  it("server/ and replicator/ never import each other; common/ and kafka/ import neither", () => {
    const crossings: string[] = [];
    for (const [file, targets] of graph) {
      for (const target of targets) {
        const from = top(file);
        const to = top(target);
        const forbidden =
          (from === "server" && to === "replicator") ||
          (from === "replicator" && to === "server") ||
          ((from === "common" || from === "kafka") &&
            ["server", "replicator", "launchers", "platform"].includes(to)) ||
          (from === "common" && to === "kafka");
        if (forbidden) crossings.push(`${file} -> ${target}`);
      }
    }
    expect(crossings).to.deep.equal([]);
  });

  it("every relative import names a file that exists", () => {
    const missing = [...graph].flatMap(([file, targets]) =>
      targets.filter((t) => !files.includes(t) && !existsFile(t)).map((t) => `${file} -> ${t}`),
    );
    expect(missing).to.deep.equal([]);
  });

  it("kafkajs internals (kafkajs/src/…) and the kafkajs client constructor only in the Kafka home", () => {
    const offenders = files.filter((file) => {
      if (top(file) === "kafka") return false;
      const source = readFileSync(join(ROOT, file), "utf8");
      return (
        specifiers(file).some((s) => s.startsWith("kafkajs/")) || /new (Kafka|KafkaClient)\(/.test(source)
      );
    });
    expect(offenders).to.deep.equal([]);
  });

  it("no import cycle, type-only imports included", () => {
    const cycles: string[] = [];
    const state = new Map<string, "visiting" | "done">();
    const stack: string[] = [];
    const visit = (file: string): void => {
      state.set(file, "visiting");
      stack.push(file);
      for (const next of graph.get(file) ?? []) {
        if (!graph.has(next)) continue;
        if (state.get(next) === "visiting")
          cycles.push([...stack.slice(stack.indexOf(next)), next].join(" -> "));
        else if (!state.has(next)) visit(next);
      }
      stack.pop();
      state.set(file, "done");
    };
    for (const file of files) if (!state.has(file)) visit(file);
    expect(cycles).to.deep.equal([]);
  });

  it(`no runtime file over ${MAX_LINES} lines (pure data files aside)`, () => {
    const big = files
      .filter((file) => !DATA_FILES.has(file))
      .map((file) => ({ file, lines: readFileSync(join(ROOT, file), "utf8").split("\n").length }))
      .filter(({ lines }) => lines > MAX_LINES)
      .map(({ file, lines }) => `${file} (${lines})`);
    expect(big).to.deep.equal([]);
  });

  it("kafkajs is pinned to one exact version", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    expect(pkg.dependencies.kafkajs).to.match(/^\d+\.\d+\.\d+$/);
  });
});

function existsFile(path: string): boolean {
  try {
    return statSync(join(ROOT, path)).isFile();
  } catch {
    return false;
  }
}
