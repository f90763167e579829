import path from "node:path";
import type { NextConfig } from "next";

// A static export served by the Go binary from LEVQOR_WEB_DIR: no server, no
// image optimisation, no external requests. The repository root is the
// bundler's root because @levqor/client lives in ../clients/ts.
const config: NextConfig = {
  output: "export",
  trailingSlash: false,
  images: { unoptimized: true },
  poweredByHeader: false,
  reactStrictMode: true,
  turbopack: { root: path.join(import.meta.dirname, "..") },
  outputFileTracingRoot: path.join(import.meta.dirname, ".."),
};

export default config;
