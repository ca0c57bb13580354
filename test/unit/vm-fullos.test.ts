/**
 * The unit tier of full OS VMs: the cloud-init seed's files (src/vm/cloudinit.ts), the checks of the user's files,
 * the QEMU arguments of the guest agent channel, the seed and UEFI (src/vm/fullos.ts), and the guest agent client
 * (src/vm/guest-agent.ts) against a scripted qemu-ga on a unix socket: resynchronisation with
 * guest-sync-delimited past stale bytes, errors, a timeout followed by a resync, a command without an answer.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultNetworkConfig, metaData, readCloudInitFiles, seedFiles } from '../../src/vm/cloudinit.js';
import { fullOsArgs, parseFirmware } from '../../src/vm/fullos.js';
import { GuestAgentClient, guestAddresses } from '../../src/vm/guest-agent.js';
import { hostnameOf } from '../../src/vm/create/fullos-prepare.js';
import type { InstanceNetwork } from '../../src/common/instance.js';

const dir = mkdtempSync(join(tmpdir(), 'hull-unit-fullos-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const net: InstanceNetwork = {
  netnsPath: '/run/netns/x',
  attachments: [
    {
      network: 'hull',
      interface: 'eth0',
      address: '10.88.0.5/16',
      gateway: '10.88.0.1',
      mac: '02:AA:BB:CC:DD:EE',
      bridge: 'hull0',
      names: [],
      ports: [],
    },
  ],
  nameservers: ['10.88.0.1'],
  searches: ['dns.hull'],
  extraHosts: [],
};

describe('cloud-init seed', () => {
  test('meta-data: the instance id, the hostname, the keys (JSON strings: valid YAML)', () => {
    assert.equal(
      metaData('abc', 'web-1', ['ssh-ed25519 AAAA x@y']),
      'instance-id: "abc"\nlocal-hostname: "web-1"\npublic-keys:\n  - "ssh-ed25519 AAAA x@y"\n',
    );
  });

  test("network-config: hull's address, gateway and DNS for the NIC with hull's MAC", () => {
    const nc = defaultNetworkConfig(net)!;
    assert.match(nc, /^version: 2\n/);
    assert.match(nc, /macaddress: "02:aa:bb:cc:dd:ee"/);
    assert.match(nc, /addresses: \["10\.88\.0\.5\/16"\]/);
    assert.match(nc, /to: "0\.0\.0\.0\/0"\n\s+via: "10\.88\.0\.1"/);
    assert.match(nc, /nameservers:\n\s+addresses: \["10\.88\.0\.1"\]\n\s+search: \["dns\.hull"\]/);
    assert.equal(defaultNetworkConfig(undefined), undefined, 'no hull network: the image decides');
  });

  test("the user's files win; without them hull's defaults", () => {
    const mine = seedFiles({
      id: 'i',
      hostname: 'h',
      cloudInit: { userData: '#cloud-config\n{}\n', networkConfig: 'version: 1\n' },
      network: net,
    });
    assert.equal(mine['user-data'], '#cloud-config\n{}\n');
    assert.equal(mine['network-config'], 'version: 1\n');
    const def = seedFiles({ id: 'i', hostname: 'h' });
    assert.match(def['user-data']!, /^#cloud-config\nhostname: "h"/);
    assert.equal(def['network-config'], undefined);
  });

  test('the files are checked before anything is made', () => {
    const ud = join(dir, 'ud');
    writeFileSync(ud, 'hostname: x\n');
    assert.throws(() => readCloudInitFiles({ userData: ud }), /first line must be #cloud-config/);
    assert.throws(() => readCloudInitFiles({ sshKey: ud }), /not an OpenSSH public key file/);
    assert.throws(() => readCloudInitFiles({ networkConfig: ud }), /needs "version: 1" or "version: 2"/);
    assert.throws(() => readCloudInitFiles({ userData: join(dir, 'missing') }), /--cloud-init .*cannot read it/);
    const key = join(dir, 'k.pub');
    writeFileSync(key, '# mine\nssh-ed25519 AAAAC3Nz me@host\n\n');
    assert.deepEqual(readCloudInitFiles({ sshKey: key }).sshKeys, ['ssh-ed25519 AAAAC3Nz me@host']);
  });

  test('hostnames from instance names', () => {
    assert.equal(hostnameOf('web_1.example'), 'web-1-example');
    assert.equal(hostnameOf('__'), 'hull');
  });
});

describe('QEMU arguments of a full OS VM', () => {
  test('the guest agent port, the seed CD-ROM, OVMF as pflash', () => {
    const a = fullOsArgs({
      guestAgentSocket: 'qga.sock',
      seed: 'seed.iso',
      uefi: { code: '/c.fd', vars: 'v.fd' },
    }).join(' ');
    assert.match(a, /if=pflash,format=raw,unit=0,readonly=on,file=\/c\.fd/);
    assert.match(a, /if=pflash,format=raw,unit=1,file=v\.fd/);
    assert.match(a, /virtserialport,chardev=qga,name=org\.qemu\.guest_agent\.0,id=qga0/);
    assert.match(a, /file=seed\.iso,format=raw,if=none,id=seed,readonly=on,media=cdrom/);
    assert.doesNotMatch(fullOsArgs({ guestAgentSocket: 'qga.sock' }).join(' '), /pflash|cdrom/);
    assert.throws(() => parseFirmware('efi'), /give bios .* or uefi/);
  });
});

/** A scripted qemu-ga: answers each JSON line with `reply(cmd)` (null: no answer). */
function fakeAgent(
  reply: (cmd: { execute: string; arguments?: Record<string, unknown> }, raw: Buffer) => Buffer | string | null,
) {
  const path = join(dir, `qga-${Math.random().toString(36).slice(2)}.sock`);
  const server = createServer((s: Socket) => {
    let buf = Buffer.alloc(0);
    s.on('data', (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      for (;;) {
        // qemu-ga drops what it had on 0xFF
        const ff = buf.lastIndexOf(0xff);
        if (ff >= 0) buf = buf.subarray(ff + 1);
        const nl = buf.indexOf(10);
        if (nl < 0) return;
        const line = buf.subarray(0, nl);
        buf = buf.subarray(nl + 1);
        const r = reply(JSON.parse(line.toString()), line);
        if (r !== null) s.write(r);
      }
    });
  });
  return new Promise<{ client: GuestAgentClient; close: () => void }>((resolve) =>
    server.listen(path, () => {
      const sock = connect(path);
      const client = new GuestAgentClient(sock);
      resolve({
        client,
        close: () => {
          client.close();
          server.close();
        },
      });
    }),
  );
}

describe('guest agent client', () => {
  test('resyncs past stale bytes, then answers in turn; errors name the command', async () => {
    const { client, close } = await fakeAgent((cmd) => {
      if (cmd.execute === 'guest-sync-delimited')
        return Buffer.concat([
          Buffer.from('{"return": "stale"}\n'),
          Buffer.from([0xff]),
          Buffer.from(`{"return": ${cmd.arguments!.id}}\n`),
        ]);
      if (cmd.execute === 'guest-ping') return '{"return": {}}\n';
      if (cmd.execute === 'guest-exec')
        return '{"error": {"class": "GenericError", "desc": "Failed to execute child process (No such file or directory)"}}\n';
      if (cmd.execute === 'guest-network-get-interfaces')
        return (
          JSON.stringify({
            return: [
              { name: 'lo', 'ip-addresses': [{ 'ip-address-type': 'ipv4', 'ip-address': '127.0.0.1', prefix: 8 }] },
              {
                name: 'eth0',
                'hardware-address': '02:aa',
                'ip-addresses': [{ 'ip-address-type': 'ipv4', 'ip-address': '10.0.0.2', prefix: 24 }],
              },
            ],
          }) + '\n'
        );
      return null;
    });
    try {
      assert.deepEqual(await client.execute('guest-ping'), {});
      await assert.rejects(
        client.execute('guest-exec', { path: 'x' }),
        /refused guest-exec: Failed to execute child process/,
      );
      const ifs = await client.execute<Parameters<typeof guestAddresses>[0]>('guest-network-get-interfaces');
      assert.deepEqual(guestAddresses(ifs), [
        { interface: 'eth0', mac: '02:aa', address: '10.0.0.2', prefix: 24, family: 'ipv4' },
      ]);
    } finally {
      close();
    }
  });

  test('a command that times out is followed by a resync; the late answer is not taken for the next', async () => {
    let syncs = 0;
    let slow = true;
    const { client, close } = await fakeAgent((cmd) => {
      if (cmd.execute === 'guest-sync-delimited') {
        syncs++;
        // the slow command's late answer comes just before the sync's marker: it must be dropped
        return Buffer.concat([
          Buffer.from(syncs > 1 ? '{"return": "late"}\n' : ''),
          Buffer.from([0xff]),
          Buffer.from(`{"return": ${cmd.arguments!.id}}\n`),
        ]);
      }
      if (cmd.execute === 'guest-info' && slow) {
        slow = false;
        return null;
      }
      return '{"return": "fresh"}\n';
    });
    try {
      await assert.rejects(
        client.execute('guest-info', undefined, { timeoutMs: 200 }),
        /did not answer guest-info within/,
      );
      assert.equal(await client.execute('guest-info'), 'fresh');
      assert.equal(syncs, 2, 'one sync at first use, one after the timeout');
      // no answer expected: resolves once written, and the next command resyncs
      await client.execute('guest-shutdown', { mode: 'powerdown' }, { noAnswer: true });
      assert.equal(await client.execute('guest-info'), 'fresh');
      assert.equal(syncs, 3);
    } finally {
      close();
    }
  });
});
