/**
 * End to end: what a container sees (namespaces, capabilities, seccomp, masked /proc, users, mounts) and the
 * cgroup limits the resource flags set, through the real CLI and runtimes.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { HullRoot, TEST_NETWORK } from './helpers/hull.js';
import {
  blkioWeight,
  expectedBlkioWeight,
  instanceCgroupFile,
  memoryLimit,
  pidsMax,
  PURE_V2,
  sharesToWeight,
} from './helpers/cgroup.js';
import { blkioWeightExpectation, describeBlkio } from './helpers/host.js';
import { probeRuntime } from '../src/host/probe.js';

const root = new HullRoot('isolation');
const hostDir = mkdtempSync('/tmp/hull-test-isolation-vol-');
after(async () => {
  await root.dispose();
  rmSync(hostDir, { recursive: true, force: true });
});

/** `hull run --rm busybox sh -c SCRIPT` with extra flags; insists on exit 0 and returns stdout. */
async function sh(flags: string[], script: string): Promise<string> {
  const r = await root.hull('run', '--rm', ...flags, 'busybox', 'sh', '-c', script);
  assert.equal(r.code, 0, `run ${flags.join(' ')} sh -c ${script}: exit ${r.code}, stderr: ${r.stderr}`);
  return r.stdout;
}

/** A field of /proc/self/status inside a container started with `flags`. */
async function status(flags: string[]): Promise<Record<string, string>> {
  const out = await sh(flags, 'cat /proc/self/status');
  return Object.fromEntries(
    out
      .split('\n')
      .filter((l) => l.includes(':'))
      .map((l) => {
        const i = l.indexOf(':');
        return [l.slice(0, i), l.slice(i + 1).trim()];
      }),
  );
}

const hostStatus = (field: string) =>
  new RegExp(`^${field}:\\s+(\\S+)`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))![1]!;
/** A cgroup file of instance `id`: `<controller>/hull/<id>/<v1File>` on v1, `hull/<id>/<v2File>` on v2. */
const cg = (controller: string, id: string, v1File: string, v2File = v1File) =>
  instanceCgroupFile(id, controller, v1File, v2File);
const interfaces = (netDev: string) =>
  netDev
    .split('\n')
    .slice(2)
    .map((l) => l.split(':')[0]!.trim())
    .filter(Boolean)
    .sort();

describe('namespaces', () => {
  test('the hostname is the id prefix, or --hostname', async () => {
    const r = await root.hull('run', '--name', 'hn', 'busybox', 'hostname');
    assert.equal(r.code, 0, r.stderr);
    const id = (await root.inspect('hn')).Id;
    assert.equal(r.stdout, `${id.slice(0, 12)}\n`);
    await root.ok('rm', 'hn');
    assert.equal(await sh(['--hostname', 'myhost'], 'hostname'), 'myhost\n');
    assert.equal(await sh(['-h', 'other'], 'cat /etc/hostname'), 'other\n');
  });

  test('pid 1 is the command', async () => {
    const out = await sh([], 'cat /proc/1/cmdline; echo; echo $$');
    assert.equal(out, 'sh\0-c\0cat /proc/1/cmdline; echo; echo $$\0\n1\n');
  });

  test("own uts, ipc, net, mnt, pid and cgroup namespaces; the host's user namespace", async () => {
    const kinds = ['uts', 'ipc', 'net', 'mnt', 'pid', 'cgroup', 'user'];
    const out = await sh([], kinds.map((k) => `readlink /proc/self/ns/${k}`).join('; '));
    const inside = out.trim().split('\n');
    assert.equal(inside.length, kinds.length);
    kinds.forEach((k, i) => {
      const host = readlinkSync(`/proc/self/ns/${k}`);
      if (k === 'user') assert.equal(inside[i], host, 'no user namespace by default');
      else assert.notEqual(inside[i], host, `${k} namespace is the host's`);
    });
  });

  test("the default network gives lo and eth0, --network none only lo; --network host sees the host's interfaces", async () => {
    assert.deepEqual(interfaces(await sh([], 'cat /proc/net/dev')).sort(), ['eth0', 'lo']);
    assert.deepEqual(interfaces(await sh(['--network', 'none'], 'cat /proc/net/dev')), ['lo']);
    const host = interfaces(readFileSync('/proc/net/dev', 'utf8'));
    assert.ok(host.length > 1, 'the host has more than lo');
    // hull network bridges and veths of concurrent tests come and go: compare the host's own interfaces
    const stable = (names: string[]) => names.filter((n) => !/^(hl|veth)/.test(n));
    assert.deepEqual(stable(interfaces(await sh(['--network', 'host'], 'cat /proc/net/dev'))), stable(host));
    assert.equal(
      (await sh(['--network', 'host'], 'readlink /proc/self/ns/net')).trim(),
      readlinkSync('/proc/self/ns/net'),
    );
    // loopback is up in the private namespace
    assert.match(await sh([], 'ip addr show lo 2>/dev/null || ifconfig lo'), /127\.0\.0\.1/);
  });
});

describe('privileges', () => {
  test('default capabilities, no_new_privs and seccomp', async () => {
    const s = await status([]);
    assert.equal(s.CapEff, '00000000a80425fb');
    assert.equal(s.CapBnd, '00000000a80425fb');
    assert.equal(s.NoNewPrivs, '0', "docker's default: setuid binaries work");
    assert.equal(s.Seccomp, '2');
  });

  test('--cap-drop NET_RAW and --cap-add SYS_ADMIN', async () => {
    assert.equal((await status(['--cap-drop', 'NET_RAW'])).CapEff, '00000000a80405fb');
    assert.equal((await status(['--cap-add', 'SYS_ADMIN'])).CapEff, '00000000a82425fb');
    assert.equal((await status(['--cap-drop', 'ALL'])).CapEff, '0000000000000000');
  });

  test("--privileged gets the host's capabilities and no seccomp filter", async () => {
    const s = await status(['--privileged']);
    assert.equal(s.CapEff, hostStatus('CapEff'));
    assert.equal(s.Seccomp, '0');
  });

  test('--security-opt no-new-privileges[=true|false] and seccomp=unconfined', async () => {
    const nnp = (opt: string) => sh(['--security-opt', opt], 'grep NoNewPrivs /proc/self/status');
    assert.equal(await nnp('no-new-privileges'), 'NoNewPrivs:\t1\n');
    assert.equal(await nnp('no-new-privileges=true'), 'NoNewPrivs:\t1\n');
    assert.equal(await nnp('no-new-privileges=false'), 'NoNewPrivs:\t0\n');
    const sc = await status(['--security-opt', 'seccomp=unconfined']);
    assert.equal(sc.Seccomp, '0');
    assert.equal(sc.NoNewPrivs, '0');
  });

  for (const rt of ['runc', 'crun']) {
    const usable = probeRuntime(rt);
    test(`${rt}: read-only /proc paths are ro,nosuid,nodev,noexec as in docker`, {
      skip: !usable.usable && `${rt} cannot run here: ${usable.reason}`,
    }, async () => {
      const out = await sh(['--runtime', rt], 'grep -E " /proc/(bus|fs|irq|sys|sysrq-trigger) " /proc/self/mountinfo');
      const lines = out.trim().split('\n');
      assert.ok(
        lines.some((l) => / \/proc\/sys /.test(l)),
        out,
      );
      for (const l of lines) assert.match(l, / \/proc\/\S+ ro,nosuid,nodev,noexec[, ]/, out);
    });
  }

  test("net.ipv4.ping_group_range is 0 2147483647 in its own network namespace, the host's with --network host", async () => {
    assert.equal(await sh([], 'cat /proc/sys/net/ipv4/ping_group_range'), '0\t2147483647\n');
    assert.equal(await sh(['--network', 'none'], 'cat /proc/sys/net/ipv4/ping_group_range'), '0\t2147483647\n');
    assert.equal(
      await sh(['--network', 'host'], 'cat /proc/sys/net/ipv4/ping_group_range'),
      readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8'),
    );
  });

  test('/proc/keys is masked and /proc/sys is read-only', async () => {
    const out = await sh(
      [],
      'wc -c < /proc/keys; grep -E " /proc/(keys|sys) " /proc/self/mountinfo; { echo 1 > /proc/sys/kernel/ns_last_pid; } 2>&1 || echo refused',
    );
    const [size, ...rest] = out.trim().split('\n');
    assert.equal(size!.trim(), '0', '/proc/keys reads empty');
    assert.ok(
      rest.some((l) => / \/proc\/keys ro,/.test(l)),
      out,
    );
    assert.ok(
      rest.some((l) => / \/proc\/sys ro,/.test(l)),
      out,
    );
    assert.match(out, /Read-only file system\nrefused\n$/);
    // privileged: not masked
    const priv = await sh(['--privileged'], 'grep -c " /proc/keys " /proc/self/mountinfo || true');
    assert.equal(priv.trim(), '0');
  });

  test('--read-only root', async () => {
    const out = await sh(
      ['--read-only'],
      '{ touch /x; } 2>&1 || echo refused; { touch /tmp/x; } 2>&1 || echo refused-tmp; grep " / " /proc/self/mountinfo | head -1',
    );
    assert.match(out, /Read-only file system/);
    assert.match(out, /refused\n/);
    assert.match(out, /refused-tmp\n/);
    assert.match(out, / \/ ro,/);
    // with a tmpfs where the application writes
    assert.equal(await sh(['--read-only', '--tmpfs', '/tmp'], 'echo ok > /tmp/f && cat /tmp/f'), 'ok\n');
  });

  test('--read-only makes /etc/hosts, /etc/resolv.conf and /etc/hostname read-only too', async () => {
    const out = await sh(
      ['--read-only'],
      'for f in hosts resolv.conf hostname; do { echo x >> /etc/$f; } 2>/dev/null && echo $f-written || echo $f-refused; done; grep -E " /etc/(hosts|resolv.conf|hostname) " /proc/self/mountinfo',
    );
    const mounts = out.trim().split('\n').slice(3);
    assert.match(out, /^hosts-refused\nresolv\.conf-refused\nhostname-refused\n/);
    assert.equal(mounts.length, 3, out);
    for (const l of mounts) assert.match(l, / \/etc\/\S+ ro[, ]/, out);
    // without --read-only they stay writable (docker's)
    assert.equal(await sh([], '{ echo 10.1.2.3 extra >> /etc/hosts; } && tail -1 /etc/hosts'), '10.1.2.3 extra\n');
  });
});

describe('process settings and mounts', () => {
  test("id: the primary gid and the image's groups are supplementary groups; --group-add adds more", async () => {
    // docker: `docker run busybox id` prints groups=0(root),10(wheel)
    assert.equal(await sh([], 'id'), 'uid=0(root) gid=0(root) groups=0(root),10(wheel)\n');
    assert.equal(await sh(['-u', 'nobody'], 'id -G'), '65534\n');
    assert.equal(await sh(['-u', '1000:1000'], 'id -G'), '1000\n');
    assert.equal(await sh(['-u', 'nobody', '--group-add', 'daemon', '--group-add', '4242'], 'id -G'), '65534 1 4242\n');
    // exec as another user gets the container's --group-add too
    const id = (await root.ok('run', '-d', '--group-add', 'mail', 'busybox', 'sleep', '60')).trim();
    try {
      assert.equal((await root.ok('exec', id, 'id', '-G')).trim(), '0 8 10'); // the kernel keeps them sorted
      assert.equal((await root.ok('exec', '-u', 'nobody', id, 'id', '-G')).trim(), '65534 8');
      assert.deepEqual((await root.inspect(id)).HostConfig.GroupAdd, ['mail']);
    } finally {
      await root.hull('rm', '-f', id);
    }
    const bad = await root.hull('run', '--rm', '--group-add', 'ghosts', 'busybox', 'true');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unable to find group ghosts/);
  });

  test('-u nobody, -u 1000:1000, -w /tmp', async () => {
    assert.equal(await sh(['-u', 'nobody'], 'id -u; id -g; id -un'), '65534\n65534\nnobody\n');
    assert.equal(await sh(['-u', '1000:1000'], 'id -u; id -g'), '1000\n1000\n');
    assert.equal(await sh(['-w', '/tmp'], 'pwd'), '/tmp\n');
    assert.equal(await sh(['-w', '/new/dir'], 'pwd'), '/new/dir\n', 'a missing working directory is created');
  });

  test('-e and --env-file', async () => {
    const envFile = join(hostDir, 'env');
    writeFileSync(envFile, '# a comment\nB=2\nC=from-file\n\n');
    assert.equal(
      await sh(['-e', 'A=1', '--env-file', envFile, '-e', 'C=flag-wins'], 'echo $A $B $C'),
      '1 2 flag-wins\n',
    );
    assert.match(await sh([], 'echo $PATH'), /\/bin/);
  });

  test('-v HOSTDIR:/data (writes visible on the host) and :ro (writes refused)', async () => {
    await sh(['-v', `${hostDir}:/data`], 'echo from-container > /data/f');
    assert.equal(readFileSync(join(hostDir, 'f'), 'utf8'), 'from-container\n');
    writeFileSync(join(hostDir, 'g'), 'from-host\n');
    const ro = await sh(['-v', `${hostDir}:/data:ro`], 'cat /data/g; { echo x > /data/h; } 2>&1 || echo refused');
    assert.match(ro, /^from-host\n/);
    assert.match(ro, /Read-only file system/);
    assert.equal(existsSync(join(hostDir, 'h')), false);
  });

  test('--tmpfs /scratch', async () => {
    const out = await sh(
      ['--tmpfs', '/scratch'],
      'grep " /scratch " /proc/mounts; echo a > /scratch/a && cat /scratch/a',
    );
    assert.match(out, /^tmpfs \/scratch tmpfs rw/);
    assert.match(out, /\na\n$/);
  });

  test("--tmpfs is noexec,nosuid,nodev by default (docker's); exec overrides", async () => {
    const flags = (script: string) => / \/t (\S+)/.exec(script)![1]!.split(',');
    const def = flags(await sh(['--tmpfs', '/t'], 'grep " /t " /proc/self/mountinfo'));
    for (const f of ['nosuid', 'nodev', 'noexec']) assert.ok(def.includes(f), def.join(','));
    const ex = flags(await sh(['--tmpfs', '/t:exec'], 'grep " /t " /proc/self/mountinfo'));
    assert.ok(ex.includes('nosuid') && ex.includes('nodev') && !ex.includes('noexec'), ex.join(','));
    // a binary copied into the tmpfs runs only with exec
    const run = 'cp /bin/busybox /t/busybox && { /t/busybox true 2>/dev/null && echo ran || echo refused; }';
    assert.equal(await sh(['--tmpfs', '/t'], run), 'refused\n');
    assert.equal(await sh(['--tmpfs', '/t:exec'], run), 'ran\n');
  });

  test('--userns auto: root inside, a 65536-id range outside', async () => {
    const r = await root.hull(
      'run',
      '--name',
      'userns',
      '--userns',
      'auto',
      'busybox',
      'sh',
      '-c',
      'id -u; cat /proc/self/uid_map; cat /proc/self/gid_map; touch /made-inside',
    );
    assert.equal(r.code, 0, r.stderr);
    const [uid, uidMap, gidMap] = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/).join(' '));
    assert.equal(uid, '0');
    const m = /^0 (\d+) 65536$/.exec(uidMap!);
    assert.ok(m, `uid_map: ${uidMap}`);
    assert.equal(gidMap, uidMap);
    const hostId = Number(m[1]);
    assert.ok(hostId > 0);
    const i = await root.inspect('userns');
    assert.equal(i.HostConfig.UsernsMode, 'private');
    // the file made inside belongs to the shifted ids on the host
    const upper = join(root.dir, 'containers', i.Id, 'upper', 'made-inside');
    assert.ok(existsSync(upper), `${upper} exists`);
    assert.equal(statSync(upper).uid, hostId);
    assert.equal(statSync(upper).gid, hostId);
    await root.ok('rm', 'userns');
  });
});

describe('resource flags set the cgroup', () => {
  test('--pids-limit, --cpuset-cpus, --cpu-shares, --memory with --memory-swap', async () => {
    const id = (
      await root.ok(
        'run',
        '-d',
        ...TEST_NETWORK,
        '--pids-limit',
        '20',
        '--cpuset-cpus',
        '0',
        '--cpu-shares',
        '512',
        '--memory',
        '32m',
        '--memory-swap',
        '64m',
        'busybox',
        'sleep',
        '60',
      )
    ).trim();
    try {
      assert.equal(pidsMax(id), '20');
      assert.equal(cg('cpuset', id, 'cpuset.cpus', 'cpuset.cpus'), '0');
      // v2 has a weight (1–10000) for v1's shares, and the swap alone where v1 has memory+swap
      if (PURE_V2) assert.equal(cg('cpu', id, '', 'cpu.weight'), String(sharesToWeight(512)));
      else assert.equal(cg('cpu', id, 'cpu.shares', ''), '512');
      assert.equal(memoryLimit(id), 32 * 1024 * 1024);
      if (PURE_V2) assert.equal(cg('memory', id, '', 'memory.swap.max'), String(32 * 1024 * 1024));
      else assert.equal(cg('memory', id, 'memory.memsw.limit_in_bytes', ''), String(64 * 1024 * 1024));
      const h = (await root.inspect(id)).HostConfig;
      assert.equal(h.PidsLimit, 20);
      assert.equal(h.CpusetCpus, '0');
      assert.equal(h.CpuShares, 512);
      assert.equal(h.MemorySwap, 64 * 1024 * 1024);
      // the pids limit holds: the 21st process cannot be made
      const fork = await root.hull('exec', id, 'sh', '-c', 'for i in $(seq 30); do sleep 5 & done; echo all-forked');
      assert.notEqual(fork.code, 0);
      assert.match(fork.stderr, /can't fork|Resource temporarily unavailable/);
      assert.doesNotMatch(fork.stdout, /all-forked/);
      assert.ok(Number(cg('pids', id, 'pids.current', 'pids.current')) <= 20);
    } finally {
      await root.hull('rm', '-f', id);
    }
  });

  for (const rt of ['runc', 'crun']) {
    const expect = blkioWeightExpectation(rt);
    const usable = probeRuntime(rt);
    test(`--blkio-weight with ${rt}: ${describeBlkio(expect)}`, {
      skip: !usable.usable && `${rt} cannot run here: ${usable.reason}`,
    }, async () => {
      const r = await root.hull('run', '-d', '--runtime', rt, '--blkio-weight', '300', 'busybox', 'sleep', '60');
      if (expect.outcome === 'applied') {
        assert.equal(r.code, 0, r.stderr);
        const id = r.stdout.trim();
        try {
          const w = blkioWeight(id);
          if (expect.file) assert.equal(w.file, expect.file);
          assert.match(w.value, expectedBlkioWeight(w.file, 300), w.file);
        } finally {
          await root.hull('rm', '-f', id);
        }
      } else {
        assert.equal(r.code, 125, r.stdout);
        assert.match(r.stderr, /^hull: [^\n]*--blkio-weight[^\n]*\n$/);
        assert.match(r.stderr.replace(/^hull: /, ''), expect.message);
        assert.deepEqual(await root.ids(), []);
      }
    });
  }

  test('--runtime runc and --runtime crun both run a container', async () => {
    for (const rt of ['runc', 'crun']) {
      const r = await root.hull(
        'run',
        '--name',
        `rt-${rt}`,
        '--runtime',
        rt,
        'busybox',
        'sh',
        '-c',
        'echo ok-$(hostname | wc -c)',
      );
      assert.equal(r.code, 0, `${rt}: ${r.stderr}`);
      assert.equal(r.stdout, 'ok-13\n');
      assert.equal((await root.inspect(`rt-${rt}`)).HostConfig.Runtime, rt);
      await root.ok('rm', `rt-${rt}`);
    }
  });
});

test('leaves nothing behind', async () => {
  await root.cleanupAndCheck();
  // the bind-mounted host dir is untouched apart from what the container wrote
  assert.deepEqual(readdirSync(hostDir).sort(), ['env', 'f', 'g']);
});
