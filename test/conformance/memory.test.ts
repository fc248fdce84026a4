import { open } from '../../src/index.ts';
import { conformance } from './suite.ts';

conformance('memory:', async () => {
  const ferry = await open('memory:', { webhookAllowPrivate: true });
  return { ferry, close: () => ferry.close() };
});
