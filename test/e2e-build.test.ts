/**
 * End to end: `hull build` — RUN/COPY/ADD/metadata steps, the layer cache, multi-stage builds and
 * --target, FROM scratch, failures, .dockerignore, a killed build — through the built CLI.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { DIST, HullRoot, waitFor } from './helpers/hull.js';

const root = new HullRoot('build');
const work = mkdtempSync('/tmp/hull-test-build-work-');
after(async () => {
  await root.dispose();
  rmSync(work, { recursive: true, force: true });
});

function write(dir: string, files: Record<string, string>): string {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  return dir;
}

const MAIN = `FROM busybox
RUN mkdir -p /data && echo built > /data/built.txt && rm /bin/vi
COPY a.txt b.txt /app/
COPY dir /app/dir
COPY *.log /app/logs/
COPY --chown=nobody:1234 a.txt /app/owned.txt
ENV GREETING=hello-env
WORKDIR /work/here
USER 65534
LABEL org.example.role=test
EXPOSE 8080
CMD ["sh", "-c", "echo $GREETING; pwd; id -u"]
`;
const MAIN_STEPS = 12;

const ctx = write(join(work, 'main'), {
  Containerfile: MAIN,
  'a.txt': 'file a\n',
  'b.txt': 'file b\n',
  'one.log': '1\n',
  'two.log': '2\n',
  'dir/sub/deep.txt': 'deep\n',
  'secret.txt': 'do not copy\n',
  '.dockerignore': 'secret.txt\n',
});

/** The STEP headers and cache notes of a build's output. */
function steps(out: string): { header: string; cached: boolean }[] {
  const lines = out.split('\n');
  const res: { header: string; cached: boolean }[] = [];
  lines.forEach((l, i) => {
    if (l.startsWith('STEP ')) res.push({ header: l, cached: (lines[i + 1] ?? '').startsWith('--> Using cache') });
  });
  return res;
}

describe('hull build', () => {
  let firstId = '';

  test('a 12-step Containerfile: RUN, COPY (files, dir, wildcard, --chown), ENV, WORKDIR, USER, LABEL, EXPOSE, CMD', async () => {
    const r = await root.hull('build', '-t', 'built:1', '-t', 'built:alias', ctx);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(steps(r.stdout).length, MAIN_STEPS);
    assert.match(r.stdout, /^STEP 2\/12: RUN mkdir/m);
    assert.match(r.stdout, /Successfully tagged built:1/);
    firstId = r.stdout.trim().split('\n').at(-1)!;
    assert.match(firstId, /^[0-9a-f]{64}$/);
    assert.equal(await root.ok('run', '--rm', 'built:1'), 'hello-env\n/work/here\n65534\n');
    const files = await root.ok(
      'run',
      '--rm',
      '-u',
      '0',
      'built:alias',
      'sh',
      '-c',
      'cat /data/built.txt /app/a.txt /app/b.txt /app/dir/sub/deep.txt /app/logs/one.log /app/logs/two.log; stat -c "%u:%g %a" /app/owned.txt /work/here /tmp; ls /app; test -e /bin/vi || echo vi-gone',
    );
    assert.equal(
      files,
      'built\nfile a\nfile b\ndeep\n1\n2\n65534:1234 644\n0:0 755\n0:0 1777\na.txt\nb.txt\ndir\nlogs\nowned.txt\nvi-gone\n',
    );
  });

  test('image inspect shows the config, labels and one history entry per step', async () => {
    const [img] = JSON.parse(await root.ok('image', 'inspect', 'built:1')) as {
      Id: string;
      Config: Record<string, unknown>;
      RootFS: { Layers: string[] };
      Hull: { History: { created_by: string; empty_layer?: boolean }[] };
    }[];
    assert.equal(img!.Id, `sha256:${firstId}`);
    const c = img!.Config;
    assert.deepEqual(c.Labels, { 'org.example.role': 'test' });
    assert.deepEqual(c.ExposedPorts, { '8080/tcp': {} });
    assert.equal(c.User, '65534');
    assert.equal(c.WorkingDir, '/work/here');
    assert.ok((c.Env as string[]).includes('GREETING=hello-env'));
    const h = img!.Hull.History;
    assert.equal(h.length, 1 + MAIN_STEPS - 1, 'the base image entry plus one per instruction');
    assert.deepEqual(
      h.slice(1).map((e) => e.created_by.split(' ')[0]),
      ['RUN', 'COPY', 'COPY', 'COPY', 'COPY', 'ENV', 'WORKDIR', 'USER', 'LABEL', 'EXPOSE', 'CMD'],
    );
    assert.equal(h.filter((e) => !e.empty_layer).length, img!.RootFS.Layers.length);
  });

  test('hull history lists the steps newest first, each with its layer size', async () => {
    const steps = JSON.parse(await root.ok('history', '--format', 'json', 'built:1')) as {
      createdBy: string;
      size: number;
      layer: string | null;
    }[];
    assert.equal(steps[0]!.createdBy.split(' ')[0], 'CMD');
    assert.equal(steps[0]!.layer, null, 'CMD adds no layer');
    assert.match(steps.at(-1)!.createdBy, /busybox/, 'the base image step comes last');
    assert.ok(steps.filter((s) => s.layer !== null).every((s) => s.size > 0));
    const table = await root.ok('history', 'built:1');
    assert.match(table.split('\n')[0]!, /^CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
  });

  test('an unchanged rebuild uses the cache for every step and gives the same image', async () => {
    const r = await root.hull('build', '-t', 'built:1', ctx);
    assert.equal(r.code, 0, r.stderr);
    const s = steps(r.stdout);
    assert.equal(s.length, MAIN_STEPS);
    assert.deepEqual(
      s.slice(1).filter((x) => !x.cached),
      [],
      'every step after FROM says Using cache',
    );
    assert.equal(r.stdout.trim().split('\n').at(-1), firstId);
    process.stdout.write(`# cached rebuild of ${MAIN_STEPS} steps took ${r.ms} ms\n`);
    const q = await root.ok('build', '-q', ctx);
    assert.equal(q, firstId + '\n', '-q prints only the id');
  });

  test('changing a COPY source rebuilds from that step on; --no-cache rebuilds everything', async () => {
    writeFileSync(join(ctx, 'one.log'), 'changed\n');
    const r = await root.hull('build', '-t', 'built:2', ctx);
    assert.equal(r.code, 0, r.stderr);
    const cached = steps(r.stdout).map((x) => x.cached);
    assert.deepEqual(cached, [false, true, true, true, false, false, false, false, false, false, false, false]);
    assert.equal(await root.ok('run', '--rm', 'built:2', 'cat', '/app/logs/one.log'), 'changed\n');
    const n = await root.hull('build', '--no-cache', ctx);
    assert.equal(n.code, 0, n.stderr);
    assert.ok(!n.stdout.includes('Using cache'));
  });

  test('.dockerignore keeps a file out, even when named', async () => {
    const r = await root.hull('run', '--rm', 'built:1', 'ls', '/app');
    assert.ok(!r.stdout.includes('secret'));
    const d = write(join(work, 'ignored'), {
      Containerfile: 'FROM busybox\nCOPY secret.txt /\n',
      'secret.txt': 'x',
      '.dockerignore': 'secret.txt\n',
    });
    const f = await root.hull('build', d);
    assert.notEqual(f.code, 0);
    assert.match(f.stderr, /Containerfile:2: COPY failed: file not found in build context or excluded/);
  });

  test('multi-stage: COPY --from=builder, --target, FROM scratch with a static busybox, ADD of a local tar.gz', async () => {
    const d = write(join(work, 'multi'), {
      Containerfile: [
        'FROM busybox AS builder',
        'RUN mkdir /out && echo artifact > /out/art.txt && echo "builder says hi"',
        'FROM busybox AS tester',
        'COPY --from=builder /out/art.txt /copied.txt',
        'RUN cat /copied.txt',
        'FROM scratch',
        'COPY --from=builder /bin/busybox /bin/busybox',
        'COPY --from=builder /out/ /res/',
        'ADD files.tar.gz /unpacked/',
        'ENTRYPOINT ["/bin/busybox"]',
        'CMD ["cat", "/res/art.txt", "/unpacked/x/f.txt"]',
        '',
      ].join('\n'),
      'tree/x/f.txt': 'from the archive\n',
    });
    assert.equal(spawnSync('tar', ['czf', join(d, 'files.tar.gz'), '-C', join(d, 'tree'), '.']).status, 0);
    const t = await root.hull('build', '--target', 'tester', '-t', 'tester', d);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /builder says hi/, 'RUN output is streamed');
    assert.match(t.stdout, /^artifact$/m);
    assert.ok(!t.stdout.includes('FROM scratch'), '--target stops at the stage');
    assert.equal(await root.ok('run', '--rm', 'tester', 'cat', '/copied.txt'), 'artifact\n');
    const r = await root.hull('build', '-t', 'static', d);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes('FROM busybox AS tester'), 'a stage the target does not need is skipped');
    assert.equal(await root.ok('run', '--rm', 'static'), 'artifact\nfrom the archive\n');
    const [img] = JSON.parse(await root.ok('image', 'inspect', 'static')) as {
      RootFS: { Layers: string[] };
    }[];
    assert.equal(img!.RootFS.Layers.length, 3, 'scratch: only the three layers of its own steps');
  });

  test('RUN deletions become whiteouts and opaque directories; --build-arg; COPY --chmod; a symlinked source', async () => {
    const d = write(join(work, 'misc'), {
      Containerfile: [
        'FROM busybox',
        'ARG FLAVOUR=plain',
        'RUN rm -rf /usr && mkdir /usr && echo "$FLAVOUR" > /usr/only && rm /bin/vi',
        'RUN true',
        'COPY --chmod=750 tool.sh /opt/',
        'COPY link.txt /opt/',
        'ENTRYPOINT ["sh", "-c"]',
        'STOPSIGNAL SIGINT',
        'VOLUME /data',
        'HEALTHCHECK --interval=5s CMD true',
        'SHELL ["/bin/sh", "-ec"]',
        'RUN echo "shell is $0"',
        'COPY --from=busybox /bin/busybox /bb',
        '',
      ].join('\n'),
      'tool.sh': 'echo tool\n',
      'real.txt': 'the target\n',
    });
    spawnSync('ln', ['-s', 'real.txt', join(d, 'link.txt')]);
    const r = await root.hull('build', '--build-arg', 'FLAVOUR=spicy', '-t', 'misc', d);
    assert.equal(r.code, 0, r.stderr);
    const out = await root.ok(
      'run',
      '--rm',
      'misc',
      'ls /usr; cat /usr/only; test -e /bin/vi || echo no-vi; stat -c %a /opt/tool.sh; cat /opt/link.txt; test -L /opt/link.txt || echo not-a-link',
    );
    assert.equal(out, 'only\nspicy\nno-vi\n750\nthe target\nnot-a-link\n');
    assert.match(r.stdout, /^shell is \/bin\/sh$/m);
    assert.equal(await root.ok('run', '--rm', 'misc', 'test -x /bb && echo ok'), 'ok\n', 'COPY --from=an image');
    const [img] = JSON.parse(await root.ok('image', 'inspect', 'misc')) as {
      Config: Record<string, unknown>;
      Hull: { History: { created_by: string; empty_layer?: boolean }[] };
    }[];
    const c = img!.Config;
    assert.equal(c.StopSignal, 'SIGINT');
    assert.deepEqual(c.Volumes, { '/data': {} });
    assert.deepEqual(c.Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 5_000_000_000 });
    assert.deepEqual(c.Shell, ['/bin/sh', '-ec']);
    const runTrue = img!.Hull.History.find((h) => h.created_by === 'RUN true');
    assert.equal(runTrue?.empty_layer, true, 'a RUN that changes nothing adds no layer');
    assert.equal(img!.Config.Cmd ?? null, null, "ENTRYPOINT resets the base image's Cmd");
  });

  test("COPY and WORKDIR follow the image's directory symlinks (a usrmerge-style /lib -> usr/lib) instead of hiding them", async () => {
    const d = write(join(work, 'usrmerge'), {
      Containerfile: [
        'FROM busybox',
        'RUN mkdir -p /usr/lib && rm -rf /lib && ln -s usr/lib /lib',
        'COPY tree/ /',
        'COPY tool /lib/',
        'WORKDIR /lib/sub',
        '',
      ].join('\n'),
      'tree/lib/fromtree': 'tree\n',
      tool: 'tool\n',
    });
    const r = await root.hull('build', '-t', 'usrmerge', d);
    assert.equal(r.code, 0, r.stderr);
    const out = await root.ok('run', '--rm', 'usrmerge', 'sh', '-c', 'readlink /lib; ls /usr/lib; pwd -P');
    assert.equal(out, 'usr/lib\nfromtree\nsub\ntool\n/usr/lib/sub\n');
  });

  test('an interrupted build (SIGINT during RUN) exits 130 and leaves no step container', async () => {
    const d = write(join(work, 'interrupted'), { Containerfile: 'FROM busybox\nRUN echo started; sleep 30\n' });
    const child = spawn(process.execPath, ['--', DIST, '--root', root.dir, 'build', '-t', 'interrupted', d], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      err += s;
    });
    const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    // the step's own output line, not the STEP header (which also contains the word)
    await waitFor('the RUN step to start', () => out.split('\n').includes('started'), 60_000);
    child.kill('SIGINT');
    assert.equal(await closed, 130, err);
    assert.match(err, /build interrupted \(SIGINT\) at Containerfile:2/);
    assert.deepEqual(await root.ids(), []);
    assert.ok(!(await root.ok('images')).includes('interrupted'));
  });

  test('a failing RUN names the file and line, fails with 1, and tags nothing', async () => {
    const d = write(join(work, 'failing'), {
      Dockerfile: 'FROM busybox\nRUN echo before\nRUN echo oops >&2; exit 7\nRUN echo never\n',
    });
    const r = await root.hull('build', '-t', 'broken', d);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^hull: Dockerfile:3: RUN echo oops >&2; exit 7 failed with exit code 7$/m);
    assert.match(r.stderr, /oops/);
    assert.ok(!r.stdout.includes('never'));
    assert.ok(!(await root.ok('images')).includes('broken'));
    assert.deepEqual(await root.ids(), [], 'no step container is left');
  });

  test('clear errors: ADD from a URL, an image that is not local, a Containerfile error', async () => {
    const d = write(join(work, 'errors'), {
      url: 'FROM busybox\nADD https://example.com/x.tar /x/\n',
      missing: 'FROM example.com/not/here:1\n',
      syntax: 'FROM busybox\nFROBNICATE x\n',
    });
    const u = await root.hull('build', '-f', join(d, 'url'), d);
    assert.equal(u.code, 1);
    assert.match(u.stderr, /url:2: ADD from URLs is not supported; use RUN wget/);
    const m = await root.hull('build', '-f', join(d, 'missing'), d);
    assert.match(
      m.stderr,
      /image example.com\/not\/here:1 not found locally: hull pull example.com\/not\/here:1 first/,
    );
    const s = await root.hull('build', '-f', join(d, 'syntax'), d);
    assert.equal(s.code, 1);
    assert.match(s.stderr, /syntax:2: /);
  });

  test('kill -9 during a RUN leaves the store consistent, and the next build completes', async () => {
    const d = write(join(work, 'killed'), {
      // the killed build's step waits long enough to be killed inside it however loaded the host is; the next build
      // (another WAIT, so no cache hit) does not wait
      Containerfile: 'FROM busybox\nARG WAIT=0\nRUN echo started; sleep $WAIT; echo done > /done\n',
    });
    const child = spawn(
      process.execPath,
      ['--', DIST, '--root', root.dir, 'build', '--build-arg', 'WAIT=600', '-t', 'killed', d],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    const closed = new Promise((r) => child.on('close', r));
    // the step's own output line, not the STEP header (which also contains the word)
    await waitFor('the RUN step to start', () => out.split('\n').includes('started'), 60_000);
    child.kill('SIGKILL');
    await closed;
    assert.ok(!(await root.ok('images')).includes('killed'));
    const r = await root.hull('build', '-t', 'killed', d);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await root.ok('run', '--rm', 'killed', 'cat', '/done'), 'done\n');
    assert.deepEqual(await root.ids(), [], "the killed build's step container was removed by the next build");
    const tmp = join(root.dir, 'images', '.tmp');
    assert.ok(
      !existsSync(tmp) || readdirSync(tmp).every((n) => !n.startsWith(`${child.pid}-`)),
      'temp files of the killed build were cleaned',
    );
  });

  test("ONBUILD: a child build runs the base's triggers after its FROM; the grandchild does not", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hull-onbuild-'));
    try {
      writeFileSync(
        join(dir, 'Base'),
        'FROM busybox\nONBUILD COPY marker.txt /marker.txt\nONBUILD RUN echo triggered >> /log\n',
      );
      writeFileSync(join(dir, 'Child'), 'FROM onbuild-base:1\nRUN cat /marker.txt /log\n');
      writeFileSync(join(dir, 'Grandchild'), 'FROM onbuild-child:1\nRUN cat /log\n');
      writeFileSync(join(dir, 'marker.txt'), 'marker\n');
      await root.ok('build', '-t', 'onbuild-base:1', '-f', join(dir, 'Base'), dir);
      const child = await root.hull('build', '-t', 'onbuild-child:1', '-f', join(dir, 'Child'), dir);
      assert.equal(child.code, 0, child.stdout + child.stderr);
      assert.match(child.stdout, /STEP 2\/4: COPY marker.txt \/marker.txt\n.*\nSTEP 3\/4: RUN echo triggered >> \/log/);
      assert.match(child.stdout, /marker\ntriggered\n/);
      const inspected = JSON.parse(await root.ok('image', 'inspect', 'onbuild-child:1')) as {
        Config: { OnBuild: string[] | null };
      }[];
      assert.equal(inspected[0]!.Config.OnBuild, null, 'triggers are not inherited');
      const grandchild = await root.hull('build', '-t', 'onbuild-grandchild:1', '-f', join(dir, 'Grandchild'), dir);
      assert.equal(grandchild.code, 0, grandchild.stdout + grandchild.stderr);
      assert.match(grandchild.stdout, /STEP 1\/2: FROM onbuild-child:1/);
      assert.equal((grandchild.stdout.match(/^triggered$/gm) ?? []).length, 1, 'the trigger ran once, in the child');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('here-documents: RUN script, a command reading its here-documents, a #! script; COPY <<EOF', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hull-heredoc-'));
    try {
      writeFileSync(
        join(dir, 'Containerfile'),
        [
          'FROM busybox',
          'ENV WHO=world',
          'RUN <<EOF',
          'echo "hello $WHO" > /greeting',
          'mkdir -p /etc/app',
          'EOF',
          'RUN cat <<CONF > /etc/app/a.conf && cat <<-"RAW" > /etc/app/b.conf',
          'name=$WHO',
          'CONF',
          '\tkeep=$WHO',
          '\tRAW',
          'RUN <<EOF',
          '#!/bin/sh -e',
          'echo "script ran as $0" > /script-ran',
          'EOF',
          'COPY <<CONF /etc/app/c.conf',
          'copied=$WHO',
          'CONF',
          'CMD cat /greeting /etc/app/a.conf /etc/app/b.conf /etc/app/c.conf',
          '',
        ].join('\n'),
      );
      const r = await root.hull('build', '-t', 'heredoc:1', dir);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(await root.ok('run', '--rm', 'heredoc:1'), 'hello world\nname=world\nkeep=$WHO\ncopied=world\n');
      assert.match(await root.ok('run', '--rm', 'heredoc:1', 'cat', '/script-ran'), /^script ran as \/tmp\//);
      const again = await root.hull('build', '-t', 'heredoc:1', dir);
      assert.equal((again.stdout.match(/Using cache/g) ?? []).length, 6, again.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('leaves nothing behind', () => root.cleanupAndCheck());
});
