/**
 * The pages a person opens in a browser: the interactive API docs at `/docs` (Swagger UI from the
 * installed `swagger-ui-dist`, reading `/openapi.json`) and the platform dashboard at `/dashboard`
 * (./pages/: plain HTML, one JS and one CSS file, chart.js from node_modules). Everything is served
 * from this process — no CDN, works offline — with helmet's security headers and a CSP that allows
 * scripts and styles from 'self' only (no inline script or style).
 */
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import express, { type RequestHandler } from "express";
import helmet from "helmet";

const require = createRequire(import.meta.url);
const PAGES_DIR = fileURLToPath(new URL("./pages/", import.meta.url));

/** Swagger UI's own files (the package's `getAbsoluteFSPath()`). */
function swaggerUiDir(): string {
  const dist = require("swagger-ui-dist") as { getAbsoluteFSPath(): string };
  return dist.getAbsoluteFSPath();
}

/** chart.js's UMD bundle (`chart.js/dist` is not an exported subpath: found next to its main file). */
function chartJsFile(): string {
  return path.join(path.dirname(require.resolve("chart.js")), "chart.umd.min.js");
}

/** The files of Swagger UI the docs page loads; nothing else of the package is served. */
const SWAGGER_FILES = new Set(["swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"]);

/** helmet with a CSP of 'self' for scripts, styles and requests; images also as data: (Swagger UI's icons). */
export function securityHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        "default-src": ["'self'"],
        "base-uri": ["'self'"],
        "connect-src": ["'self'"],
        "font-src": ["'self'", "data:"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "script-src": ["'self'"],
        "script-src-attr": ["'none'"],
        "style-src": ["'self'"],
      },
    },
    // the service also runs on plain http://127.0.0.1: no upgrade of its own requests to https
    strictTransportSecurity: false,
    xFrameOptions: { action: "deny" },
  });
}

/** `/docs`, `/dashboard` and their static files under `/pages/`. */
export function pagesRouter(): express.Router {
  const router = express.Router();
  const headers = securityHeaders();
  const page =
    (file: string): RequestHandler =>
    (_req, res) => {
      res.set("Cache-Control", "no-cache");
      res.sendFile(path.join(PAGES_DIR, file));
    };
  const cached = { maxAge: "1h", index: false, dotfiles: "deny" as const };

  router.get("/docs", headers, page("docs.html"));
  router.get("/dashboard", headers, page("dashboard.html"));
  router.use(
    "/pages/swagger-ui",
    headers,
    (req, _res, next) => {
      // only the files the page needs; a 404 (JSON, from the app's fallback) for the rest
      if (SWAGGER_FILES.has(req.path.slice(1))) next();
      else next("router");
    },
    express.static(swaggerUiDir(), cached),
  );
  router.get("/pages/chart.umd.min.js", headers, (_req, res) => {
    res.set("Cache-Control", "public, max-age=3600");
    res.sendFile(chartJsFile());
  });
  router.use(
    "/pages",
    headers,
    (req, _res, next) => {
      if (/^\/[a-z-]+\.(js|css)$/.test(req.path)) next();
      else next("router");
    },
    express.static(PAGES_DIR, { ...cached, maxAge: 0 }),
  );
  return router;
}
