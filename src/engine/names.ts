import { randomBytes } from 'node:crypto';

/** Instance ids are 64 hex characters (docker's shape); names default to adjective_noun. */
export function newId(): string {
  return randomBytes(32).toString('hex');
}

const ADJECTIVES = [
  'agile',
  'bold',
  'brave',
  'bright',
  'calm',
  'clever',
  'crisp',
  'eager',
  'fair',
  'fond',
  'gentle',
  'glad',
  'grand',
  'happy',
  'hardy',
  'keen',
  'kind',
  'lively',
  'lucid',
  'merry',
  'modest',
  'nimble',
  'noble',
  'patient',
  'plucky',
  'proud',
  'quick',
  'quiet',
  'rapid',
  'ready',
  'serene',
  'sharp',
  'shy',
  'silent',
  'sleek',
  'steady',
  'stoic',
  'sturdy',
  'swift',
  'tidy',
  'vivid',
  'warm',
  'wise',
  'witty',
  'zealous',
];
const NOUNS = [
  'anchor',
  'beacon',
  'bosun',
  'buoy',
  'cabin',
  'capstan',
  'compass',
  'corsair',
  'cutter',
  'deck',
  'dinghy',
  'ensign',
  'ferry',
  'frigate',
  'galley',
  'gunwale',
  'harbor',
  'helm',
  'jib',
  'keel',
  'ketch',
  'lantern',
  'mast',
  'mooring',
  'oar',
  'pilot',
  'port',
  'prow',
  'rigging',
  'rudder',
  'sail',
  'schooner',
  'sextant',
  'sloop',
  'spar',
  'starboard',
  'stern',
  'tiller',
  'trawler',
  'voyager',
  'wake',
  'yawl',
];

export function randomName(): string {
  const b = randomBytes(3);
  return `${ADJECTIVES[b[0]! % ADJECTIVES.length]}_${NOUNS[b[1]! % NOUNS.length]}_${(b[2]! % 90) + 10}`;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
export function isValidName(name: string): boolean {
  return NAME_RE.test(name);
}
