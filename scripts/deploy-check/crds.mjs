// Validates custom resources (Prometheus Operator, Traefik, Istio) in
// multi-document YAML files, twice:
//   1. against their published OpenAPI schemas, through the
//      @kubernetes-models classes (types, enums, required fields);
//   2. for unknown fields, which that schema lets through: every object is
//      written into a TypeScript file as a literal of the model's interface,
//      and `tsc --noEmit` refuses any property the interface does not declare
//      (a misspelt `interval` would otherwise be ignored by the operator).
// Usage: node crds.mjs FILE...   (run from this package's installed copy)
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

// apiVersion -> the package with its models. Core objects (Ingress,
// ConfigMap, ...) are left to kubernetes-validate.
const PACKAGES = {
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator",
  "traefik.io/v1alpha1": "@kubernetes-models/traefik",
  "security.istio.io/v1": "@kubernetes-models/istio",
};
const CORE = /^(v1|apps\/v1|networking\.k8s\.io\/v1)$/;
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
    if (CORE.test(obj.apiVersion)) continue;
    const pkg = PACKAGES[obj.apiVersion];
    if (!pkg) {
      console.error(`${where}: no models for ${obj.apiVersion}`);
      failed++;
      continue;
    }
    let Model;
    try {
      Model = (await import(`${pkg}/${obj.apiVersion}/${obj.kind}`))[obj.kind];
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
    const alias = `I${obj.kind}_${obj.apiVersion.replace(/[^A-Za-z0-9]/g, "_")}`;
    imports.add(`import type { I${obj.kind} as ${alias} } from "${pkg}/${obj.apiVersion}/${obj.kind}";`);
    literals.push(`// ${where}\nexport const o${literals.length}: ${alias} = ${JSON.stringify(obj, null, 2)};\n`);
  }
}

if (literals.length) {
  // Beside node_modules, so tsc resolves the model packages.
  const source = join(here, "objects.generated.ts");
  const head = [...imports].join("\n");
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
