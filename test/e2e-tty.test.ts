/**
 * End to end: terminals and stdin. `run -it` and `exec -it` under a real pseudo-terminal (util-linux
 * `script`), with the terminal's size set first; `run -i` / `exec -i` with stdin piped.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { DIST, HullRoot } from './helpers/hull.js';
import { inPty, sq } from './helpers/pty.js';

const root = new HullRoot('tty');
after(() => root.dispose());

/** The shell command line that runs hull against this root. */
const hullCmd = (...args: string[]) => [process.execPath, '--', DIST, '--root', root.dir, ...args].map(sq).join(' ');

before(async () => {
  await root.ok('run', '-d', '--name', 'web', 'busybox', 'httpd', '-f', '-p', '8080');
});

test("run -it --rm: the command gets a terminal of the caller's size", async () => {
  const r = await inPty(hullCmd('run', '-it', '--rm', 'busybox', 'sh', '-c', 'tty; stty size; exit 3'), {
    rows: 40,
    cols: 100,
  });
  assert.equal(r.code, 3, r.output);
  assert.match(r.output, /\/dev\/pts\/\d+\r*\n/);
  assert.match(r.output, /^40 100\r*$/m);
  assert.deepEqual(await root.ids(), [(await root.inspect('web')).Id], 'the --rm instance is gone');
});

test('run -t without -i still gets a terminal', async () => {
  const r = await inPty(hullCmd('run', '-t', '--rm', 'busybox', 'sh', '-c', 'tty; stty size'), { rows: 33, cols: 77 });
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /\/dev\/pts\/\d+/);
  assert.match(r.output, /^33 77\r*$/m);
});

test("exec -it web: a terminal of the caller's size", async () => {
  const r = await inPty(hullCmd('exec', '-it', 'web', 'sh', '-c', 'tty; stty size'), { rows: 40, cols: 100 });
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /\/dev\/pts\/\d+/);
  assert.match(r.output, /^40 100\r*$/m);
});

test("a resize of the caller's terminal reaches the container (run -it and exec -it)", async () => {
  // The command says when it waits for SIGWINCH; then the test resizes the caller's terminal (stty -F on the
  // pty that `tty` named first). hull gets SIGWINCH and passes the size on; the command's trap prints it.
  // A terminal may get a SIGWINCH whose size did not change (the runtime and conmon each set the size they were
  // given once more): the trap prints the size on every signal, and the command ends once 50x120 has arrived.
  const script =
    "stty size; trap 'stty size' WINCH; echo waiting-for-resize; sleep 60 & p=$!; " +
    'while kill -0 $p 2>/dev/null; do [ "$(stty size)" = "50 120" ] && { kill $p; exit 0; }; wait $p; done; ' +
    'echo no-resize; exit 1';
  for (const args of [
    ['exec', '-it', 'web'],
    ['run', '-it', '--rm', 'busybox'],
  ]) {
    let resized = '';
    const r = await inPty(`tty; ${hullCmd(...args, 'sh', '-c', script)}`, {
      rows: 40,
      cols: 100,
      onOutput: (out) => {
        const pts = /\/dev\/pts\/\d+/.exec(out)?.[0];
        if (resized || !pts || !/^waiting-for-resize\r*$/m.test(out)) return;
        resized = pts;
        const s = spawnSync('stty', ['-F', pts, 'rows', '50', 'cols', '120'], { encoding: 'utf8' });
        assert.equal(s.status, 0, s.stderr);
      },
    });
    assert.ok(resized, `${args.join(' ')}: the command never waited for the resize: ${JSON.stringify(r.output)}`);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /^40 100\r*\n[\s\S]*^50 120\r*$/m, `${args.join(' ')}: ${JSON.stringify(r.output)}`);
  }
});

test('exec -it passes the exit status', async () => {
  const r = await inPty(hullCmd('exec', '-it', 'web', 'sh', '-c', 'exit 5'));
  assert.equal(r.code, 5, r.output);
});

test('without -t there is no terminal', async () => {
  const r = await root.hull('exec', 'web', 'sh', '-c', 'tty || true');
  assert.equal(r.stdout, 'not a tty\n');
});

test('run -i with stdin piped: echo abc | hull run -i --rm busybox cat', async () => {
  const r = await root.hullWith({ input: 'abc\n' }, 'run', '-i', '--rm', 'busybox', 'cat');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'abc\n');
});

test('run -i with a larger input and its exit status', async () => {
  const input = Array.from({ length: 2000 }, (_, i) => `line ${i}`).join('\n') + '\n';
  const r = await root.hullWith({ input }, 'run', '-i', '--rm', 'busybox', 'sh', '-c', 'wc -l; exit 4');
  assert.equal(r.code, 4, r.stderr);
  assert.equal(r.stdout.trim(), '2000');
});

test('exec -i with stdin piped', async () => {
  const r = await root.hullWith({ input: 'through exec\n' }, 'exec', '-i', 'web', 'cat');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'through exec\n');
});

test('leaves nothing behind', () => root.cleanupAndCheck());
