import { expect } from "chai";
import { createRequire } from "node:module";
import {
  installRequestQueueFix,
  nextCheckDelay,
  scheduleCheckPendingRequests,
  type RequestQueueLike,
} from "../../kafka/patches/request-queue.js";

const require = createRequire(import.meta.url);

describe("kafkajs request queue fix", () => {
  describe("nextCheckDelay", () => {
    const now = 1_764_600_000_000;

    it("needs no check when nothing waits and the connection is not throttled", () => {
      // kafkajs's initial throttledUntil is -1: its own method scheduled at about -now, i.e. 1 ms.
      expect(nextCheckDelay(-1, 0, now)).to.equal(undefined);
      expect(nextCheckDelay(now - 5, 0, now)).to.equal(undefined);
      expect(nextCheckDelay(now, 0, now)).to.equal(undefined);
    });

    it("checks at the end of a throttle, whether or not requests wait", () => {
      expect(nextCheckDelay(now + 250, 0, now)).to.equal(250);
      expect(nextCheckDelay(now + 250, 3, now)).to.equal(250);
    });

    it("rechecks after 10 ms (kafkajs's interval) while requests wait unthrottled", () => {
      expect(nextCheckDelay(-1, 1, now)).to.equal(10);
      expect(nextCheckDelay(now - 1, 7, now)).to.equal(10);
    });
  });

  describe("scheduleCheckPendingRequests", () => {
    function queue(over: Partial<RequestQueueLike> = {}): RequestQueueLike & { checks: number } {
      const q = {
        throttledUntil: -1,
        pending: [] as unknown[],
        throttleCheckTimeoutId: null as ReturnType<typeof setTimeout> | null,
        checks: 0,
        checkPendingRequests() {
          q.checks += 1;
        },
        scheduleCheckPendingRequests,
        ...over,
      };
      return q;
    }

    it("leaves an idle queue without a timer", () => {
      const q = queue();
      q.scheduleCheckPendingRequests();
      expect(q.throttleCheckTimeoutId).to.equal(null);
    });

    it("runs one check when requests wait, then clears its timer", async () => {
      const q = queue({ pending: [{}] });
      q.scheduleCheckPendingRequests();
      const timer = q.throttleCheckTimeoutId;
      expect(timer).to.not.equal(null);
      q.scheduleCheckPendingRequests(); // already scheduled: keeps the one timer
      expect(q.throttleCheckTimeoutId).to.equal(timer);
      await new Promise((r) => setTimeout(r, 40));
      expect(q.checks).to.equal(1);
      expect(q.throttleCheckTimeoutId).to.equal(null);
    });

    it("waits for the throttle's end before checking", async () => {
      const q = queue({ throttledUntil: Date.now() + 60, pending: [{}] });
      q.scheduleCheckPendingRequests();
      await new Promise((r) => setTimeout(r, 20));
      expect(q.checks).to.equal(0);
      await new Promise((r) => setTimeout(r, 80));
      expect(q.checks).to.equal(1);
    });
  });

  describe("installRequestQueueFix", () => {
    it("replaces kafkajs 2.2.4's method, whose idle queue re-armed a timer for ever", () => {
      const RequestQueue = require("kafkajs/src/network/requestQueue/index.js") as {
        prototype: RequestQueueLike;
      };
      const original = RequestQueue.prototype.scheduleCheckPendingRequests;
      // kafkajs's own method on an idle queue: schedules a check (the 1 ms loop of issue #1704).
      const idle = {
        throttledUntil: -1,
        pending: [] as unknown[],
        throttleCheckTimeoutId: null as ReturnType<typeof setTimeout> | null,
        checkPendingRequests() {},
      };
      if (original !== scheduleCheckPendingRequests) {
        original.call(idle);
        expect(idle.throttleCheckTimeoutId).to.not.equal(null);
        clearTimeout(idle.throttleCheckTimeoutId!);
      }
      const state = installRequestQueueFix({});
      expect(state).to.deep.equal({ active: true });
      expect(RequestQueue.prototype.scheduleCheckPendingRequests).to.equal(scheduleCheckPendingRequests);
      expect(installRequestQueueFix({ LP_KAFKAJS_REQUEST_QUEUE: "kafkajs" })).to.deep.equal({ active: true });
    });
  });
});
