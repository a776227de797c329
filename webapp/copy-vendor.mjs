// Copies the pinned npm files the web app serves from node_modules/ into webapp/vendor/
// (git-ignored). node_modules/ is not deployed, webapp/ is: `make setup` runs this, and so
// does azd's prepackage hook (azure.yaml) before every deployment. Exactly these files, each
// under the name index.html's import map gives it, and their licences (not served).
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "..", "node_modules");
const vendor = join(here, "vendor");

const FILES = {
  "preact.mjs": "preact/dist/preact.mjs",
  "preact-hooks.mjs": "preact/hooks/dist/hooks.mjs",
  "htm.mjs": "htm/dist/htm.mjs",
  "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
  "msal-browser.min.js": "@azure/msal-browser/lib/msal-browser.min.js",
};
const LICENCES = {
  "preact.txt": "preact/LICENSE",
  "htm.txt": "htm/LICENSE",
  "chart.js.txt": "chart.js/LICENSE.md",
  "msal-browser.txt": "@azure/msal-browser/LICENSE",
};

rmSync(vendor, { recursive: true, force: true });
mkdirSync(join(vendor, "licences"), { recursive: true });
for (const [name, source] of Object.entries(FILES)) {
  copyFileSync(join(modules, source), join(vendor, name));
}
for (const [name, source] of Object.entries(LICENCES)) {
  copyFileSync(join(modules, source), join(vendor, "licences", name));
}
console.error(`webapp-vendor: ${Object.keys(FILES).length} files in webapp/vendor/`);
