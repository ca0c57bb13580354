/**
 * docker's documents (inspect, image inspect, network inspect) and `ps` listing (filters, -n, -l, the PORTS
 * column) as pure functions, and listInstances against the fake driver (test/helpers/fake-driver.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as createTar } from 'tar';
import { Engine } from '../../src/engine/engine.js';
import { createInstance } from '../../src/engine/lifecycle/create.js';
import { startInstance } from '../../src/engine/lifecycle/start.js';
import { stopInstance } from '../../src/engine/lifecycle/stop.js';
import { removeInstance } from '../../src/engine/lifecycle/remove.js';
import { newInstanceRecord, type InstanceRecord } from '../../src/engine/store.js';
import type { InstanceConfig } from '../../src/common/instance.js';
import type { ImageRecord } from '../../src/image/store.js';
import type { NetworkDef } from '../../src/network/store.js';
import {
  ZERO_TIME,
  healthOf,
  imageDocument,
  instanceDocument,
  networkDocument,
  type InstanceView,
} from '../../src/engine/describe.js';
import {
  ancestorIds,
  checkPsFilters,
  displayPorts,
  listInstances,
  matchInstance,
  parseFilterArgs,
  parseFilterJson,
  type MatchContext,
  type PortEntry,
} from '../../src/engine/list.js';
import { FakeDriver } from '../helpers/fake-driver.js';

/** A document, read by path as a user of docker's JSON would. */
// biome-ignore lint/suspicious/noExplicitAny: documents are read by path, as JSON
const doc = (x: Record<string, unknown>): any => x;

const config = (over: Partial<InstanceConfig> = {}): InstanceConfig => ({
  image: 'web:1',
  imageId: 'sha256:' + 'a'.repeat(64),
  command: ['/entry', 'httpd', '-f'],
  entrypoint: ['/entry'],
  exposedPorts: ['80/tcp', '443/tcp'],
  env: ['PATH=/bin', 'A=1'],
  workdir: '/srv',
  user: 'nobody',
  hostname: 'abc123',
  tty: false,
  stdin: false,
  mounts: [
    { type: 'bind', source: '/host/data', target: '/data', readonly: true },
    { type: 'tmpfs', target: '/run', options: ['size=64m'] },
  ],
  readOnly: false,
  resources: { memory: 64 << 20, cpus: 0.5 },
  stopSignal: 'SIGTERM',
  stopTimeout: 10,
  restart: { name: 'on-failure', maxRetries: 3 },
  autoRemove: false,
  labels: { tier: 'web', team: 'a' },
  network: 'bridge',
  networks: [{ name: 'hull' }, { name: 'back', ip: '10.1.0.9', aliases: ['db'] }],
  ports: [{ hostIp: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
  dns: [],
  dnsSearch: [],
  extraHosts: [],
  container: {
    runtime: 'runc',
    privileged: false,
    capAdd: ['NET_ADMIN'],
    capDrop: [],
    noNewPrivileges: true,
    seccomp: 'default',
    userns: null,
    ulimits: [{ type: 'nofile', soft: 1024, hard: 2048 }],
  },
  ...over,
});

const record = (over: Partial<InstanceRecord> = {}, cfg: Partial<InstanceConfig> = {}): InstanceRecord => ({
  ...newInstanceRecord({
    id: 'f'.repeat(64),
    name: 'web',
    kind: 'container',
    image: 'web:1',
    imageId: 'sha256:' + 'a'.repeat(64),
    config: config(cfg),
    createdAt: Date.UTC(2024, 0, 2, 3, 4, 5, 678),
  }),
  ...over,
});

const runningView: InstanceView = {
  attachments: [
    {
      network: 'hull',
      interface: 'eth0',
      address: '10.88.0.5/16',
      gateway: '10.88.0.1',
      mac: '02:00:00:00:00:05',
      bridge: 'hlbr0',
      names: ['web'],
      ports: [],
    },
  ],
  published: [{ hostIp: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
  proxied: true,
  networkIds: { hull: '1'.repeat(64), back: '2'.repeat(64) },
  logPath: '/root/containers/x/ctr.log',
  sandboxKey: '/root/netns/x',
  driver: {
    graphDriver: { Name: 'overlay', Data: { MergedDir: '/m', UpperDir: '/u', WorkDir: '/w' } },
    details: { Runtime: 'runc' },
    etcFiles: { resolvConf: '/d/resolv.conf', hostname: '/d/hostname', hosts: '/d/hosts' },
  },
};

describe('inspect document (docker API v1.41 shape)', () => {
  test('a running container', () => {
    const d = doc(
      instanceDocument(
        record({ state: 'running', pid: 42, supervisorPid: 41, startedAt: Date.UTC(2024, 0, 2, 3, 5) }),
        runningView,
      ),
    );
    assert.equal(d.Id, 'f'.repeat(64));
    assert.equal(d.Name, '/web');
    assert.equal(d.Created, '2024-01-02T03:04:05.678Z');
    assert.equal(d.Path, '/entry');
    assert.deepEqual(d.Args, ['httpd', '-f']);
    assert.deepEqual(d.State, {
      Status: 'running',
      Running: true,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: 42,
      ExitCode: 0,
      Error: '',
      StartedAt: '2024-01-02T03:05:00.000Z',
      FinishedAt: ZERO_TIME,
    });
    assert.equal(d.Image, 'sha256:' + 'a'.repeat(64));
    assert.equal(d.ResolvConfPath, '/d/resolv.conf');
    assert.equal(d.HostsPath, '/d/hosts');
    assert.equal(d.Platform, 'linux');
    assert.equal(d.Driver, 'overlay');
    assert.equal(d.ExecIDs, null);
    assert.deepEqual(d.Config.Entrypoint, ['/entry']);
    assert.deepEqual(d.Config.Cmd, ['httpd', '-f']);
    assert.equal(d.Config.Image, 'web:1');
    assert.deepEqual(d.Config.ExposedPorts, { '80/tcp': {}, '443/tcp': {} });
    assert.deepEqual(d.Config.Labels, { tier: 'web', team: 'a' });
    assert.equal(d.Config.WorkingDir, '/srv');
    assert.deepEqual(d.HostConfig.Binds, ['/host/data:/data:ro']);
    assert.deepEqual(d.HostConfig.Tmpfs, { '/run': 'size=64m' });
    assert.deepEqual(d.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
    assert.deepEqual(d.HostConfig.PortBindings, { '80/tcp': [{ HostIp: '', HostPort: '8080' }] });
    assert.deepEqual(d.HostConfig.CapAdd, ['NET_ADMIN']);
    assert.equal(d.HostConfig.CapDrop, null);
    assert.deepEqual(d.HostConfig.SecurityOpt, ['no-new-privileges']);
    assert.deepEqual(d.HostConfig.Ulimits, [{ Name: 'nofile', Soft: 1024, Hard: 2048 }]);
    assert.equal(d.HostConfig.Memory, 64 << 20);
    assert.equal(d.HostConfig.NanoCpus, 5e8);
    assert.equal(d.HostConfig.PidsLimit, null);
    assert.equal(d.HostConfig.NetworkMode, 'hull');
    assert.equal(d.HostConfig.Runtime, 'runc');
    assert.equal(d.HostConfig.Isolation, 'container');
    assert.deepEqual(d.HostConfig.LogConfig, { Type: 'k8s-file', Config: {} });
    assert.deepEqual(d.Mounts, [
      { Type: 'bind', Source: '/host/data', Destination: '/data', Mode: 'ro', RW: false, Propagation: 'rprivate' },
    ]);
    const ns = d.NetworkSettings;
    assert.equal(ns.IPAddress, '10.88.0.5');
    assert.equal(ns.IPPrefixLen, 16);
    assert.equal(ns.SandboxKey, '/root/netns/x');
    assert.deepEqual(ns.Ports, {
      '80/tcp': [
        { HostIp: '0.0.0.0', HostPort: '8080' },
        { HostIp: '::', HostPort: '8080' },
      ],
      '443/tcp': null,
    });
    assert.equal(ns.Networks.hull.IPAddress, '10.88.0.5');
    assert.equal(ns.Networks.hull.NetworkID, '1'.repeat(64));
    assert.match(ns.Networks.hull.EndpointID, /^[0-9a-f]{64}$/);
    assert.deepEqual(ns.Networks.back.IPAMConfig, { IPv4Address: '10.1.0.9' });
    assert.deepEqual(ns.Networks.back.Aliases, ['db']);
    assert.equal(ns.Networks.back.IPAddress, '', 'not attached now');
    assert.equal(d.Hull.Kind, 'container');
    assert.equal(d.Hull.SupervisorPid, 41);
    assert.equal(d.Hull.Runtime, 'runc');
    assert.equal(d.State.Health, undefined, 'no healthcheck, no Health');
  });

  test('an exited one, with an older record (no entrypoint kept), no networks', () => {
    const d = doc(
      instanceDocument(
        record(
          { state: 'exited', exitCode: 137, oomKilled: true, pid: 42, finishedAt: Date.UTC(2024, 1, 1) },
          { entrypoint: undefined, exposedPorts: undefined, network: 'none', networks: undefined, ports: [] },
        ),
        { ...runningView, attachments: [], published: [], sandboxKey: '', driver: null },
      ),
    );
    assert.equal(d.State.Status, 'exited');
    assert.equal(d.State.Running, false);
    assert.equal(d.State.OOMKilled, true);
    assert.equal(d.State.ExitCode, 137);
    assert.equal(d.State.Pid, 0);
    assert.equal(d.State.FinishedAt, '2024-02-01T00:00:00.000Z');
    assert.equal(d.Config.Entrypoint, null);
    assert.deepEqual(d.Config.Cmd, ['/entry', 'httpd', '-f']);
    assert.equal(d.Config.ExposedPorts, undefined);
    assert.equal(d.HostConfig.NetworkMode, 'none');
    assert.deepEqual(Object.keys(d.NetworkSettings.Networks), ['none']);
    assert.deepEqual(d.NetworkSettings.Ports, {});
    assert.equal(d.ResolvConfPath, '');
    assert.deepEqual(d.GraphDriver, { Name: '', Data: null });
  });

  test('health and the healthcheck, --init, log driver, namespaces, devices, sysctls', () => {
    const hc = { test: ['CMD', 'true'], intervalMs: 100, timeoutMs: 30_000, startPeriodMs: 0, retries: 1 };
    const rec = record(
      {
        state: 'running',
        health: { status: 'unhealthy', failingStreak: 3, log: [{ start: 1000, end: 2000, exitCode: 1, output: 'no' }] },
      },
      {
        healthcheck: hc,
        init: true,
        log: { driver: 'json-file', maxSize: 1024, maxFile: 2 },
        attach: ['stdout'],
        container: {
          ...config().container!,
          pidMode: 'host',
          ipcMode: 'shareable',
          shmSize: 1 << 30,
          sysctls: { 'net.ipv4.ip_forward': '1' },
          devices: [{ pathOnHost: '/dev/null', pathInContainer: '/dev/xnull', permissions: 'rwm' }],
        },
      },
    );
    const d = doc(instanceDocument(rec, runningView));
    assert.deepEqual(d.State.Health, {
      Status: 'unhealthy',
      FailingStreak: 3,
      Log: [{ Start: '1970-01-01T00:00:01.000Z', End: '1970-01-01T00:00:02.000Z', ExitCode: 1, Output: 'no' }],
    });
    assert.deepEqual(d.Config.Healthcheck, {
      Test: ['CMD', 'true'],
      Interval: 100_000_000,
      Timeout: 30_000_000_000,
      StartPeriod: 0,
      Retries: 1,
    });
    assert.equal(d.HostConfig.Init, true);
    assert.deepEqual(d.HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-size': '1024', 'max-file': '2' } });
    assert.deepEqual([d.Config.AttachStdin, d.Config.AttachStdout, d.Config.AttachStderr], [false, true, false]);
    assert.equal(d.HostConfig.PidMode, 'host');
    assert.equal(d.HostConfig.IpcMode, 'shareable');
    assert.equal(d.HostConfig.UTSMode, '');
    assert.equal(d.HostConfig.ShmSize, 1 << 30);
    assert.deepEqual(d.HostConfig.Sysctls, { 'net.ipv4.ip_forward': '1' });
    assert.deepEqual(d.HostConfig.Devices, [
      { PathOnHost: '/dev/null', PathInContainer: '/dev/xnull', CgroupPermissions: 'rwm' },
    ]);
    assert.equal(healthOf(record()), null, 'no healthcheck: none');
    assert.equal(healthOf(record({}, { healthcheck: hc }))?.status, 'starting', 'before the first probe');
  });

  test('image document', () => {
    const img: ImageRecord = {
      id: 'sha256:' + 'b'.repeat(64),
      manifestDigest: 'sha256:' + 'c'.repeat(64),
      names: ['busybox:latest', 'busybox@sha256:' + 'c'.repeat(64)],
      created: '2023-05-01T00:00:00Z',
      size: 1234,
      layers: [{ digest: 'sha256:d', diffId: 'sha256:e', size: 1234, mediaType: 'application/x' }],
      config: {
        architecture: 'amd64',
        os: 'linux',
        author: 'me',
        config: { Cmd: ['sh'], Env: ['PATH=/bin'], ExposedPorts: { '80/tcp': {} } },
        rootfs: { type: 'layers', diff_ids: ['sha256:e'] },
        history: [{ created_by: 'ADD x', comment: 'imported' }],
      },
    };
    const d = doc(imageDocument(img));
    assert.equal(d.Id, img.id);
    assert.deepEqual(d.RepoTags, ['busybox:latest']);
    assert.deepEqual(d.RepoDigests, ['busybox@sha256:' + 'c'.repeat(64)]);
    assert.equal(d.Parent, '');
    assert.equal(d.Comment, 'imported');
    assert.equal(d.Author, 'me');
    assert.deepEqual(d.Config.Cmd, ['sh']);
    assert.equal(d.Config.Entrypoint, null);
    assert.deepEqual(d.Config.ExposedPorts, { '80/tcp': {} });
    assert.equal(d.Architecture, 'amd64');
    assert.equal(d.Os, 'linux');
    assert.equal(d.Size, 1234);
    assert.deepEqual(d.RootFS, { Type: 'layers', Layers: ['sha256:e'] });
    assert.equal(d.Hull.ManifestDigest, img.manifestDigest);
    for (const k of ['Container', 'ContainerConfig', 'DockerVersion', 'VirtualSize', 'GraphDriver', 'Metadata'])
      assert.ok(k in d, k);
  });

  test('network document', () => {
    const def: NetworkDef = {
      name: 'back',
      id: '2'.repeat(64),
      driver: 'bridge',
      bridge: 'hlx',
      subnet: '10.1.0.0/24',
      gateway: '10.1.0.1',
      internal: false,
      mtu: 1400,
      dns: true,
      labels: { a: 'b' },
      createdAt: Date.UTC(2024, 0, 1),
    };
    const d = doc(networkDocument(def, [{ id: 'f'.repeat(64), name: 'web', attachment: runningView.attachments[0]! }]));
    assert.equal(d.Scope, 'local');
    assert.equal(d.EnableIPv6, false);
    assert.deepEqual(d.IPAM, {
      Driver: 'default',
      Options: null,
      Config: [{ Subnet: '10.1.0.0/24', Gateway: '10.1.0.1' }],
    });
    assert.deepEqual(d.ConfigFrom, { Network: '' });
    assert.equal(d.Containers['f'.repeat(64)].Name, 'web');
    assert.equal(d.Containers['f'.repeat(64)].IPv4Address, '10.88.0.5/16');
    assert.equal(d.Options['com.docker.network.driver.mtu'], '1400');
  });
});

const KINDS = ['container', 'vm'];

describe('ps filters', () => {
  test('parsing: CLI key=value and the API map', () => {
    assert.deepEqual(parseFilterArgs(['status=running', 'status=paused', 'label=a=b']), {
      status: ['running', 'paused'],
      label: ['a=b'],
    });
    assert.throws(() => parseFilterArgs(['running']), /bad format of filter "running" \(expected name=value\)/);
    assert.deepEqual(parseFilterJson('{"status":["running"],"label":{"x=1":true}}'), {
      status: ['running'],
      label: ['x=1'],
    });
    assert.deepEqual(parseFilterJson(''), {});
    assert.throws(() => parseFilterJson('[1]'), /invalid filters/);
    assert.throws(() => parseFilterJson('{"status":"running"}'), /invalid filters/);
  });

  test("bad keys and values: docker's message", () => {
    assert.throws(() => checkPsFilters({ foo: ['1'] }, KINDS), { message: "invalid filter 'foo'" });
    assert.throws(() => checkPsFilters({ status: ['up'] }, KINDS), { message: "invalid filter 'status=up'" });
    assert.throws(() => checkPsFilters({ health: ['ok'] }, KINDS), { message: "invalid filter 'health=ok'" });
    assert.throws(() => checkPsFilters({ isolation: ['hyperv'] }, KINDS), {
      message: "invalid filter 'isolation=hyperv'",
    });
    assert.throws(() => checkPsFilters({ exited: ['x'] }, KINDS), { message: "invalid filter 'exited=x'" });
    assert.throws(() => checkPsFilters({ publish: ['80/xyz'] }, KINDS), { message: "invalid filter 'publish=80/xyz'" });
    checkPsFilters({ isolation: ['vm', 'container', 'process', 'default'], publish: ['8000-8002/udp'] }, KINDS);
  });

  const ctx: MatchContext = {
    kinds: KINDS,
    ancestorIds: null,
    networkIds: { hull: '1'.repeat(64), back: '2'.repeat(64) },
    ports: () => [
      { ip: '0.0.0.0', privatePort: 80, publicPort: 8080, type: 'tcp' },
      { ip: '', privatePort: 443, publicPort: 0, type: 'tcp' },
    ],
  };
  const m = (f: Record<string, string[]>, rec = record({ state: 'running', startedAt: 1 }), c = ctx) =>
    matchInstance(rec, f, c);

  test('each key', () => {
    assert.ok(m({ id: ['fff'] }));
    assert.ok(!m({ id: ['ab'] }));
    assert.ok(m({ name: ['we'] }), 'a substring');
    assert.ok(m({ name: ['^/web$'] }), "docker's anchored form");
    assert.ok(m({ name: ['^web$'] }));
    assert.ok(!m({ name: ['^/we$'] }));
    assert.ok(m({ label: ['tier'] }));
    assert.ok(m({ label: ['tier=web', 'team=a'] }), 'label values all must match');
    assert.ok(!m({ label: ['tier=web', 'team=b'] }));
    assert.ok(m({ status: ['exited', 'running'] }), 'one key: any value');
    assert.ok(!m({ status: ['exited'] }));
    assert.ok(m({ network: ['hull'] }));
    assert.ok(m({ network: ['bridge'] }), "docker's default network name means hull's");
    assert.ok(m({ network: ['2'.repeat(12)] }), 'by id');
    assert.ok(!m({ network: ['front'] }));
    assert.ok(m({ volume: ['/data'] }));
    assert.ok(m({ volume: ['/host/data'] }));
    assert.ok(!m({ volume: ['/other'] }));
    assert.ok(m({ health: ['none'] }));
    assert.ok(!m({ health: ['healthy'] }));
    assert.ok(m({ isolation: ['container'] }) && m({ isolation: ['process'] }) && m({ isolation: ['default'] }));
    assert.ok(!m({ isolation: ['vm'] }));
    assert.ok(m({ publish: ['8080'] }) && m({ publish: ['8000-8090/tcp'] }));
    assert.ok(!m({ publish: ['80'] }) && !m({ publish: ['8080/udp'] }));
    assert.ok(m({ expose: ['80'] }) && m({ expose: ['443/tcp'] }));
    assert.ok(!m({ expose: ['8080'] }));
    assert.ok(m({ status: ['running'], label: ['tier'] }), 'different keys: all');
    assert.ok(!m({ status: ['running'], label: ['nope'] }));
  });

  test('exited, ancestor, before and since', () => {
    const exited = record({ state: 'exited', exitCode: 3, startedAt: 1, finishedAt: 2 });
    assert.ok(m({ exited: ['3'] }, exited));
    assert.ok(!m({ exited: ['0'] }, exited));
    assert.ok(!m({ exited: ['0'] }, record({ state: 'created' })), 'never ran: no exit code');
    const withAncestors = { ...ctx, ancestorIds: new Set(['sha256:' + 'a'.repeat(64)]) };
    assert.ok(m({}, undefined, withAncestors));
    assert.ok(!m({}, undefined, { ...ctx, ancestorIds: new Set<string>() }));
    const created = record().createdAt;
    assert.ok(m({}, undefined, { ...ctx, before: created + 1 }));
    assert.ok(!m({}, undefined, { ...ctx, before: created }));
    assert.ok(m({}, undefined, { ...ctx, since: created - 1 }));
    assert.ok(!m({}, undefined, { ...ctx, since: created }));
  });

  test('ancestorIds: the image and the images built on it', () => {
    const img = (id: string, layers: string[]) =>
      ({ id, config: { rootfs: { type: 'layers', diff_ids: layers } } }) as unknown as ImageRecord;
    const base = img('base', ['l1']);
    const child = img('child', ['l1', 'l2']);
    const other = img('other', ['l9', 'l2']);
    assert.deepEqual(ancestorIds(base, [base, child, other]), ['base', 'child']);
    assert.deepEqual(ancestorIds(child, [base, child, other]), ['child']);
    assert.deepEqual(ancestorIds(undefined, [base]), []);
  });
});

describe('PORTS column (docker DisplayablePorts)', () => {
  const p = (ip: string, privatePort: number, publicPort: number, type = 'tcp'): PortEntry => ({
    ip,
    privatePort,
    publicPort,
    type,
  });
  test('published, exposed-only, ranges, IPv6', () => {
    assert.equal(displayPorts([]), '');
    assert.equal(displayPorts([p('0.0.0.0', 80, 8080)]), '0.0.0.0:8080->80/tcp');
    assert.equal(displayPorts([p('', 80, 0)]), '80/tcp');
    assert.equal(
      displayPorts([p('0.0.0.0', 80, 8080), p('::', 80, 8080), p('', 443, 0)]),
      '443/tcp, 0.0.0.0:8080->80/tcp, :::8080->80/tcp',
    );
    assert.equal(
      displayPorts([p('0.0.0.0', 8001, 8001), p('0.0.0.0', 8000, 8000)]),
      '0.0.0.0:8000-8001->8000-8001/tcp',
    );
    assert.equal(displayPorts([p('', 53, 0, 'udp'), p('', 54, 0, 'udp'), p('', 60, 0, 'udp')]), '53-54/udp, 60/udp');
  });
});

describe('listInstances (fake driver)', () => {
  const base = mkdtempSync(join(tmpdir(), 'hull-unit-list-'));
  let engine: Engine;
  const ids: Record<string, string> = {};

  before(async () => {
    const rootfs = join(base, 'rootfs');
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    writeFileSync(join(rootfs, 'bin/app'), '#!/bin/sh\n');
    await createTar({ file: join(base, 'rootfs.tar'), cwd: rootfs, portable: true }, ['bin']);
    engine = new Engine({ root: join(base, 'root'), self: ['/bin/false'], drivers: { container: new FakeDriver() } });
    await engine.images.importTar(join(base, 'rootfs.tar'), 'app:1');
    for (const [name, labels] of [
      ['one', { tier: 'a' }],
      ['two', { tier: 'b' }],
      ['three', {}],
    ] as const) {
      const rec = await createInstance(engine, {
        kind: 'container',
        image: 'app:1',
        name,
        command: ['/bin/app'],
        network: 'none',
        labels,
      });
      ids[name] = rec.id;
      // distinct creation times for before/since
      await new Promise((r) => setTimeout(r, 5));
    }
    await startInstance(engine, engine.store.lookup('two'));
    await startInstance(engine, engine.store.lookup('three'));
    await stopInstance(engine, engine.store.lookup('three'), 0);
  });

  after(async () => {
    for (const r of engine.store.list()) await removeInstance(engine, r, { force: true });
    engine.close();
    rmSync(base, { recursive: true, force: true });
  });

  const names = async (o: Parameters<typeof listInstances>[1]) => (await listInstances(engine, o)).map((r) => r.name);

  test('running by default, newest first; -a; -n; -l', async () => {
    assert.deepEqual(await names({}), ['two']);
    assert.deepEqual(await names({ all: true }), ['three', 'two', 'one']);
    assert.deepEqual(await names({ last: 2 }), ['three', 'two'], '-n implies -a');
    assert.deepEqual(await names({ latest: true }), ['three']);
    assert.deepEqual(await names({ last: -1 }), ['two'], '-n -1: no limit');
  });

  test('filters through the engine', async () => {
    assert.deepEqual(await names({ filters: { status: ['exited'] } }), ['three'], 'status implies -a');
    assert.deepEqual(await names({ filters: { status: ['created', 'exited'] } }), ['three', 'one']);
    assert.deepEqual(await names({ all: true, filters: { label: ['tier'] } }), ['two', 'one']);
    const code = String(engine.store.lookup('three').exitCode);
    assert.deepEqual(await names({ all: true, filters: { exited: [code] } }), ['three'], 'not the never-started one');
    assert.deepEqual(await names({ filters: { exited: [code] } }), [], 'exited does not imply -a (docker)');
    assert.deepEqual(await names({ filters: { before: ['three'] } }), ['two', 'one'], 'before implies -a');
    assert.deepEqual(await names({ filters: { since: ['one'] } }), ['three', 'two']);
    assert.deepEqual(await names({ all: true, filters: { ancestor: ['app:1'] } }), ['three', 'two', 'one']);
    assert.deepEqual(await names({ all: true, filters: { ancestor: ['nosuch:1'] } }), []);
    assert.deepEqual(await names({ all: true, filters: { network: ['none'] } }), ['three', 'two', 'one']);
    assert.deepEqual(await names({ all: true, filters: { isolation: ['vm'] } }), []);
    await assert.rejects(listInstances(engine, { filters: { foo: ['x'] } }), { message: "invalid filter 'foo'" });
    await assert.rejects(listInstances(engine, { filters: { before: ['nosuch'] } }), /nosuch/);
  });
});
