/**
 * A fix for kafkajs 2.2.4's request queue, which keeps a 1 ms timer running on every connection.
 *
 * `RequestQueue.checkPendingRequests()` runs after every response and always ends with
 * `scheduleCheckPendingRequests()`. That schedules the next check at `throttledUntil - Date.now()`;
 * with no throttling `throttledUntil` is -1, so the delay is about minus the current time, which Node
 * turns into 1 ms (Node 24 also prints a `TimeoutNegativeWarning`). The timer calls the check again,
 * which schedules again: from its first response on, each connection wakes the event loop about a
 * thousand times a second with nothing to do (kafkajs issues #1704 and #1751, fix proposed in pull
 * requests #1755 and #1768, not released).
 *
 * The fixed `scheduleCheckPendingRequests` schedules a check only when it can do something: while
 * the broker throttles this connection (at the end of the throttle), or when requests wait and the
 * delay is spent (kafkajs's own 10 ms recheck). With nothing pending and no throttle there is nothing
 * to check: a new request either goes out at once or is queued by `push`, which schedules its own
 * check, and every response runs `checkPendingRequests` for the queue.
 *
 * Installed process-wide by patching the class's prototype, only for the verified kafkajs version;
 * `LP_KAFKAJS_REQUEST_QUEUE=kafkajs` keeps kafkajs's own method.
 */
import { createRequire } from "node:module";
import { installPatch, type PatchState } from "../version.js";

const require = createRequire(import.meta.url);
const REQUEST_QUEUE = "kafkajs/src/network/requestQueue/index.js";
/** kafkajs's CHECK_PENDING_REQUESTS_INTERVAL: the recheck while requests wait. */
const CHECK_PENDING_INTERVAL_MS = 10;

/** The part of kafkajs's RequestQueue the fix reads and writes. */
export interface RequestQueueLike {
  throttledUntil: number;
  pending: unknown[];
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/**
 * The delay of the next pending-requests check, or undefined when none is needed: the throttle's end
 * while throttled, kafkajs's recheck interval while requests wait, nothing otherwise.
 */
export function nextCheckDelay(throttledUntil: number, pending: number, now: number): number | undefined {
  const untilUnthrottled = throttledUntil - now;
  if (untilUnthrottled > 0) return untilUnthrottled;
  return pending > 0 ? CHECK_PENDING_INTERVAL_MS : undefined;
}

/** The fixed method (kafkajs's, with {@link nextCheckDelay} deciding whether and when). */
export function scheduleCheckPendingRequests(this: RequestQueueLike): void {
  if (this.throttleCheckTimeoutId) return;
  const delay = nextCheckDelay(this.throttledUntil, this.pending.length, Date.now());
  if (delay === undefined) return;
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, delay);
}

export type RequestQueueFixState = PatchState;
let installed: RequestQueueFixState | undefined;

/** Patches kafkajs's RequestQueue in this process (idempotent); returns whether it is active and why not. */
export function installRequestQueueFix(env: NodeJS.ProcessEnv = process.env): RequestQueueFixState {
  installed ??= installPatch(env, "LP_KAFKAJS_REQUEST_QUEUE", "kafkajs", () => {
    const RequestQueue = require(REQUEST_QUEUE) as { prototype?: Partial<RequestQueueLike> } | undefined;
    if (typeof RequestQueue?.prototype?.scheduleCheckPendingRequests !== "function") {
      return { active: false, reason: "kafkajs RequestQueue.scheduleCheckPendingRequests not found" };
    }
    RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
    return { active: true };
  });
  return installed;
}
