// Runs a WASI preview1 command under Node's built-in node:wasi with default flags, for comparison with
// Donjon's host: `node node-wasi.mjs FILE.wasm [ARG...]`. stdio are this process's own; the exit status
// is the module's.
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

// The built-in prints an ExperimentalWarning on stderr; the benchmark reads stderr, so keep it quiet.
process.removeAllListeners('warning');
const [file, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(readFileSync(file));
const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi.wasiImport });
process.exitCode = wasi.start(instance);
