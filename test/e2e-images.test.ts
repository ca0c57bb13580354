/**
 * End to end: events, images (import of a tarball made with tar, images, tag, rmi) and `system info`.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  copyFileSync,
  chmodSync,
} from 'node:fs';
import { join } from 'node:path';
import { DIST, HullRoot, jsonLines, waitFor } from './helpers/hull.js';

const root = new HullRoot('images');
const work = mkdtempSync('/tmp/hull-test-images-work-');
after(async () => {
  await root.dispose();
  rmSync(work, { recursive: true, force: true });
});

interface Event {
  time: number;
  Type: string;
  Action: string;
  id: string;
  Actor: { ID: string; Attributes: Record<string, string> };
}
const parseEvents = (out: string) =>
  out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Event);

describe('events', () => {
  test('events --since 1m --no-follow --format json: create, start, die, destroy of a run --rm', async () => {
    assert.equal((await root.hull('run', '--rm', '--name', 'ev', 'busybox', 'sh', '-c', 'exit 2')).code, 2);
    const evs = parseEvents(await root.ok('events', '--since', '1m', '--no-follow', '--format', 'json')).filter(
      (e) => e.Actor.Attributes.name === 'ev',
    );
    assert.deepEqual(
      evs.map((e) => e.Action),
      ['create', 'start', 'die', 'destroy'],
    );
    assert.equal(new Set(evs.map((e) => e.id)).size, 1);
    assert.match(evs[0]!.id, /^[0-9a-f]{64}$/);
    for (const e of evs) {
      assert.equal(e.Type, 'container');
      assert.equal(e.Actor.Attributes.image, 'busybox');
      assert.equal(e.Actor.ID, e.id);
      assert.ok(Date.now() / 1000 - e.time < 60);
    }
    assert.equal(evs[2]!.Actor.Attributes.exitCode, '2');
  });

  test('the table format, and --until', async () => {
    const out = await root.ok('events', '--since', '1m', '--no-follow');
    assert.match(out, /^\S+Z container create [0-9a-f]{64} \(image=busybox, name=ev\)$/m);
    const none = await root.ok('events', '--since', '1h', '--until', '1h', '--format', 'json');
    assert.equal(none, '', 'nothing happened between an hour ago and an hour ago');
  });

  test('events follows until interrupted', async () => {
    // --since now (unix seconds): the follower shows what happens from here on, however long it takes to start
    const since = (Date.now() / 1000).toFixed(3);
    const child = spawn(
      process.execPath,
      ['--', DIST, '--root', root.dir, 'events', '--since', since, '--format', 'json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      await root.ok('run', '--rm', '--name', 'followed', 'busybox', 'true');
      await waitFor('the destroy event', () => out.includes('"destroy"'), 5000);
      const actions = parseEvents(out)
        .filter((e) => e.Actor.Attributes.name === 'followed')
        .map((e) => e.Action);
      assert.deepEqual(actions, ['create', 'start', 'die', 'destroy']);
      assert.ok(!out.includes('"ev"'), 'only events since --since');
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await closed, 0);
  });
});

describe('images', () => {
  const tarPath = join(work, 'rootfs.tar');

  test('import a tarball made with tar -C DIR -cf, then run it', async () => {
    const dir = join(work, 'rootfs');
    mkdirSync(join(dir, 'bin'), { recursive: true });
    mkdirSync(join(dir, 'etc'));
    copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'));
    chmodSync(join(dir, 'bin', 'busybox'), 0o755);
    for (const cmd of ['sh', 'cat', 'echo', 'ls']) symlinkSync('busybox', join(dir, 'bin', cmd));
    writeFileSync(join(dir, 'etc', 'motd'), 'hello from an imported image\n');
    const tar = spawnSync('tar', ['-C', dir, '-cf', tarPath, '.'], { encoding: 'utf8' });
    assert.equal(tar.status, 0, tar.stderr);

    const id = (await root.ok('import', tarPath, 'myimg:1.0')).trim();
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    const r = await root.hull('run', '--rm', 'myimg:1.0', '/bin/cat', '/etc/motd');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello from an imported image\n');
    // no Cmd in a plain import
    const none = await root.hull('run', '--rm', 'myimg:1.0');
    assert.equal(none.code, 125);
    assert.match(none.stderr, /^hull: no command specified[^\n]*\n$/);
  });

  test('import -c CMD/ENV/WORKDIR, and a gzip tarball', async () => {
    const gz = join(work, 'rootfs.tar.gz');
    assert.equal(spawnSync('sh', ['-c', `gzip -c ${tarPath} > ${gz}`]).status, 0);
    await root.ok(
      'import',
      '-c',
      'CMD ["/bin/sh", "-c", "echo $GREETING from $(pwd)"]',
      '-c',
      'ENV GREETING=hi',
      '-c',
      'WORKDIR /etc',
      gz,
      'withcmd',
    );
    const r = await root.hull('run', '--rm', 'withcmd');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi from /etc\n');
  });

  test('images lists them (table, json, -q)', async () => {
    const table = await root.ok('images');
    assert.match(table, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE/);
    assert.match(table, /^busybox\s+latest\s+[0-9a-f]{12}\s/m);
    assert.match(table, /^myimg\s+1\.0\s+[0-9a-f]{12}\s/m);
    assert.match(table, /^withcmd\s+latest\s/m);
    const json = jsonLines<{ Repository: string; Tag: string }>(await root.ok('images', '--format', 'json'));
    assert.equal(json.length, 3);
    assert.ok(json.some((i) => `${i.Repository}:${i.Tag}` === 'myimg:1.0'));
    assert.equal((await root.ok('images', '-q')).trim().split('\n').length, 3);
  });

  test('tag gives another name; the image runs under it', async () => {
    await root.ok('tag', 'myimg:1.0', 'other');
    const json = jsonLines<{ Repository: string; Tag: string; ID: string }>(
      await root.ok('images', '--format', 'json'),
    );
    const img = json.find((i) => `${i.Repository}:${i.Tag}` === 'myimg:1.0')!;
    assert.ok(
      json.some((i) => i.ID === img.ID && `${i.Repository}:${i.Tag}` === 'other:latest'),
      JSON.stringify(json),
    );
    assert.equal((await root.hull('run', '--rm', 'other', '/bin/echo', 'via-tag')).stdout, 'via-tag\n');
  });

  test('rmi: untag, refuse while an instance uses the last name, then delete', async () => {
    assert.match(await root.ok('rmi', 'other'), /^Untagged: other:latest\n$/);
    await root.ok('create', '--name', 'user', 'myimg:1.0', '/bin/echo');
    const refused = await root.hull('rmi', 'myimg:1.0');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^hull: image myimg:1\.0 is used by instance user[^\n]*\n$/);
    await root.ok('rm', 'user');
    const del = await root.ok('rmi', 'myimg:1.0', 'withcmd');
    assert.match(del, /Untagged: myimg:1\.0\n/);
    assert.match(del, /Deleted: sha256:[0-9a-f]{64}\n/);
    assert.equal(await root.ok('images', '--format', '{{.Repository}}:{{.Tag}}'), 'busybox:latest\n');
    assert.equal((await root.hull('run', '--rm', 'myimg:1.0', '/bin/echo')).code, 125);
  });
});

describe('system', () => {
  test('system info --format json: runtimes, cgroups, the accelerator', async () => {
    const info = (
      JSON.parse(await root.ok('system', 'info', '--format', 'json')) as {
        Hull: {
          root: string;
          defaultRuntime: string;
          runtimes: { name: string; usable: boolean; version: string }[];
          cgroups: string;
          virtualization: { accelerator: string; reason: string };
          images: number;
        };
        DockerRootDir: string;
      }
    ).Hull;
    assert.equal(info.root, root.dir);
    const names = info.runtimes.map((r) => r.name).sort();
    assert.deepEqual(names, ['crun', 'runc']);
    for (const r of info.runtimes) {
      assert.equal(r.usable, true, `${r.name} is usable`);
      assert.match(r.version, /^\d+\.\d+/);
    }
    assert.ok(names.includes(info.defaultRuntime));
    assert.ok(['v1', 'v2', 'hybrid'].includes(info.cgroups));
    const hardwareKvm = existsSync('/sys/module/kvm_intel') || existsSync('/sys/module/kvm_amd');
    assert.equal(info.virtualization.accelerator, hardwareKvm ? 'kvm' : 'tcg');
    assert.ok(info.virtualization.reason.length > 0);
    assert.equal(info.images, 1);
  });

  test('system info (table) and version', async () => {
    const out = await root.ok('system', 'info');
    assert.match(out, /^hull version:\s+\d+\.\d+\.\d+/m);
    assert.match(out, /^virtualization:\s+(tcg|kvm) \(/m);
    assert.match(await root.ok('version'), /^hull \d+\.\d+\.\d+\n$/);
    assert.match(await root.ok('--version'), /^\d+\.\d+\.\d+\n$/);
  });
});

test('leaves nothing behind', () => root.cleanupAndCheck());
