/**
 * The store-level conformance suite, in the spirit of River's driver tests: the `Store` contract
 * (src/store/store.ts) driven directly, with no engine in between and time passed in as numbers, so every
 * edge the engine relies on is pinned on every store the same way.
 *
 *   storeSuite({ name: 'memory', shared: false, transactional: false, database: async () => ({ open: () => createStore('memory:'), drop: async () => {} }) });
 *
 * One database and store serve the whole suite (tests use fresh queue names); tests whose assertions cover
 * every queue (sweep counts, schedules, the event log) open a database of their own with `ctx.isolated`.
 */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { adminTests } from './admin.ts';
import { claimTests } from './claim.ts';
import { eventTests } from './events.ts';
import { type Ctx, type Database, type Home, initStore, type Opened, type TestContext } from './helpers.ts';
import { keyTests } from './keys.ts';
import { scheduleTests } from './schedules.ts';
import { sendTests } from './send.ts';
import { settleTests } from './settle.ts';
import { sweepTests } from './sweep.ts';

export type { Home } from './helpers.ts';

export function storeSuite(home: Home): void {
  describe(`store: ${home.name}`, () => {
    let db: Database | undefined;
    let opened: Opened | undefined;
    const ctx: Ctx = {
      home,
      get s(): Opened {
        assert.ok(opened, 'the suite store is open');
        return opened;
      },
      get db(): Database {
        assert.ok(db, 'the suite database exists');
        return db;
      },
      async isolated(t: TestContext) {
        const own = await home.database(t.name);
        const stores: Opened[] = [];
        t.after(async () => {
          for (const s of stores) await s.close();
          await own.drop();
        });
        const another = async () => {
          const s = await initStore(await own.open());
          stores.push(s);
          return s;
        };
        return { db: own, opened: await another(), another };
      },
    };
    before(async () => {
      db = await home.database('suite');
      opened = await initStore(await db.open());
    });
    after(async () => {
      await opened?.close();
      await db?.drop();
    });

    sendTests(ctx);
    claimTests(ctx);
    settleTests(ctx);
    sweepTests(ctx);
    adminTests(ctx);
    keyTests(ctx);
    scheduleTests(ctx);
    eventTests(ctx);
  });
}
