import { expect } from "chai";
import { ContractFactory, JsonRpcProvider, Wallet, type Contract } from "ethers";
import { Kafka, logLevel } from "kafkajs";
import { pidAlive } from "../../launchers/process.js";
import { randomTopic } from "../fixtures/infra.js";
import { readArtifact } from "../support/artifacts.js";
import { eventually, launchCli, processesMatching } from "../support/procs.js";

// Hardhat's well-known development account #0 (public test key, funded on every local node).
const DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

interface Ready {
  chains: { chainId: number; port: number; rpcUrl: string }[];
  datacenters: { name: string; brokers: string[]; dataDir: string }[];
  pids: number[];
}

describe("launcher CLI `up`: 3 chains and 2 Kafka datacenters, then Ctrl-C", function () {
  it("serves Kafka and contracts on every endpoint and leaves no process behind after SIGINT", async function () {
    const { child, ready: raw } = await launchCli([
      "up",
      "--chains",
      "3",
      "--datacenters",
      "2",
      "--first-chain-id",
      "43001",
    ]);
    const ready = raw as unknown as Ready;
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      expect(ready.chains.map((c) => c.chainId)).to.deep.equal([43001, 43002, 43003]);
      expect(ready.datacenters.map((d) => d.name)).to.deep.equal(["dc1", "dc2"]);
      expect(ready.pids).to.have.length(5);
      for (const dc of ready.datacenters) expect(processesMatching(dc.dataDir).length).to.be.greaterThan(0);

      for (const dc of ready.datacenters) {
        const kafka = new Kafka({ clientId: "up-test", brokers: dc.brokers, logLevel: logLevel.NOTHING });
        const topic = randomTopic(`up-${dc.name}`);
        const admin = kafka.admin();
        const producer = kafka.producer();
        const consumer = kafka.consumer({ groupId: `${topic}-g` });
        try {
          await admin.connect();
          await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
          await producer.connect();
          await producer.send({ topic, messages: [{ key: dc.name, value: `hello ${dc.name}` }] });
          await consumer.connect();
          await consumer.subscribe({ topic, fromBeginning: true });
          const received = await new Promise<string>((resolve) => {
            void consumer.run({ eachMessage: async ({ message }) => resolve(String(message.value)) });
          });
          expect(received).to.equal(`hello ${dc.name}`);
        } finally {
          await consumer.disconnect();
          await producer.disconnect();
          await admin.disconnect();
        }
      }

      const echo = readArtifact("contracts/testing/ChainIdEcho.sol", "ChainIdEcho");
      for (const chain of ready.chains) {
        const provider = new JsonRpcProvider(chain.rpcUrl, undefined, { cacheTimeout: -1 });
        try {
          const factory = new ContractFactory(
            echo.abi as never,
            echo.bytecode,
            new Wallet(DEV_KEY, provider),
          );
          const contract = (await factory.deploy()) as Contract;
          await contract.waitForDeployment();
          expect(Number(await contract.getFunction("chainId")())).to.equal(chain.chainId);
        } finally {
          provider.destroy();
        }
      }
    } finally {
      child.kill("SIGINT"); // what Ctrl-C sends
    }
    expect(await exited).to.equal(0);
    const gone = await eventually(
      () =>
        !ready.pids.some(pidAlive) &&
        ready.chains.every((c) => processesMatching(`--port ${c.port} `).length === 0) &&
        ready.datacenters.every((d) => processesMatching(d.dataDir).length === 0),
      15_000,
    );
    expect(gone, "a chain or broker is still running after Ctrl-C").to.equal(true);
  });
});
