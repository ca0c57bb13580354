/**
 * End to end through the CLI: the VM session. `run --rm --isolation vm` in the foreground (guest
 * kernel, output, exit code), then one detached VM through exec, logs, update (balloon), stats, stop and rm,
 * and the leak check (no QEMU, monitor, socket or disk file of the root left). Two boots in all.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { HullRoot, idsIn, jsonLines, waitFor } from './helpers/hull.js';
import { probeAccel } from '../src/host/qemu.js';
import { toyBootDisk } from './helpers/toy-disk.js';

/** A free TCP port on [::1] (bound and released). */
function freeV6Port(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen({ port: 0, host: '::1' }, () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

const root = new HullRoot('vm', { HULL_VM_CACHE: process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache' });
after(() => root.dispose());

describe('VMs through the CLI', { timeout: 600_000 }, () => {
  test('run --rm: the guest kernel, stdout and stderr, the exit code', async () => {
    // a VM needs no OCI runtime: a host without runc or crun (here: one hull cannot find) runs it all the same
    const r = await root.hullWith(
      { timeoutMs: 300_000, env: { HULL_RUNTIME: 'no-such-runtime' } },
      'run',
      '--rm',
      '--isolation',
      'vm',
      '--sysctl',
      'vm.swappiness=7',
      'busybox',
      'sh',
      '-c',
      'uname -r; echo hello; echo oops >&2; cat /proc/sys/vm/swappiness; exit 3',
    );
    assert.equal(r.code, 3, r.stderr);
    const [kernel, hello, swappiness] = r.stdout.split('\n');
    assert.equal(swappiness, '7', '--sysctl is set in the guest (its own kernel: any key)');
    assert.notEqual(kernel, readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
    assert.match(kernel!, /cloud-amd64/);
    assert.equal(hello, 'hello');
    assert.match(r.stderr, /oops/);
    assert.deepEqual(await root.ids(), [], '--rm removed it');
  });

  test('the emulated device model (IDE root disk, the agent on a UART), --read-only', async () => {
    const r = await root.hullWith(
      { timeoutMs: 300_000 },
      'run',
      '--rm',
      '--network',
      'none',
      '--isolation',
      'vm',
      '--device-model',
      'emulated',
      '--read-only',
      'busybox',
      'sh',
      '-c',
      'ls /sys/block; grep -o "hull.chan=[^ ]*" /proc/cmdline; touch /x 2>/dev/null || echo read-only; exit 6',
    );
    assert.equal(r.code, 6, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['sda', 'hull.chan=/dev/ttyS1', 'read-only']);
  });

  test('a detached VM: exec, logs, update --memory, stats, stop, rm', async () => {
    const id = idsIn(
      await root.ok(
        'run',
        '-d',
        '--isolation',
        'vm',
        '--name',
        'vm1',
        '--memory',
        '256m',
        '--cpus',
        '2',
        '--log-driver',
        'json-file',
        '--log-opt',
        'max-size=1m',
        '--log-opt',
        'max-file=2',
        // the agent is pid 1 and reaps: --init is accepted as is; the healthcheck runs through the agent's exec
        '--init',
        '--health-cmd',
        'test -d /proc/1',
        '--health-interval',
        '300ms',
        'busybox',
        'sh',
        '-c',
        'echo started; sleep 1d',
      ),
    )[0]!;
    assert.ok(id);
    assert.match(await root.ok('ps'), /vm1/);
    assert.deepEqual(
      jsonLines<{ Names: string }>(await root.ok('ps', '--format', 'json', '-f', 'isolation=vm')).map((e) => e.Names),
      ['vm1'],
    );
    const doc = await root.inspect('vm1');
    assert.equal(doc.Name, '/vm1');
    assert.equal(doc.HostConfig.Isolation, 'vm');
    assert.equal(doc.HostConfig.NanoCpus, 2e9);
    assert.equal(doc.Hull.Kind, 'vm');
    assert.equal(doc.Hull.Cpus, 2);
    assert.equal(doc.Hull.Memory, 256 * 2 ** 20);
    assert.match(String(doc.Hull.Machine), /^(microvm|pc|q35)/);
    assert.ok(existsSync(String(doc.Hull.ConsolePath)), 'the console log exists');
    const meminfo = await root.ok('exec', 'vm1', 'cat', '/proc/meminfo');
    const total = Number(/MemTotal:\s+(\d+) kB/.exec(meminfo)![1]) * 1024;
    assert.ok(total > 150 * 2 ** 20 && total <= 256 * 2 ** 20, `MemTotal ${total}`);
    assert.equal((await root.ok('exec', 'vm1', 'grep', '-c', 'processor', '/proc/cpuinfo')).trim(), '2');
    assert.equal((await root.hull('exec', 'vm1', 'sh', '-c', 'exit 4')).code, 4);
    await waitFor(
      'the VM to become healthy',
      async () =>
        ((await root.inspect('vm1')).State as { Health?: { Status: string } }).Health?.Status === 'healthy' || null,
      60_000,
      200,
    );
    // a command that cannot start: 126 and docker's words, as a container's exec
    const missing = await root.hull('exec', 'vm1', 'nosuchcmd');
    assert.equal(missing.code, 126, missing.stderr);
    assert.match(missing.stderr, /exec: "nosuchcmd": executable file not found in \$PATH: unknown\n$/);
    assert.equal((await root.ok('logs', 'vm1')).trim(), 'started');
    // the monitor writes docker's json-file lines; logs -t shows docker's fixed nanosecond time
    const line = JSON.parse(readFileSync(join(root.dir, 'containers', id, 'ctr.log'), 'utf8').split('\n')[0]!);
    assert.deepEqual([line.log, line.stream], ['started\n', 'stdout']);
    assert.match(await root.ok('logs', '-t', 'vm1'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z started\n$/);
    // renamed while it runs: the new name reaches the same VM, the old one is gone; then back
    await root.ok('rename', 'vm1', 'vm1-renamed');
    assert.equal(await root.ok('exec', 'vm1-renamed', 'echo', 'same'), 'same\n');
    assert.equal((await root.hull('exec', 'vm1', 'true')).code, 1);
    await root.ok('container', 'rename', 'vm1-renamed', 'vm1');
    await root.ok('update', '--memory', '192m', 'vm1');
    assert.match(await root.ok('stats', '--no-stream', 'vm1'), /\/ 192(\.0)?MiB/);
    const grow = await root.hull('update', '--memory', '1g', 'vm1');
    assert.notEqual(grow.code, 0);
    assert.match(grow.stderr, /balloon/);
    await root.ok('stop', 'vm1');
    const st = await root.inspect('vm1');
    assert.equal(st.State.Status, 'exited');
    assert.equal(st.State.ExitCode, 143);
    await root.ok('rm', 'vm1');
  });

  test('volumes: -v read-write and :ro through virtiofs, --tmpfs, with --read-only (mount points made first)', async () => {
    const host = mkdtempSync('/tmp/hull-test-vmvol-');
    try {
      mkdirSync(join(host, 'rw'));
      mkdirSync(join(host, 'ro'));
      writeFileSync(join(host, 'rw', 'in.txt'), 'from the host\n');
      writeFileSync(join(host, 'ro', 'keep.txt'), 'kept\n');
      const r = await root.hullWith(
        { timeoutMs: 300_000 },
        'run',
        '--rm',
        '--network',
        'none',
        '--isolation',
        'vm',
        '--read-only',
        '-v',
        `${join(host, 'rw')}:/data`,
        '-v',
        `${join(host, 'ro')}:/srv/ro:ro`,
        '--tmpfs',
        '/scratch:size=8m',
        'busybox',
        'sh',
        '-c',
        [
          'cat /data/in.txt',
          'echo from the guest > /data/out.txt',
          'echo x > /srv/ro/new 2>/dev/null || echo ro-refused',
          // the guest's own remount cannot make it writable: the host serves a read-only bind mount
          'mount -o remount,rw /srv/ro && { echo x > /srv/ro/new 2>/dev/null || echo host-refused; }',
          'grep -E " /(scratch|data|srv/ro) " /proc/mounts | cut -d" " -f1-3 | sort',
          'touch /x 2>/dev/null || echo root-ro',
        ].join('; '),
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), [
        'from the host',
        'ro-refused',
        'host-refused',
        'hullvol0 /data virtiofs',
        'hullvol1 /srv/ro virtiofs',
        'tmpfs /scratch tmpfs',
        'root-ro',
      ]);
      assert.equal(readFileSync(join(host, 'rw', 'out.txt'), 'utf8'), 'from the guest\n');
      assert.deepEqual(readdirSync(join(host, 'ro')), ['keep.txt']);
      const bad = await root.hull(
        'run',
        '--rm',
        '--isolation',
        'vm',
        '-v',
        `${join(host, 'rw', 'in.txt')}:/f`,
        'busybox',
        'true',
      );
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /directories only/);
    } finally {
      rmSync(host, { recursive: true, force: true });
    }
  });

  test('networks: a VM and a container on one network reach each other by name', async () => {
    await root.ok('network', 'create', 'vmnet', '--subnet', '10.98.7.0/24');
    // and a port published on IPv6 loopback reaches the VM through hull's proxy (when the host has IPv6)
    const v6 = readFileSync('/proc/sys/net/ipv6/conf/lo/disable_ipv6', 'utf8').trim() === '0';
    const v6port = v6 ? await freeV6Port() : 0;
    await root.ok(
      'run',
      '-d',
      '--name',
      'db',
      '--network',
      'vmnet',
      'busybox',
      'sh',
      '-c',
      'mkdir -p /w && echo from-db > /w/index.html && exec httpd -f -p 8080 -h /w',
    );
    await root.ok(
      'run',
      '-d',
      '--name',
      'webvm',
      '--network',
      'vmnet',
      ...(v6 ? ['-p', `[::1]:${v6port}:8080`] : []),
      '--isolation',
      'vm',
      'busybox',
      'sh',
      '-c',
      'mkdir -p /w && echo from-vm > /w/index.html && wget -qO- http://db:8080/ && exec httpd -f -p 8080 -h /w',
    );
    // the VM fetched the container's page by name (its log), and serves its own
    await waitFor(
      'the VM to reach db',
      async () => ((await root.hull('logs', 'webvm')).stdout.includes('from-db') ? true : null),
      120_000,
      250,
    );
    const fromContainer = await root.hull(
      'run',
      '--rm',
      '--network',
      'vmnet',
      'busybox',
      'wget',
      '-qO-',
      'http://webvm:8080/',
    );
    assert.equal(fromContainer.stdout, 'from-vm\n', fromContainer.stderr);
    if (v6)
      assert.equal(
        await waitFor('[::1] to reach the VM', () =>
          fetch(`http://[::1]:${v6port}/`).then(
            (r) => r.text(),
            () => null,
          ),
        ),
        'from-vm\n',
      );
    // NET I/O of a VM: its tap's counters
    const netIo = (await root.ok('stats', '--no-stream', '--format', '{{.NetIO}}', 'webvm')).trim();
    assert.match(netIo, /^[\d.]+(B|kB|MB) \/ [\d.]+(B|kB|MB)$/);
    assert.doesNotMatch(netIo, /(^| )0B( |$)/, 'traffic both ways');
    const inside = await root.ok(
      'exec',
      'webvm',
      'sh',
      '-c',
      'cat /etc/hosts /etc/resolv.conf; ip -o -4 addr show eth0 2>/dev/null || ifconfig eth0',
    );
    assert.match(inside, /10\.98\.7\.\d+\s+\S+ webvm/);
    assert.match(inside, /nameserver 10\.98\.7\.1/);
    assert.match(inside, /10\.98\.7\.\d+/);
    await root.ok('rm', '-f', 'webvm', 'db');
    await root.ok('network', 'rm', 'vmnet');
  });

  test('VM flags are checked before anything starts', async () => {
    const r = await root.hull('run', '--rm', '--kernel', '/boot/vmlinuz', 'busybox', 'true');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--kernel apply to VMs only/);
    const shm = await root.hull('run', '--rm', '--isolation', 'vm', '--shm-size', '1g', 'busybox', 'true');
    assert.equal(shm.code, 125);
    assert.match(shm.stderr, /--shm-size applies to containers only/);
    if (!probeAccel().kvmUsable) {
      const k = await root.hull('run', '--rm', '--isolation', 'vm', '--accel', 'kvm', 'busybox', 'true');
      assert.equal(k.code, 125);
      assert.match(k.stderr, /KVM is not usable on this host/);
    }
  });

  test('a VM from a disk image: format check, boot, logs, console, power-off; the image is never written', async () => {
    const raw = join(root.dir, 'toy.raw');
    writeFileSync(raw, toyBootDisk());
    const qcow = join(root.dir, 'toy.qcow2');
    assert.equal(spawnSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow]).status, 0);
    const before = createHash('sha256').update(readFileSync(qcow)).digest('hex');

    const wrong = await root.hull('vm', 'create', '--disk', raw, '--disk-format', 'qcow2');
    assert.equal(wrong.code, 125);
    assert.match(wrong.stderr, /is not qcow2 as --disk-format says: qemu-img finds raw/);

    await root.ok('vm', 'create', '--disk', qcow, '--name', 'disk1', '--start');
    await waitFor(
      'the boot message in the log',
      async () => (await root.ok('logs', 'disk1')).includes('hull disk vm booted'),
      60_000,
    );
    assert.equal((await root.hull('exec', 'disk1', 'true')).code, 1, 'no agent in a disk VM');
    // the toy OS echoes the serial port and powers off on "q"
    const con = await root.hullWith({ input: 'abcq', timeoutMs: 60_000 }, 'console', 'disk1');
    assert.match(con.stdout, /abc/);
    const st = await waitFor(
      'the power-off',
      async () => {
        const i = await root.inspect('disk1');
        return i.State.Status === 'exited' ? i : null;
      },
      30_000,
    );
    assert.equal(st.State.ExitCode, 0);
    assert.equal(createHash('sha256').update(readFileSync(qcow)).digest('hex'), before, 'the base image is unchanged');
    await root.ok('rm', 'disk1');
  });

  test('leaves nothing behind', () => root.cleanupAndCheck());
});
