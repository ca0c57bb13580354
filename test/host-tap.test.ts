/** src/host/tap.ts: a tap next to a veth in a network namespace, with tc redirects both ways. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createNetns, removeNetns } from '../src/host/netns.js';
import { createRedirectedTap, inNetns, removeTap } from '../src/host/tap.js';

const sh = (argv: string[]) => spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });

test('createRedirectedTap: tap up, u32+mirred both ways; removeTap and the namespace take it all away', async () => {
  const dir = mkdtempSync('/tmp/hull-test-tap-');
  const ns = join(dir, 'ns');
  const host = `htap${process.pid % 100000}`;
  try {
    await createNetns(ns);
    assert.equal(sh(['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]).status, 0);
    await createRedirectedTap(ns, 'tap0', 'eth0', 1400);
    const links = sh(inNetns(ns, ['ip', '-o', 'link', 'show'])).stdout;
    assert.match(links, /tap0: .*mtu 1400/);
    const fromVeth = sh(inNetns(ns, ['tc', 'filter', 'show', 'dev', 'eth0', 'ingress'])).stdout;
    assert.match(fromVeth, /mirred \(Egress Redirect to device tap0\)/);
    const fromTap = sh(inNetns(ns, ['tc', 'filter', 'show', 'dev', 'tap0', 'ingress'])).stdout;
    assert.match(fromTap, /mirred \(Egress Redirect to device eth0\)/);
    await removeTap(ns, 'tap0', 'eth0');
    assert.doesNotMatch(sh(inNetns(ns, ['ip', '-o', 'link', 'show'])).stdout, /tap0/);
    assert.equal(sh(inNetns(ns, ['tc', 'filter', 'show', 'dev', 'eth0', 'ingress'])).stdout.trim(), '');
  } finally {
    await removeNetns(ns);
    sh(['ip', 'link', 'del', host]);
    rmSync(dir, { recursive: true, force: true });
  }
  // the host end went with the namespace
  assert.notEqual(sh(['ip', 'link', 'show', host]).status, 0);
});
