import { open } from '../../src/index.ts';
import { conformance } from './suite.ts';

conformance('memory:', async () => {
  const ferry = await open('memory:');
  return { ferry, close: () => ferry.close() };
});
