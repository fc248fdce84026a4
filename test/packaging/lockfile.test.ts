/**
 * The lockfile a fresh clone installs from: in step with package.json (so `npm install` does not rewrite it)
 * and with nothing in it that refuses the Node running the tests (no EBADENGINE warning on Node 20).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../cli/helpers.ts';

type Version = [number, number, number];
interface LockEntry {
  version?: string;
  engines?: Record<string, string> | string[];
  [field: string]: unknown;
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, LockEntry>;
};

const compare = (a: Version, b: Version): number => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

/**
 * Whether `version` satisfies the npm range `range`: comparators (`>=`, `>`, `<=`, `<`, `=`), `^`, `~`,
 * x-ranges and partial versions, joined by spaces (and) and `||` (or); the forms engines fields use. Any
 * other form throws, so a new one is noticed instead of passing unchecked.
 */
export function satisfies(version: Version, range: string): boolean {
  return range.split('||').some((alternative) =>
    alternative
      .trim()
      .replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1')
      .split(/\s+/)
      .filter((part) => part !== '')
      .every((comparator) => test(version, comparator)),
  );
}

function test(version: Version, comparator: string): boolean {
  const match = comparator.match(/^(>=|<=|>|<|=|\^|~)?v?(\*|x|X|\d+)(?:\.(\*|x|X|\d+))?(?:\.(\*|x|X|\d+))?$/);
  if (!match) throw new Error(`unsupported range comparator ${JSON.stringify(comparator)}`);
  const op = match[1] ?? '';
  const parts: number[] = [];
  for (const p of [match[2], match[3], match[4]]) {
    if (p === undefined || /^[*xX]$/.test(p)) break;
    parts.push(Number(p));
  }
  const low: Version = [parts[0] ?? 0, parts[1] ?? 0, parts[2] ?? 0];
  /** The first version past the given parts: 20 → 21.0.0, 20.6 → 20.7.0, 20.6.1 → 20.6.2. */
  const next = (upTo: number): Version => {
    const v: Version = [low[0], low[1], low[2]];
    v[upTo] = (v[upTo] ?? 0) + 1;
    for (let i = upTo + 1; i < 3; i++) v[i] = 0;
    return v;
  };
  const pastGiven = (): Version => next(Math.max(parts.length - 1, 0));
  if (parts.length === 0) return op === '' || op === '>=' || op === '<=' || op === '=' || op === '^' || op === '~';
  switch (op) {
    case '>=':
      return compare(version, low) >= 0;
    case '>':
      return parts.length === 3 ? compare(version, low) > 0 : compare(version, pastGiven()) >= 0;
    case '<':
      return compare(version, low) < 0;
    case '<=':
      return parts.length === 3 ? compare(version, low) <= 0 : compare(version, pastGiven()) < 0;
    case '':
    case '=':
      return compare(version, low) >= 0 && compare(version, pastGiven()) < 0;
    case '~':
      return compare(version, low) >= 0 && compare(version, next(parts.length > 1 ? 1 : 0)) < 0;
    case '^': {
      const first = low[0] > 0 || parts.length < 2 ? 0 : low[1] > 0 || parts.length < 3 ? 1 : 2;
      return compare(version, low) >= 0 && compare(version, next(first)) < 0;
    }
    default:
      throw new Error(`unsupported operator ${op}`);
  }
}

describe('package-lock.json', () => {
  it('the range check reads engines fields as npm does', () => {
    const v = (s: string) => s.split('.').map(Number) as Version;
    const cases: [string, string, boolean][] = [
      ['20.19.0', '>=20', true],
      ['20.19.0', '>=22', false],
      ['20.19.0', '>= 14.6', true],
      ['20.19.0', '20.x || 22.x', true],
      ['21.0.0', '20.x || 22.x', false],
      ['20.19.0', '^16 || ^18 || >=20', true],
      ['19.0.0', '^16 || ^18 || >=20', false],
      ['20.19.0', '^8.16.0 || ^10.6.0 || >=11.0.0', true],
      ['10.5.0', '^8.16.0 || ^10.6.0', false],
      ['20.5.9', '>=20.6', false],
      ['20.19.0', '~20.19', true],
      ['20.20.0', '~20.19', false],
      ['20.19.0', '*', true],
      ['20.19.0', '>= 10.x', true],
      ['20.19.0', '>=18 <20', false],
      ['0.2.5', '^0.2.3', true],
      ['0.3.0', '^0.2.3', false],
    ];
    for (const [version, range, expected] of cases) {
      assert.equal(satisfies(v(version), range), expected, `${version} in ${range}`);
    }
  });

  it(`every locked package accepts this Node (${process.version})`, () => {
    const node = process.versions.node.split('.').map(Number) as Version;
    const refused = Object.entries(lock.packages)
      .filter(([, entry]) => {
        const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
        return range !== undefined && !satisfies(node, range);
      })
      .map(([path, entry]) => `${path}@${entry.version} wants node ${(entry.engines as Record<string, string>).node}`);
    assert.deepEqual(refused, []);
  });

  it('its root entry is package.json as it stands, so npm install leaves the lock as it is', () => {
    const root = lock.packages[''] as LockEntry;
    for (const field of ['name', 'version', 'dependencies', 'devDependencies', 'optionalDependencies', 'engines']) {
      assert.deepEqual(root[field], pkg[field], `${field} of package.json and of the lock's root entry`);
    }
    // npm writes bin paths without their leading ./
    const bin = Object.fromEntries(
      Object.entries(pkg.bin as Record<string, string>).map(([name, path]) => [name, path.replace(/^\.\//, '')]),
    );
    assert.deepEqual(root.bin, bin);
  });
});
