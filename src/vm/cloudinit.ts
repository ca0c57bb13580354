/**
 * cloud-init for full OS disk VMs: a NoCloud seed (a small ISO 9660 volume labelled "cidata", attached as a
 * CD-ROM) made by hull for each boot, as Incus, multipass and Proxmox do. cloud-init's NoCloud data source
 * finds it by its label and reads three files from it:
 *   meta-data       instance-id (hull's id: a new instance is a new cloud-init instance) and local-hostname
 *                   (the instance's name, or --hostname); --ssh-key's keys as public-keys, which cloud-init
 *                   installs for the image's default user whatever the user-data says
 *   user-data       --cloud-init FILE as given, else hull's: the hostname in /etc/hosts as well
 *   network-config  --network-config FILE as given, else hull's (version 2): each NIC matched by the MAC hull
 *                   gave it, with the address hull's IPAM gave it, the gateway and the DNS servers; with no
 *                   hull network, none at all (the image's own default)
 * The volume is written with genisoimage (Debian's package of that name), as cloud-localds does.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HostSupportError, InvalidArgumentError } from '../common/errors.js';
import type { InstanceNetwork } from '../common/instance.js';
import { findExecutable } from '../host/probe.js';

/** What the user gave (read at create, so the instance keeps them when the files change or go). */
export interface CloudInitOptions {
  /** --cloud-init FILE: user-data, as is (#cloud-config, a script, a MIME multipart) */
  userData?: string;
  /** --network-config FILE: network-config (version 1 or 2), as is */
  networkConfig?: string;
  /** --ssh-key FILE: public keys, one a line */
  sshKeys?: string[];
}

/** Read the files of --cloud-init, --network-config and --ssh-key; one line naming what is wrong. */
export function readCloudInitFiles(files: {
  userData?: string;
  networkConfig?: string;
  sshKey?: string;
}): CloudInitOptions {
  const read = (flag: string, path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new InvalidArgumentError(`${flag} ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
  };
  const o: CloudInitOptions = {};
  if (files.userData !== undefined) {
    o.userData = read('--cloud-init', files.userData);
    const first = o.userData.split('\n', 1)[0]!.trim();
    if (!/^(#cloud-config|#!|#include|#cloud-boothook|#part-handler|Content-Type:|MIME-Version:)/i.test(first))
      throw new InvalidArgumentError(
        `--cloud-init ${files.userData}: cloud-init would ignore it; its first line must be #cloud-config (or #! for a script)`,
      );
  }
  if (files.networkConfig !== undefined) {
    o.networkConfig = read('--network-config', files.networkConfig);
    if (!/^\s*(network:\s*\n\s+)?version:\s*[12]\b/m.test(o.networkConfig))
      throw new InvalidArgumentError(
        `--network-config ${files.networkConfig}: not a cloud-init network config (it needs "version: 1" or "version: 2")`,
      );
  }
  if (files.sshKey !== undefined) {
    const keys = read('--ssh-key', files.sshKey)
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    if (keys.length === 0 || keys.some((k) => !/^(ssh-|ecdsa-|sk-)\S+ \S+/.test(k)))
      throw new InvalidArgumentError(
        `--ssh-key ${files.sshKey}: not an OpenSSH public key file (a line such as "ssh-ed25519 AAAA… comment"); give the .pub file`,
      );
    o.sshKeys = keys;
  }
  return o;
}

/** JSON is YAML: every value is written as a JSON string, so nothing needs YAML quoting rules. */
const y = (v: string): string => JSON.stringify(v);

export function metaData(id: string, hostname: string, sshKeys: readonly string[] = []): string {
  const lines = [`instance-id: ${y(id)}`, `local-hostname: ${y(hostname)}`];
  if (sshKeys.length > 0) lines.push('public-keys:', ...sshKeys.map((k) => `  - ${y(k)}`));
  return lines.join('\n') + '\n';
}

/** hull's user-data when the user gives none: the hostname (from meta-data) in /etc/hosts too. */
export function defaultUserData(hostname: string): string {
  return ['#cloud-config', `hostname: ${y(hostname)}`, 'preserve_hostname: false', 'manage_etc_hosts: true', ''].join(
    '\n',
  );
}

/** The NICs as hull made them: the guest NIC's MAC is the CNI interface's, its address the one IPAM gave. */
export function defaultNetworkConfig(net: InstanceNetwork | undefined): string | undefined {
  const nics = (net?.attachments ?? []).filter((a) => a.mac);
  if (nics.length === 0) return undefined;
  const out = ['version: 2', 'ethernets:'];
  nics.forEach((a, i) => {
    out.push(
      `  ${y(`eth${i}`)}:`,
      '    match:',
      `      macaddress: ${y(a.mac!.toLowerCase())}`,
      `    set-name: ${y(`eth${i}`)}`,
      `    addresses: [${[a.address, ...(a.address6 ? [a.address6] : [])].map(y).join(', ')}]`,
    );
    // the default route through the first network only, as a container's
    const routes: string[] = [];
    if (i === 0 && a.gateway) routes.push(`      - to: "0.0.0.0/0"\n        via: ${y(a.gateway)}`);
    if (i === 0 && a.gateway6) routes.push(`      - to: "::/0"\n        via: ${y(a.gateway6)}`);
    if (routes.length > 0) out.push('    routes:', ...routes);
    if (net!.nameservers.length > 0) {
      out.push('    nameservers:', `      addresses: [${net!.nameservers.map(y).join(', ')}]`);
      if (net!.searches.length > 0) out.push(`      search: [${net!.searches.map(y).join(', ')}]`);
    }
  });
  return out.join('\n') + '\n';
}

/** The seed's files for one boot. */
export function seedFiles(o: {
  id: string;
  hostname: string;
  cloudInit?: CloudInitOptions;
  network?: InstanceNetwork;
}): Record<string, string> {
  const files: Record<string, string> = {
    'meta-data': metaData(o.id, o.hostname, o.cloudInit?.sshKeys),
    'user-data': o.cloudInit?.userData ?? defaultUserData(o.hostname),
  };
  const nc = o.cloudInit?.networkConfig ?? defaultNetworkConfig(o.network);
  if (nc !== undefined) files['network-config'] = nc;
  return files;
}

/** genisoimage, or why not. */
export function seedTool(): string {
  const tool = findExecutable('genisoimage');
  if (!tool)
    throw new HostSupportError(
      'genisoimage is not installed: hull needs it to give a disk VM its cloud-init seed (apt-get install genisoimage)',
    );
  return tool;
}

/** Write the NoCloud seed volume to `path` (atomically: a temp file renamed). */
export function writeSeed(path: string, files: Record<string, string>, tool = seedTool()): void {
  const tmp = mkdtempSync(join(dirname(path), '.seed-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(tmp, name), text);
    const iso = join(tmp, 'seed.iso');
    const r = spawnSync(
      tool,
      [
        '-quiet',
        '-output',
        iso,
        '-volid',
        'cidata',
        '-joliet',
        '-rock',
        ...Object.keys(files).map((f) => join(tmp, f)),
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0)
      throw new HostSupportError(
        `genisoimage could not write the cloud-init seed: ${(r.stderr || r.error?.message || '').trim()}`,
      );
    renameSync(iso, path);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
