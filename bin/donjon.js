#!/usr/bin/env node
// The donjon command. CommonJS (bin/package.json says so), like dist/cli.cjs, which it loads: no ES module
// loader starts, and the CLI loads through V8's code cache (src/cli/loader.ts).
require('../dist/cli.cjs');
