// Shared fixtures for the scenario tests.
import { stringify } from 'yaml';
import { expect } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { InputError } from '../../src/spec/errors.ts';
import type { Scenario } from '../../src/spec/scenario.ts';

/** A small valid scenario in the file format (a plain object tests can mutate). */
export function baseObject(): Record<string, any> {
  return {
    name: 'test',
    vpc: { cidr: '10.0.0.0/16' },
    routeTables: {
      public: [{ dest: '0.0.0.0/0', target: 'igw' }],
      private: [{ dest: '0.0.0.0/0', target: 'eni:nat' }],
    },
    subnets: {
      public: { cidr: '10.0.0.0/24', routeTable: 'public' },
      private: { cidr: '10.0.1.0/24', routeTable: 'private' },
    },
    instances: {
      nat: {
        subnet: 'public',
        privateIp: '10.0.0.10',
        elasticIp: '203.0.113.10',
        sourceDestCheck: false,
        natInstance: { bootScript: 'configure-pat' },
      },
      app: { subnet: 'private', privateIp: '10.0.1.10' },
    },
    internet: { hosts: ['198.51.100.0/24'] },
  };
}

export function parseObject(o: unknown, file = 'test.yaml'): Scenario {
  return parseScenario(stringify(o), file);
}

/** The InputError a load throws (fails the test if it does not throw one). */
export function loadError(o: unknown, file = 'test.yaml'): InputError {
  return errorOf(() => parseObject(o, file));
}

export function errorOf(f: () => unknown): InputError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  expect.fail('expected an InputError');
}

/** Asserts the first error names file, path and contains every fragment. */
export function expectFirstError(o: unknown, path: string, ...fragments: string[]): InputError {
  const e = loadError(o);
  const first = e.message.split('\n')[0];
  expect(first).toMatch(new RegExp(`^test\\.yaml:\\d+: ${path.replace(/[.[\]]/g, (c) => `\\${c}`)}: `));
  for (const f of fragments) expect(first).toContain(f);
  expect(e.file).toBe('test.yaml');
  expect(e.where).toBe(path);
  return e;
}

export const ip = (s: string): number => s.split('.').reduce((a, b) => a * 256 + Number(b), 0) >>> 0;
