#!/usr/bin/env node
// The donjon command: dist/cli.cjs loads the CLI through V8's code cache (src/cli/loader.ts).
require('../dist/cli.cjs');
