/**
 * End to end: memory limits past what JSON numbers hold exactly (2^53 bytes) are no limit, as the kernel
 * makes of them: inspect shows exactly what is applied (0, unlimited), never a number off by a few bytes.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { HullRoot } from './helpers/hull.js';

const root = new HullRoot('limits');
after(() => root.dispose());

/** what the kernel shows for "no limit" (the root memory cgroup's limit) */
const UNLIMITED = readFileSync('/sys/fs/cgroup/memory/memory.limit_in_bytes', 'utf8').trim();
const LIMITS =
  'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null';

describe('huge memory limits', () => {
  test('run --memory 99999999g: no limit applied, inspect shows 0', async () => {
    const id = (
      await root.ok('run', '-d', '--memory', '99999999g', '--memory-swap', '99999999g', 'busybox', 'sleep', '600')
    ).trim();
    const raw = await root.ok('inspect', id);
    assert.match(raw, /"Memory": 0,/);
    assert.match(raw, /"MemorySwap": -1,/);
    assert.ok(!raw.includes('1073741813'), 'no digits of the huge value');
    assert.equal((await root.ok('exec', id, 'sh', '-c', LIMITS)).split('\n')[0], UNLIMITED);
    await root.ok('rm', '-f', id);
  });

  for (const runtime of ['runc', 'crun']) {
    test(`${runtime}: update --memory 99999999g lifts a live limit; inspect says so`, async () => {
      const id = (
        await root.ok('run', '-d', '--runtime', runtime, '--memory', '64m', 'busybox', 'sleep', '600')
      ).trim();
      assert.equal((await root.ok('exec', id, 'sh', '-c', LIMITS)).split('\n')[0], String(64 << 20));
      await root.ok('update', '--memory', '99999999g', id);
      assert.equal((await root.ok('exec', id, 'sh', '-c', LIMITS)).split('\n')[0], UNLIMITED);
      assert.equal((await root.inspect(id)).HostConfig.Memory, 0);
      await root.ok('rm', '-f', id);
    });
  }

  test('an unlimited --memory with a finite --memory-swap is refused, as docker refuses a swap below the memory', async () => {
    const r = await root.hull('run', '--rm', '--memory', '99999999g', '--memory-swap', '1g', 'busybox', 'true');
    assert.equal(r.code, 125);
    assert.match(r.stderr, /invalid --memory-swap: it must be at least --memory .*--memory is unlimited/);
  });

  test('a VM is refused an unlimited --memory (it needs a RAM size)', {
    skip: existsSync('/usr/bin/qemu-system-x86_64') ? false : 'no QEMU on this host',
  }, async () => {
    const r = await root.hull('run', '--rm', '--isolation', 'vm', '--memory', '99999999g', 'busybox', 'true');
    assert.equal(r.code, 125);
    assert.match(r.stderr, /a VM needs a RAM size, not an unlimited --memory: give one such as --memory 2g/);
    assert.deepEqual(await root.ids(), []);
  });

  test('leaves nothing behind', () => root.cleanupAndCheck());
});
