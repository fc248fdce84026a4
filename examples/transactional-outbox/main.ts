/**
 * The transactional outbox without an outbox table: a shop writes an order into its own PostgreSQL table and
 * queues the order's confirmation e-mail with `ferry.send(…, { transaction: client })` inside the same
 * BEGIN … COMMIT. The message exists if and only if the order does: no order without its e-mail, no e-mail
 * for an order that was rolled back.
 *
 *   npx tsx examples/transactional-outbox/main.ts
 *
 * DATABASE_URL (or FERRY_PG_URL): the database, default postgres://postgres@127.0.0.1:5432/test.
 * SHOP_SCHEMA: the shop's own schema, default `shop`. FERRY_SCHEMA: Ferry's, default `ferry`.
 */
import pg from 'pg';
import { open } from '../../src/index.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? process.env.FERRY_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SHOP = process.env.SHOP_SCHEMA ?? 'shop';
const QUEUE = 'order-confirmations';
if (!/^[a-z_][a-z0-9_]{0,62}$/.test(SHOP)) throw new Error(`SHOP_SCHEMA must be a plain lower-case identifier`);

interface Order {
  customer: string;
  email: string;
  totalCents: number;
}

// One pool for the shop's queries and Ferry's: Ferry uses it and leaves it open for us to end.
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 5 });
const ferry = await open(DATABASE_URL, {
  pool,
  ...(process.env.FERRY_SCHEMA ? { schema: process.env.FERRY_SCHEMA } : {}),
});
console.log(`database: ${DATABASE_URL.replace(/:[^:@/]*@/, ':***@')}`);

await pool.query(`CREATE SCHEMA IF NOT EXISTS ${SHOP}`);
await pool.query(`CREATE TABLE IF NOT EXISTS ${SHOP}.orders (
  id bigserial PRIMARY KEY,
  customer text NOT NULL,
  email text NOT NULL,
  total_cents integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
)`);

type Placed = { orderId: string; messageId: string } & ({ committed: true } | { committed: false; reason: string });

/**
 * Writes the order and queues its confirmation in one transaction. `charge` runs after both, before the
 * commit, standing for whatever else may still fail (here: the payment); if it throws, everything is undone.
 */
async function placeOrder(order: Order, charge: () => Promise<void>): Promise<Placed> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const inserted = await client.query<{ id: string }>(
      `INSERT INTO ${SHOP}.orders (customer, email, total_cents) VALUES ($1, $2, $3) RETURNING id`,
      [order.customer, order.email, order.totalCents],
    );
    const orderId = inserted.rows[0]?.id as string;
    const { id: messageId } = await ferry.send(
      QUEUE,
      { orderId, email: order.email, totalCents: order.totalCents },
      { transaction: client, dedupeId: `order-${orderId}` },
    );
    // Outside this transaction nobody sees the message yet, not even a worker that is polling right now.
    const seen = await ferry.get(messageId);
    console.log(
      `  order ${orderId} written, message ${messageId} sent; visible outside before COMMIT: ${seen !== null}`,
    );
    try {
      await charge();
    } catch (error) {
      await client.query('ROLLBACK');
      return { orderId, messageId, committed: false, reason: (error as Error).message };
    }
    await client.query('COMMIT');
    return { orderId, messageId, committed: true };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

const orderExists = async (id: string) =>
  (await pool.query(`SELECT 1 FROM ${SHOP}.orders WHERE id = $1`, [id])).rowCount === 1;

// The e-mail worker. It runs all along; it only ever sees committed messages.
const worker = ferry.work<{ orderId: string; email: string }, { confirmation: string }>(
  QUEUE,
  (job) => ({ confirmation: `order ${job.payload.orderId} confirmed to ${job.payload.email}` }),
  { concurrency: 2 },
);

console.log('1. an order that commits');
const paid = await placeOrder({ customer: 'Ada', email: 'ada@example.com', totalCents: 4200 }, async () => {});
const result = await ferry.result<{ confirmation: string }>(paid.messageId, { timeout: '30s' });
console.log(`  committed; the worker answered: ${result.confirmation}`);

console.log('2. an order whose payment fails after the send: ROLLBACK');
const declined = await placeOrder({ customer: 'Grace', email: 'grace@example.com', totalCents: 9900 }, async () => {
  throw new Error('card declined');
});
if (declined.committed) throw new Error('the second order was expected to be rolled back');
console.log(`  rolled back: ${declined.reason}`);

await worker.close();
console.log('');
for (const placed of [paid, declined]) {
  const message = await ferry.get(placed.messageId);
  console.log(
    `order ${placed.orderId}: ${(await orderExists(placed.orderId)) ? 'in the table' : 'not in the table'}; ` +
      `its message: ${message ? message.state : 'does not exist'}`,
  );
}
await ferry.close();
await pool.end();
