/**
 * The monitor's console scanner (src/vm/console-scan.ts), without booting: a kernel panic or an OOM kill is
 * recognised wherever it shows in the console, in chunks split anywhere (mid-line, mid-character), however
 * much follows it; memory stays bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsoleScanner, describeOomKills } from '../src/vm/console-scan.js';

const PANIC = '[    5.520034] Kernel panic - not syncing: sysrq triggered crash\r\n';

/** Feed text in chunks of `size` bytes (a byte split, as a socket delivers it). */
function feed(s: ConsoleScanner, text: string, size: number): void {
  const b = Buffer.from(text);
  for (let off = 0; off < b.length; off += size) s.push(b.subarray(off, off + size));
}

test('a panic line early in a long console is found (not only in its tail), in chunks of any size', () => {
  const before = '\x1b[2J\x1bc[    0.000000] Linux version 6.1.0 — booting ✓\r\n'.repeat(50);
  const after = Array.from({ length: 10_000 }, (_, i) => `[    5.6] task ${i} S 0 0 /\r\n`).join('');
  for (const size of [1, 7, 4096, 1 << 20]) {
    const s = new ConsoleScanner();
    feed(s, before + PANIC + after + '[    5.9] ---[ end Kernel panic - not syncing: something else ]---\r\n', size);
    s.end();
    assert.equal(s.panic, 'Kernel panic - not syncing: sysrq triggered crash', `chunks of ${size}`);
    assert.equal(s.oomKillCount, 0);
  }
});

test('the closing "---[ end Kernel panic" line alone names the panic too; an unterminated last line counts at the end', () => {
  const s = new ConsoleScanner();
  s.push(Buffer.from('---[ end Kernel panic - not syncing: VFS: Unable to mount root fs ]---\r\n'));
  assert.equal(s.panic, 'Kernel panic - not syncing: VFS: Unable to mount root fs');
  const t = new ConsoleScanner();
  t.push(Buffer.from('[ 1.0] Kernel panic - not syncing: Attempted to kill init!'));
  assert.equal(t.panic, null, 'not yet: the line may go on');
  t.end();
  assert.equal(t.panic, 'Kernel panic - not syncing: Attempted to kill init!');
});

test('OOM kills: the "Killed process" lines (global and in a memory cgroup), the summary line, one per kill', () => {
  const s = new ConsoleScanner();
  feed(
    s,
    [
      '[   10.1] sh invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0',
      '[   10.2] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=sh,pid=84,uid=0',
      '[   10.3] Out of memory: Killed process 84 (sh) total-vm:100572kB, anon-rss:56908kB, file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:164kB oom_score_adj:0',
      '[   11.0] Memory cgroup out of memory: Killed process 90 (tail) total-vm:1000kB, anon-rss:900kB, file-rss:4kB, shmem-rss:0kB, UID:0',
      'echo Out of memory: Killed by nobody',
      '',
    ].join('\r\n'),
    13,
  );
  assert.deepEqual(s.oomKills, [
    { pid: 84, name: 'sh' },
    { pid: 90, name: 'tail' },
  ]);
  assert.equal(s.oomKillCount, 2);
  assert.equal(s.panic, null);
  assert.equal(describeOomKills(s.oomKills), 'processes 84 (sh), 90 (tail)');
  assert.equal(describeOomKills([{ pid: 7, name: 'x' }]), 'process 7 (x)');
  const many = Array.from({ length: 5 }, (_, i) => ({ pid: i + 1, name: 'p' }));
  assert.equal(describeOomKills(many, 40), 'processes 1 (p), 2 (p), 3 (p) and 37 more');
});

test('memory stays bounded: a runaway line is cut, the victims named are capped while the count goes on', () => {
  const s = new ConsoleScanner();
  for (let i = 0; i < 100; i++) s.push(Buffer.alloc(65536, 0x41)); // 6.5 MB without a newline
  s.push(Buffer.from('\n'));
  feed(s, Array.from({ length: 50 }, (_, i) => `Out of memory: Killed process ${i + 100} (w)\n`).join(''), 100);
  assert.equal(s.oomKillCount, 50);
  assert.equal(s.oomKills.length, 16);
});

test("waitOomKills: resolves when the console catches up with the agent's count, or after its time", async () => {
  const s = new ConsoleScanner();
  const waiting = s.waitOomKills(1, 60_000);
  s.push(Buffer.from('Out of memory: Killed process 3 (a)'));
  s.push(Buffer.from('\n'));
  await waiting; // resolved by the line, long before 60 s
  assert.equal(s.oomKillCount, 1);
  await s.waitOomKills(1, 60_000); // already there
  await s.waitOomKills(2, 1); // never comes: the time bound ends the wait
  assert.equal(s.oomKillCount, 1);
});
