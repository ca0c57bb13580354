/**
 * Full OS VMs as users of Incus, Proxmox or multipass expect them, end to end through the CLI, on a real Debian 12
 * disk made at test time from Debian's packages (test/helpers/debian-disk.sh: mmdebstrap with systemd, the cloud
 * kernel, cloud-init, qemu-guest-agent, openssh-server, ifupdown; extlinux for BIOS, systemd-boot on an EFI
 * system partition for UEFI), never a hand-made boot sector. The disk is cached by its recipe
 * ($HULL_TEST_CACHE/debian-disk-<hash of the script>.qcow2), so only the first run pays for it (a few minutes).
 *
 * One BIOS boot does it all: the cloud-init seed (--cloud-init user-data, --ssh-key, the hostname, the network
 * hull's IPAM gave it), exec through the QEMU guest agent (exit code, stdin, -t refused), cp both ways, the guest's
 * address in inspect, a published port (the guest's sshd answers on the host), then `hull stop`, which the guest
 * honours (exit 0, not a SIGKILL after -t). One UEFI boot checks OVMF boots the same disk.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { HullRoot, REPO, waitFor } from './helpers/hull.js';
import { findExecutable } from '../src/host/probe.js';

const CACHE = process.env.HULL_TEST_CACHE ?? '/var/cache/hull-test';
const SCRIPT = join(REPO, 'test', 'helpers', 'debian-disk.sh');
const MIRROR = 'http://deb.debian.org/debian/dists/bookworm/InRelease';

const tools = ['mmdebstrap', 'extlinux', 'sfdisk', 'mkfs.vfat', 'mcopy', 'genisoimage', 'qemu-system-x86_64'];
const missing = tools.filter((t) => !findExecutable(t));

/** The Debian archive answers (the disk is built from it). */
async function archiveReachable(): Promise<boolean> {
  try {
    const r = await fetch(MIRROR, { method: 'HEAD', signal: AbortSignal.timeout(15_000) });
    return r.ok;
  } catch {
    return false;
  }
}

/** The cached disk for this recipe; built when missing. */
function debianDisk(): string {
  const key = createHash('sha256').update(readFileSync(SCRIPT)).digest('hex').slice(0, 16);
  const disk = join(CACHE, `debian-disk-${key}.qcow2`);
  if (existsSync(disk)) return disk;
  mkdirSync(CACHE, { recursive: true });
  const started = Date.now();
  const r = spawnSync('bash', [SCRIPT, disk], { encoding: 'utf8', timeout: 1_200_000 });
  if (r.status !== 0)
    throw new Error(`building the Debian disk failed (${r.status ?? r.signal}):\n${r.stderr.slice(-3000)}`);
  console.log(`# built the Debian disk ${disk} in ${Date.now() - started} ms`);
  return disk;
}

/** The first line a TCP server sends (sshd's banner). */
function banner(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    s.setTimeout(30_000, () => s.destroy(new Error('no banner within 30 s')));
    s.on('data', (b) => {
      got += b.toString();
      if (got.includes('\n')) {
        s.destroy();
        resolve(got.split('\n')[0]!.trim());
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(got.trim()));
  });
}

const root = new HullRoot('fullos', {
  HULL_VM_CACHE: process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache',
});
after(() => root.dispose());

const skip = missing.length > 0 ? `${missing.join(', ')} not installed (scripts/setup.sh installs them)` : false;

describe('full OS VMs: a Debian disk with cloud-init and the QEMU guest agent', { skip, timeout: 1_800_000 }, () => {
  let disk = '';

  test('the Debian disk (built from Debian packages, or cached)', async (t) => {
    const key = createHash('sha256').update(readFileSync(SCRIPT)).digest('hex').slice(0, 16);
    if (!existsSync(join(CACHE, `debian-disk-${key}.qcow2`)) && !(await archiveReachable())) {
      t.skip(`the Debian archive (${MIRROR}) cannot be reached: the disk is built from its packages`);
      return;
    }
    disk = debianDisk();
    assert.ok(statSync(disk).size > 0);
  });

  test('one boot: cloud-init, exec, cp, addresses, a published port, a clean stop', async (t) => {
    if (!disk) return t.skip('no Debian disk (see above)');
    const userData = join(root.dir, 'user-data');
    writeFileSync(userData, '#cloud-config\nruncmd:\n  - [sh, -c, "echo from-user-data > /var/tmp/hull-marker"]\n');
    const key = join(root.dir, 'id.pub');
    const pub = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVsbGh1bGxodWxsaHVsbGh1bGxodWxsaHVsbGh1bGw hull-test';
    writeFileSync(key, pub + '\n');

    // bad input first: nothing is made
    const bad = await root.hull('vm', 'create', '--disk', disk, '--ssh-key', userData);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /not an OpenSSH public key file/);
    assert.deepEqual(await root.ids(), []);

    await root.ok(
      'vm',
      'create',
      '--disk',
      disk,
      '--name',
      'deb1',
      '--memory',
      '1g',
      '--cloud-init',
      userData,
      '--ssh-key',
      key,
      '-p',
      '127.0.0.1::22',
      '--disk-size',
      '3g',
      '--start',
    );
    // before the guest agent runs, exec says so in one line
    const early = await root.hull('exec', 'deb1', 'true');
    if (early.code !== 0) assert.match(early.stderr.trim(), /^[^\n]*QEMU guest agent[^\n]*$/);

    const started = Date.now();
    // readiness: the guest agent answers exec (cloud-init status --wait then waits for cloud-init's end)
    await waitFor('the guest agent', async () => (await root.hull('exec', 'deb1', 'true')).code === 0, 600_000, 1000);
    const agentAfter = Date.now() - started;
    const ci = await root.hullWith({ timeoutMs: 600_000 }, 'exec', 'deb1', 'cloud-init', 'status', '--wait', '--long');
    assert.equal(ci.code, 0, ci.stdout + ci.stderr);
    console.log(
      `# guest agent answering ${agentAfter} ms after start; cloud-init done ${Date.now() - started} ms after`,
    );

    // cloud-init: the hostname is the instance's name, the user-data ran, the key is the default user's
    assert.equal((await root.ok('exec', 'deb1', 'hostname')).trim(), 'deb1');
    assert.equal((await root.ok('exec', 'deb1', 'cat', '/var/tmp/hull-marker')).trim(), 'from-user-data');
    const keys = await root.ok(
      'exec',
      'deb1',
      'sh',
      '-c',
      'cat "$(getent passwd 1000 | cut -d: -f6)/.ssh/authorized_keys"',
    );
    assert.match(keys, /hull-test/);

    // the disk was imported into the default pool and grown: the guest's disk is 3 GiB (this image has no
    // growpart, so its partition stays as made; cloud images grow it at boot)
    const sectors = Number((await root.ok('exec', 'deb1', 'cat', '/sys/class/block/vda/size')).trim());
    assert.equal(sectors * 512, 3 * 1024 ** 3);
    assert.match((await root.inspect('deb1')).Hull.Disk as string, /\/volumes\/\.vm-disks\/[0-9a-f]{64}\.qcow2$/);

    // exec: exit codes, stdin, a missing command, -t refused, the working directory
    assert.equal((await root.hull('exec', 'deb1', 'sh', '-c', 'echo out; echo err >&2; exit 7')).code, 7);
    const io = await root.hullWith({ input: 'through stdin\n' }, 'exec', '-i', 'deb1', 'cat');
    assert.equal(io.stdout, 'through stdin\n');
    const nf = await root.hull('exec', 'deb1', 'no-such-command');
    assert.equal(nf.code, 126, nf.stderr);
    assert.match(nf.stderr, /executable file not found/);
    const tty = await root.hull('exec', '-t', 'deb1', 'true');
    assert.notEqual(tty.code, 0);
    assert.match(tty.stderr, /without a terminal/);
    assert.equal((await root.ok('exec', '-w', '/etc', 'deb1', 'pwd')).trim(), '/etc');

    // cp both ways (the mode bits are kept going in)
    const local = join(root.dir, 'tool.sh');
    writeFileSync(local, '#!/bin/sh\necho copied-in\n');
    chmodSync(local, 0o755);
    await root.ok('cp', local, 'deb1:/usr/local/bin/');
    assert.equal((await root.ok('exec', 'deb1', 'tool.sh')).trim(), 'copied-in');
    await root.ok('cp', 'deb1:/etc/hostname', join(root.dir, 'hostname.out'));
    assert.equal(readFileSync(join(root.dir, 'hostname.out'), 'utf8').trim(), 'deb1');
    const noFile = await root.hull('cp', 'deb1:/no/such/file', root.dir);
    assert.notEqual(noFile.code, 0);
    assert.match(noFile.stderr, /no such file in VM deb1/);

    // the address hull's IPAM gave it is the guest's own (cloud-init's network-config), as its agent reports
    const ip = ((await root.inspect('deb1')).NetworkSettings as { IPAddress: string }).IPAddress;
    assert.ok(ip, 'the VM has an address on hull network');
    const guest = await waitFor(
      'the guest address in inspect',
      async () => {
        const a = (await root.inspect('deb1')).Hull.GuestAddresses as string[] | undefined;
        return a?.some((x) => x.includes(` ${ip}/`)) ? a : null;
      },
      60_000,
      1000,
    );
    assert.ok(
      guest.some((x) => x.startsWith('eth0 ')),
      JSON.stringify(guest),
    );
    const ps = await root.ok('ps', '--format', '{{.Names}} {{.Addresses}}');
    assert.match(ps, new RegExp(`deb1 .*${ip.replace(/\./g, '\\.')}`));

    // the published port reaches the guest's sshd
    const port = Number((await root.ok('port', 'deb1', '22')).trim().split(':').pop());
    assert.match(await banner(port), /^SSH-2\.0-OpenSSH/);

    // hull stop: the guest shuts down when asked (its agent), QEMU exits, status 0 as docker's clean stop
    const stopAt = Date.now();
    await root.hullWith({ timeoutMs: 300_000 }, 'stop', '-t', '240', 'deb1');
    const st = await root.inspect('deb1');
    assert.equal(st.State.Status, 'exited');
    assert.equal(st.State.ExitCode, 0, 'a clean shutdown, not a SIGKILL after -t');
    console.log(`# hull stop took ${Date.now() - stopAt} ms (-t 240)`);
    // this image has no D-Bus (so no logind): qemu-ga's guest-shutdown fails there, and hull ran poweroff instead
    const mon = readFileSync(join(root.dir, 'containers', st.Id, 'monitor.log'), 'utf8');
    assert.match(mon, /stop: (the guest agent took guest-shutdown|guest-shutdown failed .*running poweroff)/);
    await root.ok('rm', 'deb1');
  });

  test('UEFI: OVMF boots the same disk (its EFI system partition)', async (t) => {
    if (!disk) return t.skip('no Debian disk (see above)');
    await root.ok('vm', 'create', '--disk', disk, '--name', 'efi1', '--firmware', 'uefi', '--memory', '1g', '--start');
    await waitFor('the guest agent', async () => (await root.hull('exec', 'efi1', 'true')).code === 0, 600_000, 1000);
    const efi = await root.hull('exec', 'efi1', 'test', '-d', '/sys/firmware/efi');
    assert.equal(efi.code, 0, 'the guest booted through UEFI');
    assert.equal((await root.inspect('efi1')).Hull.Firmware, 'uefi');
    await root.ok('rm', '-f', 'efi1');
  });

  test('leaves nothing behind', () => root.cleanupAndCheck());
});
