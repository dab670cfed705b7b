import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { buildModule, op, wasiImport } from '../wasi/wasm-builder.ts';
import { cleanupWorker, runModule } from './support.ts';

// Found by running Yosys: C programs redirect their standard streams with dup2, which wasi-libc and Yosys spell
// fd_renumber(fd, 1) after the old descriptor 1 was itself renumbered away. The host used to answer EBADF
// because descriptor 1 was no longer open, so stdout stayed closed for the rest of the run (Yosys then lost
// everything it printed after ABC, and still exited 0). The suite's own `renumber` test requires EBADF for a
// closed target above the standard streams, which the fix keeps.

after(cleanupWorker);

test('fd_renumber() onto the closed descriptor 1 puts a stream back on stdout, dup2 style', async () => {
  // fd_renumber(1, 2): stdout now sits on 2, descriptor 1 is closed. fd_renumber(2, 1) moves it back.
  // Then "ok\n" is written to descriptor 1; the errno of the second renumber is the exit code.
  const iovec = [16, 0, 0, 0, 3, 0, 0, 0];
  const module = buildModule({
    imports: [
      wasiImport('fd_renumber', 'ii:i'),
      wasiImport('fd_write', 'iiii:i'),
      wasiImport('proc_exit', 'i:'),
    ],
    funcs: [
      {
        locals: ['i32'],
        body: [
          ...op.i32Const(1),
          ...op.i32Const(2),
          ...op.call(0),
          op.drop[0]!,
          ...op.i32Const(2),
          ...op.i32Const(1),
          ...op.call(0),
          ...op.localSet(0),
          ...op.i32Const(1),
          ...op.i32Const(0),
          ...op.i32Const(1),
          ...op.i32Const(32),
          ...op.call(1),
          op.drop[0]!,
          ...op.localGet(0),
          ...op.call(2),
        ],
        export: '_start',
      },
    ],
    memory: { min: 1 },
    data: [
      { offset: 0, bytes: iovec },
      { offset: 16, bytes: [...Buffer.from('ok\n')] },
    ],
  });
  const r = await runModule(module);
  assert.deepEqual(r.result, { kind: 'exit', code: 0 }, 'the errno of fd_renumber(2, 1)');
  assert.equal(r.stdout, 'ok\n');
});
