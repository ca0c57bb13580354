/**
 * End to end: VMs started from a template (src/vm/template.ts) instead of a boot. The first image VM makes the
 * template and every later one restores it; two clones running side by side differ in what must differ (boot_id,
 * the CRNG's output, MAC, address) and have the host's time; an input change (the RAM) makes another template;
 * a damaged template boots cold with a warning (and is made again); system df shows templates and system prune
 * removes them. TCG is slow and the host's cores are shared: few VMs, each doing several checks.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, openSync, readdirSync, readFileSync, statSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { HullRoot, idsIn } from './helpers/hull.js';
import { restoreArgv, templateKey, type TemplateSpec } from '../src/vm/template.js';
import { qemuArgs } from '../src/vm/machine.js';

const root = new HullRoot('vmtpl', { HULL_VM_CACHE: process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache' });
after(() => root.dispose());

const templatesDir = join(root.dir, 'vm', 'templates');
const templates = (): string[] =>
  existsSync(templatesDir) ? readdirSync(templatesDir).filter((n) => /^[0-9a-f]{64}$/.test(n)) : [];
const MAKING = /Making the VM template/;
const LONG = { timeoutMs: 300_000 };

describe('VM templates', { timeout: 900_000 }, () => {
  test('the key follows every input; a restore is the instance command line without the kernel (no boot)', () => {
    const spec: TemplateSpec = {
      qemu: process.execPath,
      accel: 'tcg',
      kernelImage: process.execPath,
      kernelVersion: 'test',
      initrd: process.execPath,
      memoryMiB: 512,
      cpus: 1,
      nics: 1,
      bootTimeoutMs: 1000,
    };
    const key = templateKey(spec);
    assert.equal(templateKey({ ...spec, bootTimeoutMs: 5 }), key, 'not an input');
    for (const change of [
      { memoryMiB: 256 },
      { cpus: 2 },
      { nics: 0 },
      { accel: 'kvm' as const },
      { initrd: '/bin/sh' },
    ])
      assert.notEqual(templateKey({ ...spec, ...change }), key, JSON.stringify(change));
    const cold = qemuArgs({
      accel: 'tcg',
      deviceModel: 'virtio',
      kernel: '/k',
      initrd: '/i',
      disk: 'disk.qcow2',
      diskFormat: 'qcow2',
      memoryMiB: 512,
      cpus: 1,
      name: 'x',
      qmpSocket: 'qmp.sock',
      agentSocket: 'agent.sock',
      consoleSocket: 'console.sock',
      nics: [{ tap: 'tap0', mac: '02:00:00:00:00:01' }],
    });
    const r = restoreArgv(cold);
    for (const gone of ['-kernel', '-initrd', '-append', '/k', '/i']) assert.ok(!r.includes(gone), gone);
    assert.deepEqual(r.slice(-3), ['-S', '-incoming', 'fd:3']);
    assert.ok(r.some((a) => a.includes('file=disk.qcow2')) && r.some((a) => a.startsWith('tap,id=net0,ifname=tap0')));
  });

  test('the first image VM makes the template, the next restores it: output and exit code as booted', async () => {
    const first = await root.hullWith(
      LONG,
      'run',
      '--rm',
      '--isolation',
      'vm',
      'busybox',
      'sh',
      '-c',
      'echo one; exit 3',
    );
    assert.equal(first.code, 3, first.stderr);
    assert.equal(first.stdout, 'one\n');
    assert.match(first.stderr, MAKING);
    assert.equal(templates().length, 1);
    const second = await root.hullWith(
      LONG,
      'run',
      '--rm',
      '--isolation',
      'vm',
      'busybox',
      'sh',
      '-c',
      'echo two >&2; exit 5',
    );
    assert.equal(second.code, 5, second.stderr);
    assert.equal(second.stdout, '');
    assert.match(second.stderr, /two/);
    assert.doesNotMatch(second.stderr, MAKING, 'the template is reused');
    assert.doesNotMatch(second.stderr, /warning/);
    assert.equal(templates().length, 1);
  });

  test('two clones side by side: own boot_id, random bytes, MAC and address; the host clock', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await root.hullWith(LONG, 'run', '-d', '--isolation', 'vm', 'busybox', 'sleep', '600');
      assert.equal(r.code, 0, r.stderr);
      ids.push(idsIn(r.stdout)[0]!);
    }
    const seen: { bootId: string; random: string; mac: string; ip: string }[] = [];
    for (const id of ids) {
      // restored, not booted: the monitor says so in its log
      const log = readFileSync(join(root.dir, 'containers', id, 'monitor.log'), 'utf8');
      assert.match(log, /restored VM template/, log);
      const before = Math.floor(Date.now() / 1000);
      const r = await root.hullWith(
        LONG,
        'exec',
        id,
        'sh',
        '-c',
        'date +%s; cat /proc/sys/kernel/random/boot_id; head -c 16 /dev/urandom | od -An -tx1 | tr -d " \\n"; echo; cat /sys/class/net/eth0/address; ip -4 addr show eth0 | grep inet',
      );
      const afterExec = Math.ceil(Date.now() / 1000);
      assert.equal(r.code, 0, r.stderr);
      const [time, bootId, random, mac, addr] = r.stdout.trim().split('\n');
      // the guest's clock is the host's (the template's clock stopped when it was saved), give or take a second
      const t = Number(time);
      assert.ok(t >= before - 1 && t <= afterExec + 1, `guest time ${t}, host between ${before} and ${afterExec}`);
      const ins = await root.inspect(id);
      const net = Object.values(
        (ins as unknown as { NetworkSettings: { Networks: Record<string, { MacAddress: string; IPAddress: string }> } })
          .NetworkSettings.Networks,
      )[0]!;
      assert.equal(mac, net.MacAddress, 'the NIC has the instance MAC, not the template one');
      const ip = /inet (\S+)\//.exec(addr ?? '')?.[1] ?? '';
      assert.equal(ip, net.IPAddress);
      seen.push({ bootId: bootId!, random: random!, mac: mac!, ip });
    }
    const [a, b] = seen as [(typeof seen)[0], (typeof seen)[0]];
    assert.match(a.bootId, /^[0-9a-f-]{36}$/);
    assert.notEqual(a.bootId, b.bootId, 'boot_id');
    assert.equal(a.random.length, 32);
    assert.notEqual(a.random, b.random, 'urandom');
    assert.notEqual(a.mac, b.mac, 'MAC');
    assert.notEqual(a.ip, b.ip, 'address');
    const rm = await root.hull('rm', '-f', ...ids);
    assert.equal(rm.code, 0, rm.stderr);
  });

  test('a damaged template boots cold with a one-line warning, and is made again', async () => {
    const [key] = templates();
    const state = join(templatesDir, key!, 'state.bin');
    // garbage in the middle of the migration stream
    const fd = openSync(state, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, Math.floor(statSync(state).size / 2));
    writeSync(fd, Buffer.alloc(64, 0x5a), 0, 64, 0);
    closeSync(fd);
    const r = await root.hullWith(LONG, 'run', '--rm', '--isolation', 'vm', 'busybox', 'sh', '-c', 'echo cold; exit 4');
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stdout, 'cold\n');
    const warnings = r.stderr.split('\n').filter((l) => /warning/.test(l));
    assert.equal(warnings.length, 1, r.stderr);
    assert.match(warnings[0]!, /template could not be restored.*booted cold/);
    assert.deepEqual(templates(), [], 'the damaged template is gone');
    const again = await root.hullWith(LONG, 'run', '--rm', '--isolation', 'vm', 'busybox', 'true');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, MAKING);
    assert.equal(templates().length, 1);
  });

  test('another RAM size is another template; system df counts them, system prune removes them', async () => {
    const before = templates();
    const r = await root.hullWith(
      LONG,
      'run',
      '--rm',
      '--isolation',
      'vm',
      '--memory',
      '256m',
      'busybox',
      'sh',
      '-c',
      'echo small',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'small\n');
    assert.match(r.stderr, MAKING);
    const now = templates();
    assert.equal(now.length, before.length + 1);
    const meta = now
      .filter((k) => !before.includes(k))
      .map((k) => JSON.parse(readFileSync(join(templatesDir, k, 'template.json'), 'utf8')) as { memoryMiB: number });
    assert.equal(meta[0]!.memoryMiB, 256);
    const df = await root.ok('system', 'df');
    assert.match(df, new RegExp(`^VM Templates\\s+${now.length}\\s`, 'm'), df);
    const prune = await root.hull('system', 'prune', '-f');
    assert.equal(prune.code, 0, prune.stderr);
    assert.deepEqual(templates(), []);
    assert.doesNotMatch(await root.ok('system', 'df'), /^VM Templates/m, 'no row without templates');
    await root.cleanupAndCheck();
  });
});
