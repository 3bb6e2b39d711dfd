/**
 * The browser pages in real Chromium (Debian's, driven by playwright-core): `/docs` (Swagger UI) issues
 * a license with "Try it out" and the bearer key, and `/dashboard` shows three chains healthy, the
 * licenses issued, a chain down once its node stops, and the replication of the service's events
 * (dc1 → dc2) read from a real replicator's admin API. Two shared chains plus one of our own (chain
 * id 43103, started and stopped here); the shared Kafka datacenters. Signer: dev account 17.
 * Screenshots go to a temp folder (path logged); with LP_UPDATE_SCREENSHOTS=1 the dashboard's also to
 * docs/img/dashboard.png.
 */
import { expect } from "chai";
import { copyFileSync, mkdirSync, mkdtempSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import pino from "pino";
import request from "supertest";
import { startChains, type ChainSet } from "../../launchers/chains.js";
import { startAdminServer, type AdminServer } from "../../replicator/admin.js";
import { createApp } from "../../server/app.js";
import { ApiKeys, RateLimiter } from "../../server/auth.js";
import { parseConfig, sha256Hex, type Config } from "../../server/config.js";
import { listen, type Runtime } from "../../server/index.js";
import { getChains, getKafka, randomTopic } from "../fixtures/infra.js";
import { startReplicator, stopReplicators, testConfig as replicatorConfig } from "../replicator/helpers.js";
import { launchBrowser, openPage, type WatchedPage } from "../support/browser.js";
import { ROOT } from "../support/procs.js";
import { closedPort } from "./kafka-helpers.js";
import {
  KEYS,
  auth,
  deployOnChains,
  devKey,
  mintedCount,
  randomAddress,
  sleep,
  startRuntime,
  tempDir,
  testConfig,
  type TestChain,
} from "./helpers.js";

const SIGNER = devKey(17);
const OWN_CHAIN_ID = 43103;
const VIEWER_KEY = "viewer-key-0123456789";
/** platform:read beside licenses:write: sees every license, still changes only its own. */
const WRITER_VIEWER_KEY = "writer-viewer-key-0123456789";

/** The `events` section (publisher to dc1's Kafka), validated by the real schema. */
function eventsSection(brokers: string[], topic: string): Config["events"] {
  return parseConfig({
    database: { path: ":memory:" },
    chains: [{ name: "x", chainId: 1, rpcUrl: "http://127.0.0.1:1", signer: { env: "UNUSED" } }],
    apiKeys: [{ id: "x", sha256: sha256Hex("x"), scopes: ["admin"] }],
    events: { brokers, topic, datacenter: "dc1", partitions: 2, pollMs: 100 },
  }).events;
}

/** Polls `check` until it is true (or throws after `ms`). */
async function waitFor(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("pages: /docs and /dashboard in real Chromium", function () {
  this.timeout(240_000);
  let own: ChainSet | undefined;
  let chains: TestChain[];
  let runtime: Runtime | undefined;
  let server: Server | undefined;
  let base: string;
  let browser: Browser | undefined;
  let tmp: ReturnType<typeof tempDir>;
  let outDir: string;
  let config: Config;
  let admin: AdminServer | undefined;
  const eventsTopic = randomTopic("pages-events");

  before(async function () {
    const [shared, kafka] = await Promise.all([getChains(), getKafka()]);
    own = await startChains({ chainIds: [OWN_CHAIN_ID] });
    chains = await deployOnChains([...shared.chains.slice(0, 2), own.chains[0]!], SIGNER);
    // a replicator in dc2 pulling the service's events topic from dc1, with its admin API
    const replicator = await startReplicator(
      await replicatorConfig({
        replicator: { id: `pages-${eventsTopic}` },
        discovery: { include: [eventsTopic] },
        replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
      }),
    );
    admin = await startAdminServer(replicator, {
      host: "127.0.0.1",
      port: 0,
      logger: pino({ level: "silent" }),
    });
    tmp = tempDir();
    config = testConfig(chains, { dbPath: path.join(tmp.dir, "db.sqlite") });
    config.apiKeys.push(
      { id: "viewer", sha256: sha256Hex(VIEWER_KEY), scopes: ["platform:read"] },
      {
        id: "writer-viewer",
        sha256: sha256Hex(WRITER_VIEWER_KEY),
        scopes: ["licenses:write", "platform:read"],
      },
    );
    config.events = eventsSection(kafka.clusters.find((c) => c.name === "dc1")!.brokers, eventsTopic);
    config.dashboard = {
      replicators: [
        { datacenter: "dc2", url: admin.url },
        // one that does not answer: shown unreachable, the rest of the page unaffected
        { datacenter: "dc3", url: `http://127.0.0.1:${await closedPort()}` },
      ],
      timeoutMs: 2000,
    };
    runtime = await startRuntime(config, SIGNER);
    const listening = await listen(runtime.app, 0);
    server = listening.server;
    base = `http://127.0.0.1:${listening.port}`;
    browser = await launchBrowser();
    outDir = mkdtempSync(path.join(tmpdir(), "lp-pages-"));
    console.log(`      screenshots in ${outDir}`);
  });

  after(async function () {
    await browser?.close();
    server?.closeAllConnections();
    server?.close();
    await runtime?.stop();
    await admin?.close();
    await stopReplicators();
    await own?.stop();
    tmp?.cleanup();
  });

  async function open(url: string, origin = base): Promise<WatchedPage> {
    const watched = await openPage(browser!);
    await watched.page.setViewportSize({ width: 1280, height: 900 });
    await watched.page.goto(`${origin}${url}`);
    return watched;
  }

  it("serves the pages and their files with helmet headers and a CSP of 'self' only", async function () {
    for (const url of [
      "/docs",
      "/dashboard",
      "/pages/docs.js",
      "/pages/dashboard.js",
      "/pages/dashboard.css",
      "/pages/chart.umd.min.js",
      "/pages/swagger-ui/swagger-ui-bundle.js",
      "/pages/swagger-ui/swagger-ui.css",
    ]) {
      const res = await request(runtime!.app).get(url);
      expect(res.status, url).to.equal(200);
      const csp = res.headers["content-security-policy"] as string;
      expect(csp, url).to.include("script-src 'self'").and.include("style-src 'self'");
      expect(csp, url).to.not.include("unsafe-inline");
      expect(res.headers["x-content-type-options"], url).to.equal("nosniff");
      expect(res.headers["x-frame-options"], url).to.equal("DENY");
    }
    // only the files the pages use: not the rest of the package, nothing outside the pages folder
    for (const url of [
      "/pages/swagger-ui/index.html",
      "/pages/swagger-ui/swagger-initializer.js",
      "/pages/x.ts",
    ]) {
      const res = await request(runtime!.app).get(url);
      expect(res.status, url).to.equal(404);
      expect(res.body.code, url).to.equal("NOT_FOUND");
    }
  });

  it("platform:read sees every client's licenses newest first and writes nothing", async function () {
    const first = await request(runtime!.app)
      .post("/v1/licenses?wait=20000")
      .set(...auth(KEYS.client))
      .send({ productId: 1, licensee: randomAddress(), durationSeconds: 3600 });
    const second = await request(runtime!.app)
      .post("/v1/licenses")
      .set(...auth(KEYS.other))
      .send({ productId: 1, licensee: randomAddress() });
    expect([first.status, second.status]).to.deep.equal([201, 202]);
    const list = await request(runtime!.app)
      .get("/v1/licenses?order=desc&limit=2")
      .set(...auth(VIEWER_KEY));
    expect(list.status).to.equal(200);
    expect(list.body.items.map((l: { id: string }) => l.id)).to.deep.equal([second.body.id, first.body.id]);
    const older = await request(runtime!.app)
      .get(`/v1/licenses?order=desc&limit=2&cursor=${list.body.nextCursor ?? "0"}`)
      .set(...auth(VIEWER_KEY));
    expect(older.body.items.map((l: { id: string }) => l.id)).to.not.include(first.body.id);
    const verify = await request(runtime!.app)
      .get(`/v1/licenses/${first.body.id}/verify`)
      .set(...auth(VIEWER_KEY));
    expect(verify.status).to.equal(200);
    const write = await request(runtime!.app)
      .post("/v1/licenses")
      .set(...auth(VIEWER_KEY))
      .send({ productId: 1, licensee: randomAddress() });
    expect(write.status).to.equal(403);
    expect(write.body.code).to.equal("FORBIDDEN");
    // seeing every license does not allow changing another client's
    const seen = await request(runtime!.app)
      .get(`/v1/licenses/${first.body.id}`)
      .set(...auth(WRITER_VIEWER_KEY));
    expect(seen.status).to.equal(200);
    const renew = await request(runtime!.app)
      .post(`/v1/licenses/${first.body.id}/renew`)
      .set(...auth(WRITER_VIEWER_KEY))
      .send({ durationSeconds: 60 });
    expect(renew.status).to.equal(404);
    expect(renew.body.code).to.equal("NOT_FOUND");
    // the replication summary needs platform:read
    const client = await request(runtime!.app)
      .get("/v1/replication")
      .set(...auth(KEYS.client));
    expect(client.status).to.equal(403);
    const replication = await request(runtime!.app)
      .get("/v1/replication")
      .set(...auth(VIEWER_KEY));
    expect(replication.status).to.equal(200);
    expect(replication.body.configured).to.equal(2);
    const [dc2, dc3] = replication.body.replicators as Record<string, unknown>[];
    expect(dc2).to.include({ datacenter: "dc2", reachable: true, id: `pages-${eventsTopic}`, running: true });
    expect(dc3).to.deep.equal({ datacenter: "dc3", reachable: false, error: "ECONNREFUSED" });
  });

  it("/dashboard without replicators configured says so; a licenses:read key sees no replication", async function () {
    // a second app over the same service, without the dashboard's replicator list
    const app = createApp({
      service: runtime!.service,
      apiKeys: new ApiKeys(config.apiKeys),
      rateLimiter: new RateLimiter(1000, 1000),
      logger: runtime!.logger,
      metrics: runtime!.service.metrics,
      bodyLimitBytes: 4096,
    });
    const none = await request(app)
      .get("/v1/replication")
      .set(...auth(VIEWER_KEY));
    expect(none.body).to.deep.equal({ configured: 0, replicators: [] });
    const second = await listen(app, 0);
    try {
      const { page, errors } = await open("/dashboard", `http://127.0.0.1:${second.port}`);
      await page.fill("#key", VIEWER_KEY);
      await page.click("#key-form button[type=submit]");
      await page.locator('#replication[data-state="none"]').waitFor({ timeout: 15_000 });
      expect(await page.locator("#replication").textContent()).to.include("No replicator is configured");
      // a licenses:read key: the chains, but no replication (it needs platform:read)
      await page.click("#forget");
      await page.fill("#key", KEYS.reader);
      await page.click("#key-form button[type=submit]");
      await page.locator('#replication[data-state="forbidden"]').waitFor({ timeout: 15_000 });
      expect(await page.locator("#chains tbody tr").count()).to.equal(3);
      // a refused key brings the form back with the reason
      await page.evaluate('sessionStorage.setItem("lp.dashboard.key", "wrong-key")');
      await page.reload();
      await page.locator("#key-error").filter({ hasText: "UNAUTHENTICATED" }).waitFor({ timeout: 15_000 });
      // the browser logs the refused requests (401, 403) themselves; nothing else
      expect(errors.filter((e) => !/status of 40[13]/.test(e))).to.deep.equal([]);
      await page.close();
    } finally {
      second.server.closeAllConnections();
      second.server.close();
    }
  });

  it("/docs: Swagger UI with no console errors; Try it out on POST /v1/licenses with the bearer key issues a license", async function () {
    const { page, errors } = await open("/docs");
    await page.waitForSelector(".opblock-summary-path", { timeout: 30_000 });
    // Authorize: the bearer key, entered once in the modal
    await page.click(".auth-wrapper .btn.authorize");
    // the bearer scheme's form (the document may declare other schemes beside it)
    const bearer = page
      .locator(".modal-ux .auth-container")
      .filter({ hasText: /bearer/i })
      .first();
    await bearer.locator("input").first().fill(KEYS.client);
    await bearer.locator(".btn.authorize").click();
    await page.locator(".modal-ux .btn-done").first().click();
    const op = page
      .locator(".opblock.opblock-post")
      .filter({ has: page.locator('.opblock-summary-path[data-path="/v1/licenses"]') });
    await op.locator(".opblock-summary").click();
    await op.locator(".try-out__btn").click();
    const licensee = randomAddress();
    await op.locator("textarea.body-param__text").fill(JSON.stringify({ productId: 1, licensee, seats: 3 }));
    await op.locator(".btn.execute").click();
    const status = op.locator(".live-responses-table tr.response .response-col_status").first();
    await status.waitFor({ timeout: 30_000 });
    expect((await status.textContent())?.trim()).to.equal("202");
    const body = JSON.parse(
      (await op
        .locator(".live-responses-table tr.response .response-col_description pre")
        .first()
        .textContent()) ?? "",
    ) as { id: string; chainId: number };
    await status.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(outDir, "docs.png"), fullPage: false });
    expect(errors).to.deep.equal([]);

    // the license exists, for this client, and is issued on its chain
    await waitFor("the license confirmed", async () => {
      const res = await request(runtime!.app)
        .get(`/v1/licenses/${body.id}`)
        .set(...auth(KEYS.client));
      return res.body.status === "confirmed";
    });
    const verify = await request(runtime!.app)
      .get(`/v1/licenses/${body.id}/verify`)
      .set(...auth(KEYS.client));
    expect(verify.body).to.include({ code: "VALID", valid: true, owner: licensee });
    const chain = chains.find((c) => c.chainId === body.chainId)!;
    expect(await mintedCount(chain.rpcUrl, chain.contract)).to.be.greaterThan(0);
  });

  /** The dashboard's view of the chains: health and issued per chain id, and the total. */
  async function shown(page: Page): Promise<{ health: Record<string, string>; total: number }> {
    const rows = await page.locator("#chains tbody tr").evaluateAll((trs) =>
      trs.map((tr) => ({
        chainId: tr.getAttribute("data-chain-id") ?? "",
        health: tr.querySelector("[data-health]")?.getAttribute("data-health") ?? "",
      })),
    );
    return {
      health: Object.fromEntries(rows.map((r) => [r.chainId, r.health])),
      total: Number(await page.locator("#total-issued").textContent()),
    };
  }

  it("/dashboard: three chains healthy, the licenses issued, a chain down once its node stops; no console errors", async function () {
    const { page, errors } = await open("/dashboard");
    await page.fill("#key", VIEWER_KEY);
    await page.click("#key-form button[type=submit]");
    const allHealthy = Object.fromEntries(chains.map((c) => [String(c.chainId), "healthy"]));
    await waitFor("three chains healthy", async () => {
      const view = await shown(page);
      return JSON.stringify(view.health) === JSON.stringify(allHealthy);
    });
    expect(Object.keys((await shown(page)).health)).to.have.length(3);
    expect(await page.locator("#replication").getAttribute("data-state")).to.equal("configured");

    // issue licenses in waves (the chart gets steps); the page shows the count the API reports
    const ids: string[] = [];
    for (let wave = 0; wave < 3; wave++) {
      const responses = await Promise.all(
        Array.from({ length: 4 }, () =>
          request(runtime!.app)
            .post("/v1/licenses?wait=20000")
            .set(...auth(KEYS.client))
            .send({ productId: 1, licensee: randomAddress() }),
        ),
      );
      for (const res of responses) {
        expect(res.status, JSON.stringify(res.body)).to.equal(201);
        ids.push(res.body.id as string);
      }
      await sleep(2500);
    }
    const report = await request(runtime!.app)
      .get("/v1/chains")
      .set(...auth(VIEWER_KEY));
    const issued = (report.body.items as { issued: number }[]).reduce((a, c) => a + c.issued, 0);
    expect(issued).to.be.at.least(ids.length);
    await waitFor(
      `the dashboard showing ${issued} licenses`,
      async () => (await shown(page)).total === issued,
    );
    // the newest license is in the recent list; its verify button reads the chain
    const newest = page.locator(`#licenses tbody tr[data-license-id="${ids.at(-1)!}"]`);
    await newest.waitFor();
    await newest.locator("button").click();
    await newest.locator("[data-verify]").waitFor();
    expect(await newest.locator("[data-verify]").getAttribute("data-verify")).to.equal("VALID");

    // replication: the service's events replicated dc1 → dc2 by the replicator, read from its admin API
    const dc2 = page.locator('#replication .replicator[data-datacenter="dc2"]');
    const pipeline = dc2.locator("tbody tr").filter({ hasText: eventsTopic }).first();
    await waitFor("the events pipeline shown with records", async () => {
      if ((await pipeline.count()) === 0) return false;
      const cells = await pipeline.locator("td").allTextContents();
      return cells[3] === "running" && Number(cells[4]) > 0 && /^\d+$/.test(cells[5] ?? "");
    });
    expect(await dc2.textContent()).to.include("replication latency to");
    expect(await page.locator('#replication .replicator[data-datacenter="dc3"]').textContent()).to.include(
      "unreachable: ECONNREFUSED",
    );

    // stop our chain's node: the dashboard shows it down, the two others still healthy
    await own!.stop();
    await waitFor("our chain shown down", async () => (await shown(page)).health[OWN_CHAIN_ID] === "down");
    const after = (await shown(page)).health;
    expect(Object.values(after).filter((h) => h === "healthy")).to.have.length(2);
    // the policy's view: the stopped chain is not eligible, round-robin turns over the two others
    const selection = async (chainId: number): Promise<string | null> =>
      page.locator(`#chains tbody tr[data-chain-id="${chainId}"] td`).last().textContent();
    expect(await selection(OWN_CHAIN_ID)).to.equal("not eligible: down");
    expect(await selection(chains[0]!.chainId)).to.equal("eligible, 1 of 2 in turn");
    expect(await page.locator("#ready").textContent()).to.equal("ready");
    expect(errors).to.deep.equal([]);

    const shot = path.join(outDir, "dashboard.png");
    await page.screenshot({ path: shot, fullPage: true });
    if (process.env.LP_UPDATE_SCREENSHOTS === "1") {
      mkdirSync(path.join(ROOT, "docs/img"), { recursive: true });
      copyFileSync(shot, path.join(ROOT, "docs/img/dashboard.png"));
    }
  });
});
