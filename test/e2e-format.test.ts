/** --format / -f: Go templates, `table ...`, and json lines, run through the real CLI (docker's conventions). */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HullRoot, jsonLines } from './helpers/hull.js';

const root = new HullRoot('format');
let id = '';

before(async () => {
  id = (
    await root.ok(
      'run',
      '-d',
      '--name',
      'fmt-web',
      '--label',
      'tier=front',
      '-v',
      '/tmp:/data',
      'busybox',
      'sleep',
      '300',
    )
  ).trim();
});
after(() => root.dispose());

describe('--format', () => {
  test('inspect -f: fields, json, range, and <no value> for a missing map key', async () => {
    assert.equal(await root.ok('inspect', '-f', '{{.State.Status}}', 'fmt-web'), 'running\n');
    assert.equal(await root.ok('inspect', '--format', '{{.State.Running}} {{.Id}}', 'fmt-web'), `true ${id}\n`);
    const config = JSON.parse(await root.ok('inspect', '-f', '{{json .Config}}', 'fmt-web')) as { Labels: object };
    assert.deepEqual(config.Labels, { tier: 'front' });
    assert.equal(await root.ok('inspect', '-f', '{{range $i, $m := .Mounts}}{{$i}} {{end}}', 'fmt-web'), '0 \n');
    assert.equal(
      await root.ok('inspect', '-f', '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{end}}', 'fmt-web'),
      'tier=front\n',
    );
    assert.equal(await root.ok('inspect', '-f', '{{.Config.Labels.nope}}', 'fmt-web'), '<no value>\n');
    assert.equal(await root.ok('inspect', '-f', '{{index .Config.Labels "tier"}}', 'fmt-web'), 'front\n');
    assert.equal(JSON.parse(await root.ok('inspect', '--format', 'json', 'fmt-web')).length, 1);
  });

  test('ps: a template per line, table with docker headers, json lines', async () => {
    assert.match(await root.ok('ps', '--format', '{{.Names}}\\t{{.Status}}'), /^fmt-web\tUp .+\n$/);
    assert.equal(
      await root.ok('ps', '--format', '{{.ID}} {{.Label "tier"}} {{.Type}}'),
      `${id.slice(0, 12)} front container\n`,
    );
    const table = await root.ok('ps', '--format', 'table {{.ID}}\\t{{.Names}}\\t{{.Image}}');
    assert.equal(table, `CONTAINER ID   NAMES     IMAGE\n${id.slice(0, 12)}   fmt-web   busybox\n`);
    const rows = jsonLines<Record<string, string>>(await root.ok('ps', '--format', 'json'));
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.Names, 'fmt-web');
    assert.equal(rows[0]!.State, 'running');
    assert.equal(rows[0]!.Command, '"sleep 300"');
    assert.equal(rows[0]!.Labels, 'tier=front');
    assert.match(await root.ok('ps'), /^INSTANCE ID\s+IMAGE/, '--format absent: the usual table');
  });

  test('images, network ls, version, system info, events', async () => {
    assert.equal(await root.ok('images', '--format', '{{.Repository}}:{{.Tag}}'), 'busybox:latest\n');
    assert.match(await root.ok('network', 'ls', '--format', '{{.Name}} {{.Driver}}'), /^\S+ bridge$/m);
    const v = await root.ok('version', '--format', '{{.Server.Version}} {{.Client.Version}}');
    assert.match(v, /^(\d+\.\d+\.\d+\S*) \1\n$/);
    assert.match(
      await root.ok('system', 'info', '--format', '{{.Containers}} {{.ContainersRunning}}'),
      /^\d+ [1-9]\d*\n$/,
    );
    // docker's top-level `info` is the same command
    assert.equal(
      await root.ok('info', '--format', '{{.Containers}} {{.ServerVersion}}'),
      await root.ok('system', 'info', '--format', '{{.Containers}} {{.ServerVersion}}'),
    );
    const evs = await root.ok(
      'events',
      '--since',
      '0',
      '--no-follow',
      '--format',
      '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}',
    );
    assert.match(evs, /^container start fmt-web$/m);
  });

  test('stats --no-stream with a template', async () => {
    const out = await root.ok('stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}} {{.MemPerc}}', 'fmt-web');
    assert.match(out, /^fmt-web \d+ \d+\.\d\d%\n$/);
  });

  test("a bad template: one line, docker's words, exit 1", async () => {
    const parse = await root.hull('ps', '--format', '{{.Names');
    assert.equal(parse.code, 1);
    assert.equal(parse.stdout, '');
    assert.equal(parse.stderr, 'hull: template parsing error: template: :1: unclosed action\n');
    const exec = await root.hull('ps', '--format', '{{.Nope}}');
    assert.equal(exec.code, 1);
    assert.match(
      exec.stderr,
      /^hull: template parsing error: template: :1:2: executing "" at <\.Nope>: can't evaluate field Nope in type \*formatter\.ContainerContext\n$/,
    );
    const fn = await root.hull('inspect', '-f', '{{nosuch .}}', 'fmt-web');
    assert.equal(fn.code, 1);
    assert.equal(fn.stderr, 'hull: template parsing error: template: :1: function "nosuch" not defined\n');
  });
});

test('leaves nothing behind', () => root.cleanupAndCheck());
