import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLevqorClient, isProblem, waitForJob, LevqorError, type LevqorClient } from "../src/index.js";
import { startLevqor, type Levqor } from "./levqor.js";

let levqor: Levqor;
let client: LevqorClient;

beforeAll(async () => {
  levqor = await startLevqor();
  client = createLevqorClient({ baseUrl: levqor.baseUrl, apiKey: levqor.apiKey });
}, 180_000);

afterAll(async () => {
  await levqor?.stop();
});

describe("the TypeScript client against a real Levqor", () => {
  it("creates a user, then finds it again", async () => {
    const created = await client.POST("/api/v1/users", {
      body: { email: "ada@example.com", name: "Ada" },
    });
    expect(created.response.status).toBe(201);
    expect(created.data?.email).toBe("ada@example.com");

    const again = await client.POST("/api/v1/users", { body: { email: "ada@example.com", name: "Ada" } });
    expect(again.response.status).toBe(200);
    expect(again.data?.id).toBe(created.data?.id);
  });

  it("submits a job and follows it to succeeded", async () => {
    const { data, error, response } = await client.POST("/api/v1/intake", {
      body: {
        workflow: "hello",
        payload: { name: "Ada" },
        steps: [{ id: "greet", connector: "core", action: "echo", input: { text: "Hello {{payload.name}}" } }],
      },
    });
    expect(error).toBeUndefined();
    expect(response.status).toBe(202);
    expect(response.headers.get("Location")).toBe(`/api/v1/jobs/${data!.job_id}`);

    const job = await waitForJob(client, data!.job_id, { signal: AbortSignal.timeout(20_000), intervalMs: 50 });
    expect(job.status).toBe("succeeded");
    expect(JSON.stringify(job.result)).toContain("Hello Ada");
  });

  it("reads a problem+json error as a typed value", async () => {
    const { data, error, response } = await client.GET("/api/v1/jobs/{id}", {
      params: { path: { id: "job_doesnotexist00000" } },
    });
    expect(data).toBeUndefined();
    expect(response.status).toBe(404);
    expect(response.headers.get("Content-Type")).toContain("application/problem+json");
    expect(isProblem(error)).toBe(true);
    expect(error?.code).toBe("not_found");
    expect(error?.status).toBe(404);
    await expect(waitForJob(client, "job_doesnotexist00000")).rejects.toBeInstanceOf(LevqorError);
  });

  it("is refused without a key, as a typed 401 problem", async () => {
    const anonymous = createLevqorClient({ baseUrl: levqor.baseUrl });
    const { error, response } = await anonymous.GET("/api/v1/jobs/{id}", { params: { path: { id: "job_x" } } });
    expect(response.status).toBe(401);
    expect(error?.code).toBe("unauthorized");
  });

  it("answers a field error with a pointer", async () => {
    const { error, response } = await client.POST("/api/v1/users", { body: { email: "not an email" } });
    expect(response.status).toBe(400);
    expect(error?.code).toBe("invalid");
    expect(JSON.stringify(error)).toContain("/email");
  });
});
