/**
 * End to end, through the real CLI and conmon: docker's `logs` options (--since/--until, -t, --details), log
 * drivers and options (--log-driver, --log-opt), save to stdout and load from stdin, stats' columns and top's
 * ps options.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { DIST, HullRoot, TEST_NETWORK, waitFor } from './helpers/hull.js';
import { inPty, sq } from './helpers/pty.js';
import { binarySize, decimalSize } from '../src/cli/format.js';

const root = new HullRoot('logs');
after(() => root.dispose());

const logFile = async (name: string) => join(root.dir, 'containers', (await root.inspect(name)).Id, 'ctr.log');

describe('logs', () => {
  test('--until and --since split the log at a time; -t shows the nanoseconds conmon recorded, in UTC', async () => {
    await root.ok(
      'run',
      '-d',
      '--name',
      'split',
      '--network',
      'none',
      'busybox',
      'sh',
      '-c',
      'echo early; while [ ! -e /go ]; do sleep 0.05; done; echo late; sleep 60',
    );
    await waitFor('early', async () => (await root.ok('logs', 'split')) === 'early\n');
    // the split point: the line's own timestamp (conmon's, nanoseconds) plus a millisecond
    const first = readFileSync(await logFile('split'), 'utf8').split(' ')[0]!;
    const at = new Date(Date.parse(first) + 1).toISOString();
    await waitFor('a later clock', () => Date.now() > Date.parse(at) + 5, 5000, 5);
    await root.ok('exec', 'split', 'touch', '/go');
    await waitFor('late', async () => (await root.ok('logs', 'split')) === 'early\nlate\n');
    assert.equal(await root.ok('logs', '--until', at, 'split'), 'early\n');
    assert.equal(await root.ok('logs', '--since', at, 'split'), 'late\n');
    assert.equal(await root.ok('logs', '--until', String(Date.parse(at) / 1000), 'split'), 'early\n', 'unix seconds');
    assert.equal(await root.ok('logs', '--since', '1h', 'split'), 'early\nlate\n', 'a duration back from now');
    assert.equal(await root.ok('logs', '--until', '1h30m', 'split'), '', "a Go duration (docker's syntax)");
    // following ends once --until has passed (the container still runs)
    const f = await root.hull('logs', '-f', '--until', new Date(Date.now() + 1000).toISOString(), 'split');
    assert.equal(f.code, 0, f.stderr);
    assert.equal(f.stdout, 'early\nlate\n');
    const ts = await root.ok('logs', '-t', 'split');
    assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z early\n\S+ late\n$/);
    assert.equal(
      ts.slice(20, 29),
      /\.(\d+)/.exec(first)![1]!.padEnd(9, '0'),
      "the file's nanoseconds, not a millisecond value",
    );
    const bad = await root.hull('logs', '--until', 'yesterday', 'split');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^hull: invalid --until "yesterday".*\n$/);
    await root.ok('rm', '-f', 'split');
  });

  test('--details: a leading space, or the labels/env log-opts as docker prints them', async () => {
    await root.ok('run', '--name', 'plain', '--network', 'none', 'busybox', 'echo', 'hi');
    assert.equal(await root.ok('logs', '--details', 'plain'), ' hi\n');
    assert.match(await root.ok('logs', '--details', '-t', 'plain'), /^\S+Z {2}hi\n$/, 'timestamp, space, attrs, space');
    await root.ok(
      'run',
      '--name',
      'attrs',
      '--network',
      'none',
      '--log-opt',
      'labels=app,missing',
      '--log-opt',
      'env=MODE',
      '-l',
      'app=web 1',
      '-e',
      'MODE=a&b',
      'busybox',
      'echo',
      'hi',
    );
    // sorted by name (byte order), query-escaped (space as +)
    assert.equal(await root.ok('logs', '--details', 'attrs'), 'MODE=a%26b,app=web+1 hi\n');
    assert.equal(await root.ok('logs', 'attrs'), 'hi\n');
    await root.ok('rm', 'plain', 'attrs');
  });

  test("--log-driver none: nothing logged, `logs` refuses with docker's words, `run` still shows the output", async () => {
    const r = await root.hull(
      'run',
      '--name',
      'quiet',
      '--network',
      'none',
      '--log-driver',
      'none',
      'busybox',
      'sh',
      '-c',
      'echo out; echo err >&2; exit 2',
    );
    assert.equal(r.code, 2);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    const id = (await root.inspect('quiet')).Id;
    const logs = await root.hull('logs', 'quiet');
    assert.equal(logs.code, 1);
    assert.match(logs.stderr, /^hull: configured logging driver does not support reading: .*\n$/);
    assert.throws(() => statSync(join(root.dir, 'containers', id, 'ctr.log')), 'no log file');
    await root.ok('rm', 'quiet');
  });

  test('--log-opt max-size: conmon replaces a full log; the log never passes the size', async () => {
    await root.ok(
      'run',
      '-d',
      '--name',
      'capped',
      '--network',
      'none',
      '--log-driver',
      'k8s-file',
      '--log-opt',
      'max-size=2k',
      'busybox',
      'sh',
      '-c',
      'i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done; echo done; sleep 60',
    );
    await waitFor('the last line', async () => (await root.ok('logs', 'capped')).endsWith('line299\ndone\n'));
    const out = await root.ok('logs', 'capped');
    assert.ok(!out.startsWith('line0\n'), 'the start is gone');
    assert.ok(statSync(await logFile('capped')).size <= 2048);
    await root.ok('rm', '-f', 'capped');
  });

  test('bad log drivers and options are refused with one line', async () => {
    for (const [args, re] of [
      [['--log-driver', 'syslog'], /invalid --log-driver "syslog"/],
      [['--log-opt', 'max-size=big'], /invalid --log-opt max-size "big"/],
      [['--log-opt', 'frobnicate=1'], /unknown log opt 'frobnicate' for json-file log driver/],
      [['--log-driver', 'none', '--log-opt', 'max-size=1m'], /unknown log opt 'max-size' for none log driver/],
      [['--log-opt', 'max-file=0', '--log-opt', 'max-size=1m'], /max-file/],
      [['--log-opt', 'max-file=3'], /max-file needs max-size/],
    ] as [string[], RegExp][]) {
      const r = await root.hull('create', ...args, 'busybox', 'true');
      assert.equal(r.code, 125, args.join(' '));
      assert.match(r.stderr, new RegExp(`^hull: .*${re.source}.*\\n$`));
    }
    assert.deepEqual(await root.ids(), []);
  });
});

describe('save and load through stdio', () => {
  const hullTo = (args: string[], stdin: number | 'ignore', stdout: number | 'pipe') =>
    spawnSync(process.execPath, ['--', DIST, '--root', root.dir, ...args], {
      stdio: [stdin, stdout, 'pipe'],
      encoding: 'utf8',
    });
  const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

  test('save without -o writes the archive to stdout; load without -i reads stdin', async () => {
    const viaFile = join(root.dir, 'bb-file.tar');
    await root.ok('save', '-o', viaFile, 'busybox');
    const viaStdout = join(root.dir, 'bb-stdout.tar');
    const fd = openSync(viaStdout, 'w');
    const s = hullTo(['save', 'busybox'], 'ignore', fd);
    closeSync(fd);
    assert.equal(s.status, 0, s.stderr);
    assert.equal(sha(viaStdout), sha(viaFile), 'the same archive either way');
    const docker = join(root.dir, 'bb-docker.tar');
    await root.ok('save', '--format', 'docker-archive', '-o', docker, 'busybox');
    for (const [file, q] of [
      [viaStdout, []],
      [docker, ['-q']],
    ] as [string, string[]][]) {
      await root.ok('rmi', 'busybox');
      const fdIn = openSync(file, 'r');
      const l = hullTo(['load', ...q], fdIn, 'pipe');
      closeSync(fdIn);
      assert.equal(l.status, 0, l.stderr);
      // docker prints the loaded names with -q too (it only drops the progress output)
      assert.equal(l.stdout, 'Loaded image: busybox:latest\n');
    }
    const empty = await root.hullWith({ input: '' }, 'load');
    assert.equal(empty.code, 1);
    assert.equal(empty.stderr, 'hull: requested load from stdin, but stdin is empty\n');
  });

  test('save to a terminal is refused (docker: cowardly refusing)', async () => {
    const cmd = [process.execPath, '--', DIST, '--root', root.dir, 'save', 'busybox'].map(sq).join(' ');
    const r = await inPty(cmd);
    assert.equal(r.code, 1);
    assert.match(r.output, /cowardly refusing to save to a terminal\. Use the -o flag or redirect/);
    assert.doesNotMatch(r.output, /oci-layout/);
  });
});

describe('stats and top', () => {
  test("docker's units: decimal for I/O (%.3g), binary for memory (%.4g)", () => {
    assert.equal(decimalSize(0), '0B');
    assert.equal(decimalSize(648), '648B');
    assert.equal(decimalSize(1234), '1.23kB');
    assert.equal(decimalSize(1_200_000), '1.2MB');
    assert.equal(decimalSize(999_700), '1e+03kB', "Go's %.3g, as docker prints it");
    assert.equal(binarySize(64 * 1024 * 1024), '64MiB');
    assert.equal(binarySize(1536 * 1024), '1.5MiB');
    assert.equal(binarySize(25_275_912_192), '23.54GiB');
  });

  test("stats: NET I/O from the instance's namespace, BLOCK I/O, PIDS; --all shows stopped ones with zeros", async () => {
    await root.ok(
      'run',
      '-d',
      '--name',
      'talk',
      ...TEST_NETWORK,
      'busybox',
      'sh',
      '-c',
      // a packet out: the gateway's address asked for (ARP) and a connection tried
      'gw=$(ip route | awk "/default/ {print \\$3}"); wget -q -O /dev/null http://$gw:9/; sleep 60',
    );
    await root.ok('create', '--name', 'idle', '--network', 'none', 'busybox', 'true');
    // NetIO is "received / sent" in docker's units: both above 0B once traffic went both ways
    const sample = async () => (await root.ok('stats', '--no-stream', '--format', '{{.NetIO}}', 'talk')).trim();
    await waitFor('traffic both ways', async () => {
      const s = await sample();
      return /^[\d.]+(B|kB|MB) \/ [\d.]+(B|kB|MB)$/.test(s) && !/(^| )0B( |$)/.test(s);
    });
    const table = await root.ok('stats', '--no-stream', '--all');
    const lines = table.trim().split('\n');
    assert.match(lines[0]!, /^INSTANCE ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/);
    const talk = lines.find((l) => / talk /.test(l))!;
    assert.match(talk, / [\d.]+(B|kB|MB) \/ [\d.]+(B|kB|MB) {2,}[\d.]+(B|kB|MB) \/ [\d.]+(B|kB|MB) {2,}1$/);
    assert.doesNotMatch(talk, /0B \/ 0B {2,}\S+ \/ \S+ {2,}1$/, 'some network traffic');
    const idle = lines.find((l) => / idle /.test(l));
    assert.ok(idle, '--all lists the created one');
    assert.match(idle!, /0\.00%\s+0B \/ 0B\s+0\.00%\s+0B \/ 0B\s+0B \/ 0B\s+0$/);
    assert.ok(!(await root.ok('stats', '--no-stream')).includes(' idle '), 'without --all: running ones only');
    await root.ok('rm', '-f', 'talk', 'idle');
  });
});

test('leaves nothing behind', () => root.cleanupAndCheck());
