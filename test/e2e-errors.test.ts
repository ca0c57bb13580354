/**
 * End to end: exit statuses and bad input, docker's way (docs/cli.md): run/create 125 for hull's own errors, 126
 * not executable, 127 not found; flag errors 125; other commands 1; exec of a command that cannot start 126.
 * Every error is one line starting with "hull: ", and a failed run leaves nothing behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HullRoot, type HullResult } from './helpers/hull.js';
import { mountLeaks } from './helpers/leaks.js';

const root = new HullRoot('errors');
after(() => root.dispose());

/** One line on stderr, starting with "hull: ", and nothing on stdout. */
function assertOneLineError(r: HullResult, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit status (stderr: ${r.stderr})`);
  assert.match(r.stderr, /^hull: [^\n]+\n$/, `one line starting with "hull: ": ${JSON.stringify(r.stderr)}`);
  assert.match(r.stderr, pattern);
  assert.equal(r.stdout, '');
}

const containerDirs = () =>
  existsSync(join(root.dir, 'containers')) ? readdirSync(join(root.dir, 'containers')).sort() : [];

before(async () => {
  await root.ok('images'); // creates the store; busybox is built on first use below
});

describe('bad input is refused before anything is made (125)', () => {
  const cases: [string, string[], RegExp][] = [
    ['an unknown image', ['run', '--pull', 'never', 'nosuchimage', 'true'], /image not found: nosuchimage/],
    [
      'an unknown image on an unreachable registry',
      ['run', '--quiet', '127.0.0.1:1/no/such:1', 'true'],
      /image 127\.0\.0\.1:1\/no\/such:1 is not stored here and pulling it failed: registry 127\.0\.0\.1:1 is not reachable/,
    ],
    ['a malformed --memory', ['run', '--memory', '12x', 'busybox', 'true'], /invalid --memory "12x"/],
    ['a --memory below the minimum', ['run', '--memory', '1k', 'busybox', 'true'], /--memory.*minimum/],
    ['a malformed --cpus', ['run', '--cpus', 'abc', 'busybox', 'true'], /invalid --cpus "abc"/],
    [
      'an unknown --restart policy',
      ['run', '--restart', 'sometimes', 'busybox', 'true'],
      /invalid --restart "sometimes"/,
    ],
    ['a malformed --pids-limit', ['run', '--pids-limit', 'x', 'busybox', 'true'], /--pids-limit/],
    ['a malformed --cpuset-cpus', ['run', '--cpuset-cpus', 'a', 'busybox', 'true'], /--cpuset-cpus/],
    ['--memory-swap without --memory', ['run', '--memory-swap', '10m', 'busybox', 'true'], /--memory-swap/],
    ['an unknown signal', ['run', '--stop-signal', 'SIGFOO', 'busybox', 'true'], /signal "SIGFOO"/],
    ['an unknown --security-opt', ['run', '--security-opt', 'foo', 'busybox', 'true'], /--security-opt "foo"/],
    ['an unknown --userns', ['run', '--userns', 'nope', 'busybox', 'true'], /--userns "nope"/],
    ['an unknown network', ['run', '--network', 'nowhere', 'busybox', 'true'], /network "nowhere"/],
    ['an unknown runtime', ['run', '--runtime', 'foo', 'busybox', 'true'], /runtime "foo"/],
    // a bare word is a named volume (docker's); a relative path is neither that nor a host path
    ['a relative volume source', ['run', '-v', 'rel/dir:/x', 'busybox', 'true'], /absolute host path or a volume name/],
    ['a relative --tmpfs', ['run', '--tmpfs', 'rel', 'busybox', 'true'], /--tmpfs "rel"/],
    [
      'a missing --env-file',
      ['run', '--env-file', '/nonexistent-env-file', 'busybox', 'true'],
      /env file \/nonexistent-env-file/,
    ],
    ['a --ulimit above the hard limit', ['run', '--ulimit', 'nofile=999999999', 'busybox', 'true'], /nofile/],
    ['--rm with --restart', ['run', '--rm', '--restart', 'always', 'busybox', 'true'], /--rm and --restart/],
    ['an invalid name', ['run', '--name', 'bad/name', 'busybox', 'true'], /invalid name "bad\/name"/],
    ['an unknown flag', ['run', '--bogus', 'busybox', 'true'], /unknown option '--bogus'/],
    ['an unknown flag of another command', ['ps', '--bogus'], /unknown option '--bogus'/],
    ['a flag without its value', ['stop', '--time'], /option '-t, --time <seconds>' argument missing/],
    ['a bad flag before -it', ['run', '-it', '--memory', '12x', 'busybox', 'true'], /invalid --memory "12x"/],
    [
      'an unknown --pull policy',
      ['run', '--pull', 'sometimes', 'busybox', 'true'],
      /invalid --pull value "sometimes": use missing, always, never or newer/,
    ],
    [
      'a disk image that does not exist',
      ['vm', 'create', '--disk', '/nonexistent-disk.qcow2'],
      /disk image \/nonexistent-disk\.qcow2 does not exist/,
    ],
  ];
  for (const [what, args, pattern] of cases) {
    test(what, async () => {
      assertOneLineError(await root.hull(...args), 125, pattern);
    });
  }

  test('none of them left an instance, a directory or a mount', async () => {
    assert.deepEqual(await root.ids(), []);
    assert.deepEqual(containerDirs(), []);
    assert.deepEqual(mountLeaks(root.dir), []);
  });
});

describe("usage errors that are not about a flag exit 1, as docker's", () => {
  const cases: [string, string[], RegExp][] = [
    ['a missing image argument', ['run'], /missing required argument 'image'/],
    ['a missing instance argument', ['rm'], /missing required argument 'instance'/],
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['run -it without a terminal', ['run', '-it', 'busybox', 'true'], /^hull: the input device is not a TTY/],
  ];
  for (const [what, args, pattern] of cases) {
    test(what, async () => {
      assertOneLineError(await root.hull(...args), 1, pattern);
    });
  }

  test('run -dit and create -it need no terminal (nothing is attached)', async () => {
    const id = (await root.ok('run', '-dit', '--network', 'none', 'busybox', 'sh')).trim();
    assert.equal((await root.inspect(id)).State.Status, 'running');
    const created = (await root.ok('create', '-it', '--network', 'none', 'busybox', 'sh')).trim();
    await root.ok('rm', '-f', id, created);
    assert.deepEqual(await root.ids(), []);
  });
});

describe('what an instance of this kind cannot do', () => {
  test('a container has no serial console: hull console says so and changes nothing', async () => {
    await root.ok('create', '--name', 'noconsole', '--network', 'none', 'busybox', 'sleep', '1d');
    assertOneLineError(
      await root.hull('console', 'noconsole'),
      1,
      /noconsole is a container, which has no serial console: use hull attach or hull exec/,
    );
    assert.equal((await root.inspect('noconsole')).State.Status, 'created');
    await root.ok('rm', 'noconsole');
    assert.deepEqual(await root.ids(), []);
  });
});

describe('the command cannot run (127 not found, 126 not executable)', () => {
  test('run busybox nosuchcmd → 127, nothing left', async () => {
    assertOneLineError(await root.hull('run', 'busybox', 'nosuchcmd'), 127, /nosuchcmd.*not found/);
    assert.deepEqual(await root.ids(), []);
    assert.deepEqual(containerDirs(), []);
    assert.deepEqual(mountLeaks(root.dir), []);
  });

  test('run --rm busybox /no/such/path → 127', async () => {
    assertOneLineError(await root.hull('run', '--rm', 'busybox', '/no/such/path'), 127, /\/no\/such\/path/);
  });

  test('run busybox /etc/passwd → 126, nothing left', async () => {
    assertOneLineError(await root.hull('run', 'busybox', '/etc/passwd'), 126, /\/etc\/passwd.*permission denied/);
    assert.deepEqual(await root.ids(), []);
    assert.deepEqual(containerDirs(), []);
  });

  test('run -d busybox nosuchcmd → 127 as well', async () => {
    assertOneLineError(await root.hull('run', '-d', 'busybox', 'nosuchcmd'), 127, /nosuchcmd/);
    assert.deepEqual(await root.ids(), []);
  });

  test('the same with runc', async () => {
    assertOneLineError(await root.hull('run', '--runtime', 'runc', 'busybox', 'nosuchcmd'), 127, /nosuchcmd/);
    assertOneLineError(await root.hull('run', '--runtime', 'runc', 'busybox', '/etc/passwd'), 126, /\/etc\/passwd/);
    assert.deepEqual(await root.ids(), []);
  });

  test('run busybox /etc (a directory) → 126', async () => {
    assertOneLineError(await root.hull('run', '--rm', 'busybox', '/etc'), 126, /\/etc/);
  });
});

describe('instances in the wrong state or that do not exist', () => {
  test('a name already in use: 125, and the failed run leaves no extra instance, directory or mount', async () => {
    const id = (await root.ok('run', '-d', '--name', 'taken', 'busybox', 'sleep', '60')).trim();
    const dirs = containerDirs();
    const mounts = mountLeaks(root.dir).length;
    assert.deepEqual(dirs, [id]);
    const r = await root.hull('run', '-d', '--name', 'taken', 'busybox', 'sleep', '60');
    assertOneLineError(r, 125, /name "taken" is already in use/);
    assert.deepEqual(await root.ids(), [id]);
    assert.deepEqual(containerDirs(), dirs);
    assert.equal(mountLeaks(root.dir).length, mounts);
    // and `create` the same
    assertOneLineError(await root.hull('create', '--name', 'taken', 'busybox', 'true'), 125, /already in use/);
    assert.deepEqual(await root.ids(), [id]);
  });

  test("exec of a command that cannot start → 126 with docker's message, whatever the runtime", async () => {
    const notFound = (cmd: string) =>
      `^hull: OCI runtime exec failed: exec failed: unable to start container process: exec: "${cmd}": executable file not found in \\$PATH: unknown\n$`;
    const runcId = (
      await root.ok('run', '-d', '--runtime', 'runc', '--network', 'none', 'busybox', 'sleep', '60')
    ).trim();
    for (const ctr of ['taken', runcId]) {
      assertOneLineError(await root.hull('exec', ctr, 'nosuchcmd'), 126, new RegExp(notFound('nosuchcmd')));
      assertOneLineError(
        await root.hull('exec', ctr, '/no/such/path'),
        126,
        /exec: "\/no\/such\/path": stat \/no\/such\/path: no such file or directory: unknown\n$/,
      );
      assertOneLineError(
        await root.hull('exec', ctr, '/etc/passwd'),
        126,
        /exec: "\/etc\/passwd": permission denied: unknown\n$/,
      );
      assertOneLineError(await root.hull('exec', '-d', ctr, 'nosuchcmd'), 126, new RegExp(notFound('nosuchcmd')));
      // with a terminal (crun goes through hull-ttywait, whose words reach the terminal, i.e. stdout)
      const t = await root.hull('exec', '-t', ctr, 'nosuchcmd');
      assert.equal(t.code, 126, `exec -t: ${t.stdout}${t.stderr}`);
      assert.match(t.stdout + t.stderr, /exec: "nosuchcmd": executable file not found in \$PATH: unknown/);
      // the command's own 127 is its own
      assert.equal((await root.hull('exec', ctr, 'sh', '-c', 'nosuchcmd')).code, 127);
    }
    await root.ok('rm', '-f', runcId);
  });

  test('exec -it without a terminal → 1; the missing instance is reported first, as docker does', async () => {
    assertOneLineError(await root.hull('exec', '-it', 'taken', 'sh'), 1, /^hull: the input device is not a TTY/);
    assertOneLineError(await root.hull('exec', '-it', 'ghost', 'sh'), 1, /No such container: ghost/);
  });

  test('run of a missing command stays 127 (docker: run 127, exec 126)', async () => {
    assertOneLineError(await root.hull('run', '--rm', '--network', 'none', 'busybox', 'nosuchcmd'), 127, /nosuchcmd/);
  });

  test('rm of a running instance without -f is refused with a clear message', async () => {
    assertOneLineError(
      await root.hull('rm', 'taken'),
      1,
      /cannot remove instance taken: it is running; stop it first.*rm -f/,
    );
    assert.equal((await root.inspect('taken')).State.Status, 'running');
  });

  test('exec into a stopped instance', async () => {
    await root.ok('stop', '-t', '0', 'taken');
    assertOneLineError(await root.hull('exec', 'taken', 'true'), 1, /cannot exec in instance taken: it is exited/);
  });

  test("verbs on an unknown instance: docker's words, exit 1", async () => {
    for (const args of [
      ['rm', 'ghost'],
      ['stop', 'ghost'],
      ['start', 'ghost'],
      ['inspect', 'ghost'],
      ['logs', 'ghost'],
      ['exec', 'ghost', 'true'],
      ['kill', 'ghost'],
      ['wait', 'ghost'],
      ['pause', 'ghost'],
      ['top', 'ghost'],
    ]) {
      assertOneLineError(await root.hull(...args), 1, /^hull: Error: No such container: ghost\n$/);
    }
  });

  test('rm -f of an instance that is not there: exit 0, nothing said about it', async () => {
    const r = await root.hull('rm', '-f', 'ghost');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout + r.stderr, '');
    await root.ok('create', '--name', 'rmf-victim', '--network', 'none', 'busybox', 'true');
    const both = await root.hull('rm', '-f', 'ghost', 'rmf-victim', 'ghost2');
    assert.equal(both.code, 0, both.stderr);
    assert.equal(both.stdout, 'rmf-victim\n');
    assert.equal(both.stderr, '');
    assert.equal((await root.hull('inspect', 'rmf-victim')).code, 1);
  });

  test('verbs that need a running instance', async () => {
    assertOneLineError(await root.hull('kill', 'taken'), 1, /taken.*not running/);
    assertOneLineError(await root.hull('pause', 'taken'), 1, /cannot pause instance taken: it is exited/);
    assertOneLineError(await root.hull('unpause', 'taken'), 1, /taken/);
    assertOneLineError(await root.hull('top', 'taken'), 1, /taken.*not running/);
  });

  test('several instances at once: each failure reported, exit 1', async () => {
    const r = await root.hull('rm', 'taken', 'ghost');
    assert.equal(r.code, 1);
    assert.equal(r.stdout, 'taken\n');
    assert.match(r.stderr, /^hull: Error: No such container: ghost\n$/);
    assert.deepEqual(await root.ids(), []);
  });

  test('image verbs exit 1, as docker rmi/import/tag', async () => {
    assertOneLineError(await root.hull('rmi', 'nosuch'), 1, /image not found: nosuch/);
    assertOneLineError(await root.hull('import', '/nonexistent.tar', 'x'), 1, /\/nonexistent\.tar/);
    assertOneLineError(await root.hull('tag', 'nosuch', 'other'), 1, /nosuch/);
  });
});

test('leaves nothing behind', () => root.cleanupAndCheck());
