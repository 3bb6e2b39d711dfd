/**
 * docker-compose.yml, checked without a Docker engine: the real Compose parser validates it, and what
 * it declares (services, ports, environment, mounted configuration files) matches what the code reads.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { loadConfigFile as loadReplicatorConfig } from "../replicator/config.js";
import { parseConfig as parseServerConfig } from "../server/config.js";
import { readFileSync } from "node:fs";
import { ROOT } from "./support/procs.js";

interface ComposeService {
  image?: string;
  build?: { context: string; target?: string; network?: string; args?: Record<string, string> };
  command?: string[];
  environment?: Record<string, string>;
  ports?: (string | { published: string | number; target: number; host_ip?: string })[];
  volumes?: (string | { source?: string; target: string; type: string; read_only?: boolean })[];
  healthcheck?: { test: string[] };
  mem_limit?: string | number;
  depends_on?: Record<string, { condition: string }>;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const COMPOSE = path.join(ROOT, "docker-compose.yml");
const CONFIG_DIR = path.join(ROOT, "deploy/compose");

function composeConfig(): ComposeFile {
  // `config` prints the file as Compose itself understood it (anchors merged, values normalised).
  const out = execFileSync("docker-compose", ["-f", COMPOSE, "config"], {
    cwd: ROOT,
    encoding: "utf8",
    // Empty values: the file's own defaults (official images, public demo keys) are what is checked.
    env: {
      ...process.env,
      DEPLOYER_PRIVATE_KEY: "",
      LICENSE_SIGNER_KEY: "",
      KAFKA_IMAGE: "",
      NODE_IMAGE: "",
    },
  });
  return parseYaml(out) as ComposeFile;
}

/** `127.0.0.1:8080:8080/tcp` or the long form → { hostIp, published, target }. */
function portsOf(service: ComposeService): { hostIp: string; published: number; target: number }[] {
  return (service.ports ?? []).map((p) => {
    if (typeof p === "string") {
      const [hostIp, published, target] = p.replace(/\/tcp$/, "").split(":");
      return { hostIp: hostIp!, published: Number(published), target: Number(target) };
    }
    return { hostIp: p.host_ip ?? "0.0.0.0", published: Number(p.published), target: p.target };
  });
}

/** The container path of the `--config` argument, mapped to the file in deploy/compose/. */
function configFileOf(service: ComposeService): string {
  const command = service.command ?? [];
  const at = command.indexOf("--config");
  expect(at, `command ${command.join(" ")} has --config`).to.be.greaterThan(-1);
  const inContainer = command[at + 1]!;
  expect(inContainer.startsWith("/config/"), inContainer).to.equal(true);
  return path.join(CONFIG_DIR, inContainer.slice("/config/".length));
}

function mountsConfigDir(service: ComposeService): boolean {
  return (service.volumes ?? []).some((v) =>
    typeof v === "string"
      ? v.startsWith(`${CONFIG_DIR}:/config`)
      : v.target === "/config" && path.resolve(ROOT, v.source ?? "") === CONFIG_DIR,
  );
}

describe("docker-compose.yml", function () {
  let compose: ComposeFile;

  before(function () {
    compose = composeConfig();
  });

  it("is valid for the real Compose parser (docker-compose config -q)", function () {
    execFileSync("docker-compose", ["-f", COMPOSE, "config", "-q"], { cwd: ROOT, stdio: "pipe" });
  });

  it("declares two datacenters, two chains, the deployer, the licensing service and its replica", function () {
    expect(Object.keys(compose.services).sort()).to.deep.equal(
      [
        "chain-1",
        "chain-2",
        "deployer",
        "kafka-dc1",
        "kafka-dc2",
        "licensing-dc1",
        "licensing-dc2-replica",
        "replicator-dc1",
        "replicator-dc2",
      ].sort(),
    );
    for (const dc of ["dc1", "dc2"]) {
      const kafka = compose.services[`kafka-${dc}`]!;
      expect(kafka.image).to.equal("apache/kafka:4.3.1");
      expect(kafka.environment?.KAFKA_PROCESS_ROLES).to.equal("broker,controller");
      // The containers' listener first; EXTERNAL is for clients on the host, on a published loopback port.
      const [internal, external] = kafka.environment!.KAFKA_ADVERTISED_LISTENERS!.split(",");
      expect(internal).to.equal(`PLAINTEXT://kafka-${dc}:9092`);
      const externalPort = Number(new URL(external!.replace(/^EXTERNAL:/, "http:")).port);
      expect(external).to.equal(`EXTERNAL://127.0.0.1:${externalPort}`);
      expect(portsOf(kafka)).to.deep.equal([
        { hostIp: "127.0.0.1", published: externalPort, target: externalPort },
      ]);
      expect(kafka.environment?.KAFKA_LISTENERS).to.contain(`EXTERNAL://:${externalPort}`);
      expect(kafka.environment?.KAFKA_LOG_DIRS).to.equal("/var/lib/kafka/data");
      expect(kafka.volumes?.map((v) => (typeof v === "string" ? v : v.target)).join(" ")).to.contain(
        "/var/lib/kafka/data",
      );
    }
    // Every long-running service has a healthcheck; everything published binds loopback only.
    // Every service has a memory limit (sized for a laptop).
    for (const [name, service] of Object.entries(compose.services)) {
      if (name !== "deployer") expect(service.healthcheck?.test, `${name} healthcheck`).to.be.an("array");
      for (const port of portsOf(service)) expect(port.hostIp, `${name} port`).to.equal("127.0.0.1");
      expect(service.mem_limit, `${name} mem_limit`).to.not.equal(undefined);
    }
    expect(compose.services.deployer!.depends_on).to.deep.equal({
      "chain-1": { condition: "service_healthy" },
      "chain-2": { condition: "service_healthy" },
    });
    for (const name of ["licensing-dc1", "licensing-dc2-replica"]) {
      expect(compose.services[name]!.depends_on?.deployer).to.deep.equal({
        condition: "service_completed_successfully",
      });
    }
  });

  it("builds the app images from the project Dockerfile: runtime for services, chain for the nodes", function () {
    for (const [name, service] of Object.entries(compose.services)) {
      if (name.startsWith("kafka-")) continue;
      expect(path.resolve(service.build?.context ?? ""), name).to.equal(path.resolve(ROOT));
      expect(service.build?.target, name).to.equal(name.startsWith("chain-") ? "chain" : "runtime");
      // npm install during the build reaches the registry through the host network; the base image is
      // the official one unless NODE_IMAGE names a local stand-in (scripts/compose-images).
      expect(service.build?.network, name).to.equal("host");
      expect(service.build?.args?.NODE_IMAGE, name).to.equal("node:24-bookworm-slim");
    }
    const dockerfile = readFileSync(path.join(ROOT, "Dockerfile"), "utf8");
    expect(dockerfile).to.match(/^FROM .* AS runtime$/m);
    expect(dockerfile).to.match(/^FROM .* AS chain$/m);
    expect(
      dockerfile
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("FROM "))
        .at(-1),
    ).to.match(/AS runtime$/);
    expect(dockerfile).to.match(/^USER node$/m);
    expect(dockerfile).to.match(/^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
    // No `# syntax=` line: BuildKit would have to pull the frontend image from a registry.
    expect(dockerfile).to.not.match(/^# syntax=/m);
  });

  it("gives the replicators configs that the replicator accepts, pointing at the compose brokers", function () {
    for (const dc of ["dc1", "dc2"]) {
      const service = compose.services[`replicator-${dc}`]!;
      expect(mountsConfigDir(service), `replicator-${dc} mounts deploy/compose`).to.equal(true);
      const file = configFileOf(service);
      expect(existsSync(file), file).to.equal(true);
      const config = loadReplicatorConfig(file);
      expect(config.replicator.datacenter).to.equal(dc);
      expect(config.replicator.admin.host).to.equal("0.0.0.0");
      // The admin port is the container port Compose publishes, and the healthcheck asks it.
      expect(portsOf(service).map((p) => p.target)).to.deep.equal([config.replicator.admin.port]);
      expect(service.healthcheck!.test.join(" ")).to.contain(`:${config.replicator.admin.port}/healthz`);
      for (const datacenter of config.datacenters) {
        expect(datacenter.brokers).to.deep.equal([`kafka-${datacenter.name}:9092`]);
        expect(compose.services).to.have.property(`kafka-${datacenter.name}`);
        expect(service.depends_on?.[`kafka-${datacenter.name}`]).to.deep.equal({
          condition: "service_healthy",
        });
      }
    }
  });

  it("gives the licensing services configs that the server accepts, matching chains, brokers and ports", function () {
    const chainServices = Object.entries(compose.services).filter(([name]) => name.startsWith("chain-"));
    const chainIdByHost = new Map(
      chainServices.map(([name, service]) => {
        const command = service.command!;
        return [name, Number(command[command.indexOf("--chain-id") + 1])];
      }),
    );
    const deployer = compose.services.deployer!.command!;
    const deployedTo = deployer.filter((_, i) => deployer[i - 1] === "--rpc");

    for (const name of ["licensing-dc1", "licensing-dc2-replica"]) {
      const service = compose.services[name]!;
      expect(mountsConfigDir(service), `${name} mounts deploy/compose`).to.equal(true);
      const file = configFileOf(service);
      const raw = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
      const config = parseServerConfig(raw);
      expect(config.server.host, `${name} binds all interfaces inside its container`).to.equal("0.0.0.0");
      expect(portsOf(service).map((p) => p.target)).to.deep.equal([config.server.port]);
      // Healthy = ready: the service answers and has a healthy chain.
      expect(service.healthcheck!.test.join(" ")).to.contain(`:${config.server.port}/readyz`);
      expect(config.deploymentsFile).to.equal("/deployments/compose.json");
      // The Kafka brokers it publishes to (primary) or reads from (replica) are the compose brokers.
      const kafkaBrokers = config.mode === "replica" ? config.replica!.brokers : config.events!.brokers;
      for (const broker of kafkaBrokers) {
        const host = broker.split(":")[0]!;
        expect(compose.services, `${name}: ${broker} is a Kafka service`).to.have.property(host);
        expect(compose.services[host]!.environment?.KAFKA_ADVERTISED_LISTENERS?.split(",")[0]).to.equal(
          `PLAINTEXT://${broker}`,
        );
        expect(service.depends_on?.[host]).to.deep.equal({ condition: "service_healthy" });
      }
      expect(deployer).to.include("/deployments/compose.json");
      for (const chain of config.chains) {
        const url = new URL(chain.rpcUrl);
        expect(chainIdByHost.get(url.hostname), `${name}: ${chain.rpcUrl} is a chain service`).to.equal(
          chain.chainId,
        );
        expect(url.port).to.equal("8545");
        expect(deployedTo).to.include(chain.rpcUrl);
        // A signer key the service reads from the environment must be set in the service's environment.
        const signer = (chain as { signer?: { env?: string } }).signer;
        if (signer?.env)
          expect(service.environment, `${name} sets ${signer.env}`).to.have.property(signer.env);
      }
    }
  });
});
