/**
 * Signature V4 on the SQS port: requests signed by the AWS SDK's own signer (`@smithy/signature-v4`) pass,
 * in headers and in presigned query strings; wrong secrets, unknown keys, altered requests, skewed clocks
 * and expired URLs are refused with SQS's codes; a token's queues and scopes apply.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateQueueCommand, ListQueuesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import { SqsError } from '../../src/server/sqs/errors.ts';
import { verifySignature } from '../../src/server/sqs/sigv4.ts';
import { TokenSet } from '../../src/server/tokens.ts';
import { type Bench, PROTOCOLS, sqsClient, startBench } from './helpers.ts';

const SECRET = 'sqs-secret-token-0123456789';
const LIMITED = 'limited-sender-token-0123';
const TOKENS = [`${SECRET}:sqs=AKIDFERRYTEST`, `${LIMITED}:queues=allowed-*:scopes=send:sqs=AKIDLIMITED`];
const GOOD = { accessKeyId: 'AKIDFERRYTEST', secretAccessKey: SECRET };

function signer(secretAccessKey = SECRET, accessKeyId = 'AKIDFERRYTEST') {
  return new SignatureV4({
    credentials: { accessKeyId, secretAccessKey },
    region: 'eu-west-3',
    service: 'sqs',
    sha256: Sha256,
  });
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    const e = error as Error & { $metadata?: { httpStatusCode?: number } };
    assert.ok((e.$metadata?.httpStatusCode ?? 0) < 500);
    return e.name;
  }
  return 'success';
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof SqsError, String(error));
    return error.code;
  }
  return 'success';
}

describe('Signature V4, checked against the AWS SDK signer', () => {
  const tokens = new TokenSet(TOKENS);
  const now = Date.parse('2026-03-01T12:00:00Z');

  async function signed(overrides: { path?: string; query?: Record<string, string>; body?: string; at?: number } = {}) {
    const body = overrides.body ?? 'Action=ListQueues&Version=2012-11-05';
    const request = {
      method: 'POST',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 9324,
      path: overrides.path ?? '/',
      query: overrides.query ?? {},
      headers: {
        host: '127.0.0.1:9324',
        'content-type': 'application/x-www-form-urlencoded',
        'x-amz-meta': '  a   b ',
      },
      body,
    };
    const out = await signer().sign(request, { signingDate: new Date(overrides.at ?? now) });
    const headers = Object.fromEntries(Object.entries(out.headers).map(([k, v]) => [k.toLowerCase(), v]));
    const query = new URLSearchParams(out.query as Record<string, string>).toString().replace(/\+/g, '%20');
    return { method: 'POST', path: out.path, query, headers, body: Buffer.from(body) };
  }

  it('accepts what the signer signed: odd paths, repeated spaces in headers, escaped query values', async () => {
    assert.deepEqual(verifySignature(await signed(), tokens, now).scopes, ['send', 'receive', 'admin']);
    const odd = await signed({ path: '/000000000000/a-queue_1', query: { 'x y': "it's (ok)*", Action: 'ListQueues' } });
    assert.ok(verifySignature(odd, tokens, now));
    assert.equal(verifySignature(await signed(), tokens, now + 4 * 60_000).id.length, 12, 'within 5 minutes');
  });

  it('refuses altered bodies, paths and headers, wrong secrets, unknown keys, skewed clocks', async () => {
    const good = await signed();
    assert.equal(
      refusal(() => verifySignature({ ...good, body: Buffer.from('Action=DeleteQueue') }, tokens, now)),
      'SignatureDoesNotMatch',
    );
    assert.equal(
      refusal(() => verifySignature({ ...good, path: '/other' }, tokens, now)),
      'SignatureDoesNotMatch',
    );
    assert.equal(
      refusal(() => verifySignature({ ...good, headers: { ...good.headers, host: 'evil:1' } }, tokens, now)),
      'SignatureDoesNotMatch',
    );
    assert.equal(
      refusal(() => verifySignature(good, tokens, now + 6 * 60_000)),
      'SignatureDoesNotMatch',
    );
    assert.equal(
      refusal(() => verifySignature(good, tokens, now - 6 * 60_000)),
      'SignatureDoesNotMatch',
    );
    const other = await signer('a-different-secret-value').sign(
      {
        method: 'POST',
        protocol: 'http:',
        hostname: '127.0.0.1',
        path: '/',
        query: {},
        headers: { host: '127.0.0.1:9324' },
        body: '',
      },
      { signingDate: new Date(now) },
    );
    const otherHeaders = Object.fromEntries(Object.entries(other.headers).map(([k, v]) => [k.toLowerCase(), v]));
    assert.equal(
      refusal(() =>
        verifySignature(
          { method: 'POST', path: '/', query: '', headers: otherHeaders, body: Buffer.alloc(0) },
          tokens,
          now,
        ),
      ),
      'SignatureDoesNotMatch',
    );
    const unknown = await signer(SECRET, 'AKIDUNKNOWN').sign(
      {
        method: 'POST',
        protocol: 'http:',
        hostname: '127.0.0.1',
        path: '/',
        query: {},
        headers: { host: 'h' },
        body: '',
      },
      { signingDate: new Date(now) },
    );
    const unknownHeaders = Object.fromEntries(Object.entries(unknown.headers).map(([k, v]) => [k.toLowerCase(), v]));
    assert.equal(
      refusal(() =>
        verifySignature(
          { method: 'POST', path: '/', query: '', headers: unknownHeaders, body: Buffer.alloc(0) },
          tokens,
          now,
        ),
      ),
      'InvalidClientTokenId',
    );
    assert.equal(
      refusal(() => verifySignature({ ...good, headers: { host: 'h' } }, tokens, now)),
      'MissingAuthenticationToken',
    );
    assert.equal(
      refusal(() =>
        verifySignature(
          { ...good, headers: { ...good.headers, authorization: 'AWS4-HMAC-SHA256 Credential=x' } },
          tokens,
          now,
        ),
      ),
      'IncompleteSignature',
    );
  });

  it('token entries: sqs= takes an access key id, once per id', () => {
    assert.throws(() => new TokenSet([`${SECRET}:sqs=no-dashes`]), /access key id/);
    assert.throws(() => new TokenSet([`${SECRET}:sqs=AKIDSAME`, `${LIMITED}:sqs=AKIDSAME`]), /two tokens/);
    assert.equal(new TokenSet([SECRET]).accessKey('AKIDFERRYTEST'), null, 'no sqs= makes no access key');
    assert.equal(tokens.accessKey('AKIDLIMITED')?.grant.queues?.[0], 'allowed-*');
  });

  it('presigned URLs: accepted until X-Amz-Expires, refused after, refused when altered', async () => {
    const request = {
      method: 'GET',
      protocol: 'http:',
      hostname: '127.0.0.1',
      path: '/',
      query: { Action: 'ListQueues', QueueNamePrefix: 'a b' },
      headers: { host: '127.0.0.1:9324' },
    };
    const url = await signer().presign(request, { signingDate: new Date(now), expiresIn: 60 });
    const query = new URLSearchParams(url.query as Record<string, string>).toString().replace(/\+/g, '%20');
    const presigned = { method: 'GET', path: '/', query, headers: { host: '127.0.0.1:9324' }, body: Buffer.alloc(0) };
    assert.ok(verifySignature(presigned, tokens, now + 59_000));
    assert.equal(
      refusal(() => verifySignature(presigned, tokens, now + 61_000)),
      'RequestExpired',
    );
    assert.equal(
      refusal(() => verifySignature({ ...presigned, query: query.replace('a%20b', 'a%20c') }, tokens, now)),
      'SignatureDoesNotMatch',
    );
  });
});

describe('the SQS port with tokens', () => {
  let bench: Bench;
  before(async () => {
    bench = await startBench({ tokens: TOKENS });
  });
  after(() => bench.close());

  for (const protocol of PROTOCOLS) {
    it(`${protocol}: a signed client works; others get SQS's refusals`, async () => {
      const sqs = bench.client(protocol, GOOD);
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `signed-${protocol}` }));
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'signed' }));
      assert.equal((await sqs.send(new ReceiveMessageCommand({ QueueUrl }))).Messages?.[0]?.Body, 'signed');

      const list = new ListQueuesCommand({});
      assert.equal(
        await code(bench.client(protocol, { ...GOOD, secretAccessKey: 'wrong-secret' }).send(list)),
        'SignatureDoesNotMatch',
      );
      assert.equal(
        await code(bench.client(protocol, { ...GOOD, accessKeyId: 'AKIDNOBODY' }).send(list)),
        'InvalidClientTokenId',
      );
      const skewed = sqsClient(bench.endpoint, protocol, GOOD, { systemClockOffset: -10 * 60_000 });
      assert.equal(await code(skewed.send(list)), 'SignatureDoesNotMatch', 'a clock 10 minutes off');
      skewed.destroy();
    });
  }

  it('an unsigned request is refused in the protocol it spoke', async () => {
    const form = await fetch(bench.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=ListQueues',
    });
    assert.equal(form.status, 403);
    assert.match(await form.text(), /<Code>MissingAuthenticationToken<\/Code>/);
    const json = await fetch(bench.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.ListQueues' },
      body: '{}',
    });
    assert.equal(json.status, 403);
    assert.equal(json.headers.get('x-amzn-query-error'), 'MissingAuthenticationToken;Sender');
  });

  it("a token's queues and scopes apply", async () => {
    const admin = bench.client('json', GOOD);
    const allowed = (await admin.send(new CreateQueueCommand({ QueueName: 'allowed-one' }))).QueueUrl;
    const other = (await admin.send(new CreateQueueCommand({ QueueName: 'private-one' }))).QueueUrl;
    const limited = bench.client('json', { accessKeyId: 'AKIDLIMITED', secretAccessKey: LIMITED });
    await limited.send(new SendMessageCommand({ QueueUrl: allowed, MessageBody: 'fine' }));
    assert.equal(
      await code(limited.send(new SendMessageCommand({ QueueUrl: other, MessageBody: 'no' }))),
      'AccessDenied',
    );
    assert.equal(
      await code(limited.send(new ReceiveMessageCommand({ QueueUrl: allowed }))),
      'AccessDenied',
      'no receive scope',
    );
    assert.equal(
      await code(limited.send(new CreateQueueCommand({ QueueName: 'allowed-two' }))),
      'AccessDenied',
      'no admin scope',
    );
    const listed = await limited.send(new ListQueuesCommand({}));
    assert.ok(
      listed.QueueUrls?.every((u) => u.includes('/allowed-')),
      'lists only its queues',
    );
  });
});
