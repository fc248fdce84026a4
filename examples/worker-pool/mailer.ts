/**
 * A stand-in for an SMTP relay, so the example runs anywhere. It behaves like a real one in the ways that
 * matter to a worker: it is slow, it rejects a malformed address for good (a 5xx), and some servers answer
 * "try again later" (a 4xx) before they accept, or keep answering it.
 */

export interface Email {
  to: string;
  subject: string;
  body: string;
}

/** A 4xx from the relay: worth trying again later. */
export class TransientMailError extends Error {
  override name = 'TransientMailError';
}

/** A 5xx from the relay: trying again will not help. */
export class PermanentMailError extends Error {
  override name = 'PermanentMailError';
}

const ADDRESS = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * Domains that greylist: the first delivery attempt of each message is refused with a 421, later ones go
 * through (what greylisting mail servers do to unknown senders).
 */
const GREYLISTING = new Set(['greylist.example']);

/** A domain whose mailboxes are always busy: every attempt is a 421. */
const ALWAYS_BUSY = new Set(['busy.example']);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Delivers one e-mail; `attempt` counts from 1 (the relay remembers whom it has seen, as greylisting does). */
export async function deliver(email: Email, attempt: number): Promise<{ messageId: string }> {
  await sleep(40 + Math.floor(Math.random() * 80));
  if (!ADDRESS.test(email.to)) throw new PermanentMailError(`550 invalid recipient address: ${email.to}`);
  const domain = email.to.split('@')[1] ?? '';
  if (ALWAYS_BUSY.has(domain)) throw new TransientMailError('421 mailbox busy, try again later');
  if (GREYLISTING.has(domain) && attempt === 1) throw new TransientMailError('421 greylisted, try again later');
  return { messageId: `<${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8)}@relay.example>` };
}
