/**
 * An engine over a store whose claims are counted (how many statements a consumer's looking costs), and can
 * be made to fail (a claim that a wake chose, failing).
 */
import { Engine, type EngineOptions } from '../../src/engine/engine.ts';
import { createStore, type OpenOptions } from '../../src/open.ts';
import type { Store } from '../../src/store/store.ts';

export interface CountedFerry {
  ferry: Engine;
  claims: () => number;
  /** The next `n` claims fail, as a claim on a connection reset does. */
  failClaims: (n: number) => void;
}

/** `options` go to the engine; `storeOptions` (default: the same) to the store. */
export async function countingClaims(
  url: string,
  options: EngineOptions = {},
  storeOptions: OpenOptions = options,
): Promise<CountedFerry> {
  const store = await createStore(url, storeOptions);
  let claims = 0;
  let failing = 0;
  const spy = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (name === 'claim' && typeof value === 'function') {
        return (...args: unknown[]) => {
          claims++;
          if (failing > 0) {
            failing--;
            return Promise.reject(new Error('connection reset (test)'));
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Store;
  return {
    ferry: await Engine.create(spy, options),
    claims: () => claims,
    failClaims: (n) => {
      failing = n;
    },
  };
}
