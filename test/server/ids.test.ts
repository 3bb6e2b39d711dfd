import assert from "node:assert/strict";
import { uuidV7 } from "../../server/ids.js";

describe("license ids (UUID version 7)", () => {
  it("are RFC 9562 version 7 UUIDs carrying the time in milliseconds", () => {
    const now = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const id = uuidV7(now);
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(parseInt(id.replaceAll("-", "").slice(0, 12), 16), now);
  });

  it("sort by creation time and do not repeat", () => {
    const ids = Array.from({ length: 2000 }, (_, i) => uuidV7(1_700_000_000_000 + i));
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(Array.from({ length: 5000 }, () => uuidV7(1_700_000_000_000))).size, 5000);
  });
});
