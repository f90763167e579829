// Starts a real Levqor process for the tests: the binary built from this
// repository (LEVQOR_BIN, or go build into a temp dir), on a free loopback port,
// with a fresh data directory and a bootstrap admin key.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const repoRoot = resolve(import.meta.dirname, "../../..");

export interface Levqor {
  baseUrl: string;
  apiKey: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => ok(port));
    });
  });
}

export async function startLevqor(env: Record<string, string> = {}): Promise<Levqor> {
  const dir = mkdtempSync(join(tmpdir(), "levqor-ts-"));
  let bin = process.env.LEVQOR_BIN ? resolve(process.env.LEVQOR_BIN) : "";
  if (!bin) {
    bin = join(dir, "levqor");
    execFileSync("go", ["build", "-o", bin, "./cmd/levqor"], { cwd: repoRoot, stdio: "inherit" });
  }
  const port = await freePort();
  const apiKey = "ts-client-test-admin-key-0123456789";
  const child: ChildProcess = spawn(bin, ["serve"], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: dir,
      LEVQOR_ADDR: `127.0.0.1:${port}`,
      LEVQOR_DATA_DIR: join(dir, "data"),
      LEVQOR_API_KEYS: apiKey,
      LEVQOR_LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`levqor exited with ${child.exitCode}`);
    try {
      const res = await fetch(baseUrl + "/ready");
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error("levqor did not become ready in 20 s");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    baseUrl,
    apiKey,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
