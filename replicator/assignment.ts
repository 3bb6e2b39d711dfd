/**
 * Exactly-once with several engines: a static partition split, as MirrorMaker 2 gives each task a fixed
 * set of partitions and a transactional id of its own.
 *
 * Engine `k` of `n` (./pool.ts) owns partition `p` of source topic `t` when `(hash(t) + p) mod n = k`
 * (`ownerIndex`), and writes those partitions' records and positions with the transactional id
 * `<group id>.<k>` of its datacenter pair's group. That id
 * stays with one partition set, so a restarted engine fences its own previous producer (and the
 * coordinator aborts its open transaction) before it reads the positions from the destination.
 *
 * Kafka still runs the consumer group (liveness, generations): each member announces its engine index and
 * count in its metadata, and the group leader hands out the partitions with `staticAssignment` below. A
 * partition whose engine is not in the group (restarting) stays unassigned: giving it to another engine
 * would replicate it under a second transactional id, which nothing fences.
 *
 * At-least-once uses the same split as a preference (`preferredAssignment`): a partition goes to a
 * member whose engine has its owner index, so the engines of a starting process never take each other's
 * partitions and hand them back (each move re-sends the slices in flight); several processes with the same
 * id share each index's partitions, and take them over when one dies. Its protocol has another name, so
 * a group cannot mix the two deliveries: Kafka refuses a member whose protocol no other member supports
 * (INCONSISTENT_GROUP_PROTOCOL), which is why a delivery change takes effect after a restart.
 */
import kafkajs from "kafkajs";
import type { PartitionAssigner } from "kafkajs";

// kafkajs is CommonJS: under plain Node ESM only its default export is reliable.
const { AssignerProtocol } = kafkajs;

/** The group protocol (assigner) name of the static split; every exactly-once member announces it. */
export const STATIC_ASSIGNER = "lp-static-engines";
/** The at-least-once group protocol: the same split, shared between processes (`preferredAssignment`). */
export const PREFERRED_ASSIGNER = "lp-preferred-engines";
const USER_DATA_VERSION = 1;

/** An engine's place in its process: index `index` of `count` engines. */
export interface EngineSlot {
  index: number;
  count: number;
}

export function isValidSlot(slot: EngineSlot): boolean {
  return (
    Number.isInteger(slot.index) && Number.isInteger(slot.count) && slot.index >= 0 && slot.index < slot.count
  );
}

/**
 * The engine index of `n` that owns `partition` of `topic`: (a stable hash of the topic name + the
 * partition) mod n. A topic's partitions go to consecutive engines, and topics of one partition spread
 * over all engines (one consumer group reads every topic of a datacenter pair, ./engine/link.ts).
 */
export function ownerIndex(topic: string, partition: number, count: number): number {
  return (topicHash(topic) + partition) % count;
}

/** FNV-1a (32 bits) of the topic name: the same on every engine, process and version. */
export function topicHash(topic: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(topic, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** Whether engine `slot` owns `partition` of `topic` under the split by engine index. */
export function ownsPartition(slot: EngineSlot, topic: string, partition: number): boolean {
  return ownerIndex(topic, partition, slot.count) === slot.index;
}

/** The member metadata's user data: the engine slot. */
export function encodeSlot(slot: EngineSlot): Buffer {
  return Buffer.from(JSON.stringify({ v: USER_DATA_VERSION, index: slot.index, count: slot.count }));
}

/** The engine slot in a member's user data; undefined when absent or not understood. */
export function decodeSlot(userData: Buffer | null | undefined): EngineSlot | undefined {
  if (!userData || userData.length === 0) return undefined;
  try {
    const parsed = JSON.parse(userData.toString("utf8")) as { v?: unknown; index?: unknown; count?: unknown };
    if (parsed.v !== USER_DATA_VERSION) return undefined;
    const slot = { index: parsed.index as number, count: parsed.count as number };
    return isValidSlot(slot) ? slot : undefined;
  } catch {
    return undefined;
  }
}

export interface StaticMember {
  memberId: string;
  /** Undefined when the member's metadata carries no (valid) slot. */
  slot?: EngineSlot;
}

export interface StaticAssignment {
  /** Every member, with the partitions it owns per topic (possibly none). */
  assignment: Map<string, Record<string, number[]>>;
  /** The engine count the split uses. */
  count: number;
  /** Partitions no member owns (their engine is not in the group). */
  unassigned: { topic: string; partitions: number[] }[];
  /** Members that get nothing, and why. */
  idle: { memberId: string; reason: string }[];
}

/** The members by memberId (deterministic on every leader), each with an empty assignment. */
function byMemberId(members: readonly StaticMember[]): {
  sorted: StaticMember[];
  assignment: Map<string, Record<string, number[]>>;
} {
  const sorted = [...members].sort((a, b) =>
    a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0,
  );
  return { sorted, assignment: new Map(sorted.map((m) => [m.memberId, {}])) };
}

/**
 * The static split: partition `p` of topic `t` goes to the member whose engine index is `ownerIndex(t, p, n)`.
 *
 * - `n` is the count announced by the member with the smallest memberId (all engines of one process
 *   announce the same count; members announcing another count get nothing, since their own positions and
 *   transactional ids are those of another split).
 * - Several members with the same index (two processes with the same replicator id): the one with the
 *   smallest memberId owns the partitions, deterministically; the others stay idle. Those others still
 *   hold a producer with the same transactional id, so the processes fence each other's producers when
 *   pipelines (re)start: run one process per replicator id under exactly-once.
 * - No member with index `k`: the partitions of `k` stay unassigned until its engine rejoins.
 */
export function staticAssignment(
  members: readonly StaticMember[],
  topics: readonly { topic: string; partitions: readonly number[] }[],
): StaticAssignment {
  const { sorted, assignment } = byMemberId(members);
  const idle: StaticAssignment["idle"] = [];
  const count = sorted.find((m) => m.slot !== undefined)?.slot?.count ?? 0;
  const owners = new Map<number, string>();
  for (const m of sorted) {
    if (!m.slot) idle.push({ memberId: m.memberId, reason: "no engine index in its metadata" });
    else if (m.slot.count !== count)
      idle.push({ memberId: m.memberId, reason: `engine count ${m.slot.count}, the group uses ${count}` });
    else if (owners.has(m.slot.index))
      idle.push({ memberId: m.memberId, reason: `engine index ${m.slot.index} already owned` });
    else owners.set(m.slot.index, m.memberId);
  }
  const unassigned: StaticAssignment["unassigned"] = [];
  for (const { topic, partitions } of topics) {
    const orphaned: number[] = [];
    for (const partition of [...partitions].sort((a, b) => a - b)) {
      const owner = count > 0 ? owners.get(ownerIndex(topic, partition, count)) : undefined;
      if (owner === undefined) {
        orphaned.push(partition);
        continue;
      }
      const own = assignment.get(owner)!;
      (own[topic] ??= []).push(partition);
    }
    if (orphaned.length > 0) unassigned.push({ topic, partitions: orphaned });
  }
  return { assignment, count, unassigned, idle };
}

/**
 * At-least-once: partition `p` of topic `t` goes to a member whose engine owns it by its own slot
 * (`ownerIndex(t, p, count) = index`), the least loaded of them (ties: smallest memberId). Members of several
 * processes with the same id therefore share each index's partitions, whatever their engine counts. A
 * partition no member owns (its engine is starting or restarting) stays unassigned until it joins, as under
 * exactly-once: given to another engine it would move back a moment later, re-sending what was in flight.
 */
export function preferredAssignment(
  members: readonly StaticMember[],
  topics: readonly { topic: string; partitions: readonly number[] }[],
): StaticAssignment {
  const { sorted, assignment } = byMemberId(members);
  const idle: StaticAssignment["idle"] = sorted
    .filter((m) => !m.slot)
    .map((m) => ({ memberId: m.memberId, reason: "no engine index in its metadata" }));
  const load = new Map<string, number>(sorted.map((m) => [m.memberId, 0]));
  const unassigned: StaticAssignment["unassigned"] = [];
  for (const { topic, partitions } of topics) {
    const orphaned: number[] = [];
    for (const partition of [...partitions].sort((a, b) => a - b)) {
      let owner: string | undefined;
      for (const m of sorted) {
        if (!m.slot || !ownsPartition(m.slot, topic, partition)) continue;
        if (owner === undefined || load.get(m.memberId)! < load.get(owner)!) owner = m.memberId;
      }
      if (owner === undefined) {
        orphaned.push(partition);
        continue;
      }
      load.set(owner, load.get(owner)! + 1);
      (assignment.get(owner)![topic] ??= []).push(partition);
    }
    if (orphaned.length > 0) unassigned.push({ topic, partitions: orphaned });
  }
  const count = Math.max(0, ...sorted.map((m) => m.slot?.count ?? 0));
  return { assignment, count, unassigned, idle };
}

/**
 * The kafkajs adapter: announces `slot` in the member metadata and, on the group leader, splits the
 * partitions with `staticAssignment` (exactly-once) or `preferredAssignment` (at-least-once). `onAssign` sees every split the leader makes (for logging).
 */
export function staticPartitionAssigner(
  slot: EngineSlot,
  onAssign?: (result: StaticAssignment) => void,
  mode: "static" | "preferred" = "static",
): PartitionAssigner {
  const name = mode === "static" ? STATIC_ASSIGNER : PREFERRED_ASSIGNER;
  const split = mode === "static" ? staticAssignment : preferredAssignment;
  return ({ cluster }) => ({
    name,
    version: 0,
    async assign({ members, topics }) {
      const result = split(
        members.map((m) => {
          const metadata = AssignerProtocol.MemberMetadata.decode(m.memberMetadata);
          const decoded = decodeSlot(metadata?.userData);
          return decoded ? { memberId: m.memberId, slot: decoded } : { memberId: m.memberId };
        }),
        topics.map((topic) => ({
          topic,
          partitions: cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId),
        })),
      );
      onAssign?.(result);
      return [...result.assignment].map(([memberId, assignment]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 0,
          assignment,
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name,
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: encodeSlot(slot) }),
      };
    },
  });
}

/** The election group's assigner (./engine/election.ts). */
export const LEADER_ASSIGNER = "LpStickyLeader";

/**
 * The member that leads the election group: the one that led before this rebalance if it is still a
 * member (a joining instance does not take the lead from a working one), else the lowest member id.
 */
export function electLeader(members: readonly { memberId: string; leading: boolean }[]): string | undefined {
  const sitting = members.filter((m) => m.leading).map((m) => m.memberId);
  const pool = sitting.length > 0 ? sitting : members.map((m) => m.memberId);
  return [...pool].sort()[0];
}

/**
 * The election group's assignment: its one partition to {@link electLeader}'s choice; each member says
 * in its subscription whether it leads now (`isLeading`, read at every join).
 */
export function stickyLeaderAssigner(isLeading: () => boolean): PartitionAssigner {
  return () => ({
    name: LEADER_ASSIGNER,
    version: 0,
    async assign({ members, topics }) {
      const leader = electLeader(
        members.map((m) => ({
          memberId: m.memberId,
          leading: AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.userData?.toString() === "1",
        })),
      );
      return members.map((m) => ({
        memberId: m.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 0,
          assignment: m.memberId === leader ? Object.fromEntries(topics.map((t) => [t, [0]])) : {},
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: LEADER_ASSIGNER,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 0,
          topics,
          userData: Buffer.from(isLeading() ? "1" : "0"),
        }),
      };
    },
  });
}
