/**
 * Upgrading from one consumer group per pipeline to one per datacenter pair (./link.ts) without copying
 * anything again: a partition that has no position in its pair's group yet takes the one its pipeline's
 * own group holds (`lp.replicator.<id>.<source>.<topic>.<destination>`, the group of versions before the
 * pair links) — in the source cluster for at-least-once, in the destination for exactly-once (where the
 * transactions wrote it). The old groups are left as they are; an operator may delete them once the pair's
 * group has committed (docs/replicator.md "Upgrading").
 */
import type { Admin } from "kafkajs";
import { OWN_TOPIC_PREFIX } from "../config.js";

/** Topic → partition → the next offset to replicate. */
export type Positions = Map<string, Map<number, string>>;

/** The group of a pipeline in versions before the datacenter-pair links. */
export function legacyGroupId(
  replicatorId: string,
  sourceDc: string,
  topic: string,
  destinationDc: string,
): string {
  return `${OWN_TOPIC_PREFIX}${replicatorId}.${sourceDc}.${topic}.${destinationDc}`;
}

/**
 * The positions `groupId` holds for `topics` (partitions without one are absent), in one request: the
 * group's every topic (kafkajs's fetchOffsets with topics refreshes the metadata once per topic it has not
 * seen: 7.7 s for 1,000 new topics).
 */
export async function groupPositions(
  admin: Admin,
  groupId: string,
  topics: readonly string[],
): Promise<Positions> {
  const wanted = new Set(topics);
  const out: Positions = new Map();
  for (const t of await admin.fetchOffsets({ groupId })) {
    if (!wanted.has(t.topic)) continue;
    const positions = new Map<number, string>();
    for (const p of t.partitions)
      if (p.offset !== "-1" && p.offset !== "") positions.set(p.partition, p.offset);
    out.set(t.topic, positions);
  }
  return out;
}

/**
 * For the partitions of `topics` missing from `current`, the positions of their legacy groups that exist
 * in `admin`'s cluster (one listGroups call; a fetch per legacy group found). `partitionsOf` gives each
 * topic's partition count.
 */
export async function inheritedPositions(
  admin: Admin,
  current: Positions,
  topics: readonly string[],
  partitionsOf: (topic: string) => number,
  legacyOf: (topic: string) => string,
): Promise<Positions> {
  const out: Positions = new Map();
  const lacking = topics.filter((topic) => {
    const known = current.get(topic)?.size ?? 0;
    return known < partitionsOf(topic);
  });
  if (lacking.length === 0) return out;
  const { groups } = await admin.listGroups();
  const existing = new Set(groups.map((g) => g.groupId));
  for (const topic of lacking) {
    const legacy = legacyOf(topic);
    if (!existing.has(legacy)) continue;
    const held = (await groupPositions(admin, legacy, [topic])).get(topic);
    const have = current.get(topic);
    const inherited = new Map([...(held ?? [])].filter(([partition]) => !have?.has(partition)));
    if (inherited.size > 0) out.set(topic, inherited);
  }
  return out;
}
