/**
 * Property tests: seeded random sequences of operations (issue, batch issue, transfers, approvals,
 * renew, cancel, revoke, lock, unlock, time travel) by random accounts. Every operation is predicted by a
 * small reference model — success, or the exact custom error with its arguments — and after every step
 * the whole contract state is compared with the model and the invariants are checked:
 *
 * - a revoked license is never valid;
 * - a locked (or revoked) license never changes owner;
 * - `isValid` is exactly "exists, not revoked, perpetual or not yet expired";
 * - balances add up to the number of licenses; request references map to the right token;
 * - what a generic indexer rebuilds from the standard events alone (ERC-5192 `Locked`/`Unlocked`, ERC-5643
 *   `SubscriptionUpdate`) matches `locked()` and `expiresAt()` of every license (no expiry event: 0).
 *
 * The seed is printed; rerun a failing sequence with `FUZZ_SEED=<seed>`. `FUZZ_SEQUENCES` and `FUZZ_STEPS`
 * change the amount of work.
 */
import { randomInt } from "node:crypto";
import { expect } from "chai";
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { ContractTransactionResponse } from "ethers";
import {
  ZERO_ADDRESS,
  ZERO_HASH,
  deployLicenseToken,
  type LicenseRecord,
  type LicenseTokenContract,
  type Terms,
} from "./helpers.js";
import { prng } from "../support/prng.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31);
const SEQUENCES = Number(process.env.FUZZ_SEQUENCES ?? 4);
const STEPS = Number(process.env.FUZZ_STEPS ?? 60);

interface ModelToken {
  owner: string;
  productId: bigint;
  issuedAt: bigint;
  expiresAt: bigint;
  seats: bigint;
  locked: boolean;
  revoked: boolean;
  termsHash: string;
  approved: string;
}

/** What an operation is expected to do: succeed (and how to apply it to the model) or fail with an error. */
type Expectation = { ok: true; apply: () => void } | { ok: false; error: string; args: unknown[] };

const ok = (apply: () => void): Expectation => ({ ok: true, apply });
const fail = (error: string, ...args: unknown[]): Expectation => ({ ok: false, error, args });

/** Sends a transaction; returns undefined on success or the decoded custom error on revert. */
async function attempt(
  token: LicenseTokenContract,
  send: () => Promise<ContractTransactionResponse>,
): Promise<{ error: string; args: unknown[] } | undefined> {
  try {
    await (await send()).wait();
    return undefined;
  } catch (error) {
    const data = (error as { data?: string }).data;
    if (typeof data !== "string") throw error;
    const parsed = token.interface.parseError(data);
    if (!parsed) throw error;
    return { error: parsed.name, args: parsed.args.toArray() };
  }
}

async function deployed() {
  return deployLicenseToken(ethers);
}

async function runSequence(seed: number, steps: number): Promise<Record<string, number>> {
  const rand = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const chance = (p: number): boolean => rand() < p;

  const d = await networkHelpers.loadFixture(deployed);
  const { token, issuer } = d;
  const actors: HardhatEthersSigner[] = [d.admin, d.issuer, d.alice, d.bob, d.carol, d.outsider];
  const holders = [d.alice, d.bob, d.carol, d.outsider];
  const isIssuer = (a: string) => a === issuer.address;
  const refPool = Array.from({ length: 6 }, (_, i) => ethers.id(`ref-${seed}-${i}`));

  const tokens = new Map<bigint, ModelToken>();
  const refs = new Map<string, bigint>();
  const operators = new Set<string>(); // `${owner}:${operator}`
  let nextId = 1n;
  let now = BigInt(await time.latest());
  const counts: Record<string, number> = {};
  // The generic indexer: the locking status and expiry of each token, from the standard events only.
  const indexedLocked = new Map<bigint, boolean>();
  const indexedExpiry = new Map<bigint, bigint>();
  let indexedUpTo = (await ethers.provider.getBlockNumber()) + 1;
  const indexNewLogs = async () => {
    const latest = await ethers.provider.getBlockNumber();
    if (latest < indexedUpTo) return;
    const logs = await ethers.provider.getLogs({
      address: token.target,
      fromBlock: indexedUpTo,
      toBlock: latest,
    });
    for (const log of logs) {
      const parsed = token.interface.parseLog({ topics: [...log.topics], data: log.data });
      if (parsed?.name === "Locked") indexedLocked.set(parsed.args[0] as bigint, true);
      if (parsed?.name === "Unlocked") indexedLocked.set(parsed.args[0] as bigint, false);
      if (parsed?.name === "SubscriptionUpdate")
        indexedExpiry.set(parsed.args[0] as bigint, parsed.args[1] as bigint);
    }
    indexedUpTo = latest + 1;
  };

  const validAt = (t: ModelToken, at: bigint) => !t.revoked && (t.expiresAt === 0n || at < t.expiresAt);
  const randomTerms = (): Terms => {
    const r = rand();
    const expiresAt =
      r < 0.3
        ? 0n
        : r < 0.4
          ? now - BigInt(Math.floor(rand() * 100))
          : now + BigInt(1 + Math.floor(rand() * 3000));
    return {
      productId: BigInt(Math.floor(rand() * 5)),
      expiresAt,
      seats: BigInt(Math.floor(rand() * 100)),
      locked: chance(0.25),
      termsHash: chance(0.05) ? ZERO_HASH : ethers.id(`terms-${Math.floor(rand() * 1e9)}`),
      requestRef: chance(0.4) ? ZERO_HASH : pick(refPool),
    };
  };
  const someTokenId = (): bigint =>
    nextId === 1n || chance(0.05) ? nextId : BigInt(1 + Math.floor(rand() * Number(nextId - 1n)));

  /** Predicts issuing `list` starting at `nextId`; on success the model gets every license. */
  const expectIssue = (caller: string, list: { to: string; terms: Terms }[]): Expectation => {
    if (!isIssuer(caller)) return fail("AccessControlUnauthorizedAccount", caller, d.ISSUER_ROLE);
    const seen = new Map(refs);
    for (const [i, { to, terms }] of list.entries()) {
      const id = nextId + BigInt(i);
      if (terms.termsHash === ZERO_HASH) return fail("LicenseEmptyTermsHash", id);
      if (terms.expiresAt !== 0n && terms.expiresAt <= now)
        return fail("LicenseInvalidExpiry", id, terms.expiresAt, now);
      if (terms.requestRef !== ZERO_HASH) {
        const existing = seen.get(terms.requestRef);
        if (existing !== undefined) return fail("LicenseDuplicateRequest", terms.requestRef, existing);
        seen.set(terms.requestRef, id);
      }
      if (to === ZERO_ADDRESS) return fail("ERC721InvalidReceiver", ZERO_ADDRESS);
    }
    return ok(() => {
      for (const { to, terms } of list) {
        tokens.set(nextId, {
          owner: to,
          productId: terms.productId,
          issuedAt: now,
          expiresAt: terms.expiresAt,
          seats: terms.seats,
          locked: terms.locked,
          revoked: false,
          termsHash: terms.termsHash,
          approved: ZERO_ADDRESS,
        });
        if (terms.requestRef !== ZERO_HASH) refs.set(terms.requestRef, nextId);
        nextId += 1n;
      }
    });
  };

  for (let step = 0; step < steps; step++) {
    now += chance(0.15) ? BigInt(500 + Math.floor(rand() * 3000)) : BigInt(1 + Math.floor(rand() * 20));
    await time.setNextBlockTimestamp(now);

    const anyone = pick(actors);
    const id = someTokenId();
    const t = tokens.get(id);
    const op = pick([
      "issue",
      "issue",
      "issueBatch",
      "transfer",
      "transfer",
      "transfer",
      "approve",
      "renew",
      "cancel",
      "revoke",
      "lock",
      "unlock",
    ] as const);
    // Issuer operations are mostly called by the issuer, so that they also succeed; others by anyone.
    const issuerOp = ["issue", "issueBatch", "renew", "revoke", "lock", "unlock"].includes(op);
    const actor = issuerOp && chance(0.75) ? issuer : anyone;

    let expectation: Expectation;
    let send: () => Promise<ContractTransactionResponse>;
    switch (op) {
      case "issue": {
        const to = chance(0.03) ? ZERO_ADDRESS : pick(holders).address;
        const terms = randomTerms();
        expectation = expectIssue(actor.address, [{ to, terms }]);
        send = () => token.connect(actor).issue(to, terms);
        break;
      }
      case "issueBatch": {
        const list = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => ({
          to: pick(holders).address,
          terms: randomTerms(),
        }));
        expectation = expectIssue(actor.address, list);
        send = () =>
          token.connect(actor).issueBatch(
            list.map((x) => x.to),
            list.map((x) => x.terms),
          );
        break;
      }
      case "transfer": {
        // Mostly the owner or an approved account; sometimes a stranger.
        const caller = t && chance(0.6) ? (actors.find((a) => a.address === t.owner) ?? actor) : actor;
        const to = pick(holders).address;
        const from = t?.owner ?? pick(holders).address;
        const authorized =
          t !== undefined &&
          (caller.address === t.owner ||
            t.approved === caller.address ||
            operators.has(`${t.owner}:${caller.address}`));
        if (!t) expectation = fail("ERC721NonexistentToken", id);
        else if (t.revoked) expectation = fail("LicenseIsRevoked", id);
        else if (t.locked) expectation = fail("LicenseIsLocked", id);
        else if (!authorized) expectation = fail("ERC721InsufficientApproval", caller.address, id);
        else
          expectation = ok(() => {
            t.owner = to;
            t.approved = ZERO_ADDRESS;
          });
        send = () => token.connect(caller).transferFrom(from, to, id);
        break;
      }
      case "approve": {
        const operator = pick(actors).address;
        if (chance(0.5)) {
          const key = `${actor.address}:${operator}`;
          const approved = chance(0.7);
          expectation = ok(() => (approved ? operators.add(key) : operators.delete(key)));
          send = () => token.connect(actor).setApprovalForAll(operator, approved);
        } else {
          const mayApprove =
            t !== undefined && (actor.address === t.owner || operators.has(`${t.owner}:${actor.address}`));
          if (!t) expectation = fail("ERC721NonexistentToken", id);
          else if (!mayApprove) expectation = fail("ERC721InvalidApprover", actor.address);
          else expectation = ok(() => (t.approved = operator));
          send = () => token.connect(actor).approve(operator, id);
        }
        break;
      }
      case "renew": {
        const duration = chance(0.1) ? 0n : BigInt(1 + Math.floor(rand() * 5000));
        if (!isIssuer(actor.address))
          expectation = fail("AccessControlUnauthorizedAccount", actor.address, d.ISSUER_ROLE);
        else if (!t) expectation = fail("ERC721NonexistentToken", id);
        else if (t.revoked) expectation = fail("LicenseIsRevoked", id);
        else if (t.expiresAt === 0n) expectation = fail("LicensePerpetual", id);
        else if (duration === 0n) expectation = fail("LicenseInvalidDuration", 0n);
        else expectation = ok(() => (t.expiresAt = (t.expiresAt > now ? t.expiresAt : now) + duration));
        send = () => token.connect(actor).renewSubscription(id, duration);
        break;
      }
      case "cancel": {
        const caller = t && chance(0.5) ? (actors.find((a) => a.address === t.owner) ?? actor) : actor;
        if (!t) expectation = fail("ERC721NonexistentToken", id);
        else if (caller.address !== t.owner && !isIssuer(caller.address))
          expectation = fail("LicenseUnauthorizedCancel", caller.address, id);
        else if (t.revoked) expectation = fail("LicenseIsRevoked", id);
        else if (t.expiresAt === 0n) expectation = fail("LicensePerpetual", id);
        else if (t.expiresAt <= now) expectation = fail("LicenseAlreadyExpired", id, t.expiresAt);
        else expectation = ok(() => (t.expiresAt = now));
        send = () => token.connect(caller).cancelSubscription(id);
        break;
      }
      case "revoke": {
        const caller = actor;
        if (!isIssuer(caller.address))
          expectation = fail("AccessControlUnauthorizedAccount", caller.address, d.ISSUER_ROLE);
        else if (!t) expectation = fail("ERC721NonexistentToken", id);
        else if (t.revoked) expectation = fail("LicenseIsRevoked", id);
        else expectation = ok(() => (t.revoked = true));
        send = () => token.connect(caller).revoke(id, ethers.id("fuzz"));
        break;
      }
      case "lock":
      case "unlock": {
        const caller = actor;
        const target = op === "lock";
        if (!isIssuer(caller.address))
          expectation = fail("AccessControlUnauthorizedAccount", caller.address, d.ISSUER_ROLE);
        else if (!t) expectation = fail("ERC721NonexistentToken", id);
        else if (t.revoked) expectation = fail("LicenseIsRevoked", id);
        else if (t.locked === target) expectation = fail("LicenseLockUnchanged", id, target);
        else expectation = ok(() => (t.locked = target));
        send = () => (target ? token.connect(caller).lock(id) : token.connect(caller).unlock(id));
        break;
      }
    }

    // Chain state before the step, for the "locked never changes owner" invariant.
    const before = new Map<bigint, { owner: string; locked: boolean }>();
    for (const tokenId of tokens.keys()) {
      before.set(tokenId, { owner: await token.ownerOf(tokenId), locked: await token.locked(tokenId) });
    }

    const context = `seed ${seed}, step ${step}: ${op} by ${actor.address} on token ${id}`;
    const outcome = await attempt(token, send);
    const key = `${op} ${expectation.ok ? "ok" : expectation.error}`;
    counts[key] = (counts[key] ?? 0) + 1;
    if (expectation.ok) {
      expect(outcome, `${context} should succeed`).to.equal(undefined);
      expectation.apply();
    } else {
      expect(outcome, `${context} should revert with ${expectation.error}`).to.deep.equal({
        error: expectation.error,
        args: expectation.args,
      });
      await networkHelpers.mine(); // the reverted call mined nothing: move the chain to `now` as well
    }
    expect(BigInt(await time.latest()), context).to.equal(now);

    // Compare the whole state with the model and check the invariants.
    expect(await token.nextTokenId(), context).to.equal(nextId);
    expect(await token.isValid(nextId), context).to.equal(false);
    const balances = new Map<string, bigint>();
    await indexNewLogs();
    for (const [tokenId, m] of tokens) {
      const owner = (await token.ownerOf(tokenId)) as string;
      const valid = (await token.isValid(tokenId)) as boolean;
      const locked = (await token.locked(tokenId)) as boolean;
      const record = (await token.license(tokenId)) as LicenseRecord;
      const where = `${context}; token ${tokenId}`;
      expect(owner, where).to.equal(m.owner);
      expect(
        {
          productId: record.productId,
          issuedAt: record.issuedAt,
          expiresAt: record.expiresAt,
          seats: record.seats,
          locked: record.locked,
          revoked: record.revoked,
          termsHash: record.termsHash,
        },
        where,
      ).to.deep.equal({
        productId: m.productId,
        issuedAt: m.issuedAt,
        expiresAt: m.expiresAt,
        seats: m.seats,
        locked: m.locked,
        revoked: m.revoked,
        termsHash: m.termsHash,
      });
      expect(valid, where).to.equal(validAt(m, now));
      expect(locked, where).to.equal(m.locked || m.revoked);
      // Invariant: the standard events alone tell the locking status and the expiry.
      expect(indexedLocked.get(tokenId), `${where}: Locked/Unlocked events`).to.equal(locked);
      expect(indexedExpiry.get(tokenId) ?? 0n, `${where}: SubscriptionUpdate events`).to.equal(
        record.expiresAt,
      );
      // Invariant: a revoked license is never valid.
      if (record.revoked) expect(valid, `${where}: revoked but valid`).to.equal(false);
      // Invariant: a locked license never changes owner.
      const prior = before.get(tokenId);
      if (prior?.locked) expect(owner, `${where}: locked license changed owner`).to.equal(prior.owner);
      balances.set(owner, (balances.get(owner) ?? 0n) + 1n);
    }
    let total = 0n;
    for (const a of actors) {
      const balance = (await token.balanceOf(a.address)) as bigint;
      expect(balance, `${context}; balance of ${a.address}`).to.equal(balances.get(a.address) ?? 0n);
      total += balance;
    }
    expect(total, context).to.equal(BigInt(tokens.size));
    for (const ref of refPool) {
      expect(await token.tokenOfRequest(ref), `${context}; ref ${ref}`).to.equal(refs.get(ref) ?? 0n);
    }
  }
  return counts;
}

describe("LicenseToken: invariants under random operation sequences", function () {
  this.timeout(600_000);

  before(function () {
    console.log(
      `      fuzz seed: ${SEED} (${SEQUENCES} sequences x ${STEPS} steps; rerun with FUZZ_SEED=${SEED})`,
    );
  });

  for (let s = 0; s < SEQUENCES; s++) {
    it(`sequence ${s + 1}: model and invariants hold after every step (seed ${SEED + s})`, async function () {
      const counts = await runSequence(SEED + s, STEPS);
      const summary = Object.entries(counts)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}: ${v}`)
        .join(", ");
      console.log(`        ${summary}`);
    });
  }
});
