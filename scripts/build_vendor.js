// Copies hls.js (built by its authors, from npm) into the Django static tree.
// The output is committed so that `make demo` and a wheel need no Node.js;
// tests/test_vendor.py checks it matches the version pinned in package.json.
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const source = path.join(root, "node_modules", "hls.js");
const target = path.join(root, "wagtail_live", "static", "wagtail_live", "vendor");

// The bundles end with a sourceMappingURL comment naming a .map file we do not ship (it is
// four times the size of the code). Django's ManifestStaticFilesStorage, and WhiteNoise's
// storage built on it, fail collectstatic on a reference to a missing file, so the comment
// is dropped on copy (as Django does for the libraries its admin vendors).
function copyWithoutSourceMap(from, to) {
  const code = fs.readFileSync(from, "utf8");
  fs.writeFileSync(to, code.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n"));
}

const version = require(path.join(source, "package.json")).version;
fs.mkdirSync(target, { recursive: true });
copyWithoutSourceMap(path.join(source, "dist", "hls.min.js"), path.join(target, "hls.min.js"));
fs.copyFileSync(path.join(source, "LICENSE"), path.join(target, "hls.js.LICENSE"));
fs.writeFileSync(path.join(target, "hls.js.version"), version + "\n");
console.log(`hls.js ${version} copied to ${path.relative(root, target)}`);

// Chart.js (analytics charts, issue 7): its UMD build defines window.Chart.
const chartSource = path.join(root, "node_modules", "chart.js");
const chartVersion = require(path.join(chartSource, "package.json")).version;
copyWithoutSourceMap(
  path.join(chartSource, "dist", "chart.umd.min.js"),
  path.join(target, "chart.umd.min.js"),
);
fs.copyFileSync(path.join(chartSource, "LICENSE.md"), path.join(target, "chart.js.LICENSE"));
fs.writeFileSync(path.join(target, "chart.js.version"), chartVersion + "\n");
console.log(`chart.js ${chartVersion} copied to ${path.relative(root, target)}`);
