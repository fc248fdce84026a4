/** A process that only delivers webhooks: opens the store given, says `ready`, closes on SIGTERM. */
import { open } from '../../src/index.ts';

const ferry = await open(process.argv[2] as string, { webhookAllowPrivate: true });
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void ferry.close().then(() => process.exit(0));
});
