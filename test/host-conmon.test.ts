/**
 * conmon invocation: argument building, the sync pipe (pid and create errors), the exit file.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { HostSupportError } from '../src/common/errors.js';
import { cgroupPaths, removeCgroup } from '../src/host/cgroups.js';
import { conmonArgs, spawnConmon, type ConmonOptions } from '../src/host/conmon.js';
import { probeHost, probeRuntime } from '../src/host/probe.js';
import { processAlive } from '../src/host/proc.js';
import { OciRuntime } from '../src/host/runtime.js';
import { waitFor } from './helpers/hull.js';

const base = mkdtempSync('/tmp/hull-test-conmon-');
const rt = OciRuntime.open(probeRuntime('runc').usable ? 'runc' : 'crun', join(base, 'root'));
const ids: string[] = [];

after(async () => {
  for (const id of ids) {
    await rt.delete(id, true).catch(() => undefined);
    removeCgroup(cgroupPaths(`/hull/${id}`, probeHost().cgroupLayout));
  }
  rmSync(base, { recursive: true, force: true });
});

function bundle(id: string, args: string[]): string {
  const dir = join(base, id);
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'sleep', 'echo']) symlinkSync('busybox', join(rootfs, 'bin', a));
  assert.equal(spawnSync('runc', ['spec'], { cwd: dir }).status, 0);
  const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  spec.process.terminal = false;
  spec.process.args = args;
  spec.linux.cgroupsPath = `/hull/${id}`;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  mkdirSync(join(dir, 'exits'));
  return dir;
}

function options(id: string, dir: string): ConmonOptions {
  return {
    id,
    uuid: id,
    name: id,
    runtimePath: rt.path,
    runtimeArgs: rt.globalArgs,
    bundle: dir,
    pidFile: join(dir, 'pid'),
    conmonPidFile: join(dir, 'conmon.pid'),
    logPath: join(dir, 'ctr.log'),
    exitDir: join(dir, 'exits'),
    persistDir: join(dir, 'exits'),
    terminal: false,
    stdin: false,
    exitCommand: ['/bin/sh', '-c', `echo ran > ${join(dir, 'exit-command-ran')}`],
  };
}

test('arguments', () => {
  const a = conmonArgs({
    ...options('c1', '/b'),
    terminal: true,
    stdin: true,
    exec: { processSpec: '/b/p.json', attach: true },
  });
  assert.deepEqual(a.slice(0, 10), ['--api-version', '1', '-c', 'c1', '-u', 'c1', '-n', 'c1', '-r', rt.path]);
  assert.ok(a.includes(`--runtime-arg=--root=${rt.stateDir}`));
  assert.ok(a.includes('--full-attach'));
  assert.ok(a.includes('-t') && a.includes('-i') && a.includes('-e') && a.includes('--exec-attach'));
  assert.deepEqual(a.slice(a.indexOf('-l'), a.indexOf('-l') + 2), ['-l', 'k8s-file:/b/ctr.log']);
  assert.deepEqual(a.slice(a.indexOf('--exit-command'), a.indexOf('--exit-command') + 3), [
    '--exit-command',
    '/bin/sh',
    '--exit-command-arg=-c',
  ]);
  assert.throws(() => conmonArgs({ ...options('c1', '/b'), logPath: '/a:b/log' }), HostSupportError);
});

test('create through conmon: pid on the sync pipe, exit file and exit command after the exit', async () => {
  const id = `hulltest-cm-${process.pid}`;
  ids.push(id);
  const dir = bundle(id, ['/bin/sh', '-c', 'echo hello; exit 7']);
  const t0 = performance.now();
  const c = spawnConmon(options(id, dir), { withStart: true });
  c.signalStart();
  const msg = await c.nextSync();
  await c.checkLaunched();
  const t1 = performance.now();
  c.closeAll();
  assert.ok(msg && msg.data > 0, JSON.stringify(msg));
  assert.equal(msg!.data, Number(readFileSync(join(dir, 'pid'), 'utf8')));
  const conmonPid = Number(readFileSync(join(dir, 'conmon.pid'), 'utf8'));
  assert.ok(processAlive(conmonPid));
  console.log(`# conmon + ${rt.name} create: ${(t1 - t0).toFixed(1)} ms`);
  await rt.start(id);
  await waitFor("conmon's exit command to run", () => existsSync(join(dir, 'exit-command-ran')), 10_000, 10);
  assert.equal(readFileSync(join(dir, 'exits', id), 'utf8'), '7');
  assert.equal(readFileSync(join(dir, 'exits', 'exit'), 'utf8'), '7');
  assert.match(readFileSync(join(dir, 'ctr.log'), 'utf8'), /^\S+ stdout F hello\n$/);
  assert.equal(readFileSync(join(dir, 'exit-command-ran'), 'utf8'), 'ran\n');
  await rt.delete(id, true);
});

test("a failing create comes back on the sync pipe with the runtime's message", async () => {
  const id = `hulltest-cmf-${process.pid}`;
  ids.push(id);
  const dir = bundle(id, ['/no/such/program']);
  const c = spawnConmon(options(id, dir));
  const msg = await c.nextSync();
  c.closeAll();
  assert.ok(msg && msg.data < 0, JSON.stringify(msg));
  assert.match(msg!.message ?? '', /no such file or directory|not found/i);
  await rt.delete(id, true).catch(() => undefined);
});

test('conmon refusing its arguments is reported', async () => {
  const c = spawnConmon({ ...options('x', join(base, 'missing')), runtimePath: '/no/runtime' });
  assert.equal(await c.nextSync(), null);
  await assert.rejects(c.checkLaunched(), /conmon/);
});
