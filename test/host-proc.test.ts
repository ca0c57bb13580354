import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { HostCommandError, HostSupportError } from '../src/common/errors.js';
import { processAlive, processArgv, runProgram, runProgramSync } from '../src/host/proc.js';
import { waitFor } from './helpers/hull.js';

test('runProgram captures stdout and stderr', async () => {
  const r = await runProgram('/bin/sh', ['-c', 'echo out; echo err >&2']);
  assert.deepEqual([r.status, r.stdout, r.stderr], [0, 'out\n', 'err\n']);
});

test('runProgram feeds input', async () => {
  const r = await runProgram('cat', [], { input: 'abc' });
  assert.equal(r.stdout, 'abc');
});

test('a failing program is a HostCommandError naming the program, the status and stderr', async () => {
  await assert.rejects(runProgram('/bin/sh', ['-c', 'echo boom >&2; exit 7'], { hint: 'try again' }), (e: unknown) => {
    assert.ok(e instanceof HostCommandError);
    assert.equal(e.status, 7);
    assert.equal(e.program, '/bin/sh');
    assert.match(e.message, /boom/);
    assert.match(e.message, /try again/);
    return true;
  });
  const r = await runProgram('/bin/sh', ['-c', 'exit 3'], { allowFailure: true });
  assert.equal(r.status, 3);
});

test('a missing program is a HostSupportError', async () => {
  await assert.rejects(runProgram('hull-no-such-program', []), HostSupportError);
  assert.throws(() => runProgramSync('hull-no-such-program', []), HostSupportError);
});

test('timeouts kill the program', async () => {
  const t0 = Date.now();
  const r = await runProgram('sleep', ['10'], { timeoutMs: 100, allowFailure: true });
  assert.equal(r.signal, 'SIGKILL');
  assert.ok(Date.now() - t0 < 5000);
});

test('runProgramSync', () => {
  assert.equal(runProgramSync('echo', ['x']).stdout, 'x\n');
  assert.throws(() => runProgramSync('false', []), HostCommandError);
});

test('processAlive tells live processes from gone and zombie ones', async () => {
  assert.equal(processAlive(process.pid), true);
  assert.deepEqual(processArgv(process.pid)?.[0], process.execPath);
  assert.equal(processAlive(0), false);
  assert.equal(processAlive(2 ** 22 + 1), false);
  const child = spawn('sleep', ['10']);
  assert.equal(processAlive(child.pid!), true);
  child.kill('SIGKILL');
  // until node reaps it, the child may be a zombie: it still counts as gone
  await waitFor('the killed child to be gone', () => !processAlive(child.pid!), 10_000, 5);
  assert.equal(processAlive(child.pid!), false);
});

test('spawn overhead stays small (hot path)', async () => {
  await runProgram('true', []);
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) await runProgram('true', []);
  const per = (performance.now() - t0) / 10;
  console.log(`# runProgram('true'): ${per.toFixed(2)} ms each`);
  assert.ok(per < 50);
});
