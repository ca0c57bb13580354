/**
 * The OCI runtime wrapper with real runc and crun on a busybox bundle made by `runc spec`.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { HostCommandError, HostSupportError, InvalidArgumentError } from '../src/common/errors.js';
import { cgroupPaths, removeCgroup } from '../src/host/cgroups.js';
import { probeHost, probeRuntime } from '../src/host/probe.js';
import { isNotExistError, OciRuntime, runtimeErrorMessage } from '../src/host/runtime.js';
import { existingCgroupDirs, freezerState, memoryLimit, pidsMax, PURE_V2 } from './helpers/cgroup.js';
import { waitFor } from './helpers/hull.js';

const base = mkdtempSync('/tmp/hull-test-runtime-');
const made: { rt: OciRuntime; id: string }[] = [];

/** A bundle running `args` with the busybox rootfs, cgroup /hull/<id>. */
function bundle(id: string, args: string[]): string {
  const dir = join(base, 'bundles', id);
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'sleep', 'true']) symlinkSync('busybox', join(rootfs, 'bin', a));
  const r = spawnSync('runc', ['spec'], { cwd: dir });
  assert.equal(r.status, 0, r.stderr.toString());
  const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  spec.process.terminal = false;
  spec.process.args = args;
  spec.linux.cgroupsPath = `/hull/${id}`;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  return dir;
}

after(async () => {
  for (const { rt, id } of made) {
    await rt.delete(id, true).catch(() => undefined);
    removeCgroup(cgroupPaths(`/hull/${id}`, probeHost().cgroupLayout));
  }
  rmSync(base, { recursive: true, force: true });
});

test('error output of runc and crun becomes one clean line', () => {
  assert.equal(
    runtimeErrorMessage('time="2026-01-01T00:00:00Z" level=error msg="container does not exist"\n'),
    'container does not exist',
  );
  assert.equal(
    runtimeErrorMessage('time="x" level=warning msg="ignored"\ntime="x" level=error msg="a \\"q\\" b"\n'),
    'a "q" b',
  );
  assert.equal(runtimeErrorMessage('{"level":"error","msg":"json err","time":"x"}\n'), 'json err');
  assert.equal(
    runtimeErrorMessage('error opening file `/x/status`: No such file or directory\n'),
    'error opening file `/x/status`: No such file or directory',
  );
  assert.ok(isNotExistError('container does not exist'));
});

test('unknown runtimes are refused', () => {
  assert.throws(() => OciRuntime.open('kata', base), InvalidArgumentError);
});

for (const name of ['runc', 'crun']) {
  const probe = probeRuntime(name);
  describe(`${name} wrapper`, { skip: probe.usable ? false : `${name} cannot run here: ${probe.reason}` }, () => {
    test('create, state, start, pause, resume, update, ps, list, kill, delete', async () => {
      const rt = OciRuntime.open(name, join(base, 'root'));
      assert.equal(rt.stateDir, join(base, 'root', 'run', name));
      if (probe.needsPureV1View) {
        assert.equal(rt.path, join(base, 'root', 'run', 'bin', 'crun'));
        assert.match(readFileSync(rt.path, 'utf8'), /unshare --mount/);
      }
      if (PURE_V2) {
        // a pure cgroup v2 host needs no private mount namespace: the wrapper (which every host has, for the host's
        // /dev/null) runs the runtime as it is, without unshare
        assert.equal(probe.needsPureV1View, false);
        assert.doesNotMatch(readFileSync(rt.path, 'utf8'), /unshare/);
      }
      const id = `hulltest-rt-${name}-${process.pid}`;
      made.push({ rt, id });
      const dir = bundle(id, ['/bin/sleep', '100']);
      await rt.create(id, dir, { pidFile: join(dir, 'pid') });
      let st = await rt.state(id);
      assert.equal(st?.status, 'created');
      assert.equal(st?.pid, Number(readFileSync(join(dir, 'pid'), 'utf8')));
      await rt.start(id);
      assert.equal((await rt.state(id))?.status, 'running');
      await rt.pause(id);
      assert.equal((await rt.state(id))?.status, 'paused');
      // the cgroup is there (the bundle asks for /hull/<id>), frozen, then limited
      assert.notDeepEqual(existingCgroupDirs(id), [], `the cgroup /hull/${id}`);
      assert.equal(freezerState(id), 'FROZEN');
      await rt.resume(id);
      assert.equal((await rt.state(id))?.status, 'running');
      await rt.update(id, { memory: 32 * 1024 * 1024, pidsLimit: 20 });
      assert.equal(memoryLimit(id), 32 * 1024 * 1024);
      assert.equal(pidsMax(id), '20');
      const pids = await rt.ps(id);
      assert.deepEqual(pids, [st!.pid]);
      assert.ok((await rt.list()).some((c) => c.id === id));
      await rt.kill(id, 'SIGKILL');
      await waitFor('the killed container to stop', async () => (await rt.state(id))?.status === 'stopped', 10_000, 10);
      st = await rt.state(id);
      assert.equal(st?.status, 'stopped');
      await assert.rejects(rt.kill(id, 'TERM'), HostCommandError);
      assert.equal(await rt.delete(id), true);
      assert.equal(await rt.state(id), null);
      assert.equal(await rt.delete(id, true), false);
      assert.deepEqual(existingCgroupDirs(id), []);
    });

    test('exec with a process.json; errors name the runtime', async () => {
      const rt = OciRuntime.open(name, join(base, 'root'));
      const id = `hulltest-rtx-${name}-${process.pid}`;
      made.push({ rt, id });
      const dir = bundle(id, ['/bin/sleep', '100']);
      await rt.create(id, dir);
      await rt.start(id);
      const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      writeFileSync(
        join(dir, 'p.json'),
        JSON.stringify({ ...spec.process, args: ['/bin/sh', '-c', 'echo from-exec; exit 4'] }),
      );
      const child = rt.spawnExec(id, join(dir, 'p.json'));
      let out = '';
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
      });
      const code = await new Promise<number | null>((r) => child.on('close', r));
      assert.equal(code, 4);
      assert.equal(out, 'from-exec\n');
      await assert.rejects(
        rt.create(id, dir),
        (e: unknown) => e instanceof HostCommandError && e.message.includes(name),
      );
      assert.equal(await rt.delete(id, true), true);
    });
  });
}

test('a runtime that is not installed is a HostSupportError', () => {
  // probeRuntime caches per name: only names hull knows are accepted by open()
  const p = probeRuntime('runc');
  if (!p.usable) assert.throws(() => OciRuntime.open('runc', base), HostSupportError);
});
