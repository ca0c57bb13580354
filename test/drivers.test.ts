// The driver registry and the instance interface's contract: each driver says what it can do
// (capabilities) and has exactly those optional methods; configure() gives each kind its own section.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DRIVER_FACTORIES } from '../src/engine/drivers.js';
import { InvalidArgumentError } from '../src/common/errors.js';
import type { ConfigureEnv, InstanceConfig } from '../src/common/instance.js';

const noOthers: ConfigureEnv = { otherConfigs: () => [] };
const driverOf = (kind: string) => DRIVER_FACTORIES.find((f) => f.kind === kind)!.create();

test('every registered driver serves the kind it is registered for, once', () => {
  const kinds = DRIVER_FACTORIES.map((f) => f.kind);
  assert.equal(new Set(kinds).size, kinds.length);
  for (const f of DRIVER_FACTORIES) assert.equal(f.create().kind, f.kind);
});

test('capabilities and optional methods agree', () => {
  for (const f of DRIVER_FACTORIES) {
    const d = f.create();
    assert.equal(d.capabilities.console, typeof d.console === 'function', `${f.kind}: console`);
    assert.equal(d.capabilities.diskImages, typeof d.checkDiskImage === 'function', `${f.kind}: diskImages`);
  }
});

test('configure gives each kind only its own section', () => {
  const req = {
    privileged: true,
    capAdd: ['NET_ADMIN'],
    securityOpt: ['seccomp=unconfined'],
    runtime: 'runc',
    vm: { accel: 'tcg' },
  };
  const prev = process.env.HULL_RUNTIME;
  try {
    delete process.env.HULL_RUNTIME;
    const c = driverOf('container').configure(req, noOthers);
    assert.equal(c.vm, undefined);
    assert.equal(c.container?.privileged, true);
    assert.equal(c.container?.seccomp, 'unconfined');
    assert.equal(c.container?.runtime, 'runc');
    const v = driverOf('vm').configure({ ...req, disk: { path: '/x.qcow2', format: 'qcow2' } }, noOthers);
    assert.equal(v.container, undefined);
    // a disk-image VM has a display unless asked for none (--display)
    assert.deepEqual(v.vm, { accel: 'tcg', disk: '/x.qcow2', diskFormat: 'qcow2', display: 'vnc' });
  } finally {
    if (prev === undefined) delete process.env.HULL_RUNTIME;
    else process.env.HULL_RUNTIME = prev;
  }
});

test('a VM needs no OCI runtime; a container refuses one that does not exist', () => {
  const prev = process.env.HULL_RUNTIME;
  try {
    process.env.HULL_RUNTIME = 'no-such-runtime';
    assert.deepEqual(driverOf('vm').configure({}, noOthers), { vm: {} });
    assert.throws(() => driverOf('container').configure({}, noOthers), InvalidArgumentError);
  } finally {
    if (prev === undefined) delete process.env.HULL_RUNTIME;
    else process.env.HULL_RUNTIME = prev;
  }
});

test('--userns auto takes a range no other instance holds', () => {
  const held = {
    container: { userns: { uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [] } },
  } as unknown as InstanceConfig;
  const c = driverOf('container').configure({ userns: 'auto', runtime: 'runc' }, { otherConfigs: () => [held] });
  assert.equal(c.container?.userns?.uidMappings[0]?.hostID, 165536);
});
