/** An engine over a store whose claims are counted: how many statements a consumer's looking costs. */
import { Engine, type EngineOptions } from '../../src/engine/engine.ts';
import { createStore } from '../../src/open.ts';
import type { Store } from '../../src/store/store.ts';

export async function countingClaims(
  url: string,
  options: EngineOptions = {},
): Promise<{ ferry: Engine; claims: () => number }> {
  const store = await createStore(url, options);
  let claims = 0;
  const spy = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (name === 'claim' && typeof value === 'function') {
        return (...args: unknown[]) => {
          claims++;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Store;
  return { ferry: await Engine.create(spy, options), claims: () => claims };
}
