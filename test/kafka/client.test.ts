import { expect } from "chai";
import { createRequire } from "node:module";
import kafkajs from "kafkajs";
import { Writable } from "node:stream";
import { createLogger } from "../../common/log.js";
import { kafkaLogCreator, ROUTINE_BROKER_ANSWERS } from "../../kafka/client.js";

const require = createRequire(import.meta.url);

describe("kafka: the client factory's log adapter", () => {
  it("the routine broker answers are kafkajs's own messages for codes 27, 14, 15, 16 and 51", () => {
    const { errorCodes } = require("kafkajs/src/protocol/error.js") as {
      errorCodes: { code: number; message: string }[];
    };
    const messages = [27, 14, 15, 16, 51].map((code) => errorCodes.find((e) => e.code === code)?.message);
    expect(new Set(messages)).to.deep.equal(ROUTINE_BROKER_ANSWERS);
  });

  it("logs a routine answer at debug and any other kafkajs error at error, prefixed kafkajs:", () => {
    const lines: { level: number; msg: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
        done();
      },
    });
    const log = kafkaLogCreator(createLogger({ level: "debug" }, sink))();
    const ERROR = kafkajs.logLevel.ERROR;
    log({
      level: ERROR,
      log: {
        message: "Response Heartbeat(key: 12, version: 3)",
        error: "The group is rebalancing, so a rejoin is needed",
      },
    });
    log({
      level: ERROR,
      log: {
        message: "Response Produce(key: 0, version: 7)",
        error: "The request included a message larger than the max message size the server will accept",
      },
    });
    expect(lines.map((l) => [l.level, l.msg])).to.deep.equal([
      [20, "kafkajs: Response Heartbeat(key: 12, version: 3)"],
      [50, "kafkajs: Response Produce(key: 0, version: 7)"],
    ]);
  });
});
