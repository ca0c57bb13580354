/**
 * End to end through the CLI: a guest's own faults. A guest kernel panic (with hundreds of console lines after
 * the panic line) ends `run` with 255 and says so on stderr, in inspect and in the die event; the guest
 * kernel's OOM killer killing the workload gives exit 137, State.OOMKilled and an `oom` event (as for a
 * container, checked here too), while a user's `kill -s KILL` of the same instance is not an OOM kill.
 * Three VM boots in all (TCG: each takes seconds of CPU), then the leak check.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HullRoot, waitFor } from './helpers/hull.js';

const root = new HullRoot('vmfaults', { HULL_VM_CACHE: process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache' });
after(() => root.dispose());

interface Event {
  Action: string;
  Actor: { Attributes: Record<string, string> };
}

/** The instance's events, oldest first. */
async function eventsOf(name: string): Promise<Event[]> {
  return (await root.ok('events', '--since', '0', '--no-follow', '--format', 'json'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Event)
    .filter((e) => e.Actor.Attributes.name === name);
}

interface State {
  Status: string;
  ExitCode: number;
  Error: string;
  OOMKilled: boolean;
}

async function stateOf(name: string): Promise<State> {
  return (await root.inspect(name)).State as unknown as State;
}

describe('VM faults through the CLI', { timeout: 600_000 }, () => {
  test('a guest kernel panic: exit 255, "guest kernel panic: …" on stderr, in inspect and in the die event', async () => {
    // panic_print=1: after the panic line the kernel dumps every task (hundreds of lines) before QEMU ends
    const r = await root.hullWith(
      { timeoutMs: 300_000 },
      'run',
      '--name',
      'panicky',
      '--network',
      'none',
      '--isolation',
      'vm',
      'busybox',
      'sh',
      '-c',
      'echo 1 > /proc/sys/kernel/panic_print; echo c > /proc/sysrq-trigger; echo survived',
    );
    const reason = 'guest kernel panic: Kernel panic - not syncing: sysrq triggered crash';
    assert.equal(r.code, 255, r.stderr);
    assert.equal(r.stdout, '');
    assert.ok(r.stderr.includes(`hull: panicky: ${reason}\n`), r.stderr);
    const st = await stateOf('panicky');
    assert.deepEqual([st.Status, st.ExitCode, st.Error, st.OOMKilled], ['exited', 255, reason, false]);
    const die = (await eventsOf('panicky')).filter((e) => e.Action === 'die');
    assert.deepEqual(
      die.map((e) => [e.Actor.Attributes.exitCode, e.Actor.Attributes.reason]),
      [['255', reason]],
    );
    // the panic line was far from the console's end: found while the console was written, not in a tail
    const id = (await root.inspect('panicky')).Id;
    const lines = readFileSync(join(root.dir, 'containers', id, 'console.log'), 'utf8').split('\n');
    const at = lines.findIndex((l) => l.includes('Kernel panic - not syncing'));
    assert.ok(at >= 0 && lines.length - at > 100, `panic line at ${at} of ${lines.length}`);
    await root.ok('rm', 'panicky');
  });

  test('the guest OOM killer kills the workload: 137, OOMKilled, an oom event; then a user SIGKILL is not OOM', async () => {
    // the disk is kept across starts: the first run allocates until killed, the second sleeps until killed
    const script = 'if [ -e /ran ]; then echo ready; exec sleep 1d; fi; touch /ran; x=y; while :; do x=$x$x; done';
    const r = await root.hullWith(
      { timeoutMs: 300_000 },
      'run',
      '--name',
      'hungry',
      '--network',
      'none',
      '--memory',
      '128m',
      '--isolation',
      'vm',
      'busybox',
      'sh',
      '-c',
      script,
    );
    assert.equal(r.code, 137, r.stderr);
    const oom =
      /^OOM killed: the guest ran out of memory \(128 MiB\) and its kernel killed process(es)? \d+ \(sh\).*; give the VM more with --memory$/;
    assert.match(
      r.stderr
        .trim()
        .split('\n')
        .at(-1)!
        .replace(/^hull: hungry: /, ''),
      oom,
      r.stderr,
    );
    let st = await stateOf('hungry');
    assert.deepEqual([st.Status, st.ExitCode, st.OOMKilled], ['exited', 137, true]);
    assert.match(st.Error, oom);
    // docker's order: oom, then die
    assert.deepEqual(
      (await eventsOf('hungry')).map((e) => e.Action).filter((a) => a === 'oom' || a === 'die'),
      ['oom', 'die'],
    );

    await root.ok('start', 'hungry');
    await waitFor(
      'the second run to be ready',
      async () => (await root.ok('logs', 'hungry')).includes('ready'),
      300_000,
      250,
    );
    await root.ok('kill', '-s', 'KILL', 'hungry');
    st = await waitFor(
      'the exit',
      async () => {
        const s = await stateOf('hungry');
        return s.Status === 'exited' ? s : null;
      },
      60_000,
    );
    assert.deepEqual([st.ExitCode, st.OOMKilled, st.Error], [137, false, 'killed by signal 9 (SIGKILL)']);
    assert.deepEqual(
      (await eventsOf('hungry')).map((e) => e.Action).filter((a) => a === 'oom' || a === 'die'),
      ['oom', 'die', 'die'],
      "no oom event for the user's kill",
    );
    await root.ok('rm', 'hungry');
  });

  test("a container's OOM kill reads the same: 137, OOMKilled, an oom event", async () => {
    const r = await root.hull(
      'run',
      '--name',
      'cgreedy',
      '--network',
      'none',
      '--memory',
      '16m',
      '--memory-swap',
      '16m',
      'busybox',
      'sh',
      '-c',
      'head -c 200000000 /dev/zero | tail -c 150000000 > /dev/null',
    );
    assert.equal(r.code, 137, r.stderr);
    assert.match(r.stderr, /hull: cgreedy: OOM killed\n/);
    const st = await stateOf('cgreedy');
    assert.deepEqual([st.ExitCode, st.OOMKilled, st.Error], [137, true, 'OOM killed']);
    assert.deepEqual(
      (await eventsOf('cgreedy')).map((e) => e.Action).filter((a) => a === 'oom' || a === 'die'),
      ['oom', 'die'],
    );
    await root.ok('rm', 'cgreedy');
  });

  test('leaves nothing behind', () => root.cleanupAndCheck());
});
