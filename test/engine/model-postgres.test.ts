/**
 * The model-based test (./model.ts) on PostgreSQL: one schema for the file, each scenario on a queue of its
 * own. Fewer runs than on the embedded stores: every command is a round trip to the database.
 */
import { after } from 'node:test';
import { open } from '../../src/index.ts';
import { testSchema } from '../support/postgres.ts';
import { MODEL_ENGINE, modelTest } from './model.ts';

const schema = testSchema('model');
after(async () => {
  await (await schema).drop();
});

modelTest(
  {
    name: 'postgres',
    async open(clock) {
      // The manual clock, not the database's: the model drives time.
      const ferry = await open((await schema).url, { ...MODEL_ENGINE, clock, poolSize: 2 });
      return { ferry, close: () => ferry.close() };
    },
  },
  40,
);
