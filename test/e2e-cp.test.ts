/**
 * End to end: `hull cp` (docker cp's rules) both ways with a running and a stopped container (real overlay roots,
 * the stopped one's mounted for the copy and unmounted after), files, directories, `/.`, trailing slashes, `-` tar
 * streams, -a and -L, hostile symlinks in the container that must not reach the host, a VM from an image (hull's
 * agent; one short TCG VM running busybox's tar), `hull export` to a file and to stdout, and docker commit and
 * docker export through `hull daemon` with the real docker CLI. Ends with the leak check.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { type Daemon, startDaemon, stopIfRunning } from './helpers/daemon.js';
import { DIST, HullRoot } from './helpers/hull.js';

const qemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status === 0 ? false : 'needs QEMU';
const DOCKER = '/usr/bin/docker';
const dockerCli = existsSync(DOCKER) ? false : "needs the docker CLI of Debian's docker.io";

const root = new HullRoot('cp', { HULL_VM_CACHE: process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache' });
const work = mkdtempSync('/tmp/hull-test-cp-work-');
after(async () => {
  await root.dispose();
  rmSync(work, { recursive: true, force: true });
});

interface BinResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** hull with binary stdin and stdout (tar streams). */
function hullBin(args: string[], input?: Buffer): Promise<BinResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--', DIST, '--root', root.dir, ...args], {
      env: { ...process.env, ...root.env },
      stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    if (input) child.stdin!.end(input);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}

/** The names in a tar archive (GNU tar -t). */
function tarList(archive: Buffer | string): string[] {
  const r =
    typeof archive === 'string'
      ? spawnSync('tar', ['-tf', archive], { encoding: 'utf8' })
      : spawnSync('tar', ['-tf', '-'], { input: archive, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

/** A host tree: src/one (0640), src/sub/two (owned by 1234:1234), src/link -> one. */
function hostTree(): string {
  const src = join(work, 'src');
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'one'), 'one\n', { mode: 0o640 });
  writeFileSync(join(src, 'sub', 'two'), 'two\n');
  chownSync(join(src, 'sub', 'two'), 1234, 1234);
  return src;
}

/** The host mounts under one container's directory (its overlay root while mounted). */
const mountsOf = (id: string) =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[1]?.includes(`/${id}/`));

const fail = async (re: RegExp, ...args: string[]) => {
  const r = await root.hull(...args);
  assert.notEqual(r.code, 0, `hull ${args.join(' ')} should fail`);
  assert.match(r.stderr, re);
};

describe('hull cp with containers', () => {
  test('into and out of a running container: files, directories, /., trailing slashes, -a, -L', async () => {
    const src = hostTree();
    await root.ok('run', '-d', '--name', 'c1', '--network', 'none', 'busybox', 'sleep', '1000');
    await root.ok('cp', join(src, 'one'), 'c1:/tmp/'); // into a directory: its name
    await root.ok('cp', join(src, 'one'), 'c1:/tmp/renamed'); // a new file
    await root.ok('cp', src, 'c1:/tmp/'); // a directory into an existing one
    await root.ok('cp', src, 'c1:/tmp/newdir'); // a new directory: a copy
    await root.ok('exec', 'c1', 'mkdir', '/tmp/contents');
    await root.ok('cp', `${src}/.`, 'c1:/tmp/contents'); // only the contents
    await root.ok('cp', '-a', src, 'c1:/tmp/kept');
    await root.ok('cp', join(src, 'one'), 'c1:tmp/relative'); // a relative path in the instance: from its root
    const ls = await root.ok(
      'exec',
      'c1',
      'sh',
      '-c',
      'cd /tmp && for f in one renamed src/sub/two newdir/one contents/sub/two kept/sub/two; do stat -c "%n %a %u" $f; done; ls -d /tmp/contents/src 2>&1; stat -c %a /tmp/contents',
    );
    assert.equal(
      ls,
      [
        'one 640 0',
        'renamed 640 0',
        'src/sub/two 644 0', // without -a: the container's root owns it
        'newdir/one 640 0',
        'contents/sub/two 644 0',
        'kept/sub/two 644 1234', // -a: the owner is kept
        'ls: /tmp/contents/src: No such file or directory',
        '755',
      ].join('\n') + '\n',
    );
    assert.equal(await root.ok('exec', 'c1', 'cat', '/tmp/relative'), 'one\n');

    // out of it
    await root.ok(
      'exec',
      'c1',
      'sh',
      '-c',
      'mkdir -p /data/x && echo three > /data/x/three && echo hi > /data/hi && chown 7:7 /data/hi && ln -s /data/hi /data/link',
    );
    const out = join(work, 'out1');
    mkdirSync(out);
    await root.ok('cp', 'c1:/data', out);
    await root.ok('cp', 'c1:/data', join(out, 'copy'));
    mkdirSync(join(out, 'contents'));
    await root.ok('cp', 'c1:/data/.', join(out, 'contents'));
    await root.ok('cp', 'c1:/data/hi', join(out, 'hi.txt'));
    await root.ok('cp', 'c1:/data/hi', join(out, 'hi.txt')); // an existing file is replaced
    await root.ok('cp', '-a', 'c1:/data/hi', join(out, 'hi-a.txt'));
    await root.ok('cp', '-L', 'c1:/data/link', join(out, 'followed'));
    assert.equal(readFileSync(join(out, 'data', 'x', 'three'), 'utf8'), 'three\n');
    assert.equal(readFileSync(join(out, 'copy', 'hi'), 'utf8'), 'hi\n');
    assert.equal(readFileSync(join(out, 'contents', 'x', 'three'), 'utf8'), 'three\n');
    assert.ok(!existsSync(join(out, 'contents', 'data')));
    assert.equal(readlinkSync(join(out, 'data', 'link')), '/data/hi', 'a link is copied as a link, as it is');
    assert.equal(readFileSync(join(out, 'followed'), 'utf8'), 'hi\n');
    assert.equal(statSync(join(out, 'hi.txt')).uid, 0);
    assert.equal(statSync(join(out, 'hi-a.txt')).uid, 7);

    // docker's error conditions, each naming what failed
    await fail(/no such file or directory in c1: \/nope/, 'cp', 'c1:/nope', out);
    await fail(/c1:\/data\/hi\/ is not a directory/, 'cp', 'c1:/data/hi/', out);
    await fail(/destination directory .*\/nodir\/ does not exist/, 'cp', 'c1:/data/hi', `${out}/nodir/`);
    await fail(/parent directory of .*\/nodir\/x does not exist/, 'cp', 'c1:/data/hi', `${out}/nodir/x`);
    await fail(/cannot copy a directory to a file/, 'cp', 'c1:/data', join(out, 'hi.txt'));
    await fail(/cannot copy a directory to a file: c1:\/data\/hi is a file/, 'cp', src, 'c1:/data/hi');
    await fail(/the destination directory c1:\/nodir\/ does not exist/, 'cp', join(src, 'one'), 'c1:/nodir/');
    await fail(/no such file or directory on the host/, 'cp', join(work, 'nope'), 'c1:/tmp');
    await fail(/exactly one side as INSTANCE:PATH/, 'cp', join(src, 'one'), join(work, 'x'));
  });

  test('tar streams with -: from stdin into a directory, to stdout', async () => {
    const src = hostTree();
    const tar = spawnSync('tar', ['-C', src, '-cf', '-', '.']).stdout;
    const put = await hullBin(['cp', '-', 'c1:/tmp/contents/'], tar);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(await root.ok('exec', 'c1', 'cat', '/tmp/contents/sub/two'), 'two\n');
    const notDir = await hullBin(['cp', '-', 'c1:/data/hi'], tar);
    assert.notEqual(notDir.code, 0);
    assert.match(notDir.stderr, /c1:\/data\/hi must be an existing directory/);
    const got = await hullBin(['cp', 'c1:/data', '-']);
    assert.equal(got.code, 0, got.stderr);
    assert.deepEqual(tarList(got.stdout).sort(), ['data/', 'data/hi', 'data/link', 'data/x/', 'data/x/three']);
  });

  test('a hostile symlink in the container does not reach the host', async () => {
    const host = mkdtempSync('/tmp/hull-test-cp-host-');
    writeFileSync(join(host, 'secret'), 'host secret\n');
    try {
      // links that point at the host directory's path, absolute and climbing, and the same path in the container
      await root.ok(
        'exec',
        'c1',
        'sh',
        '-c',
        `mkdir -p ${host} && echo container > ${host}/secret && ln -s ${host} /trap && ln -s ../../../../../..${host} /tmp/trap2 && ln -s ${host}/secret /tmp/secret-link`,
      );
      const src = hostTree();
      await root.ok('cp', join(src, 'one'), 'c1:/trap/');
      await root.ok('cp', join(src, 'one'), 'c1:/tmp/trap2/via-climbing');
      await root.ok('cp', src, 'c1:/trap/');
      assert.deepEqual(readdirSync(host), ['secret'], 'nothing written on the host');
      assert.equal(readFileSync(join(host, 'secret'), 'utf8'), 'host secret\n');
      // it landed where the container sees it
      assert.equal(
        await root.ok('exec', 'c1', 'cat', `${host}/one`, `${host}/via-climbing`, `${host}/src/one`),
        'one\none\none\n',
      );
      // out: -L follows the link inside the container's root, never onto the host's file
      const out = join(work, 'out2');
      mkdirSync(out);
      await root.ok('cp', '-L', 'c1:/tmp/secret-link', join(out, 'f'));
      assert.equal(readFileSync(join(out, 'f'), 'utf8'), 'container\n');
      await root.ok('cp', 'c1:/trap/', join(out, 'd'));
      assert.equal(readFileSync(join(out, 'd', 'secret'), 'utf8'), 'container\n');
      // the link itself is copied as a link; the copy writes nothing through it
      await root.ok('cp', 'c1:/tmp/secret-link', join(out, 'l'));
      assert.ok(lstatSync(join(out, 'l')).isSymbolicLink());
      await root.ok('cp', 'c1:/tmp/secret-link', join(out, 'l'));
      assert.equal(readFileSync(join(host, 'secret'), 'utf8'), 'host secret\n');
    } finally {
      rmSync(host, { recursive: true, force: true });
    }
  });

  test('a stopped container: both ways, its root unmounted after; export to a file and to stdout', async () => {
    const id = (
      await root.ok('create', '--name', 'c2', '--network', 'none', 'busybox', 'sh', '-c', 'cat /tmp/in.txt')
    ).trim();
    const rootMounts = () => mountsOf(id);
    const src = hostTree();
    // created: its root is mounted already, and stays so
    await root.ok('cp', join(src, 'one'), 'c2:/tmp/in.txt');
    assert.equal(await root.ok('start', '-a', 'c2'), 'one\n');
    // exited: its root is mounted for each copy and unmounted after it
    assert.deepEqual(rootMounts(), []);
    await root.ok('cp', src, 'c2:/srcdir');
    assert.deepEqual(rootMounts(), [], 'the stopped root is unmounted after the copy');
    const out = join(work, 'out3');
    mkdirSync(out);
    await root.ok('cp', 'c2:/srcdir', out);
    assert.equal(readFileSync(join(out, 'srcdir', 'sub', 'two'), 'utf8'), 'two\n');
    assert.deepEqual(rootMounts(), []);

    const file = join(work, 'c2.tar');
    await root.ok('export', '-o', file, 'c2');
    const names = tarList(file);
    assert.ok(names.includes('./tmp/in.txt'), names.slice(0, 5).join(' '));
    assert.ok(names.includes('./bin/busybox'));
    const stdout = await hullBin(['export', 'c2']);
    assert.equal(stdout.code, 0, stdout.stderr);
    assert.ok(tarList(stdout.stdout).includes('./srcdir/sub/two'));
    assert.deepEqual(rootMounts(), []);
    await fail(/no such instance|not found|No such/i, 'export', 'nope');
    await root.ok('rm', '-f', 'c1', 'c2');
  });
});

describe('hull cp with a VM from an image (hull agent)', { skip: qemu }, () => {
  test('both ways through tar in the guest; - to stdout', async () => {
    const src = hostTree();
    await root.ok('run', '-d', '--name', 'v1', '--isolation', 'vm', '--network', 'none', 'busybox', 'sleep', '1000');
    await root.ok('cp', src, 'v1:/tmp/');
    await root.ok('cp', '-a', src, 'v1:/kept');
    await root.ok('cp', join(src, 'one'), 'v1:/tmp/renamed');
    assert.equal(
      await root.ok(
        'exec',
        'v1',
        'sh',
        '-c',
        'stat -c "%n %a %u" /tmp/src/one /tmp/src/sub/two /kept/sub/two /tmp/renamed',
      ),
      '/tmp/src/one 640 0\n/tmp/src/sub/two 644 0\n/kept/sub/two 644 1234\n/tmp/renamed 640 0\n',
    );
    const out = join(work, 'out4');
    mkdirSync(out);
    await root.ok('cp', 'v1:/tmp/src', join(out, 'back'));
    assert.equal(readFileSync(join(out, 'back', 'sub', 'two'), 'utf8'), 'two\n');
    const got = await hullBin(['cp', 'v1:/tmp/src/one', '-']);
    assert.equal(got.code, 0, got.stderr);
    assert.deepEqual(tarList(got.stdout), ['one']);
    await fail(/no such file or directory in v1: \/nope/, 'cp', 'v1:/nope', out);
    await fail(/cannot copy a directory to a file: v1:\/tmp\/renamed is a file/, 'cp', src, 'v1:/tmp/renamed');
    await fail(
      /cannot export v1: its root is not a file system on the host/,
      'export',
      '-o',
      join(work, 'v.tar'),
      'v1',
    );
    await root.ok('rm', '-f', 'v1');
  });
});

describe('docker commit and docker export through hull daemon', { skip: dockerCli }, () => {
  test('commit with changes, comment and author; export lists the files', async () => {
    const socket = join(work, 'hull.sock');
    const daemon: Daemon = await startDaemon(root, socket);
    const docker = (...args: string[]): Promise<BinResult> =>
      new Promise((resolve, reject) => {
        const child = spawn(DOCKER, args, {
          env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(work, 'docker-config') },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const out: Buffer[] = [];
        let stderr = '';
        child.stdout!.on('data', (b: Buffer) => out.push(b));
        child.stderr!.setEncoding('utf8').on('data', (s: string) => {
          stderr += s;
        });
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
      });
    const ok = async (...args: string[]) => {
      const r = await docker(...args);
      assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    try {
      await ok('run', '--name', 'dc1', '--network', 'none', 'busybox', 'sh', '-c', 'echo committed > /made');
      const id = (
        await ok(
          'commit',
          '-c',
          'ENV MADE=yes',
          '-c',
          'CMD ["cat", "/made"]',
          '-m',
          'a message',
          '-a',
          'someone',
          'dc1',
          'made:1',
        )
      )
        .toString()
        .trim();
      assert.match(id, /^sha256:[0-9a-f]{64}$/);
      assert.equal((await ok('run', '--rm', '--network', 'none', 'made:1')).toString(), 'committed\n');
      assert.equal(
        (await ok('run', '--rm', '--network', 'none', 'made:1', 'sh', '-c', 'echo $MADE')).toString(),
        'yes\n',
      );
      const img = JSON.parse((await ok('image', 'inspect', 'made:1')).toString()) as {
        Author: string;
        Comment: string;
      }[];
      assert.equal(img[0]!.Author, 'someone');
      const hist = (await ok('history', '--no-trunc', 'made:1')).toString();
      assert.match(hist, /a message/);
      const bad = await docker('commit', 'nope', 'x:1');
      assert.notEqual(bad.code, 0);

      const exported = await ok('export', 'dc1');
      const names = tarList(exported);
      assert.ok(names.includes('./made'), names.slice(0, 5).join(' '));
      await ok('rm', 'dc1');
      await ok('rmi', 'made:1');
    } finally {
      await stopIfRunning(daemon);
    }
  });
});

test('no leaks', async () => {
  await root.cleanupAndCheck();
});
