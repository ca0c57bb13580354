import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import {
  availableRuntimes,
  findExecutable,
  parseNofileHard,
  parseRuntimeVersion,
  probeHost,
  probeRuntime,
  resetProbeCache,
} from '../src/host/probe.js';
import { detectCgroupLayout } from '../src/host/cgroups.js';

test('host probe: layout, namespaces, seccomp, nofile, KVM', () => {
  resetProbeCache();
  const p = probeHost();
  assert.equal(p.cgroupLayout, detectCgroupLayout());
  assert.equal(p.cgroupNamespace, existsSync('/proc/self/ns/cgroup'));
  assert.equal(typeof p.userNamespace, 'boolean');
  assert.equal(p.seccomp, true);
  assert.equal(p.nofileHard, parseNofileHard(readFileSync('/proc/self/limits', 'utf8')));
  const hwKvm = existsSync('/dev/kvm') && (existsSync('/sys/module/kvm_intel') || existsSync('/sys/module/kvm_amd'));
  assert.equal(p.kvm, hwKvm);
  if (!hwKvm) assert.match(p.kvmReason ?? '', existsSync('/dev/kvm') ? /no hardware virtualization/ : /missing/);
  assert.equal(probeHost(), p, 'cached');
});

test('parsers', () => {
  assert.equal(
    parseNofileHard(
      'Limit Soft Limit Hard Limit Units\nMax open files            1024                 20000                files     \n',
    ),
    20000,
  );
  assert.equal(
    parseNofileHard('Max open files            unlimited            unlimited            files\n'),
    Number.MAX_SAFE_INTEGER,
  );
  assert.equal(parseRuntimeVersion('runc version 1.1.5+ds1\ncommit: x\n'), '1.1.5+ds1');
  assert.equal(parseRuntimeVersion('crun version 1.8.1\ncommit: f8a\n'), '1.8.1');
});

test('runtime probes', () => {
  const runc = probeRuntime('runc');
  if (findExecutable('runc')) {
    assert.equal(runc.usable, true);
    assert.match(runc.version ?? '', /^1\./);
    assert.equal(runc.needsPureV1View, false);
  }
  const crun = probeRuntime('crun');
  if (crun.path) {
    assert.equal(
      crun.needsPureV1View,
      probeHost().cgroupLayout === 'hybrid' && !/^(1\.(9|\d\d)|[2-9])/.test(crun.version ?? ''),
    );
  }
  const none = probeRuntime('hull-no-runtime');
  assert.equal(none.usable, false);
  assert.match(none.reason ?? '', /not installed/);
  assert.ok(availableRuntimes().every((r) => r.usable));
});
