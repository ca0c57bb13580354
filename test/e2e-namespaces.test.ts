/**
 * End to end, docker parity (docker 20.10's documented behaviour): --device and --device-cgroup-rule, the
 * namespace modes --pid/--ipc/--network container:X and host, --sysctl, --mount (docker's CSV syntax), -v of a
 * missing host directory, and what a VM refuses (before anything is made: no boot needed).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HullRoot, waitFor } from './helpers/hull.js';

const root = new HullRoot('ns');
const host = mkdtempSync('/tmp/hull-test-ns-host-');
after(async () => {
  await root.dispose();
  rmSync(host, { recursive: true, force: true });
});

/** Run to completion; insist on exit 0; stdout. */
const run = (...args: string[]) => root.ok('run', '--rm', ...args);

/** A refused run: exit 125, nothing left, and stderr is the one line given. */
async function refused(line: RegExp, ...args: string[]): Promise<void> {
  const r = await root.hull('run', '--rm', ...args);
  assert.equal(r.code, 125, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr.trim(), line);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
}

describe('--device, --device-cgroup-rule', () => {
  test('--device HOST:CONTAINER: the host node (same numbers) appears and reads; a missing one fails as docker', async () => {
    const out = await run(
      '--device',
      '/dev/zero:/dev/myzero',
      'busybox',
      'sh',
      '-c',
      'stat -c "%t:%T" /dev/myzero; head -c 3 /dev/myzero | od -An -tx1',
    );
    assert.equal(out, '1:5\n 00 00 00\n');
    await refused(
      /^hull: error gathering device information while adding custom device "\/dev\/hull-none": no such file or directory$/,
      '--device',
      '/dev/hull-none',
      'busybox',
      'true',
    );
  });

  const tun = existsSync('/dev/net/tun');
  test('--device-cgroup-rule lets a made node be opened', { skip: !tun && 'no tun driver on this host' }, async () => {
    const script = 'mknod /dev/t c 10 200 && : < /dev/t && echo opened';
    assert.equal(await run('--device-cgroup-rule', 'c 10:200 rwm', 'busybox', 'sh', '-c', script), 'opened\n');
    const denied = await root.hull('run', '--rm', 'busybox', 'sh', '-c', script);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /Operation not permitted/);
    await refused(/^hull: invalid device cgroup format 'c 10 r'/, '--device-cgroup-rule', 'c 10 r', 'busybox', 'true');
  });
});

describe('namespace modes', () => {
  test("--pid host sees the host's processes", async () => {
    const comm = readFileSync('/proc/1/comm', 'utf8');
    assert.equal(await run('--pid', 'host', 'busybox', 'cat', '/proc/1/comm'), comm);
    assert.equal(
      await run('--pid', 'host', 'busybox', 'sh', '-c', `test -d /proc/${process.pid} && echo seen`),
      'seen\n',
    );
  });

  test("--pid container:X sees X's processes", async () => {
    await root.ok('run', '-d', '--name', 'pidx', 'busybox', 'sleep', '600');
    const ps = await run('--pid', 'container:pidx', 'busybox', 'ps', '-o', 'pid,args');
    assert.match(ps, /^\s*1 sleep 600$/m);
    await root.ok('rm', '-f', 'pidx');
  });

  test("--ipc container:X shares X's SysV shared memory and /dev/shm; a non-shareable X is refused", async () => {
    await root.ok(
      'run',
      '-d',
      '--name',
      'ipcx',
      '--ipc',
      'shareable',
      'busybox',
      'sh',
      '-c',
      'echo from-x > /dev/shm/f; exec sleep 600',
    );
    await waitFor(
      '/dev/shm/f in ipcx',
      async () => (await root.hull('exec', 'ipcx', 'cat', '/dev/shm/f')).stdout === 'from-x\n',
    );
    const pid = (await root.inspect('ipcx')).State.Pid;
    // a segment of 65536 bytes made in X's IPC namespace (busybox has no ipcmk)
    const mk = spawnSync('nsenter', [`--ipc=/proc/${pid}/ns/ipc`, 'ipcmk', '-M', '65536'], { encoding: 'utf8' });
    assert.equal(mk.status, 0, mk.stderr);
    const joined = await run('--ipc', 'container:ipcx', 'busybox', 'sh', '-c', 'cat /proc/sysvipc/shm; cat /dev/shm/f');
    // the key is random and may print negative (a signed 32-bit key)
    assert.match(joined, /^\s*-?\d+\s+\d+\s+\d+\s+65536\s/m);
    assert.match(joined, /^from-x$/m);
    const own = await run('busybox', 'cat', '/proc/sysvipc/shm');
    assert.doesNotMatch(own, /\s65536\s/);
    await root.ok('run', '-d', '--name', 'ipcp', 'busybox', 'sleep', '600');
    await refused(/^hull: --ipc container:ipcp: non-shareable IPC/, '--ipc', 'container:ipcp', 'busybox', 'true');
    await root.ok('rm', '-f', 'ipcx', 'ipcp');
  });

  test("--network container:X reaches X's server on 127.0.0.1, with X's hostname and /etc/hosts; X keeps its network after", async () => {
    await root.ok(
      'run',
      '-d',
      '--name',
      'netx',
      'busybox',
      'sh',
      '-c',
      'echo served > /srv; exec httpd -f -p 127.0.0.1:8080 -h /',
    );
    await waitFor(
      'httpd in netx',
      async () => (await root.hull('exec', 'netx', 'wget', '-qO-', 'http://127.0.0.1:8080/srv')).stdout === 'served\n',
    );
    const xHostname = (await root.ok('exec', 'netx', 'hostname')).trim();
    const xHosts = await root.ok('exec', 'netx', 'cat', '/etc/hosts');
    const out = await run(
      '--network',
      'container:netx',
      'busybox',
      'sh',
      '-c',
      'wget -qO- http://127.0.0.1:8080/srv; hostname; cat /etc/hosts',
    );
    assert.equal(out, `served\n${xHostname}\n${xHosts}`);
    // the joiner went (--rm) and X's network did not go with it
    assert.match(await root.ok('exec', 'netx', 'cat', '/sys/class/net/eth0/operstate'), /^up\n$/);
    await refused(
      /^hull: conflicting options: port publishing and the container type network mode$/,
      '--network',
      'container:netx',
      '-p',
      '8081:80',
      'busybox',
      'true',
    );
    await refused(
      /^hull: conflicting options: hostname and the network mode$/,
      '--network',
      'container:netx',
      '-h',
      'h',
      'busybox',
      'true',
    );
    await root.ok('stop', 'netx');
    await refused(
      /^hull: cannot join network of a non running container: netx$/,
      '--network',
      'container:netx',
      'busybox',
      'true',
    );
    await refused(/^hull: Error: No such container: nope/, '--network', 'container:nope', 'busybox', 'true');
    await root.ok('rm', '-f', 'netx');
    assert.deepEqual(await root.ids(), []);
  });
});

describe('--sysctl', () => {
  test('a namespaced sysctl is set in the container; others are refused as docker', async () => {
    assert.equal(
      await run('--sysctl', 'net.ipv4.ip_forward=1', 'busybox', 'cat', '/proc/sys/net/ipv4/ip_forward'),
      '1\n',
    );
    assert.equal(
      await run('--sysctl', 'kernel.shmmax=123456', 'busybox', 'cat', '/proc/sys/kernel/shmmax'),
      '123456\n',
    );
    await refused(/^hull: sysctl 'vm.swappiness' is not allowed/, '--sysctl', 'vm.swappiness=1', 'busybox', 'true');
    await refused(
      /^hull: sysctl "net.ipv4.ip_forward" not allowed in host network namespace/,
      '--network',
      'host',
      '--sysctl',
      'net.ipv4.ip_forward=1',
      'busybox',
      'true',
    );
  });
});

describe('--mount and -v', () => {
  test("--mount type=bind (readonly) and type=tmpfs (size, mode), docker's CSV keys", async () => {
    const src = join(host, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'hi\n');
    const r = await root.hull(
      'run',
      '--rm',
      '--mount',
      `type=bind,src=${src},dst=/data,ro`,
      'busybox',
      'sh',
      '-c',
      'cat /data/f; touch /data/g',
    );
    assert.equal(r.code, 1);
    assert.equal(r.stdout, 'hi\n');
    assert.match(r.stderr, /Read-only file system/);
    const t = await run(
      '--mount',
      'type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1770',
      'busybox',
      'sh',
      '-c',
      'stat -c %a /t; grep " /t " /proc/self/mountinfo',
    );
    assert.match(t, /^1770\n.* - tmpfs tmpfs rw,size=1024k,mode=1770/);
    await refused(
      new RegExp(`^hull: invalid mount config for type "bind": bind source path does not exist: ${host}/missing$`),
      '--mount',
      `type=bind,source=${host}/missing,target=/x`,
      'busybox',
      'true',
    );
    assert.equal(existsSync(join(host, 'missing')), false);
    await refused(
      /^hull: invalid mount config for type "volume": invalid volume name "\.\.\/v"/,
      '--mount',
      'source=../v,target=/x',
      'busybox',
      'true',
    );
  });

  test('-v of a missing host directory makes it (docker), and it stays after the container goes', async () => {
    const dir = join(host, 'made', 'sub');
    await run('-v', `${dir}:/x`, 'busybox', 'touch', '/x/file');
    assert.ok(statSync(dir).isDirectory());
    assert.ok(existsSync(join(dir, 'file')));
  });
});

describe('VMs refuse what needs the host kernel (at create, before anything is made)', () => {
  test('--device, --device-cgroup-rule, --pid/--ipc/--uts host, --network container:X', async () => {
    const vm = ['--isolation', 'vm'];
    const cases: [RegExp, string[]][] = [
      [/^hull: --device is not possible for a VM yet: device passthrough \(VFIO\)/, ['--device', '/dev/zero']],
      [/^hull: --device-cgroup-rule does not apply to a VM/, ['--device-cgroup-rule', 'c 1:3 r']],
      [/^hull: --pid host is not possible for a VM: it has its own kernel$/, ['--pid', 'host']],
      [/^hull: --ipc host is not possible for a VM: it has its own kernel$/, ['--ipc', 'host']],
      [/^hull: --uts host is not possible for a VM: it has its own kernel$/, ['--uts', 'host']],
      [/^hull: --network container:x is not possible for a VM: it has its own kernel$/, ['--network', 'container:x']],
    ];
    for (const [line, flags] of cases) {
      const r = await root.hull('create', ...vm, ...flags, 'busybox', 'true');
      assert.equal(r.code, 125, `${flags.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr.trim(), line);
    }
    assert.deepEqual(await root.ids(), []);
  });
});

test('leaves nothing behind', async () => {
  await root.cleanupAndCheck();
});
