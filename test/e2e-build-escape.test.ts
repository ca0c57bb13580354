/**
 * End to end: a hostile build context, stage or archive cannot bring host files into an image, and
 * mount targets that are symlinks in an image cannot put mounts (or new directories) on the host.
 *
 * Docker's rule (BuildKit's fs.RootPath): every component of a COPY/ADD source is resolved inside the
 * source's root, a symlink as if that root were `/`; so `etcdir -> /etc` makes `etcdir/shadow` name
 * `<context>/etc/shadow` ("not found"), and a symlink found while copying a tree is copied as a link.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HullRoot } from './helpers/hull.js';

const root = new HullRoot('escape');
const work = mkdtempSync('/tmp/hull-test-escape-work-');
/** a host directory a hostile context points at, holding a "secret" */
const host = mkdtempSync('/tmp/hull-test-escape-host-');
const SECRET = `HOST-SECRET-${process.pid}-${Date.now()}`;
after(async () => {
  await root.dispose();
  rmSync(work, { recursive: true, force: true });
  rmSync(host, { recursive: true, force: true });
});

function write(dir: string, files: Record<string, string>): string {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  return dir;
}

/** Build `containerfile` in `ctx` as `tag`. */
function build(ctx: string, tag: string, containerfile: string) {
  const f = join(ctx, `Containerfile.${tag}`);
  writeFileSync(f, containerfile);
  return root.hull('build', '-t', tag, '-f', f, ctx);
}

/** No file under the hull root (layers, blobs, temp areas) holds the host's secret. */
function assertSecretNowhere(): void {
  const r = spawnSync('grep', ['-rl', '--binary-files=text', '--', SECRET, root.dir], { encoding: 'utf8' });
  assert.equal(r.stdout, '', `the host's secret leaked into the hull root: ${r.stdout}`);
}

const NOT_FOUND = /file not found in build context or excluded by \.containerignore\/\.dockerignore/;

describe('build context escapes', () => {
  let ctx = '';
  before(() => {
    write(host, { secret: SECRET + '\n', 'sub/inner': SECRET + '\n' });
    spawnSync('tar', ['-cf', join(host, 's.tar'), '-C', host, 'secret']);
    ctx = write(join(work, 'ctx'), {
      'etc/inside': 'inside the context\n',
      'realdir/f': 'real f\n',
      'hidden/f': 'hidden\n',
      '.dockerignore': 'hidden\nignored-link\n',
    });
    symlinkSync(host, join(ctx, 'etcdir')); // absolute, out of the context
    mkdirSync(join(ctx, 'nested'));
    symlinkSync(host, join(ctx, 'nested', 'link')); // in a subdirectory
    symlinkSync('/', join(ctx, 'root')); // the host's root
    const depth = ctx.split('/').filter(Boolean).length;
    symlinkSync(Array(depth).fill('..').join('/'), join(ctx, 'up')); // relative, climbing to /
    symlinkSync(join(host, 'secret'), join(ctx, 'filelink')); // the last component
    symlinkSync('/realdir', join(ctx, 'inner')); // absolute, resolved in the context
    symlinkSync('hidden', join(ctx, 'via-hidden')); // into an ignored directory
    symlinkSync('realdir', join(ctx, 'ignored-link')); // ignored itself
    symlinkSync('loop', join(ctx, 'loop'));
    mkdirSync(join(ctx, 'tree'));
    writeFileSync(join(ctx, 'tree', 'plain'), 'plain\n');
    symlinkSync(host, join(ctx, 'tree', 'hostlink')); // found while copying a tree
    symlinkSync(join(host, 'secret'), join(ctx, 'tree', 'secretlink'));
  });

  const hostRel = () => host.slice(1);
  const cases: [string, () => string][] = [
    ['COPY through a symlink to a host directory', () => 'COPY etcdir/secret /s'],
    ['ADD through a symlink to a host directory', () => 'ADD etcdir/secret /s'],
    ['COPY through a symlink in a subdirectory', () => 'COPY nested/link/secret /s'],
    ['COPY through root -> /', () => `COPY root/${hostRel()}/secret /s`],
    ['COPY through a relative link climbing out (up -> ../../..)', () => `COPY up/${hostRel()}/secret /s`],
    ['COPY of a whole directory through a link', () => 'COPY etcdir/sub /sub/'],
    ['COPY of a directory named with a trailing slash through a link', () => 'COPY etcdir/ /d/'],
    ['COPY with a wildcard through a link', () => 'COPY etc*/secr* /s/'],
    ['COPY of a symlink (the last component) to a host file', () => 'COPY filelink /s'],
    ['ADD of a host archive through a link', () => 'ADD etcdir/s.tar /x/'],
    ['COPY through a symlink into an ignored directory', () => 'COPY via-hidden/f /f'],
    ['COPY through a symlink that is ignored itself', () => 'COPY ignored-link/f /f'],
  ];
  for (const [name, line] of cases) {
    test(`${name}: not found, as docker says; nothing of the host's`, async () => {
      const tag = `esc-${cases.findIndex((c) => c[0] === name)}`;
      const r = await build(ctx, tag, `FROM busybox\n${line()}\n`);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, NOT_FOUND);
      assert.match(r.stderr, /Containerfile\.esc-\d+:2: /);
      assert.ok(!r.stderr.includes(SECRET));
      assert.ok(!(await root.ok('images')).includes(tag));
      assertSecretNowhere();
    });
  }

  test('a symlink loop fails with "too many levels of symbolic links"', async () => {
    const r = await build(ctx, 'esc-loop', 'FROM busybox\nCOPY loop/x /x\n');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /too many levels of symbolic links/);
  });

  test('symlinks are resolved with the context as root; links found in a tree are copied as links', async () => {
    const r = await build(
      ctx,
      'esc-ok',
      'FROM busybox\nCOPY inner/f /f\nCOPY etcdir/../etc/inside /inside\nCOPY tree /tree/\nCOPY inner /innerdir/\nCOPY inner/* /globbed/\n',
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = await root.ok(
      'run',
      '--rm',
      'esc-ok',
      'sh',
      '-c',
      'cat /f /inside /tree/plain /innerdir/f /globbed/f; readlink /tree/hostlink; readlink /tree/secretlink; cat /tree/secretlink 2>/dev/null || echo dangling',
    );
    assert.equal(
      out,
      `real f\ninside the context\nplain\nreal f\nreal f\n${host}\n${join(host, 'secret')}\ndangling\n`,
    );
    assertSecretNowhere();
  });

  test('COPY --from resolves links inside the source stage, never on the host', async () => {
    const stage = [
      'FROM busybox AS src',
      `RUN ln -s ${host} /evil && ln -s / /rootlink && mkdir /real && echo in-stage > /real/f && ln -s /real /lnk`,
    ].join('\n');
    for (const [i, line] of [
      `COPY --from=src /evil/secret /s`,
      `COPY --from=src /rootlink${host}/secret /s`,
      `COPY --from=src /evil /e/`,
    ].entries()) {
      const r = await build(ctx, `esc-from-${i}`, `${stage}\nFROM busybox\n${line}\n`);
      assert.equal(r.code, 1, `${line}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /no such file in the source stage or image/);
    }
    const ok = await build(
      ctx,
      'esc-from-ok',
      `${stage}\nFROM busybox\nCOPY --from=src /lnk/f /f\nCOPY --from=src /lnk /lnkdir/\n`,
    );
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(await root.ok('run', '--rm', 'esc-from-ok', 'cat', '/f', '/lnkdir/f'), 'in-stage\nin-stage\n');
    assertSecretNowhere();
  });

  test("--chown reads the image's /etc/passwd through its links inside the image, never the host's", async () => {
    writeFileSync(join(host, 'passwd'), 'hostonly:x:777:777::/:/bin/sh\n');
    const inImage = await build(
      ctx,
      'esc-chown',
      'FROM busybox\nRUN cp /etc/passwd /etc/passwd.real && echo "app:x:4242:4242::/:/bin/sh" >> /etc/passwd.real && ln -sf /etc/passwd.real /etc/passwd\nCOPY --chown=app realdir/f /owned\n',
    );
    assert.equal(inImage.code, 0, inImage.stdout + inImage.stderr);
    assert.equal(await root.ok('run', '--rm', 'esc-chown', 'stat', '-c', '%u', '/owned'), '4242\n');
    const out = await build(
      ctx,
      'esc-chown-host',
      `FROM busybox\nRUN ln -sf ${host}/passwd /etc/passwd\nCOPY --chown=hostonly realdir/f /owned\n`,
    );
    assert.equal(out.code, 1);
    assert.match(out.stderr, /unable to find user hostonly: no matching entries in the image's \/etc\/passwd/);
  });

  test('ADD of a hostile archive (.., absolute paths, writing through a symlink, a hard link out) keeps it all inside, and keeps absolute links as written', async () => {
    const victim = mkdtempSync('/tmp/hull-test-escape-victim-');
    try {
      const tarPath = join(ctx, 'evil.tar');
      const py = `
import tarfile, io, sys
def f(t, name, data=b"evil\\n", **kw):
    i = tarfile.TarInfo(name); i.size = len(data)
    for k, v in kw.items(): setattr(i, k, v)
    t.addfile(i, io.BytesIO(data))
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    f(t, "ok.txt", b"ok\\n")
    f(t, "../../../../../../../.." + sys.argv[2] + "/dotdot")
    f(t, sys.argv[2] + "/absolute")
    l = tarfile.TarInfo("out"); l.type = tarfile.SYMTYPE; l.linkname = sys.argv[2]; t.addfile(l)
    f(t, "out/through-link")
    h = tarfile.TarInfo("hard"); h.type = tarfile.LNKTYPE; h.linkname = sys.argv[3]; t.addfile(h)
`;
      const made = spawnSync('python3', ['-c', py, tarPath, victim, join(host, 'secret')], { encoding: 'utf8' });
      assert.equal(made.status, 0, made.stderr);
      const r = await build(ctx, 'esc-tar', 'FROM busybox\nADD evil.tar /x/\n');
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(readdirSync(victim), [], 'nothing was written on the host');
      assert.match(r.stdout, /WARNING: ADD evil\.tar: skipped 3 entries: /);
      assert.match(r.stdout, /"\.\.\/[^"]*\/dotdot": its path leaves the layer/);
      assert.match(r.stdout, /"out\/through-link": a parent is a symlink or not a directory/);
      assert.match(r.stdout, /"hard": link target .* is not a file extracted earlier in this layer/);
      const out = await root.ok(
        'run',
        '--rm',
        'esc-tar',
        'sh',
        '-c',
        `cat /x/ok.txt /x${victim}/absolute; readlink /x/out; ls /x`,
      );
      assert.equal(
        out,
        `ok\nevil\n${victim}\nok.txt\nout\ntmp\n`,
        'absolute paths land inside, links are kept as written',
      );
      assertSecretNowhere();
    } finally {
      rmSync(victim, { recursive: true, force: true });
    }
  });

  for (const runtime of ['crun', 'runc']) {
    test(`${runtime}: mount targets, --tmpfs and -w under symlinks to host paths in the image stay inside the container`, async () => {
      const victim = mkdtempSync('/tmp/hull-test-escape-victim-');
      const src = mkdtempSync(join(work, 'vol-'));
      writeFileSync(join(src, 'in-volume'), 'vol\n');
      try {
        // the links' target exists in the image too: both runtimes resolve the targets inside the rootfs
        const r = await build(
          ctx,
          'esc-mnt',
          `FROM busybox\nRUN mkdir -p ${victim} && for l in mnt tmp wd; do ln -s ${victim} /$l-evil; done\n`,
        );
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const args = ['-v', `${src}:/mnt-evil/vol`, '--tmpfs', '/tmp-evil/t', '-w', '/wd-evil/sub'];
        const probe = `cat ${victim}/vol/in-volume; pwd; grep -c ' ${victim}/t ' /proc/self/mountinfo`;
        const out = await root.ok('run', '--rm', '--runtime', runtime, ...args, 'esc-mnt', 'sh', '-c', probe);
        assert.equal(
          out,
          `vol\n${victim}/sub\n1\n`,
          'the mounts and the workdir are where the links lead inside the container',
        );
        assert.deepEqual(readdirSync(victim), [], 'nothing was mounted or created on the host');
        // dangling inside the image: runc creates the targets inside the rootfs (as docker does), crun refuses
        const d = await build(
          ctx,
          'esc-mnt2',
          `FROM busybox\nRUN for l in mnt tmp wd; do ln -s ${victim} /$l-evil; done\n`,
        );
        assert.equal(d.code, 0, d.stdout + d.stderr);
        const r2 = await root.hull('run', '--rm', '--runtime', runtime, ...args, 'esc-mnt2', 'sh', '-c', probe);
        if (runtime === 'runc') assert.equal(r2.stdout, `vol\n${victim}/sub\n1\n`, r2.stderr);
        else assert.match(r2.stderr, /crun create failed: openat2 `mnt-evil`: No such file or directory/);
        assert.deepEqual(readdirSync(victim), [], 'nothing was mounted or created on the host');
      } finally {
        rmSync(victim, { recursive: true, force: true });
      }
    });
  }

  test('leaves nothing behind', () => root.cleanupAndCheck());
});
