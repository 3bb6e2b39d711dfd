/**
 * The app's routes read from Express's own router stack (path + methods), and the method gate built on
 * them: `OPTIONS` on a known path answers 204 with `Allow`, another method the path lacks (TRACE, PUT, …)
 * 405 `METHOD_NOT_ALLOWED` with `Allow`. A literal segment beats a parameter, so `/v1/licenses/batch`
 * is never taken for `/v1/licenses/{id}` with id "batch".
 */
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { AppError } from "./errors.js";

export interface RouteInfo {
  /** The OpenAPI form of the path: `/v1/licenses/{id}`. */
  path: string;
  /** Upper-case methods the route itself declares (Express adds HEAD to GET routes). */
  methods: string[];
}

interface LayerLike {
  route?: { path: unknown; methods: Record<string, boolean> };
  rawPath?: unknown;
  handle?: { stack?: LayerLike[] };
}

/** `/licenses/:id` → `/licenses/{id}`. */
export function toTemplate(expressPath: string): string {
  return expressPath.replace(/:(\w+)/g, "{$1}");
}

/**
 * Every route of `app` (an Express app or router), sub-routers mounted with `use(prefix, router)`
 * included with their prefix. Paths given as patterns other than strings are skipped.
 */
export function listRoutes(app: { router?: unknown; stack?: unknown }): RouteInfo[] {
  const out: RouteInfo[] = [];
  const walk = (stack: LayerLike[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route) {
        if (typeof layer.route.path !== "string") continue;
        const methods = Object.keys(layer.route.methods)
          .filter((m) => layer.route!.methods[m] && m !== "_all")
          .map((m) => m.toUpperCase());
        out.push({ path: toTemplate(`${prefix}${layer.route.path}`), methods });
      } else if (layer.handle?.stack && typeof layer.rawPath === "string") {
        walk(layer.handle.stack, `${prefix}${layer.rawPath === "/" ? "" : layer.rawPath}`);
      }
    }
  };
  const router = (app.router ?? app) as { stack?: LayerLike[] };
  walk(router.stack ?? [], "");
  return out;
}

/** The methods per path template (routes on the same path merged). */
export function methodTable(routes: RouteInfo[]): Map<string, Set<string>> {
  const table = new Map<string, Set<string>>();
  for (const route of routes) {
    const methods = table.get(route.path) ?? new Set<string>();
    for (const m of route.methods) methods.add(m);
    table.set(route.path, methods);
  }
  return table;
}

/**
 * The template `path` belongs to: same number of segments, literals equal (case-insensitive, as
 * Express matches), parameters non-empty; the most specific one (a literal earlier wins).
 */
export function matchTemplate(templates: Iterable<string>, path: string): string | undefined {
  const segments = path.replace(/\/+$/, "").split("/");
  let best: { template: string; score: string } | undefined;
  for (const template of templates) {
    const parts = template.split("/");
    if (parts.length !== segments.length) continue;
    let score = "";
    let ok = true;
    for (let i = 0; i < parts.length && ok; i++) {
      const part = parts[i]!;
      const isParam = /^\{\w+\}$/.test(part);
      ok = isParam ? segments[i]!.length > 0 : part.toLowerCase() === segments[i]!.toLowerCase();
      score += isParam ? "0" : "1";
    }
    if (ok && (!best || score > best.score)) best = { template, score };
  }
  return best?.template;
}

/** The `Allow` value of a path's methods: HEAD with GET, OPTIONS always. */
export function allowOf(methods: Set<string>): string {
  const all = new Set(methods);
  if (all.has("GET")) all.add("HEAD");
  all.add("OPTIONS");
  return [...all].sort().join(", ");
}

/** The method gate; `routes` is read at the first request (after every route is registered). */
export function methodGate(routes: () => RouteInfo[]): RequestHandler {
  let table: Map<string, Set<string>> | undefined;
  return (req: Request, res: Response, next: NextFunction): void => {
    table ??= methodTable(routes());
    const template = matchTemplate(table.keys(), req.path);
    if (template === undefined) return next();
    const methods = table.get(template)!;
    const allow = allowOf(methods);
    if (req.method === "OPTIONS") {
      res.set("Allow", allow).status(204).end();
      return;
    }
    if (methods.has(req.method) || (req.method === "HEAD" && methods.has("GET"))) return next();
    res.set("Allow", allow);
    throw new AppError(
      "METHOD_NOT_ALLOWED",
      `${req.method} is not allowed on ${template}; allowed: ${allow}`,
    );
  };
}
