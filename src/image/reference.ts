/**
 * Image references: `[DOMAIN/]PATH[:TAG][@DIGEST]`, with docker's grammar and normalization.
 *
 * Normalization (what hull stores and compares):
 * - a reference without a domain lives on docker.io (`busybox` → `docker.io/busybox`); the first
 *   path component is a domain only when it contains `.` or `:`, is `localhost`, or has an
 *   uppercase letter (which a path component may not have);
 * - `index.docker.io` is `docker.io`; a one-component path on docker.io gets `library/`
 *   (`docker.io/busybox` → `docker.io/library/busybox`);
 * - a missing tag is `latest`, unless a digest is given (then there is no tag).
 *
 * Errors use docker's words: `invalid reference format: repository name (library/UPPER) must be lowercase` for an
 * uppercase repository path, `invalid reference format: "REF": <what is wrong>` for the rest. As in docker, a
 * first component with uppercase letters (`UPPER/case`) is a registry host, not a bad name; pulling from it fails
 * at once when the name service does not know the host (see registry/client.ts).
 *
 * The full form (`docker.io/library/busybox:latest`) is what index.json stores in the
 * `org.opencontainers.image.ref.name` annotation; the display form drops `docker.io/library/`
 * and `docker.io/` like docker does (`busybox:latest`, `someuser/app:1`), and keeps other
 * registries' domains (`quay.io/org/app:1`).
 */
import { InvalidArgumentError } from '../common/errors.js';

/** A parsed, normalized image reference. */
export interface ImageReference {
  /** repository with its domain, e.g. `docker.io/library/busybox` */
  name: string;
  /** the tag; `latest` when none was given, `''` when only a digest was given */
  tag: string;
  /** `sha256:<hex>` when the reference pins a manifest digest */
  digest?: string;
  /** short form for people: `busybox:latest`, `user/app:1`, `quay.io/x/y@sha256:...` */
  display: string;
  /** full normalized form stored in index.json: `docker.io/library/busybox:latest` */
  full: string;
}

const DEFAULT_DOMAIN = 'docker.io';
const OFFICIAL_PREFIX = 'library/';
const MAX_NAME_LENGTH = 255;

// docker's grammar (distribution/reference), written out here.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const ANY_DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** True for strings that can only be an image id or id prefix: `sha256:<hex>` or 3 to 64 hex digits. */
export function looksLikeId(ref: string): boolean {
  return /^(?:sha256:)?[a-f0-9]{3,64}$/.test(ref);
}

/** docker's error for a malformed reference ("invalid reference format"), with what is wrong with `ref`. */
function invalid(ref: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid reference format: "${ref}": ${why}`);
}

/**
 * Parse and normalize an image reference. Throws InvalidArgumentError for malformed ones
 * (uppercase repository names, empty components, bad tags or digests, over-long names).
 */
export function parseReference(ref: string): ImageReference {
  if (ref === '') throw invalid(ref, 'it is empty; give NAME[:TAG]');
  if (/\s/.test(ref)) throw invalid(ref, 'it contains whitespace');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!ANY_DIGEST.test(digest)) throw invalid(ref, `"${digest}" is not a digest (expected sha256:<64 hex digits>)`);
    if (!DIGEST.test(digest))
      throw invalid(ref, `unsupported digest "${digest}": only sha256 with 64 lowercase hex digits is supported`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag))
      throw invalid(ref, `bad tag "${tag}": a tag is up to 128 letters, digits, _ . - and may not start with . or -`);
  }
  if (rest === '') throw invalid(ref, 'the repository name is empty');
  if (rest.length > MAX_NAME_LENGTH)
    throw invalid(ref, `the repository name is longer than ${MAX_NAME_LENGTH} characters`);

  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (!DOMAIN.test(domain)) throw invalid(ref, `bad registry domain "${domain}"`);
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (path !== path.toLowerCase()) {
    // docker's message, word for word (distribution/reference ParseNormalizedNamed)
    const remote = domain === DEFAULT_DOMAIN && !path.includes('/') ? OFFICIAL_PREFIX + path : path;
    throw new InvalidArgumentError(`invalid reference format: repository name (${remote}) must be lowercase`);
  }
  for (const component of path.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      throw invalid(
        ref,
        component === ''
          ? 'it has an empty path component'
          : `bad path component "${component}": use lowercase letters and digits, separated by . _ __ or -`,
      );
    }
  }
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;

  const name = `${domain}/${path}`;
  const finalTag = tag ?? (digest ? '' : 'latest');
  const suffix = (finalTag ? `:${finalTag}` : '') + (digest ? `@${digest}` : '');
  return { name, tag: finalTag, ...(digest ? { digest } : {}), display: shortName(name) + suffix, full: name + suffix };
}

/** The display form of a repository name: without `docker.io/library/` or `docker.io/`. */
export function shortName(name: string): string {
  const official = `${DEFAULT_DOMAIN}/${OFFICIAL_PREFIX}`;
  if (name.startsWith(official) && !name.slice(official.length).includes('/')) return name.slice(official.length);
  if (name.startsWith(`${DEFAULT_DOMAIN}/`)) return name.slice(DEFAULT_DOMAIN.length + 1);
  return name;
}
