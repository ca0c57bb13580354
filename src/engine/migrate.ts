import type { ContainerOptions, InstanceConfig } from '../common/instance.js';

/** The container-only fields that records before the split kept at the top of the config. */
const LEGACY_CONTAINER_FIELDS = [
  'runtime',
  'privileged',
  'capAdd',
  'capDrop',
  'noNewPrivileges',
  'seccomp',
  'userns',
  'ulimits',
] as const;

/**
 * An instance config as stored, brought to the current shape on read. Records written before the config
 * was split into a common part and per-kind sections carry the container settings at the top level: they
 * move into `container` — or are dropped when the record has a `vm` section (every VM record of that
 * version has one, and those fields never applied to it). Current records pass through unchanged.
 */
export function migrateConfig(stored: unknown): InstanceConfig {
  const raw = stored as Record<string, unknown>;
  if (!LEGACY_CONTAINER_FIELDS.some((f) => f in raw)) return stored as InstanceConfig;
  const legacy = raw as Partial<ContainerOptions> & Record<string, unknown>;
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw))
    if (!(LEGACY_CONTAINER_FIELDS as readonly string[]).includes(k)) rest[k] = v;
  if (raw.vm !== undefined || raw.container !== undefined) return rest as unknown as InstanceConfig;
  const container: ContainerOptions = {
    runtime: legacy.runtime ?? 'runc',
    privileged: legacy.privileged ?? false,
    capAdd: legacy.capAdd ?? [],
    capDrop: legacy.capDrop ?? [],
    noNewPrivileges: legacy.noNewPrivileges ?? true,
    seccomp: legacy.seccomp ?? 'default',
    userns: legacy.userns ?? null,
    ulimits: legacy.ulimits ?? [],
  };
  return { ...(rest as unknown as InstanceConfig), container };
}
