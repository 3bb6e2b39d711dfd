/** Which failures mean a datacenter refuses the client (probed slowly) rather than not answering (probed every second). */
import { expect } from "chai";
import kafkajs from "kafkajs";
import { refusesClient } from "../../../replicator/engine/datacenters.js";

describe("engine datacenters: refused or unreachable", () => {
  it("SASL, TLS and authorisation failures refuse the client, also as a cause", () => {
    // kafkajs's typings declare no constructor arguments; the class takes a message.
    const SaslError = kafkajs.KafkaJSSASLAuthenticationError as unknown as new (message: string) => Error;
    const sasl = new SaslError("SASL SCRAM SHA512 authentication failed: invalid credentials");
    expect(refusesClient(sasl)).to.equal(true);
    expect(refusesClient(new Error("retries exhausted", { cause: sasl }))).to.equal(true);
    expect(refusesClient(new Error("self-signed certificate in certificate chain"))).to.equal(true);
    expect(
      refusesClient(
        new Error("Client network socket disconnected before secure TLS connection was established"),
      ),
    ).to.equal(true);
    const denied = new kafkajs.KafkaJSProtocolError({
      message: "x",
      type: "TOPIC_AUTHORIZATION_FAILED",
      code: 29,
      retriable: false,
    } as never);
    expect(refusesClient(denied)).to.equal(true);
  });

  it("a broker that does not answer is unreachable, not refusing", () => {
    expect(
      refusesClient(
        new kafkajs.KafkaJSConnectionError("Connection error: connect ECONNREFUSED 127.0.0.1:9092"),
      ),
    ).to.equal(false);
    expect(
      refusesClient(
        new kafkajs.KafkaJSNumberOfRetriesExceeded(new Error("Connection timeout"), {
          retryCount: 5,
          retryTime: 5000,
        }),
      ),
    ).to.equal(false);
    expect(refusesClient(undefined)).to.equal(false);
  });
});
