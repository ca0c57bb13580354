/**
 * End to end: `hull inspect`, `image inspect` and `network inspect` give docker's documents (Engine API v1.41),
 * and `ps` filters (docker's keys and semantics), -n, -l and the PORTS column, on real instances.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { HullRoot, jsonLines } from './helpers/hull.js';

const root = new HullRoot('inspect');
const vol = mkdtempSync('/tmp/hull-test-inspect-vol-');
after(async () => {
  await root.dispose();
  rmSync(vol, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: documents are read by path, as JSON
type Doc = any;
const ids: Record<string, string> = {};
let hostPort = '';

/** `ps` with these arguments: the names listed, in order. */
const ps = async (...args: string[]) =>
  jsonLines<{ Names: string }>(await root.ok('ps', '--format', 'json', ...args)).map((e) => e.Names);

describe('docker documents and ps', () => {
  before(async () => {
    const old = await root.hull('run', '--name', 'old', '-l', 'tier=batch', 'busybox', 'sh', '-c', 'exit 3');
    assert.equal(old.code, 3, old.stderr);
    ids.old = (await root.inspect('old')).Id;
    ids.idle = (
      await root.ok('create', '--name', 'idle', '--network', 'none', '-l', 'tier=db', 'busybox', 'true')
    ).trim();
    ids.web = (
      await root.ok(
        'run',
        '-d',
        '--name',
        'web',
        '-p',
        '80',
        '-v',
        `${vol}:/data:ro`,
        '--restart',
        'on-failure:2',
        '-l',
        'tier=web',
        '-l',
        'team=a',
        '-e',
        'FOO=bar',
        '--entrypoint',
        'sh',
        'busybox',
        '-c',
        'sleep 300',
      )
    ).trim();
  });

  test('inspect: the container document', async () => {
    const d: Doc = await root.inspect('web');
    assert.equal(d.Id, ids.web);
    assert.equal(d.Name, '/web');
    assert.match(d.Created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.equal(d.Path, 'sh');
    assert.deepEqual(d.Args, ['-c', 'sleep 300']);
    assert.equal(d.State.Status, 'running');
    assert.equal(d.State.Running, true);
    assert.equal(d.State.OOMKilled, false);
    assert.equal(d.State.Dead, false);
    assert.ok(d.State.Pid > 0);
    assert.equal(d.State.FinishedAt, '0001-01-01T00:00:00Z');
    const [img]: Doc[] = JSON.parse(await root.ok('image', 'inspect', 'busybox'));
    assert.equal(d.Image, img.Id);
    assert.match(d.Image, /^sha256:[0-9a-f]{64}$/);
    assert.equal(d.Platform, 'linux');
    assert.ok(existsSync(d.ResolvConfPath) && existsSync(d.HostsPath) && existsSync(d.HostnamePath));
    assert.ok(existsSync(d.LogPath));
    assert.equal(d.Config.Image, 'busybox');
    assert.deepEqual(d.Config.Entrypoint, ['sh']);
    assert.deepEqual(d.Config.Cmd, ['-c', 'sleep 300']);
    assert.deepEqual(d.Config.Labels, { tier: 'web', team: 'a' });
    assert.ok(d.Config.Env.includes('FOO=bar'));
    assert.deepEqual(d.Config.ExposedPorts, { '80/tcp': {} });
    assert.deepEqual(d.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 2 });
    assert.deepEqual(d.HostConfig.Binds, [`${vol}:/data:ro`]);
    assert.deepEqual(d.HostConfig.PortBindings, { '80/tcp': [{ HostIp: '', HostPort: '' }] });
    assert.equal(d.Mounts[0].Type, 'bind');
    assert.equal(d.Mounts[0].Source, vol);
    assert.equal(d.Mounts[0].Destination, '/data');
    assert.equal(d.Mounts[0].RW, false);
    assert.equal(d.Mounts[0].Mode, 'ro');
    const ns = d.NetworkSettings;
    assert.match(ns.IPAddress, /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(ns.Networks.hull.IPAddress, ns.IPAddress, "hull's default network is named hull");
    const [net]: Doc[] = JSON.parse(await root.ok('network', 'inspect', 'hull'));
    assert.equal(ns.Networks.hull.NetworkID, net.Id);
    assert.equal(ns.Networks.hull.Gateway, net.IPAM.Config[0].Gateway);
    hostPort = ns.Ports['80/tcp'][0].HostPort;
    assert.match(hostPort, /^\d+$/);
    assert.equal(ns.Ports['80/tcp'][0].HostIp, '0.0.0.0');
    assert.equal(d.Hull.Kind, 'container');
    assert.ok(d.Hull.SupervisorPid > 0);
  });

  test('inspect: stopped and never started instances', async () => {
    const old: Doc = await root.inspect('old');
    assert.equal(old.State.Status, 'exited');
    assert.equal(old.State.ExitCode, 3);
    assert.equal(old.State.Pid, 0);
    assert.notEqual(old.State.FinishedAt, '0001-01-01T00:00:00Z');
    assert.deepEqual(old.NetworkSettings.Ports, {});
    assert.equal(old.NetworkSettings.IPAddress, '');
    const idle: Doc = await root.inspect('idle');
    assert.equal(idle.State.Status, 'created');
    assert.equal(idle.State.StartedAt, '0001-01-01T00:00:00Z');
    assert.equal(idle.HostConfig.NetworkMode, 'none');
    assert.deepEqual(Object.keys(idle.NetworkSettings.Networks), ['none']);
  });

  test('image inspect and network inspect: docker fields', async () => {
    const [img]: Doc[] = JSON.parse(await root.ok('image', 'inspect', 'busybox'));
    assert.deepEqual(img.RepoTags, ['busybox:latest']);
    assert.deepEqual(img.Config.Cmd, ['sh']);
    assert.equal(img.Os, 'linux');
    assert.equal(img.RootFS.Type, 'layers');
    assert.equal(img.RootFS.Layers.length, img.Hull.Layers.length);
    for (const k of ['Parent', 'Comment', 'Created', 'Architecture', 'Size', 'VirtualSize', 'GraphDriver', 'Metadata'])
      assert.ok(k in img, k);
    const [net]: Doc[] = JSON.parse(await root.ok('network', 'inspect', 'hull'));
    assert.equal(net.Name, 'hull');
    assert.equal(net.Scope, 'local');
    assert.equal(net.Driver, 'bridge');
    assert.equal(net.Containers[ids.web!].Name, 'web');
    assert.match(net.Containers[ids.web!].IPv4Address, /\/\d+$/);
    assert.equal(net.Containers[ids.old!], undefined, 'a stopped instance holds no address');
  });

  test('ps: PORTS column, -n, -l', async () => {
    const table = await root.ok('ps');
    assert.match(table, /^INSTANCE ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+TYPE\s+NAMES$/m);
    // docker 20.10's form; the IPv6 half where hull's proxy serves [::] on this host
    assert.match(
      table,
      new RegExp(`Up .*\\s0\\.0\\.0\\.0:${hostPort}->80/tcp(, :::${hostPort}->80/tcp)?\\s+container\\s+web`),
    );
    assert.deepEqual(await ps(), ['web']);
    assert.deepEqual(await ps('-a'), ['web', 'idle', 'old']);
    assert.deepEqual(await ps('-n', '2'), ['web', 'idle'], '-n shows stopped ones too');
    assert.deepEqual(await ps('-l'), ['web']);
    assert.deepEqual(await ps('-l', '-f', 'status=exited'), ['old']);
  });

  test('ps --filter: each key', async () => {
    assert.deepEqual(await ps('-f', 'status=exited'), ['old'], 'status implies -a');
    assert.deepEqual(await ps('-f', 'status=created', '-f', 'status=exited'), ['idle', 'old'], 'same key: any');
    assert.deepEqual(await ps('-a', '-f', `id=${ids.idle!.slice(0, 8)}`), ['idle']);
    assert.deepEqual(await ps('-a', '-f', 'name=ld'), ['old']);
    assert.deepEqual(await ps('-a', '-f', 'name=^/web$'), ['web']);
    assert.deepEqual(await ps('-a', '-f', 'label=tier'), ['web', 'idle', 'old']);
    assert.deepEqual(await ps('-a', '-f', 'label=tier=db'), ['idle']);
    assert.deepEqual(await ps('-a', '-f', 'label=tier=web', '-f', 'label=team=a'), ['web']);
    assert.deepEqual(await ps('-a', '-f', 'label=tier', '-f', 'status=created'), ['idle'], 'different keys: all');
    assert.deepEqual(await ps('-a', '-f', 'exited=3'), ['old']);
    assert.deepEqual(await ps('-a', '-f', 'exited=0'), []);
    assert.deepEqual(await ps('-a', '-f', 'ancestor=busybox'), ['web', 'idle', 'old']);
    assert.deepEqual(await ps('-a', '-f', `ancestor=${(await root.inspect('web')).Image}`), ['web', 'idle', 'old']);
    assert.deepEqual(await ps('-a', '-f', 'ancestor=nosuch:1'), []);
    assert.deepEqual(await ps('-a', '-f', 'network=none'), ['idle']);
    assert.deepEqual(await ps('-a', '-f', 'network=hull'), ['web', 'old']);
    assert.deepEqual(await ps('-a', '-f', 'network=bridge'), ['web', 'old'], "docker's name for the default network");
    assert.deepEqual(await ps('-a', '-f', 'volume=/data'), ['web']);
    assert.deepEqual(await ps('-a', '-f', `volume=${vol}`), ['web']);
    assert.deepEqual(await ps('-a', '-f', 'health=none'), ['web', 'idle', 'old']);
    assert.deepEqual(await ps('-a', '-f', 'isolation=container'), ['web', 'idle', 'old']);
    assert.deepEqual(await ps('-a', '-f', 'isolation=process'), ['web', 'idle', 'old']);
    assert.deepEqual(await ps('-a', '-f', 'isolation=vm'), []);
    assert.deepEqual(await ps('-f', 'before=web'), ['idle', 'old'], 'before implies -a');
    assert.deepEqual(await ps('-f', 'since=old'), ['web', 'idle']);
    assert.deepEqual(await ps('-f', `publish=${hostPort}`), ['web']);
    assert.deepEqual(await ps('-f', `publish=${hostPort}/udp`), []);
    assert.deepEqual(await ps('-f', 'expose=80/tcp'), ['web']);
    assert.deepEqual(await ps('-f', 'expose=81'), []);
  });

  test('ps --filter: bad input', async () => {
    const bad = await root.hull('ps', '-f', 'foo=1');
    assert.equal(bad.code, 1, 'exit 1, as docker ps');
    assert.equal(bad.stderr, "hull: invalid filter 'foo'\n");
    const value = await root.hull('ps', '-f', 'status=up');
    assert.notEqual(value.code, 0);
    assert.equal(value.stderr, "hull: invalid filter 'status=up'\n");
    const shape = await root.hull('ps', '-f', 'status');
    assert.notEqual(shape.code, 0);
    assert.match(shape.stderr, /^hull: bad format of filter "status" \(expected name=value\)\n$/);
    const missing = await root.hull('ps', '-f', 'before=nosuch');
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /nosuch/);
  });

  test('leaves nothing behind', () => root.cleanupAndCheck());
});
