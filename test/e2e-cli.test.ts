/**
 * End to end: docker's management commands (`hull container ls`, `hull image rm`, `hull system df`, …) run the
 * top-level commands' own definitions; `hull rename` (docker's rules, a running instance's DNS name follows);
 * exit statuses through the management forms.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HullRoot, waitFor } from './helpers/hull.js';

const root = new HullRoot('cli');
after(() => root.dispose());

test('hull --help lists the management commands apart', async () => {
  const help = await root.ok('--help');
  const [commands, management] = help.split('Management Commands:');
  assert.ok(management, help);
  for (const g of ['container', 'image', 'system', 'network', 'builder', 'vm'])
    assert.match(management!, new RegExp(`^  ${g}\\s`, 'm'), g);
  assert.match(commands!, /^ {2}rename <instance> <new-name>/m);
  const container = await root.ok('container', '--help');
  for (const v of ['ls|ps', 'run', 'exec', 'rm', 'rename', 'prune', 'port', 'logs', 'inspect'])
    assert.match(container, new RegExp(`^  ${v.replace('|', '\\|')}\\b`, 'm'), v);
});

describe('container …', () => {
  test('run, ls/ps/list, exec, logs, inspect, stop, start, kill, wait, rm: the same commands, flags and output', async () => {
    const id = (
      await root.ok(
        'container',
        'run',
        '-d',
        '--name',
        'c1',
        '--network',
        'none',
        'busybox',
        'sh',
        '-c',
        'echo hi; sleep 60',
      )
    ).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const ps = await root.ok('ps', '-q', '--no-trunc');
    assert.equal(ps, `${id}\n`);
    for (const verb of ['ls', 'ps', 'list'])
      assert.equal(await root.ok('container', verb, '-q', '--no-trunc'), ps, verb);
    assert.equal(await root.ok('container', 'exec', 'c1', 'echo', 'inside'), 'inside\n');
    assert.equal(await root.ok('container', 'logs', 'c1'), 'hi\n');
    const [viaGroup] = JSON.parse(await root.ok('container', 'inspect', 'c1')) as { Id: string }[];
    assert.equal(viaGroup!.Id, id);
    assert.equal(await root.ok('container', 'stop', '-t', '0', 'c1'), 'c1\n');
    assert.equal((await root.inspect('c1')).State.Status, 'exited');
    assert.equal(await root.ok('container', 'start', 'c1'), 'c1\n');
    assert.equal(await root.ok('container', 'kill', 'c1'), 'c1\n');
    assert.equal(await root.ok('container', 'wait', 'c1'), '137\n');
    assert.equal(await root.ok('container', 'rm', 'c1'), 'c1\n');
    assert.deepEqual(await root.ids(), []);
  });

  test("exit statuses through the group are docker's", async () => {
    const missing = await root.hull('container', 'rm', 'ghost');
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'hull: Error: No such container: ghost\n');
    const forced = await root.hull('container', 'rm', '-f', 'ghost');
    assert.equal(forced.code, 0);
    assert.equal(forced.stdout + forced.stderr, '');
    assert.equal((await root.hull('container', 'run', '--bogus', 'busybox', 'true')).code, 125);
    assert.equal((await root.hull('container', 'ls', '--bogus')).code, 125);
    assert.equal((await root.hull('container', 'run', '--pull', 'never', 'no-such-image', 'true')).code, 125);
    assert.equal((await root.hull('container', 'run', '--rm', '--network', 'none', 'busybox', 'nosuchcmd')).code, 127);
    await root.ok('container', 'run', '-d', '--name', 'c2', '--network', 'none', 'busybox', 'sleep', '60');
    const exec = await root.hull('container', 'exec', 'c2', 'nosuchcmd');
    assert.equal(exec.code, 126);
    assert.match(exec.stderr, /exec: "nosuchcmd": executable file not found in \$PATH: unknown\n$/);
    assert.equal((await root.hull('container', 'exec', '-it', 'c2', 'sh')).code, 1);
    await root.ok('rm', '-f', 'c2');
  });
});

describe('image …', () => {
  test('ls/list, tag, history, rm/rmi/remove: the same commands and output', async () => {
    await root.ok('images'); // busybox is made on first use
    const images = await root.ok('images', '-q');
    assert.equal(await root.ok('image', 'ls', '-q'), images);
    assert.equal(await root.ok('image', 'list', '-q'), images);
    assert.equal(await root.ok('image', 'tag', 'busybox', 'mine:1'), '');
    assert.match(await root.ok('image', 'ls'), /^mine\s+1\s/m);
    assert.equal(await root.ok('image', 'history', 'mine:1'), await root.ok('history', 'mine:1'));
    assert.match(await root.ok('image', 'rm', 'mine:1'), /^Untagged: mine:1\n$/);
    await root.ok('tag', 'busybox', 'mine:2');
    await root.ok('tag', 'busybox', 'mine:3');
    assert.match(await root.ok('image', 'rmi', 'mine:2'), /^Untagged: mine:2\n$/);
    assert.match(await root.ok('image', 'remove', 'mine:3'), /^Untagged: mine:3\n$/);
    const gone = await root.hull('image', 'rm', 'mine:3');
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^hull: image not found: mine:3/);
  });
});

describe('system …', () => {
  test("df: docker's table, -v its sections; events: the same as hull events", async () => {
    await root.ok('volume', 'create', 'dfspare');
    await root.ok(
      'run',
      '-d',
      '--name',
      'dfrun',
      '--network',
      'none',
      '-v',
      'dfdata:/data',
      'busybox',
      'sh',
      '-c',
      'echo x > /x; head -c 200000 /dev/zero > /data/f; touch /data/done; sleep 60',
    );
    await waitFor(
      'the volume written',
      () => existsSync(join(root.dir, 'volumes', 'dfdata', '_data', 'done')) || undefined,
    );
    await root.ok('create', '--name', 'dfcreated', '--network', 'none', 'busybox', 'true');
    const df = await root.ok('system', 'df');
    const lines = df.trimEnd().split('\n');
    assert.match(lines[0]!, /^TYPE {12}TOTAL {5}ACTIVE {4}SIZE {6}RECLAIMABLE$/);
    assert.match(lines[1]!, /^Images {10}1 {9}1 {9}\d[\d.]*[kMG]?B {2,}0B \(0%\)$/);
    assert.match(lines[2]!, /^Containers {6}2 {9}1 {9}\S+ {2,}\S+/);
    // one volume in use (200 kB and its directory), one unused and empty: only the empty one is reclaimable
    assert.match(lines[3]!, /^Local Volumes {3}2 {9}1 {9}20\d(\.\d+)?kB {2,}\d+(\.\d+)?k?B \([0-2]%\)$/);
    assert.match(lines[4]!, /^Build Cache {5}\d+ {9}0 {9}\S+ {2,}\S+$/);
    assert.equal(lines.length, 5);
    const v = await root.ok('system', 'df', '-v');
    for (const s of [
      'Images space usage:',
      'Containers space usage:',
      'Local Volumes space usage:',
      'Build cache usage: ',
    ])
      assert.ok(v.includes(s), s);
    assert.match(v, /^busybox\s+latest\s+[0-9a-f]{12}\s/m);
    assert.match(v, /\sdfrun\n/);
    assert.match(v, /\sdfcreated\n/);
    assert.match(v, /^dfdata {8,}1 {9}20\d(\.\d+)?kB$/m);
    assert.match(v, /^dfspare {7,}0 {9}\d+(\.\d+)?k?B$/m);
    const events = ['--since', '0', '--no-follow', '--format', 'json'];
    assert.equal(await root.ok('system', 'events', ...events), await root.ok('events', ...events));
    await root.ok('rm', '-f', 'dfrun', 'dfcreated');
    await root.ok('volume', 'rm', 'dfdata', 'dfspare');
  });
});

describe('rename', () => {
  test('a running instance on a network: the name, the DNS name and the network view follow', async () => {
    const net = (await root.ok('network', 'create', 'renet')).trim();
    const id = (
      await root.ok('run', '-d', '--name', 'old-web', '--network', net, 'busybox', 'httpd', '-f', '-p', '8080')
    ).trim();
    const resolves = async (name: string) =>
      (
        await root.ok(
          'run',
          '--rm',
          '--network',
          net,
          'busybox',
          'sh',
          '-c',
          `nslookup ${name} >/dev/null 2>&1 && echo found; echo done`,
        )
      ).trim();
    assert.equal(await resolves('old-web'), 'found\ndone');
    assert.equal(await root.ok('rename', 'old-web', 'new-web'), '');
    const st = await root.inspect('new-web');
    assert.equal(st.Id, id);
    assert.equal(st.State.Status, 'running');
    assert.equal((await root.hull('inspect', 'old-web')).code, 1);
    assert.equal(await resolves('new-web'), 'found\ndone');
    assert.equal(await resolves('old-web'), 'done');
    // its own /etc/hosts names it by the new name
    const hosts = await root.ok('exec', 'new-web', 'cat', '/etc/hosts');
    assert.match(hosts, /\snew-web$/m);
    assert.doesNotMatch(hosts, /\sold-web\b/);
    const [netView] = JSON.parse(await root.ok('network', 'inspect', net)) as {
      Containers: Record<string, { Name: string }>;
      Hull: { Members: Record<string, { Names: string[] }> };
    }[];
    assert.equal(netView!.Containers[id]!.Name, 'new-web');
    // the DNS names the network holds for it (hull's own part of the document)
    assert.ok(netView!.Hull.Members[id]!.Names.includes('new-web'));
    assert.ok(!netView!.Hull.Members[id]!.Names.includes('old-web'));
    // through the group, and the event
    await root.ok('container', 'rename', 'new-web', 'web3');
    const ev = (await root.ok('events', '--since', '0', '--no-follow', '--format', 'json'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { Action: string; Actor: { ID: string; Attributes: Record<string, string> } })
      .filter((e) => e.Action === 'rename');
    assert.deepEqual(
      ev.map((e) => [e.Actor.ID, e.Actor.Attributes.oldName, e.Actor.Attributes.name]),
      [
        [id, 'old-web', 'new-web'],
        [id, 'new-web', 'web3'],
      ],
    );
    // it keeps its name across a restart
    await root.ok('restart', '-t', '0', 'web3');
    assert.equal(await resolves('web3'), 'found\ndone');
    await root.ok('rm', '-f', 'web3');
    await root.ok('network', 'rm', net);
  });

  test("docker's refusals: a taken name, an invalid one, the same one, a missing instance; exit 1", async () => {
    const a = (await root.ok('create', '--name', 'ren-a', '--network', 'none', 'busybox', 'true')).trim();
    await root.ok('create', '--name', 'ren-b', '--network', 'none', 'busybox', 'true');
    const taken = await root.hull('rename', 'ren-b', 'ren-a');
    assert.equal(taken.code, 1);
    assert.equal(
      taken.stderr,
      `hull: Conflict. The container name "/ren-a" is already in use by container "${a}". You have to remove (or rename) that container to be able to reuse that name.\n`,
    );
    for (const bad of ['x', 'bad/name', '_under', 'sp ace']) {
      const r = await root.hull('rename', 'ren-b', bad);
      assert.equal(r.code, 1, bad);
      assert.match(
        r.stderr,
        /^hull: Invalid container name \(.*\), only \[a-zA-Z0-9\]\[a-zA-Z0-9_.-\] are allowed/,
        bad,
      );
    }
    const same = await root.hull('rename', 'ren-b', 'ren-b');
    assert.equal(same.code, 1);
    assert.match(same.stderr, /Renaming a container with the same name as its current name/);
    const ghost = await root.hull('rename', 'ghost', 'ren-c');
    assert.equal(ghost.code, 1);
    assert.equal(ghost.stderr, 'hull: Error: No such container: ghost\n');
    // nothing changed; a leading slash is docker's and allowed
    assert.equal(await root.ok('rename', 'ren-b', '/ren-c'), '');
    assert.equal((await root.inspect('ren-c')).Name.replace(/^\//, ''), 'ren-c');
    await root.ok('rm', 'ren-a', 'ren-c');
  });

  test('a VM is renamed the same way', async () => {
    await root.ok('create', '--isolation', 'vm', '--name', 'vm-old', '--network', 'none', 'busybox', 'true');
    await root.ok('container', 'rename', 'vm-old', 'vm-new');
    assert.equal((await root.inspect('vm-new')).State.Status, 'created');
    assert.equal(await root.ok('ps', '-a', '--format', '{{.Names}}'), 'vm-new\n');
    await root.ok('rm', 'vm-new');
  });
});

test('leaves nothing behind', () => root.cleanupAndCheck());
