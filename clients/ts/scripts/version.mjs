// Keeps package.json's version equal to the spec's info.version: without
// arguments it fails when they differ; with --write it sets it (make generate).
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";

const root = fileURLToPath(new URL("..", import.meta.url));
const spec = yaml.load(readFileSync(root + "../../api/openapi.yaml", "utf8"));
const want = spec?.info?.version;
if (typeof want !== "string" || want === "") {
  console.error("api/openapi.yaml has no info.version");
  process.exit(1);
}
const pkgPath = root + "package.json";
const text = readFileSync(pkgPath, "utf8");
const pkg = JSON.parse(text);
if (pkg.version === want) process.exit(0);
if (process.argv.includes("--write")) {
  writeFileSync(pkgPath, text.replace(`"version": "${pkg.version}"`, `"version": "${want}"`));
  console.log(`package.json version ${pkg.version} -> ${want}`);
} else {
  console.error(`package.json version ${pkg.version} differs from the spec's ${want}: run make generate`);
  process.exit(1);
}
