// The Levqor API client: every path, body and response typed from
// api/openapi.yaml (src/schema.ts, generated), calls made by openapi-fetch.
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, paths, operations } from "./schema.js";

export type { components, paths, operations };

/** An RFC 9457 problem as Levqor answers it (application/problem+json). */
export type Problem = components["schemas"]["Problem"];
/** The stable, machine-readable code of a problem. */
export type ProblemCode = Problem["code"];
/** A job as GET /api/v1/jobs/{id} returns it. */
export type Job = components["schemas"]["Job"];
/** A job's status. */
export type JobStatus = components["schemas"]["JobStatus"];

/** The typed client openapi-fetch builds for Levqor's paths. */
export type LevqorClient = Client<paths>;

export interface LevqorClientOptions {
  /** The server's root, such as https://api.example.com; "" for the page's own origin. */
  baseUrl: string;
  /** An API key sent as X-Api-Key; omit for the public routes only. */
  apiKey?: string;
  /** A fetch to use instead of the global one. */
  fetch?: typeof globalThis.fetch;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
}

/** createLevqorClient returns a typed client of the Levqor API. */
export function createLevqorClient(options: LevqorClientOptions): LevqorClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl,
    fetch: options.fetch,
    headers: options.headers,
  });
  const apiKey = options.apiKey;
  if (apiKey) {
    const auth: Middleware = {
      onRequest({ request }) {
        request.headers.set("X-Api-Key", apiKey);
        return request;
      },
    };
    client.use(auth);
  }
  return client;
}

/** isProblem tells whether an error body is a Levqor problem document. */
export function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.type === "string" && typeof v.title === "string" &&
    typeof v.status === "number" && typeof v.code === "string";
}

/** The statuses after which a job never changes again. */
export const finalStatuses: readonly JobStatus[] = ["succeeded", "failed", "canceled"];

/** LevqorError carries a problem answered by the server. */
export class LevqorError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(`${problem.status} ${problem.code}: ${problem.detail ?? problem.title}`);
    this.name = "LevqorError";
    this.problem = problem;
  }
}

/**
 * waitForJob polls GET /api/v1/jobs/{id} until the job reaches a final status
 * or the signal aborts; a problem answer is thrown as a LevqorError.
 */
export async function waitForJob(
  client: LevqorClient,
  id: string,
  opts: { intervalMs?: number; signal?: AbortSignal } = {},
): Promise<Job> {
  const interval = opts.intervalMs ?? 200;
  for (;;) {
    opts.signal?.throwIfAborted();
    const { data, error, response } = await client.GET("/api/v1/jobs/{id}", {
      params: { path: { id } },
      signal: opts.signal,
    });
    if (error !== undefined) {
      if (isProblem(error)) throw new LevqorError(error);
      throw new Error(`GET /api/v1/jobs/${id}: HTTP ${response.status}`);
    }
    if (finalStatuses.includes(data.status)) return data;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
