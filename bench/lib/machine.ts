/** The machine and the versions of everything measured, recorded with every result. */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { kafkaVersion } from "../../launchers/kafka.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  /** 1-minute load average when the run started: the machine may be shared. */
  loadAverage1m: number;
}

export interface Versions {
  node: string;
  kafka: string;
  java: string;
  hardhat: string;
  kafkajs: string;
  ethers: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverage1m: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
  };
}

function packageVersion(name: string): string {
  try {
    // Not require.resolve(`${name}/package.json`): packages with an exports map (ethers) hide it.
    const file = path.join(ROOT, "node_modules", name, "package.json");
    return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/** First line of `java -version` (written to stderr). */
function javaVersion(): string {
  const result = spawnSync("java", ["-version"], { encoding: "utf8" });
  return (result.stderr || result.stdout || "").split("\n")[0]?.trim() || "unknown";
}

export function versions(): Versions {
  let kafka = "unknown";
  try {
    kafka = kafkaVersion();
  } catch {
    // no pom: leave unknown
  }
  return {
    node: process.version,
    kafka,
    java: javaVersion(),
    hardhat: packageVersion("hardhat"),
    kafkajs: packageVersion("kafkajs"),
    ethers: packageVersion("ethers"),
  };
}
