// Small workloads for the Keep's tests, assembled with the WASI tests' module builder.
import { buildModule, op, startFunc, wasiImport } from '../wasi/wasm-builder.ts';

const IF_EMPTY = [0x04, 0x40];

/** Writes 64 KiB of stdout again and again, for ever: only the output limit (or another) ends it. */
export function floodModule(): Uint8Array {
  return buildModule({
    imports: [wasiImport('fd_write', 'iiii:i')],
    memory: { min: 2 },
    // One iovec at 0: 65536 bytes at 1024 (of 0x2e, '.').
    data: [
      { offset: 0, bytes: [0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00] },
      { offset: 1024, bytes: new Uint8Array(65536).fill(0x2e) },
    ],
    funcs: [
      startFunc(
        op.loop([
          ...op.i32Const(1),
          ...op.i32Const(0),
          ...op.i32Const(1),
          ...op.i32Const(512),
          ...op.call(0),
          ...op.drop,
          ...op.br(0),
        ]),
      ),
    ],
  });
}

/**
 * Opens the file "f" of its first pre-opened directory (descriptor 3), creating it, again and again without
 * closing anything: only the descriptor limit (or another) ends it. A failed open exits with its errno.
 */
export function openLoopModule(): Uint8Array {
  return buildModule({
    imports: [wasiImport('path_open', 'iiiiiIIii:i'), wasiImport('proc_exit', 'i:')],
    memory: { min: 1 },
    data: [{ offset: 100, bytes: [0x66] }],
    funcs: [
      startFunc(
        op.loop([
          // path_open(3, 0, "f", 1, O_CREAT, all rights, no inheriting, 0, &fd at 200)
          ...op.i32Const(3),
          ...op.i32Const(0),
          ...op.i32Const(100),
          ...op.i32Const(1),
          ...op.i32Const(1),
          ...op.i64Const(-1n),
          ...op.i64Const(0n),
          ...op.i32Const(0),
          ...op.i32Const(200),
          ...op.call(0),
          ...op.localSet(0),
          ...op.localGet(0),
          ...IF_EMPTY,
          ...op.localGet(0),
          ...op.call(1),
          ...op.end,
          ...op.br(0),
        ]),
        ['i32'],
      ),
    ],
  });
}
