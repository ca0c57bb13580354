/**
 * End to end: the host's device files. A runtime must never change them (crun before 1.9 chowned a process's
 * stdio to the process's user, and when that stdio was the host's /dev/null, the host's /dev/null changed owner),
 * and `--privileged` gets the host's devices, an open device cgroup, no no_new_privs and no seccomp filter, as
 * with docker.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { HullRoot } from './helpers/hull.js';
import { hostDeviceModes } from './helpers/leaks.js';
import { probeRuntime } from '../src/host/probe.js';

const root = new HullRoot('hostdev');
after(() => root.dispose());

const RUNTIMES = ['runc', 'crun'].map((name) => ({ name, probe: probeRuntime(name) }));

describe("the host's device files keep owner and mode", () => {
  for (const { name, probe } of RUNTIMES) {
    const skip = !probe.usable && `${name} cannot run here: ${probe.reason}`;

    test(`${name}: --userns auto run without -i`, { skip }, async () => {
      const before = hostDeviceModes();
      const r = await root.hull('run', '--rm', '--runtime', name, '--userns', 'auto', 'busybox', 'sh', '-c', 'id -u');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '0\n');
      assert.deepEqual(hostDeviceModes(), before);
    });

    test(`${name}: exec -u 1000 without -i, and run -u 1000`, { skip }, async () => {
      const before = hostDeviceModes();
      const ctr = `dev-${name}`;
      await root.ok('run', '-d', '--name', ctr, '--runtime', name, 'busybox', 'sleep', '600');
      try {
        const e = await root.hull('exec', '-u', '1000', ctr, 'sh', '-c', 'id -u; cat; echo read-eof');
        assert.equal(e.code, 0, e.stderr);
        assert.equal(e.stdout, '1000\nread-eof\n');
        assert.deepEqual(hostDeviceModes(), before);
        const r = await root.hull('run', '--rm', '--runtime', name, '-u', '1000', 'busybox', 'id', '-u');
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(hostDeviceModes(), before);
      } finally {
        await root.hull('rm', '-f', ctr);
      }
    });
  }
});

describe('--privileged (as docker)', () => {
  const dev = ['/dev/kmsg', '/dev/loop-control'].find((d) => existsSync(d));
  for (const { name, probe } of RUNTIMES) {
    const skip =
      (!probe.usable && `${name} cannot run here: ${probe.reason}`) ||
      (!dev && 'no /dev/kmsg or /dev/loop-control on this host');
    test(`${name}: host devices usable, no no_new_privs, no seccomp; not without --privileged`, { skip }, async () => {
      const script = `head -c0 ${dev} && echo opened; grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status`;
      const p = await root.hull('run', '--rm', '--runtime', name, '--privileged', 'busybox', 'sh', '-c', script);
      assert.equal(p.code, 0, p.stderr);
      assert.match(p.stdout, /^opened\n/);
      assert.match(p.stdout, /^NoNewPrivs:\s+0$/m);
      assert.match(p.stdout, /^Seccomp:\s+0$/m);
      const u = await root.hull(
        'run',
        '--rm',
        '--runtime',
        name,
        'busybox',
        'sh',
        '-c',
        `test -e ${dev} && echo seen || echo absent`,
      );
      assert.equal(u.code, 0, u.stderr);
      assert.equal(u.stdout, 'absent\n');
    });
  }
});

test('leaves nothing behind (and no host device changed)', async () => {
  await root.cleanupAndCheck();
  assert.ok(existsSync('/dev/null'));
});
