/**
 * JSON over HTTP on a fresh connection per request (no keep-alive). The benchmark blocks its event loop
 * for seconds while it signs transactions; a pooled idle socket may meanwhile be closed by the server
 * and then fail the next request ("socket hang up"). A new connection per request avoids that race.
 * A load generator that keeps its event loop free passes a keep-alive `agent` instead (as wrk or a real
 * client pool would): a connection per request cost the REST load generator more CPU than the service.
 */
import http from "node:http";

export interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function request(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    timeoutMs?: number;
    agent?: http.Agent;
  } = {},
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: options.method ?? "GET",
        agent: options.agent ?? false,
        headers: {
          ...(options.agent ? {} : { connection: "close" }),
          ...(options.body === undefined ? {} : { "content-type": "application/json" }),
          ...options.headers,
        },
        timeout: options.timeoutMs ?? 120_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${options.method ?? "GET"} ${url}: timed out`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

/** One JSON-RPC call (or a batch when `calls` is an array); throws on an HTTP error. */
export async function jsonRpc<T>(url: string, body: unknown): Promise<T> {
  const reply = await request(url, { method: "POST", body: JSON.stringify(body) });
  if (reply.status !== 200)
    throw new Error(`JSON-RPC ${url}: HTTP ${reply.status} ${reply.body.slice(0, 200)}`);
  return JSON.parse(reply.body) as T;
}

let nextId = 1;

/** One JSON-RPC method call; resolves with its result. */
export async function rpcCall<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const reply = await jsonRpc<{ result?: T; error?: { message: string } }>(url, {
    jsonrpc: "2.0",
    id: nextId++,
    method,
    params,
  });
  if (reply.error) throw new Error(`${method}: ${reply.error.message}`);
  return reply.result as T;
}
