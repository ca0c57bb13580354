/**
 * Tests of the container policy (src/container/spec.ts and friends): the pure functions, then the
 * generated specs run with the real runc on a busybox root filesystem.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  cpSync,
  existsSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { HostSupportError, InvalidArgumentError, NotFoundError } from '../src/common/errors.js';
import type { ContainerOptions, InstanceConfig } from '../src/common/instance.js';
import {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  capabilitiesFromMask,
  capabilitiesToMask,
  hostCapabilities,
  resolveCapabilities,
} from '../src/container/capabilities.js';
import type { OciSpec } from '../src/container/oci-spec.js';
import { configureContainer, parseDevice, parseDeviceCgroupRule } from '../src/container/options.js';
import { parseMount, parseVolume } from '../src/common/parse.js';
import { defaultSeccompProfile, loadSeccompProfile } from '../src/container/seccomp.js';
import {
  DEFAULT_PATH,
  MASKED_PATHS,
  NETNS_SYSCTLS,
  READONLY_PATHS,
  TMPFS_DEFAULT_OPTIONS,
  buildExecProcess,
  mergeTmpfsOptions,
  buildRuntimeSpec,
  probeHostFacts,
  readHostRlimits,
  type HostFacts,
  type SpecInput,
} from '../src/container/spec.js';
import { resolveInRoot, resolveUser } from '../src/container/users.js';

const MiB = 1024 * 1024;

/** Common settings and the container section's, given side by side. */
type ConfigPatch = Partial<InstanceConfig> & Partial<ContainerOptions>;
const CONTAINER_KEYS = [
  'runtime',
  'privileged',
  'capAdd',
  'capDrop',
  'noNewPrivileges',
  'seccomp',
  'userns',
  'ulimits',
  'groupAdd',
  'devices',
  'deviceCgroupRules',
  'pidMode',
  'ipcMode',
  'utsMode',
  'sysctls',
  'shmSize',
];

function baseConfig(patch: ConfigPatch = {}): InstanceConfig {
  const over = Object.fromEntries(
    Object.entries(patch).filter(([k]) => !CONTAINER_KEYS.includes(k)),
  ) as Partial<InstanceConfig>;
  const copts = Object.fromEntries(
    Object.entries(patch).filter(([k]) => CONTAINER_KEYS.includes(k)),
  ) as Partial<ContainerOptions>;
  return {
    image: 'busybox',
    imageId: 'sha256:0',
    command: ['sh', '-c', 'true'],
    env: [],
    workdir: '',
    user: '',
    hostname: '',
    tty: false,
    stdin: false,
    mounts: [],
    readOnly: false,
    resources: {},
    stopSignal: 'SIGTERM',
    stopTimeout: 10,
    restart: { name: 'no', maxRetries: 0 },
    autoRemove: false,
    labels: {},
    network: 'none',
    ...over,
    container: {
      runtime: 'runc',
      privileged: false,
      capAdd: [],
      capDrop: [],
      noNewPrivileges: false,
      seccomp: 'default',
      userns: null,
      ulimits: [],
      ...copts,
    },
  };
}

/** A fixed host for the pure tests: 2 CPUs, nofile hard 20000, no CAP_SYS_RESOURCE. */
const HOST: HostFacts = {
  cpuCount: 2,
  onlineCpus: '0-1',
  onlineMems: '0',
  swapAccounting: true,
  blkioWeight: true,
  rlimits: { nofile: 20000, nproc: 5000, core: Infinity },
  capabilities: ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE'),
};

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  '# a comment',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'app:x:1000:1000:App:/home/app:/bin/sh',
  'broken line',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  '',
].join('\n');
const GROUP = [
  'root:x:0:',
  'tty:x:5:',
  'staff:x:50:app,nobody',
  'app:x:1000:',
  'audio:x:29:app',
  'nogroup:x:65534:',
  '',
].join('\n');

/** Make a temporary directory removed after the current suite. */
function tempDir(prefix: string): string {
  const dir = mkdtempSync(`/tmp/hull-test-${prefix}-`);
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function makeEtc(rootfs: string): void {
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/passwd'), PASSWD);
  writeFileSync(join(rootfs, 'etc/group'), GROUP);
}

describe('capabilities', () => {
  test("default set is docker's", () => {
    assert.deepEqual(resolveCapabilities([], [], false).sort(), [...DEFAULT_CAPABILITIES].sort());
    assert.equal(capabilitiesToMask(DEFAULT_CAPABILITIES), '00000000a80425fb');
  });
  test('names in any case, with or without CAP_', () => {
    const caps = resolveCapabilities(['net_admin', 'CAP_SYS_PTRACE', 'Sys_Time'], ['mknod', 'CAP_NET_RAW'], false);
    assert.ok(caps.includes('CAP_NET_ADMIN') && caps.includes('CAP_SYS_PTRACE') && caps.includes('CAP_SYS_TIME'));
    assert.ok(!caps.includes('CAP_MKNOD') && !caps.includes('CAP_NET_RAW'));
    assert.ok(caps.includes('CAP_CHOWN'));
  });
  test('ALL', () => {
    assert.deepEqual(
      resolveCapabilities(['ALL'], ['sys_admin'], false),
      ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_ADMIN'),
    );
    assert.deepEqual(resolveCapabilities(['chown'], ['all'], false), ['CAP_CHOWN']);
    assert.deepEqual(resolveCapabilities([], ['ALL'], false), []);
  });
  test('privileged gets all', () => {
    assert.deepEqual(resolveCapabilities([], ['chown'], true), [...ALL_CAPABILITIES]);
  });
  test('unknown names throw', () => {
    assert.throws(
      () => resolveCapabilities(['FOO'], [], false),
      (e: unknown) => e instanceof InvalidArgumentError && e.message === 'unknown capability: FOO',
    );
    assert.throws(() => resolveCapabilities([], ['cap_bar'], true), InvalidArgumentError);
  });
  test('masks round-trip', () => {
    assert.deepEqual(
      capabilitiesFromMask('000001fffeffffff'),
      ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE'),
    );
  });
});

describe('users', () => {
  const root = tempDir('users');
  const rootfs = join(root, 'rootfs');
  makeEtc(rootfs);

  test('empty user is root', () => {
    assert.deepEqual(resolveUser(rootfs, ''), { uid: 0, gid: 0, additionalGids: [0], home: '/root' });
  });
  test('name, with supplementary groups', () => {
    assert.deepEqual(resolveUser(rootfs, 'app'), {
      uid: 1000,
      gid: 1000,
      additionalGids: [1000, 50, 29],
      home: '/home/app',
    });
  });
  test('uid with an entry', () => {
    assert.deepEqual(resolveUser(rootfs, '65534'), {
      uid: 65534,
      gid: 65534,
      additionalGids: [65534, 50],
      home: '/nonexistent',
    });
  });
  test('uid without an entry', () => {
    assert.deepEqual(resolveUser(rootfs, '4242'), { uid: 4242, gid: 0, additionalGids: [0], home: '/' });
  });
  test('name:group and uid:gid, without supplementary groups', () => {
    assert.deepEqual(resolveUser(rootfs, 'app:staff'), { uid: 1000, gid: 50, additionalGids: [50], home: '/home/app' });
    assert.deepEqual(resolveUser(rootfs, '1000:4000'), {
      uid: 1000,
      gid: 4000,
      additionalGids: [4000],
      home: '/home/app',
    });
    assert.deepEqual(resolveUser(rootfs, '77:tty'), { uid: 77, gid: 5, additionalGids: [5], home: '/' });
  });
  test('unknown user and group', () => {
    assert.throws(
      () => resolveUser(rootfs, 'ghost'),
      (e: unknown) =>
        e instanceof NotFoundError && e.message === 'unable to find user ghost: no matching entries in passwd file',
    );
    assert.throws(
      () => resolveUser(rootfs, 'app:ghosts'),
      (e: unknown) =>
        e instanceof NotFoundError && e.message === 'unable to find group ghosts: no matching entries in group file',
    );
    assert.throws(() => resolveUser(rootfs, '99999999999'), InvalidArgumentError);
  });
  test('no passwd file: numeric ids work, names do not', () => {
    const bare = join(root, 'bare');
    mkdirSync(bare);
    assert.deepEqual(resolveUser(bare, '1:2'), { uid: 1, gid: 2, additionalGids: [2], home: '/' });
    assert.throws(() => resolveUser(bare, 'root'), NotFoundError);
    assert.throws(() => resolveUser(join(root, 'no-such-rootfs'), '0'), /root filesystem not found/);
  });
  test('symlinks cannot escape the root filesystem', () => {
    // A host file an image would like us to read.
    const outside = join(root, 'outside');
    mkdirSync(join(outside, 'etc'), { recursive: true });
    writeFileSync(join(outside, 'etc/passwd'), 'evil:x:4242:4242::/evil:/bin/sh\n');
    writeFileSync(join(outside, 'etc/group'), 'evil:x:4242:\n');

    // Absolute link to the host file: resolved inside the root, where it does not exist.
    const abs = join(root, 'abs');
    mkdirSync(join(abs, 'etc'), { recursive: true });
    symlinkSync(join(outside, 'etc/passwd'), join(abs, 'etc/passwd'));
    assert.throws(() => resolveUser(abs, 'evil'), NotFoundError);

    // Relative link climbing above the root: `..` stops at the root.
    const rel = join(root, 'rel');
    mkdirSync(join(rel, 'etc'), { recursive: true });
    symlinkSync('../../../../../../outside/etc/passwd', join(rel, 'etc/passwd'));
    assert.throws(() => resolveUser(rel, 'evil'), NotFoundError);

    // The whole /etc a link to the host's directory.
    const dir = join(root, 'dirlink');
    mkdirSync(dir);
    symlinkSync(join(outside, 'etc'), join(dir, 'etc'));
    assert.throws(() => resolveUser(dir, 'evil'), NotFoundError);
    assert.throws(() => resolveUser(dir, '0:evil'), NotFoundError);

    // A link that stays inside works, even an absolute one.
    const inside = join(root, 'inside');
    mkdirSync(join(inside, 'etc'), { recursive: true });
    mkdirSync(join(inside, 'data'));
    writeFileSync(join(inside, 'data/passwd'), 'svc:x:321:321::/srv:/bin/sh\n');
    symlinkSync('/data/passwd', join(inside, 'etc/passwd'));
    assert.equal(resolveUser(inside, 'svc').uid, 321);

    assert.equal(resolveInRoot(inside, '/../../..'), inside);
    assert.equal(resolveInRoot(inside, '/etc/passwd'), join(inside, 'data/passwd'));
    assert.equal(resolveInRoot(abs, '/etc/passwd'), join(abs, outside, 'etc/passwd'));
  });
  test('a passwd that is not a regular file is refused', () => {
    const fifo = join(root, 'fifo');
    mkdirSync(join(fifo, 'etc'), { recursive: true });
    spawnSync('mkfifo', [join(fifo, 'etc/passwd')]);
    assert.throws(() => resolveUser(fifo, 'root'), /not a regular file/);
    const loop = join(root, 'loop');
    mkdirSync(join(loop, 'etc'), { recursive: true });
    symlinkSync('/etc/passwd', join(loop, 'etc/passwd'));
    assert.throws(() => resolveUser(loop, 'root'), /too many levels of symbolic links/);
  });
});

describe('seccomp', () => {
  const allowed = (p: ReturnType<typeof defaultSeccompProfile>) =>
    new Set(p.syscalls!.filter((s) => s.action === 'SCMP_ACT_ALLOW' && !s.args).flatMap((s) => s.names));

  test('default profile', () => {
    const p = defaultSeccompProfile(DEFAULT_CAPABILITIES, 'x64');
    assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(p.defaultErrnoRet, 1);
    assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const names = allowed(p);
    for (const n of ['read', 'write', 'execve', 'openat', 'futex', 'chroot', 'arch_prctl']) assert.ok(names.has(n), n);
    for (const n of [
      'mount',
      'umount2',
      'unshare',
      'setns',
      'ptrace',
      'reboot',
      'bpf',
      'init_module',
      'clone',
      'clone3',
      'socket',
      'personality',
    ]) {
      assert.ok(!names.has(n), n);
    }
    const clone = p.syscalls!.find((s) => s.names.includes('clone'));
    assert.deepEqual(clone?.args, [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
    const clone3 = p.syscalls!.find((s) => s.names.includes('clone3'));
    assert.equal(clone3?.action, 'SCMP_ACT_ERRNO');
    assert.equal(clone3?.errnoRet, 38);
    assert.deepEqual(p.syscalls!.find((s) => s.names.includes('socket'))?.args, [
      { index: 0, value: 40, op: 'SCMP_CMP_NE' },
    ]);
  });
  test('capabilities open their system calls', () => {
    const p = defaultSeccompProfile([...DEFAULT_CAPABILITIES, 'sys_admin', 'CAP_SYS_PTRACE'], 'x64');
    const names = allowed(p);
    for (const n of ['mount', 'umount2', 'unshare', 'setns', 'clone', 'clone3', 'ptrace', 'process_vm_readv'])
      assert.ok(names.has(n), n);
    assert.ok(!p.syscalls!.some((s) => s.action === 'SCMP_ACT_ERRNO'));
    assert.ok(!allowed(defaultSeccompProfile(['CAP_CHOWN'], 'x64')).has('chroot'));
  });
  test('docker-format profile', (t) => {
    const dir = mkdtempSync('/tmp/hull-test-seccomp-');
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'p.json');
    writeFileSync(
      file,
      JSON.stringify({
        defaultAction: 'SCMP_ACT_ERRNO',
        defaultErrnoRet: 1,
        archMap: [
          { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
          { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
        ],
        syscalls: [
          { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
          { name: 'mount', action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
          {
            names: ['clone'],
            action: 'SCMP_ACT_ALLOW',
            args: [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }],
            excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390x'] },
          },
          { names: ['modify_ldt'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x86'] } },
          { names: ['ptrace'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '99.0' } },
          { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, comment: 'no' },
        ],
      }),
    );
    const p = loadSeccompProfile(file, DEFAULT_CAPABILITIES, { arch: 'x64', kernel: '6.18.0' });
    assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    assert.deepEqual(
      p.syscalls!.map((s) => s.names.join()),
      ['read,write', 'clone', 'modify_ldt', 'mkdir'],
    );
    assert.equal(p.syscalls![3]!.errnoRet, 13);
    const admin = loadSeccompProfile(file, ['CAP_SYS_ADMIN'], { arch: 'arm64', kernel: '6.1' });
    assert.deepEqual(admin.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    assert.deepEqual(
      admin.syscalls!.map((s) => s.names.join()),
      ['read,write', 'mount', 'mkdir'],
    );
  });
  test('bad profiles give clear errors', (t) => {
    const dir = mkdtempSync('/tmp/hull-test-seccomp-');
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    assert.throws(
      () => loadSeccompProfile(join(dir, 'missing.json')),
      (e: unknown) => e instanceof NotFoundError && /seccomp profile not found/.test(e.message),
    );
    const write = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    assert.throws(() => loadSeccompProfile(write('a.json', '{nope')), /is not valid JSON/);
    assert.throws(() => loadSeccompProfile(write('b.json', '{"defaultAction":"ALLOW"}')), /unknown action "ALLOW"/);
    assert.throws(
      () =>
        loadSeccompProfile(
          write('c.json', '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}'),
        ),
      /syscalls\[0\] names no system call/,
    );
    assert.throws(
      () =>
        loadSeccompProfile(
          write('d.json', '{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[]}'),
        ),
      /use one/,
    );
    assert.throws(
      () =>
        loadSeccompProfile(
          write(
            'e.json',
            '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]}',
          ),
        ),
      /index must be 0 to 5/,
    );
    assert.throws(() => loadSeccompProfile(write('f.json', '[]')), InvalidArgumentError);
    assert.throws(
      () =>
        loadSeccompProfile(
          write(
            'h.json',
            '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_NOPE"]}}]}',
          ),
        ),
      /includes.caps: unknown capability CAP_NOPE/,
    );
    // The OCI format is accepted as is.
    const oci = loadSeccompProfile(
      write(
        'g.json',
        '{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}',
      ),
    );
    assert.deepEqual(oci, {
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }],
    });
  });
});

describe('buildRuntimeSpec', () => {
  const root = tempDir('spec');
  const rootfs = join(root, 'rootfs');
  makeEtc(rootfs);
  const input = (over: ConfigPatch = {}, extra: Partial<SpecInput> = {}): SpecInput => ({
    id: '0123456789abcdef0123',
    config: baseConfig(over),
    rootfs,
    cgroupsPath: '/hull/0123456789abcdef0123',
    cgroupNamespace: true,
    hostNofileHard: 20000,
    host: HOST,
    ...extra,
  });
  const build = (over: ConfigPatch = {}, extra: Partial<SpecInput> = {}) => buildRuntimeSpec(input(over, extra));

  test('defaults', () => {
    const s = build({ env: ['FOO=bar'] });
    assert.equal(s.ociVersion, '1.0.2');
    assert.deepEqual(
      s.linux.namespaces.map((n) => n.type),
      ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup'],
    );
    assert.equal(s.hostname, '0123456789ab');
    assert.deepEqual(s.process.env, [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=0123456789ab', 'FOO=bar', 'HOME=/root']);
    assert.deepEqual(s.process.args, ['sh', '-c', 'true']);
    assert.equal(s.process.cwd, '/');
    // docker: the primary gid is a supplementary group too (`id` shows groups=0(root),…)
    assert.deepEqual(s.process.user, { uid: 0, gid: 0, additionalGids: [0] });
    assert.equal(s.process.terminal, false);
    // docker's default: off, so setuid binaries of the image (ping, sudo) work for non-root users
    assert.equal(s.process.noNewPrivileges, false);
    assert.deepEqual(s.process.capabilities?.effective.slice().sort(), [...DEFAULT_CAPABILITIES].sort());
    assert.deepEqual(s.process.capabilities?.inheritable, []);
    assert.deepEqual(s.process.capabilities?.ambient, []);
    assert.deepEqual(s.process.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 }]);
    assert.deepEqual(s.root, { path: rootfs, readonly: false });
    assert.deepEqual(s.linux.maskedPaths, [...MASKED_PATHS]);
    assert.deepEqual(s.linux.readonlyPaths, [...READONLY_PATHS]);
    assert.equal(s.linux.cgroupsPath, '/hull/0123456789abcdef0123');
    assert.equal(s.linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
    assert.deepEqual(
      s.mounts.map((m) => m.destination),
      ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup'],
    );
    assert.deepEqual(s.mounts.find((m) => m.destination === '/dev')?.options, [
      'nosuid',
      'strictatime',
      'mode=755',
      'size=65536k',
    ]);
    assert.ok(s.mounts.find((m) => m.destination === '/dev/pts')?.options?.includes('gid=5'));
    assert.ok(s.mounts.find((m) => m.destination === '/sys')?.options?.includes('ro'));
    assert.ok(s.mounts.find((m) => m.destination === '/sys/fs/cgroup')?.options?.includes('ro'));
    const devices = s.linux.resources?.devices ?? [];
    assert.deepEqual(devices[0], { allow: false, access: 'rwm' });
    assert.ok(devices.some((d) => d.allow && d.major === 1 && d.minor === 3));
    assert.ok(devices.some((d) => d.allow && d.major === 136 && d.minor === undefined));
    assert.equal(s.linux.uidMappings, undefined);
    // serialisable as is
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  });
  test('tty, workdir, user, hostname, env override', () => {
    const s = build({
      tty: true,
      workdir: '/tmp/',
      user: 'app',
      hostname: 'web',
      env: ['HOSTNAME=mine', 'PATH=/bin', 'HOME=/x'],
    });
    assert.equal(s.process.terminal, true);
    assert.deepEqual(s.process.env, ['HOSTNAME=mine', 'TERM=xterm', 'PATH=/bin', 'HOME=/x']);
    assert.equal(s.process.cwd, '/tmp');
    assert.deepEqual(s.process.user, { uid: 1000, gid: 1000, additionalGids: [1000, 50, 29] });
    assert.equal(s.hostname, 'web');
    assert.throws(() => build({ workdir: 'rel' }), /must be an absolute path/);
    assert.throws(
      () => build({ command: [] }),
      (e: unknown) => e instanceof InvalidArgumentError && e.message === 'no command specified',
    );
    assert.throws(() => build({ user: 'ghost' }), NotFoundError);
  });
  test('host network: no network namespace', () => {
    const s = build({ network: 'host' }, { cgroupNamespace: false });
    assert.deepEqual(
      s.linux.namespaces.map((n) => n.type),
      ['pid', 'ipc', 'uts', 'mount'],
    );
  });
  test('privileged', () => {
    const s = build({ privileged: true, capDrop: ['chown'] });
    assert.deepEqual(s.linux.maskedPaths, []);
    assert.deepEqual(s.linux.readonlyPaths, []);
    assert.equal(s.linux.seccomp, undefined);
    assert.deepEqual(s.linux.resources?.devices, [{ allow: true, access: 'rwm' }]);
    // every capability the host can grant
    assert.deepEqual(s.process.capabilities?.bounding, HOST.capabilities);
    assert.ok(!s.mounts.find((m) => m.destination === '/sys')?.options?.includes('ro'));
    assert.ok(s.mounts.find((m) => m.destination === '/sys/fs/cgroup')?.options?.includes('rw'));
  });
  test('capabilities the host lacks', () => {
    assert.throws(
      () => build({ capAdd: ['SYS_RESOURCE'] }),
      (e: unknown) => e instanceof HostSupportError && /CAP_SYS_RESOURCE/.test(e.message),
    );
    const s = build({ capAdd: ['ALL'] });
    assert.ok(!s.process.capabilities?.bounding.includes('CAP_SYS_RESOURCE'));
    assert.ok(s.process.capabilities?.bounding.includes('CAP_SYS_ADMIN'));
    assert.throws(() => build({ capAdd: ['FOO'] }), /unknown capability: FOO/);
  });
  test('seccomp choices', (t) => {
    assert.equal(build({ seccomp: 'unconfined' }).linux.seccomp, undefined);
    const admin = build({ capAdd: ['SYS_ADMIN'] }).linux.seccomp!;
    assert.ok(admin.syscalls![0]!.names.includes('mount'));
    const dir = mkdtempSync('/tmp/hull-test-seccomp-');
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'p.json'), '{"defaultAction":"SCMP_ACT_LOG"}');
    assert.deepEqual(build({ seccomp: join(dir, 'p.json') }).linux.seccomp, {
      defaultAction: 'SCMP_ACT_LOG',
      syscalls: [],
    });
    assert.throws(() => build({ seccomp: join(dir, 'none.json') }), NotFoundError);
  });
  test('resources', () => {
    const r = build({
      resources: {
        memory: 64 * MiB,
        cpus: 0.5,
        cpuShares: 512,
        cpusetCpus: '0-1',
        cpusetMems: '0',
        pidsLimit: 100,
        blkioWeight: 300,
      },
    }).linux.resources!;
    assert.deepEqual(r.memory, { limit: 64 * MiB, swap: 128 * MiB });
    assert.deepEqual(r.cpu, { quota: 50000, period: 100000, shares: 512, cpus: '0-1', mems: '0' });
    assert.deepEqual(r.pids, { limit: 100 });
    assert.deepEqual(r.blockIO, { weight: 300 });
    assert.deepEqual(build({ resources: { memory: 64 * MiB, memorySwap: -1 } }).linux.resources?.memory, {
      limit: 64 * MiB,
      swap: -1,
    });
    assert.deepEqual(build({ resources: { memory: 64 * MiB, memorySwap: 100 * MiB } }).linux.resources?.memory, {
      limit: 64 * MiB,
      swap: 100 * MiB,
    });
    assert.deepEqual(
      build({ resources: { memory: 64 * MiB } }, { host: { ...HOST, swapAccounting: false } }).linux.resources?.memory,
      { limit: 64 * MiB },
    );
    assert.equal(build({ resources: { pidsLimit: -1 } }).linux.resources?.pids, undefined);
    assert.deepEqual(build({ resources: { cpus: 2 } }).linux.resources?.cpu, { quota: 200000, period: 100000 });
  });
  test('resource checks', () => {
    const fails = (
      res: InstanceConfig['resources'],
      re: RegExp,
      cls: typeof InvalidArgumentError | typeof HostSupportError = InvalidArgumentError,
      host = HOST,
    ) =>
      assert.throws(
        () => build({ resources: res }, { host }),
        (e: unknown) => e instanceof cls && re.test((e as Error).message),
      );
    fails({ memory: 1 * MiB }, /minimum is 6 MiB/);
    fails({ cpus: 3 }, /between 0\.01 and 2 \(this host has 2 CPUs\)/);
    fails({ cpus: -1 }, /--cpus -1 is out of range/);
    fails({ memorySwap: 100 * MiB }, /--memory-swap needs --memory/);
    fails({ memory: 64 * MiB, memorySwap: 32 * MiB }, /below --memory/);
    fails({ memory: 64 * MiB, memorySwap: 128 * MiB }, /swapaccount/, HostSupportError, {
      ...HOST,
      swapAccounting: false,
    });
    fails({ cpusetCpus: '0-3' }, /--cpuset-cpus 0-3: 2,3 not available on this host \(online: 0-1\)/);
    fails({ cpusetCpus: 'x' }, /invalid --cpuset-cpus/);
    fails({ blkioWeight: 5 }, /between 10 and 1000/);
    fails({ blkioWeight: 500 }, /--blkio-weight is not supported/, HostSupportError, { ...HOST, blkioWeight: false });
    fails({ cpuShares: 1 }, /--cpu-shares/);
  });
  test('ulimits', () => {
    const s = build({
      ulimits: [
        { type: 'nofile', soft: 1024, hard: 4096 },
        { type: 'RLIMIT_NPROC', soft: 100, hard: 200 },
        { type: 'core', soft: -1, hard: -1 },
      ],
    });
    assert.deepEqual(s.process.rlimits, [
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 },
      { type: 'RLIMIT_NPROC', soft: 100, hard: 200 },
      { type: 'RLIMIT_CORE', soft: Number.MAX_SAFE_INTEGER, hard: Number.MAX_SAFE_INTEGER },
    ]);
    assert.deepEqual(build({}, { hostNofileHard: 4_000_000 }).process.rlimits, [
      { type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 },
    ]);
    assert.throws(
      () => build({ ulimits: [{ type: 'nofile', soft: 30000, hard: 30000 }] }),
      (e: unknown) =>
        e instanceof InvalidArgumentError &&
        /ulimit nofile: hard limit 30000 is above the host's maximum of 20000/.test(e.message),
    );
    assert.deepEqual(build({ ulimits: [{ type: 'nproc', soft: -1, hard: -1 }] }).process.rlimits?.[1], {
      type: 'RLIMIT_NPROC',
      soft: 5000,
      hard: 5000,
    });
    assert.throws(
      () => build({ ulimits: [{ type: 'nofile', soft: 2000, hard: 1000 }] }),
      /soft limit 2000 is above hard limit 1000/,
    );
    assert.throws(() => build({ ulimits: [{ type: 'files', soft: 1, hard: 1 }] }), /unknown ulimit files/);
  });
  test('user namespace', () => {
    const userns = {
      uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    };
    const s = build({ userns });
    assert.deepEqual(s.linux.namespaces.at(-1), { type: 'user' });
    assert.deepEqual(s.linux.uidMappings, userns.uidMappings);
    assert.deepEqual(s.linux.gidMappings, userns.gidMappings);
    assert.equal(s.mounts.find((m) => m.destination === '/sys')?.type, 'sysfs');
    // gid 5 unmapped: no gid=5 on devpts
    const small = {
      uidMappings: [{ containerID: 0, hostID: 100000, size: 1 }],
      gidMappings: [{ containerID: 0, hostID: 100000, size: 1 }],
    };
    assert.ok(
      !build({ userns: small })
        .mounts.find((m) => m.destination === '/dev/pts')
        ?.options?.includes('gid=5'),
    );
    // host network under a user namespace: sysfs cannot be mounted, so it is bound
    assert.equal(build({ userns, network: 'host' }).mounts.find((m) => m.destination === '/sys')?.type, 'bind');
    assert.throws(() => build({ userns: { uidMappings: [], gidMappings: [] } }), /at least one uid mapping/);
  });
  test('--init: tini bound read-only at /sbin/docker-init runs the command; refused without a tini', () => {
    const s = build({ init: true }, { initBinary: '/usr/bin/tini-static' });
    assert.deepEqual(s.process.args, ['/sbin/docker-init', '--', 'sh', '-c', 'true']);
    const m = s.mounts.find((x) => x.destination === '/sbin/docker-init');
    assert.deepEqual(m, {
      destination: '/sbin/docker-init',
      type: 'bind',
      source: '/usr/bin/tini-static',
      options: ['rbind', 'ro', 'nosuid', 'nodev'],
    });
    assert.throws(() => build({ init: true }), /--init needs a static tini/);
    assert.equal(
      build().mounts.some((x) => x.destination === '/sbin/docker-init'),
      false,
    );
  });

  test('--shm-size: the /dev/shm tmpfs size, 64m by default', () => {
    const shm = (over: ConfigPatch = {}) => build(over).mounts.find((x) => x.destination === '/dev/shm')?.options;
    assert.ok(shm()?.includes('size=65536k'));
    assert.ok(shm({ shmSize: 128 * MiB })?.includes('size=131072k'));
    assert.ok(shm({ shmSize: 1000 })?.includes('size=1k'));
  });

  test('mounts', () => {
    const src = join(root, 'data');
    mkdirSync(src, { recursive: true });
    const s = build(
      {
        readOnly: true,
        mounts: [
          { type: 'bind', source: src, target: '/data/sub/', readonly: true },
          { type: 'tmpfs', target: '/dev/shm', options: ['size=1m'] },
          { type: 'bind', source: src, target: '/data', readonly: false },
        ],
      },
      { extraMounts: [{ destination: '/etc/hosts', type: 'bind', source: '/etc/hosts', options: ['rbind', 'ro'] }] },
    );
    assert.equal(s.root.readonly, true);
    const dests = s.mounts.map((m) => m.destination);
    assert.deepEqual(dests, [
      '/proc',
      '/dev',
      '/dev/pts',
      '/dev/mqueue',
      '/sys',
      '/sys/fs/cgroup',
      '/data',
      '/etc/hosts',
      '/data/sub',
      '/dev/shm',
    ]);
    assert.deepEqual(
      s.mounts.find((m) => m.destination === '/dev/shm'),
      // docker's tmpfs defaults
      { destination: '/dev/shm', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', 'size=1m'] },
    );
    // --read-only: the /etc files the driver binds are read-only too (docker's)
    assert.deepEqual(s.mounts.find((m) => m.destination === '/etc/hosts')?.options, ['rbind', 'ro']);
    const etc = (readOnly: boolean) =>
      build(
        { readOnly },
        {
          extraMounts: ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf'].map((d) => ({
            destination: d,
            type: 'bind',
            source: '/etc/hosts',
            options: ['rbind', 'rprivate'],
          })),
        },
      ).mounts.filter((m) => m.destination.startsWith('/etc/'));
    assert.deepEqual(
      etc(true).map((m) => m.options),
      [0, 1, 2].map(() => ['rbind', 'rprivate', 'ro']),
    );
    assert.deepEqual(
      etc(false).map((m) => m.options),
      [0, 1, 2].map(() => ['rbind', 'rprivate']),
    );
    assert.deepEqual(s.mounts.find((m) => m.destination === '/data/sub')?.options, ['rbind', 'rprivate', 'ro']);
    assert.deepEqual(s.mounts.find((m) => m.destination === '/data')?.options, ['rbind', 'rprivate']);
    assert.throws(
      () => build({ mounts: [{ type: 'bind', source: join(root, 'nope'), target: '/x', readonly: false }] }),
      (e: unknown) => e instanceof NotFoundError && /bind source path does not exist/.test(e.message),
    );
    assert.throws(() => build({ mounts: [{ type: 'tmpfs', target: 'rel', options: [] }] }), InvalidArgumentError);
    assert.throws(() => build({ mounts: [{ type: 'tmpfs', target: '/', options: [] }] }), InvalidArgumentError);
  });
  test("docker's security defaults: no-new-privileges off unless asked for", () => {
    const env = { otherConfigs: () => [] };
    const nnp = (securityOpt: string[]) => configureContainer({ securityOpt, runtime: 'runc' }, env).noNewPrivileges;
    assert.equal(nnp([]), false);
    assert.equal(nnp(['no-new-privileges']), true);
    assert.equal(nnp(['no-new-privileges=true']), true);
    assert.equal(nnp(['no-new-privileges:true']), true);
    assert.equal(nnp(['no-new-privileges=false']), false);
    assert.throws(() => nnp(['no-new-privileges=maybe']), InvalidArgumentError);
    assert.equal(build({}).process.noNewPrivileges, false);
    // a record made with the old default keeps it
    assert.equal(build({ noNewPrivileges: true }).process.noNewPrivileges, true);
  });
  test("docker's security defaults: the primary gid, the image's groups and --group-add are supplementary groups", () => {
    // docker: AdditionalGids = [gid, groups of /etc/group listing the user..., --group-add...]
    assert.deepEqual(build({}).process.user, { uid: 0, gid: 0, additionalGids: [0] });
    assert.deepEqual(build({ user: 'app' }).process.user.additionalGids, [1000, 50, 29]);
    assert.deepEqual(
      build({ user: 'app', groupAdd: ['tty', '4242', 'staff', '1000'] }).process.user.additionalGids,
      [1000, 50, 29, 5, 4242],
    );
    // a group given with -u: no /etc/group membership, --group-add still applies
    assert.deepEqual(build({ user: 'app:tty', groupAdd: ['audio'] }).process.user, {
      uid: 1000,
      gid: 5,
      additionalGids: [5, 29],
    });
    assert.throws(
      () => build({ groupAdd: ['ghosts'] }),
      (e: unknown) => e instanceof NotFoundError && /unable to find group ghosts/.test(e.message),
    );
    const env = { otherConfigs: () => [] };
    assert.deepEqual(configureContainer({ groupAdd: ['wheel', '10'], runtime: 'runc' }, env).groupAdd, ['wheel', '10']);
    assert.throws(() => configureContainer({ groupAdd: ['a:b'], runtime: 'runc' }, env), InvalidArgumentError);
    assert.throws(() => configureContainer({ groupAdd: ['99999999999'], runtime: 'runc' }, env), InvalidArgumentError);
  });
  test("docker's security defaults: tmpfs mounts are noexec, nosuid, nodev unless the options say otherwise", () => {
    assert.deepEqual(TMPFS_DEFAULT_OPTIONS, ['noexec', 'nosuid', 'nodev']);
    const tmpfs = (options: string[]) =>
      build({ mounts: [{ type: 'tmpfs', target: '/t', options }] }).mounts.find((m) => m.destination === '/t')?.options;
    assert.deepEqual(tmpfs([]), ['noexec', 'nosuid', 'nodev']);
    assert.deepEqual(tmpfs(['exec', 'size=1m']), ['nosuid', 'nodev', 'exec', 'size=1m']);
    assert.deepEqual(tmpfs(['suid', 'dev', 'mode=1777']), ['noexec', 'suid', 'dev', 'mode=1777']);
    assert.deepEqual(mergeTmpfsOptions(['size=1m', 'ro'], ['size=2m', 'rw']), ['size=2m', 'rw']);
  });
  test("docker's security defaults: ping_group_range in a network namespace of the container's own", () => {
    assert.deepEqual(NETNS_SYSCTLS, { 'net.ipv4.ping_group_range': '0 2147483647' });
    assert.deepEqual(build({ network: 'none' }).linux.sysctl, NETNS_SYSCTLS);
    assert.deepEqual(build({ network: 'bridge' }, { netnsPath: '/run/netns/x' }).linux.sysctl, NETNS_SYSCTLS);
    assert.equal(build({ network: 'host' }).linux.sysctl, undefined, "the host's namespace is left alone");
    const userns = {
      uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    };
    assert.equal(build({ userns }).linux.sysctl, undefined, 'beyond the mapped gids the kernel refuses the range');
  });
  test('read-only /proc paths are nosuid, nodev, noexec with either runtime', () => {
    // runc 1.1 keeps the flags the paths had in /proc when it remounts them read-only
    assert.deepEqual(build({ runtime: 'runc' }).linux.readonlyPaths, [...READONLY_PATHS]);
    // crun 1.8 does not: they become read-only bind mounts with the flags spelled out (those the host has)
    const s = build({ runtime: 'crun' });
    assert.deepEqual(s.linux.readonlyPaths, []);
    const binds = s.mounts.filter((m) => READONLY_PATHS.includes(m.destination));
    assert.deepEqual(
      binds.map((m) => m.destination),
      READONLY_PATHS.filter((p) => existsSync(p)),
    );
    for (const m of binds) {
      assert.equal(m.type, 'bind');
      assert.deepEqual(m.options, ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev', 'noexec']);
    }
    assert.ok(binds.some((m) => m.destination === '/proc/sys'));
    // privileged: nothing read-only
    assert.deepEqual(
      build({ runtime: 'crun', privileged: true }).mounts.filter((m) => READONLY_PATHS.includes(m.destination)),
      [],
    );
  });
  const opts = (cmd: string) => ({
    command: [cmd],
    env: [],
    tty: false,
    stdin: false,
    privileged: false,
    detach: false,
  });
  test('exec process', () => {
    const base = build({ env: ['FOO=1', 'BAR=2'], workdir: '/srv', capAdd: ['NET_ADMIN'] });
    const p = buildExecProcess(
      base,
      { command: ['ls'], env: ['BAR=3'], tty: true, stdin: true, privileged: false, detach: false, user: 'app:staff' },
      rootfs,
    );
    assert.deepEqual(p.args, ['ls']);
    assert.deepEqual(p.env, [
      `PATH=${DEFAULT_PATH}`,
      'HOSTNAME=0123456789ab',
      'FOO=1',
      'BAR=3',
      'HOME=/home/app',
      'TERM=xterm',
    ]);
    assert.deepEqual(p.user, { uid: 1000, gid: 50, additionalGids: [50] });
    assert.equal(p.cwd, '/srv');
    assert.equal(p.terminal, true);
    assert.deepEqual(p.capabilities, base.process.capabilities);
    assert.deepEqual(p.rlimits, base.process.rlimits);
    assert.equal(p.noNewPrivileges, false);
    // --group-add applies to an exec's user as to the container's
    assert.deepEqual(buildExecProcess(base, { ...opts('id'), user: 'app' }, rootfs, ['tty', '4242']).user, {
      uid: 1000,
      gid: 1000,
      additionalGids: [1000, 50, 29, 5, 4242],
    });
    const q = buildExecProcess(
      base,
      { command: ['id'], env: [], tty: false, stdin: false, privileged: true, detach: false, workdir: '/tmp' },
      rootfs,
    );
    assert.deepEqual(q.user, base.process.user);
    assert.equal(q.cwd, '/tmp');
    assert.deepEqual(q.capabilities?.effective, hostCapabilities());
    assert.throws(
      () =>
        buildExecProcess(
          base,
          { command: [], env: [], tty: false, stdin: false, privileged: false, detach: false },
          rootfs,
        ),
      /no command specified/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The generated specs, run by runc.

const haveRunc = spawnSync('runc', ['--version']).status === 0;
const isRoot = process.getuid?.() === 0;

describe('runc runs the generated spec', { skip: !(haveRunc && isRoot) && 'needs root and runc' }, () => {
  let dir = '';
  let rootfs = '';
  let runcRoot = '';
  let host: HostFacts;
  const ids: string[] = [];
  let seq = 0;

  before(() => {
    dir = mkdtempSync('/tmp/hull-test-runc-');
    chmodSync(dir, 0o755); // the user-namespaced root (host uid 100000) must reach its rootfs
    runcRoot = join(dir, 'runc');
    rootfs = join(dir, 'rootfs');
    for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'data', 'mnt'])
      mkdirSync(join(rootfs, d), { recursive: true });
    chmodSync(join(rootfs, 'tmp'), 0o1777);
    copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
    chmodSync(join(rootfs, 'bin/busybox'), 0o755);
    const applets = spawnSync('/bin/busybox', ['--list'], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((a) => a && a !== 'busybox');
    for (const a of applets) symlinkSync('busybox', join(rootfs, 'bin', a));
    writeFileSync(
      join(rootfs, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    );
    writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\ntty:x:5:\nstaff:x:50:nobody\nnogroup:x:65534:\n');
    host = probeHostFacts();
  });

  after(() => {
    for (const id of ids) spawnSync('runc', ['--root', runcRoot, 'delete', '-f', id], { stdio: 'ignore' });
    // runc removes a container's cgroups; the parent /hull-test is ours to remove where it is empty.
    for (const ctrl of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
      for (const id of ids) {
        try {
          rmdirSync(join('/sys/fs/cgroup', ctrl, 'hull-test', id));
        } catch {
          /* gone already */
        }
      }
      try {
        rmdirSync(join('/sys/fs/cgroup', ctrl, 'hull-test'));
      } catch {
        /* absent, or in use by another test */
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function spec(over: ConfigPatch, root = rootfs): { id: string; spec: OciSpec } {
    const id = `hull-spec-${process.pid}-${++seq}`;
    ids.push(id);
    const s = buildRuntimeSpec({
      id,
      config: baseConfig(over),
      rootfs: root,
      cgroupsPath: `/hull-test/${id}`,
      cgroupNamespace: seq % 2 === 0,
      hostNofileHard: readHostRlimits().nofile ?? 1024,
      host,
    });
    return { id, spec: s };
  }

  /** Run a spec to completion with runc and return its output. */
  function runSpec(id: string, s: OciSpec): { status: number | null; stdout: string; stderr: string } {
    const bundle = join(dir, 'bundles', id);
    mkdirSync(bundle, { recursive: true });
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(s));
    const r = spawnSync('runc', ['--root', runcRoot, 'run', '-b', bundle, id], {
      encoding: 'utf8',
      timeout: 15000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  function run(over: ConfigPatch, script: string, root = rootfs) {
    const { id, spec: s } = spec({ ...over, command: ['sh', '-c', script] }, root);
    return { id, ...runSpec(id, s) };
  }

  /** key=value lines printed by a script. */
  function values(out: string): Record<string, string> {
    return Object.fromEntries(
      out
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  }

  test('default container: identity, capabilities, masks, read-only /proc/sys, seccomp', () => {
    const r = run(
      { resources: { memory: 64 * MiB } },
      [
        'echo uid=$(id -u) gid=$(id -g)',
        'echo capeff=$(grep CapEff /proc/self/status | cut -f2)',
        'echo capbnd=$(grep CapBnd /proc/self/status | cut -f2)',
        'echo seccomp=$(grep Seccomp: /proc/self/status | cut -f2)',
        'echo nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)',
        'echo keys=$(stat -c %t:%T /proc/keys)',
        'echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c)',
        'echo firmware=$(ls /sys/firmware | wc -l)',
        'echo procsys=$(echo x 2>&1 > /proc/sys/kernel/domainname || echo refused)',
        'echo unshare=$(unshare -U true 2>&1 || echo refused)',
        'echo mount=$(mount -t tmpfs none /mnt 2>&1 || echo refused)',
        'echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)',
        'echo nofile=$(ulimit -n)',
        'echo path=$PATH home=$HOME host=$HOSTNAME',
        'touch /probe && echo rootfs=writable',
        'echo normal=$(echo hello | grep -c hello)',
      ].join('; '),
    );
    assert.equal(r.status, 0, r.stderr);
    const v = values(r.stdout);
    assert.equal(v.uid, '0 gid=0');
    assert.equal(v.capeff, capabilitiesToMask(DEFAULT_CAPABILITIES));
    assert.equal(v.capbnd, capabilitiesToMask(DEFAULT_CAPABILITIES));
    assert.equal(v.seccomp, '2');
    assert.equal(v.nnp, '0');
    assert.equal(v.keys, '1:3', 'masked file is /dev/null');
    assert.equal(v.kcore, '0');
    assert.equal(v.firmware, '0', 'masked directory is empty');
    assert.match(v.procsys!, /Read-only file system/);
    assert.match(v.unshare!, /Operation not permitted/);
    assert.match(v.mount!, /refused/);
    assert.equal(v.mem, String(64 * MiB));
    assert.equal(v.nofile, String(Math.min(1048576, readHostRlimits().nofile ?? 0)));
    assert.equal(v.path, `${DEFAULT_PATH} home=/root host=${r.id.slice(0, 12)}`);
    assert.equal(v.rootfs, 'writable');
    assert.equal(v.normal, '1');
  });

  test('user, read-only root, bind mounts, resources', () => {
    const data = join(dir, 'hostdata');
    mkdirSync(data);
    writeFileSync(join(data, 'f'), 'from host\n');
    const r = run(
      {
        user: 'nobody',
        readOnly: true,
        mounts: [
          { type: 'bind', source: data, target: '/data', readonly: true },
          { type: 'tmpfs', target: '/scratch', options: ['size=1m'] },
        ],
        resources: { cpus: 0.5, pidsLimit: 64 },
        ulimits: [{ type: 'nofile', soft: 512, hard: 1024 }],
      },
      [
        'echo id=$(id -u):$(id -g):$(id -G)',
        'echo capeff=$(grep CapEff /proc/self/status | cut -f2)',
        'touch /x 2>/dev/null && echo root=writable || echo root=readonly',
        'echo data=$(cat /data/f)',
        'touch /data/y 2>/dev/null && echo dataw=yes || echo dataw=no',
        'touch /scratch/y && echo scratch=$(stat -c %a /scratch)',
        'touch /dev/shm/y && echo shm=yes',
        'echo quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max)',
        'echo pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)',
        'echo nofile=$(ulimit -n):$(ulimit -Hn)',
      ].join('; '),
    );
    assert.equal(r.status, 0, r.stderr);
    const v = values(r.stdout);
    assert.equal(v.id, '65534:65534:65534 50');
    assert.equal(v.capeff, '0000000000000000');
    assert.equal(v.root, 'readonly');
    assert.equal(v.data, 'from host');
    assert.equal(v.dataw, 'no');
    assert.equal(v.scratch, '1777');
    assert.equal(v.shm, 'yes');
    assert.match(v.quota!, /^50000/);
    assert.equal(v.pids, '64');
    assert.equal(v.nofile, '512:1024');
  });

  test('privileged container and a custom seccomp profile', () => {
    const p = run(
      { privileged: true },
      'echo capeff=$(grep CapEff /proc/self/status | cut -f2); echo seccomp=$(grep Seccomp: /proc/self/status | cut -f2); mount -t tmpfs none /mnt && echo mount=ok',
    );
    assert.equal(p.status, 0, p.stderr);
    const v = values(p.stdout);
    assert.equal(v.capeff, capabilitiesToMask(hostCapabilities()));
    assert.equal(v.seccomp, '0');
    assert.equal(v.mount, 'ok');

    const profile = join(dir, 'profile.json');
    writeFileSync(
      profile,
      JSON.stringify({
        defaultAction: 'SCMP_ACT_ALLOW',
        archMap: [
          { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
          { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
        ],
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
      }),
    );
    const c = run({ seccomp: profile }, 'mkdir /tmp/d 2>&1; echo done');
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stdout, /Permission denied/);
  });

  test('user namespace 0 -> 100000 (65536)', () => {
    const urootfs = join(dir, 'rootfs-userns');
    cpSync(rootfs, urootfs, { recursive: true, verbatimSymlinks: true });
    const chownTree = (p: string) => {
      lchownSync(p, 100000, 100000);
      for (const e of readdirSync(p, { withFileTypes: true })) {
        const child = join(p, e.name);
        if (e.isDirectory()) chownTree(child);
        else lchownSync(child, 100000, 100000);
      }
    };
    chownTree(urootfs);
    const userns = {
      uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    };
    const r = run(
      { userns, user: 'nobody' },
      'echo id=$(id -u); echo map=$(cat /proc/self/uid_map | tr -s " "); echo pts=$(stat -c %g /dev/pts/ptmx)',
      urootfs,
    );
    assert.equal(r.status, 0, r.stderr);
    const v = values(r.stdout);
    assert.equal(v.id, '65534');
    assert.equal(v.map!.trim(), '0 100000 65536');
    const root = run(
      { userns },
      'touch /owned && echo touch=ok; echo caps=$(grep CapEff /proc/self/status | cut -f2)',
      urootfs,
    );
    assert.equal(root.status, 0, root.stderr);
    assert.equal(values(root.stdout).touch, 'ok');
    assert.equal(values(root.stdout).caps, capabilitiesToMask(DEFAULT_CAPABILITIES));
    // host network: sysfs cannot be mounted from the user namespace, the bound /sys works
    const hostNet = run({ userns, network: 'host' }, 'echo sys=$(ls /sys/class/net | grep -c lo)', urootfs);
    assert.equal(hostNet.status, 0, hostNet.stderr);
    assert.equal(values(hostNet.stdout).sys, '1');
  });

  test('exec process runs in a running container', () => {
    const { id, spec: s } = spec({ command: ['sleep', '30'] });
    const bundle = join(dir, 'bundles', id);
    mkdirSync(bundle, { recursive: true });
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(s));
    // The detached container keeps runc's stdio: give it a file, not a pipe that would stay open.
    const errFile = join(bundle, 'stderr');
    const errFd = openSync(errFile, 'w');
    const created = spawnSync('runc', ['--root', runcRoot, 'run', '-d', '-b', bundle, id], {
      timeout: 15000,
      stdio: ['ignore', 'ignore', errFd],
    });
    closeSync(errFd);
    assert.equal(created.status, 0, readFileSync(errFile, 'utf8'));
    const proc = buildExecProcess(
      s,
      {
        command: ['sh', '-c', 'echo id=$(id -u):$(id -g); echo foo=$FOO; pwd'],
        env: ['FOO=bar'],
        workdir: '/tmp',
        user: 'nobody',
        tty: false,
        stdin: false,
        privileged: false,
        detach: false,
      },
      rootfs,
    );
    writeFileSync(join(bundle, 'exec.json'), JSON.stringify(proc));
    const r = spawnSync('runc', ['--root', runcRoot, 'exec', '--process', join(bundle, 'exec.json'), id], {
      encoding: 'utf8',
      timeout: 15000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.equal(r.status, 0, r.stderr);
    const v = values(r.stdout);
    assert.equal(v.id, '65534:65534');
    assert.equal(v.foo, 'bar');
    assert.match(r.stdout, /^\/tmp$/m);
    spawnSync('runc', ['--root', runcRoot, 'delete', '-f', id], { stdio: 'ignore' });
  });
});

describe('docker parity: --device, --device-cgroup-rule, namespace modes, --sysctl, --mount', () => {
  const root = tempDir('nsmodes');
  const rootfs = join(root, 'rootfs');
  makeEtc(rootfs);
  const build = (over: ConfigPatch = {}, extra: Partial<SpecInput> = {}) =>
    buildRuntimeSpec({
      id: '0123456789abcdef0123',
      config: baseConfig(over),
      rootfs,
      cgroupsPath: '/hull/x',
      cgroupNamespace: false,
      hostNofileHard: 20000,
      host: HOST,
      ...extra,
    });

  test('--device and --device-cgroup-rule parse as docker', () => {
    assert.deepEqual(parseDevice('/dev/zero'), {
      pathOnHost: '/dev/zero',
      pathInContainer: '/dev/zero',
      permissions: 'rwm',
    });
    assert.deepEqual(parseDevice('/dev/zero:r'), {
      pathOnHost: '/dev/zero',
      pathInContainer: '/dev/zero',
      permissions: 'r',
    });
    assert.deepEqual(parseDevice('/dev/zero:/dev/z:rw'), {
      pathOnHost: '/dev/zero',
      pathInContainer: '/dev/z',
      permissions: 'rw',
    });
    assert.throws(() => parseDevice('/dev/zero:/dev/z:rx'), /invalid device mode: rx/);
    assert.throws(() => parseDevice('/dev/zero:z'), /z is not an absolute path/);
    assert.deepEqual(parseDeviceCgroupRule('c 1:3 mr'), { type: 'c', major: 1, minor: 3, access: 'mr' });
    assert.deepEqual(parseDeviceCgroupRule('b *:* rwm'), { type: 'b', access: 'rwm' });
    assert.throws(() => parseDeviceCgroupRule('c 1 r'), /invalid device cgroup format 'c 1 r'/);
  });

  test('devices: the host node at the container path, allowed with the permissions; a missing one as docker says', () => {
    const s = build({ devices: [{ pathOnHost: '/dev/zero', pathInContainer: '/dev/myzero', permissions: 'r' }] });
    assert.deepEqual(
      s.linux.devices?.map((d) => [d.path, d.type, d.major, d.minor]),
      [['/dev/myzero', 'c', 1, 5]],
    );
    assert.deepEqual(s.linux.resources?.devices?.at(-1), { allow: true, type: 'c', major: 1, minor: 5, access: 'r' });
    assert.throws(
      () => build({ devices: [{ pathOnHost: '/dev/x-none', pathInContainer: '/dev/x', permissions: 'rwm' }] }),
      /^NotFoundError: error gathering device information while adding custom device "\/dev\/x-none": no such file or directory$/,
    );
    const r = build({ deviceCgroupRules: ['c 10:200 rwm'] });
    assert.deepEqual(r.linux.resources?.devices?.at(-1), {
      allow: true,
      type: 'c',
      major: 10,
      minor: 200,
      access: 'rwm',
    });
  });

  test('namespace modes: host drops the namespace, container:X joins by path, ipc none has no /dev/shm', () => {
    const types = (s: OciSpec) => s.linux.namespaces.map((n) => (n.path ? `${n.type}=${n.path}` : n.type));
    assert.deepEqual(types(build({ pidMode: 'host', ipcMode: 'host', utsMode: 'host' })), ['network', 'mount']);
    const h = build({ utsMode: 'host', ipcMode: 'host' });
    assert.equal(h.hostname, undefined);
    assert.equal(h.mounts.find((m) => m.destination === '/dev/shm')?.source, '/dev/shm');
    const j = build(
      { network: 'container:abc', pidMode: 'container:abc', ipcMode: 'container:abc' },
      {
        joined: { network: '/proc/9/ns/net', pid: '/proc/9/ns/pid', ipc: '/proc/9/ns/ipc', shm: '/x/shm' },
        hostname: 'xhost',
      },
    );
    assert.deepEqual(types(j), ['pid=/proc/9/ns/pid', 'network=/proc/9/ns/net', 'ipc=/proc/9/ns/ipc', 'uts', 'mount']);
    assert.equal(j.hostname, 'xhost');
    assert.equal(j.linux.sysctl, undefined, "the joined namespace is X's: nothing is written to it");
    assert.equal(j.mounts.find((m) => m.destination === '/dev/shm')?.source, '/x/shm');
    assert.equal(
      build({ ipcMode: 'none' }).mounts.find((m) => m.destination === '/dev/shm'),
      undefined,
    );
    assert.throws(() => build({ pidMode: 'container:abc' }), /not running/);
  });

  test('--sysctl: namespaced only (docker), net.* not with the host network', () => {
    const env = { otherConfigs: () => [] };
    assert.throws(
      () => configureContainer({ sysctls: { 'vm.swappiness': '1' } }, env),
      /^InvalidArgumentError: sysctl 'vm.swappiness' is not allowed/,
    );
    assert.throws(
      () => configureContainer({ sysctls: { 'kernel.shmmax': '1' }, ipc: 'host' }, env),
      /not allowed in host IPC namespace/,
    );
    const ok = configureContainer(
      { sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '9', 'fs.mqueue.msg_max': '5' } },
      env,
    );
    assert.deepEqual(Object.keys(ok.sysctls ?? {}), ['net.ipv4.ip_forward', 'kernel.shmmax', 'fs.mqueue.msg_max']);
    const s = build({ network: 'bridge', sysctls: { 'net.ipv4.ip_forward': '1' } });
    assert.equal(s.linux.sysctl?.['net.ipv4.ip_forward'], '1');
    assert.throws(
      () => build({ network: 'host', sysctls: { 'net.ipv4.ip_forward': '1' } }),
      /sysctl "net.ipv4.ip_forward" not allowed in host network namespace/,
    );
  });

  test("--mount: docker's CSV keys and errors; bind propagation and non-recursive reach the spec", () => {
    assert.deepEqual(parseMount('type=bind,src=/a,dst=/b,ro'), {
      type: 'bind',
      source: '/a',
      target: '/b',
      readonly: true,
    });
    assert.deepEqual(
      parseMount('type=bind,source=/a,destination=/b,readonly=false,bind-propagation=rslave,bind-nonrecursive'),
      {
        type: 'bind',
        source: '/a',
        target: '/b',
        readonly: false,
        propagation: 'rslave',
        nonRecursive: true,
      },
    );
    assert.deepEqual(parseMount('"type=tmpfs","target=/t",tmpfs-size=1m,tmpfs-mode=1770'), {
      type: 'tmpfs',
      target: '/t',
      options: [`size=${MiB}`, 'mode=1770'],
    });
    assert.throws(
      () => parseMount('type=bind,target=/b'),
      /invalid mount config for type "bind": field Source must not be empty/,
    );
    assert.throws(() => parseMount('type=tmpfs,src=/a,target=/b'), /field Source must not be specified/);
    assert.throws(() => parseMount('type=bind,src=/a'), /target is required/);
    assert.throws(
      () => parseMount('type=bind,src=/a,dst=/b,tmpfs-size=1m'),
      /cannot mix 'tmpfs-\*' options with mount type 'bind'/,
    );
    assert.throws(() => parseMount('type=bind,src=/a,dst=/b,nope=1'), /unexpected key 'nope'/);
    assert.deepEqual(parseMount('src=vol,dst=/b'), {
      type: 'bind',
      source: '',
      target: '/b',
      readonly: false,
      volume: 'vol',
    });
    assert.throws(() => parseMount('src=v,dst=/b'), /invalid volume name "v"/);
    assert.deepEqual(parseMount('type=volume,dst=/b'), {
      type: 'bind',
      source: '',
      target: '/b',
      readonly: false,
      volume: '',
      anonymous: true,
    });
    assert.throws(() => parseMount('src=../x,dst=/b'), /invalid volume name/);
    assert.deepEqual(parseVolume('data:/b:ro'), {
      type: 'bind',
      source: '',
      target: '/b',
      readonly: true,
      volume: 'data',
    });
    assert.deepEqual(parseVolume('/b'), {
      type: 'bind',
      source: '',
      target: '/b',
      readonly: false,
      volume: '',
      anonymous: true,
    });
    assert.throws(() => parseVolume('a b:/b'), /a volume name/);
    assert.deepEqual(parseVolume('/a:/b'), {
      type: 'bind',
      source: '/a',
      target: '/b',
      readonly: false,
      createHostPath: true,
    });
    const src = join(root, 'src');
    mkdirSync(src, { recursive: true });
    const s = build({
      mounts: [{ type: 'bind', source: src, target: '/m', readonly: false, propagation: 'rslave', nonRecursive: true }],
    });
    assert.deepEqual(s.mounts.find((m) => m.destination === '/m')?.options, ['bind', 'rslave']);
    assert.throws(
      () => build({ mounts: [{ type: 'bind', source: join(root, 'none'), target: '/m', readonly: false }] }),
      /invalid mount config for type "bind": bind source path does not exist: /,
    );
  });
});
