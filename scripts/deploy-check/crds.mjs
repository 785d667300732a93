// Validates Prometheus Operator objects (PodMonitor, PrometheusRule, ...) in
// rendered multi-document YAML files, twice:
//   1. against the operator's published OpenAPI schema, through the
//      @kubernetes-models/prometheus-operator classes (types, enums, required
//      fields);
//   2. for unknown fields, which that schema lets through: every object is
//      written into a TypeScript file as a literal of the model's interface,
//      and `tsc --noEmit` refuses any property the interface does not declare
//      (a misspelt `interval` would otherwise be ignored by the operator).
// Usage: node crds.mjs FILE...   (run from this package's installed copy)
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

const GROUP = "monitoring.coreos.com/v1";
const here = new URL(".", import.meta.url).pathname;
let failed = 0;
const literals = [];
const imports = new Set();

for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length) {
      console.error(`${file}: ${doc.errors.join("; ")}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (!obj) continue;
    const where = `${file}: ${obj.kind}/${obj.metadata?.name}`;
    if (obj.apiVersion !== GROUP) {
      console.error(`${where}: not a ${GROUP} object; core objects are checked by kubernetes-validate`);
      failed++;
      continue;
    }
    let Model;
    try {
      Model = (await import(`@kubernetes-models/prometheus-operator/${GROUP}/${obj.kind}`))[obj.kind];
    } catch {
      console.error(`${where}: no schema for kind ${obj.kind}`);
      failed++;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`ok   ${where} (schema)`);
    } catch (e) {
      console.error(`FAIL ${where}: ${e.message}`);
      failed++;
    }
    imports.add(obj.kind);
    literals.push(`// ${where}\nexport const o${literals.length}: I${obj.kind} = ${JSON.stringify(obj, null, 2)};\n`);
  }
}

if (literals.length) {
  // Beside node_modules, so tsc resolves the model packages.
  const source = join(here, "objects.generated.ts");
  const head = [...imports]
    .map((k) => `import type { I${k} } from "@kubernetes-models/prometheus-operator/${GROUP}/${k}";`)
    .join("\n");
  writeFileSync(source, `${head}\n\n${literals.join("\n")}`);
  try {
    execFileSync(
      join(here, "node_modules/.bin/tsc"),
      ["--noEmit", "--strict", "--skipLibCheck", "--module", "nodenext", "--moduleResolution", "nodenext", source],
      { stdio: "inherit" },
    );
    console.log(`ok   ${literals.length} object(s) declare no unknown fields (tsc)`);
  } catch {
    console.error(`FAIL unknown or mistyped fields above (tsc, ${source})`);
    failed++;
  }
}

if (failed) {
  console.error(`${failed} problem(s)`);
  process.exit(1);
}
