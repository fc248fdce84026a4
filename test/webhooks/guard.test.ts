/**
 * The SSRF guard (SPEC §6), with private addresses not allowed: the address rules, refusals at registration
 * (in process and over HTTP), and refusals at delivery, where the check is the connection's own DNS lookup.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { connect } from '../../src/client/index.ts';
import { InvalidRequestError } from '../../src/core/errors.ts';
import { forbiddenAddress } from '../../src/engine/webhooks/guard.ts';
import { open } from '../../src/index.ts';
import { startServer } from '../../src/server/index.ts';
import { expectError, qname, receiveOne, sleep, waitFor } from '../conformance/helpers.ts';
import { newSecret, startReceiver } from './receiver.ts';

const REFUSED = [
  'http://127.0.0.1:8080/hook',
  'http://10.1.2.3/hook',
  'http://169.254.169.254/latest/meta-data/',
  'http://[::1]:8080/hook',
  'http://localhost:8080/hook',
  'http://[::ffff:127.0.0.1]/hook',
  'http://[::ffff:a9fe:a9fe]/hook',
  'http://[fd00:ec2::254]/hook',
  'http://100.64.0.1/hook',
  'http://192.168.1.1/hook',
  'http://172.16.0.1/hook',
  'http://0.0.0.0/hook',
  'http://[fe80::1]/hook',
  'https://224.0.0.1/hook',
];

describe('webhook SSRF guard', () => {
  it('classifies addresses: loopback, private, ULA, link-local, CGNAT, metadata, unspecified, multicast and their IPv6 forms are refused', () => {
    for (const a of [
      '127.0.0.1',
      '127.255.0.9',
      '10.0.0.1',
      '172.31.255.255',
      '192.168.0.1',
      '100.64.0.1',
      '100.127.255.254',
      '169.254.169.254',
      '0.0.0.0',
      '224.0.0.251',
      '255.255.255.255',
      '::',
      '::1',
      'fc00::1',
      'fd00:ec2::254',
      'fe80::1',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:10.0.0.1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::a9fe:a9fe',
      '2002:7f00:1::1',
    ]) {
      assert.notEqual(forbiddenAddress(a), null, `${a} is refused`);
    }
    for (const a of [
      '8.8.8.8',
      '1.1.1.1',
      '100.63.255.255',
      '100.128.0.1',
      '172.32.0.1',
      '2606:4700:4700::1111',
      '::ffff:8.8.8.8',
    ]) {
      assert.equal(forbiddenAddress(a), null, `${a} is allowed`);
    }
  });

  it('refuses private destinations at registration, in process and over HTTP, and stores nothing', async () => {
    const ferry = await open('memory:');
    const server = await startServer({ store: 'memory:', port: 0, logger: false });
    const remote = await connect(server.url);
    try {
      for (const target of [ferry, remote]) {
        for (const url of REFUSED) {
          const error = await expectError(
            () => target.putWebhook(qname('wh'), { url, secret: newSecret() }),
            InvalidRequestError,
            url,
          );
          assert.match(error.message, /loopback, private|resolve/, url);
        }
        const unknown = await expectError(
          () => target.putWebhook(qname('wh'), { url: 'http://no-such-host.invalid/hook', secret: newSecret() }),
          InvalidRequestError,
        );
        assert.match(unknown.message, /does not resolve/);
        assert.deepEqual(await target.webhooks(), []);
      }
    } finally {
      await remote.close();
      await server.close();
      await ferry.close();
    }
  });

  it('refuses private destinations again at delivery (an IP, and a name that resolves to loopback), and logs why', async () => {
    const file = join(tmpdir(), `ferry-webhook-guard-${randomUUID()}.db`);
    const receiver = await startReceiver();
    const port = receiver.origin.split(':').pop();
    const q = qname();
    // Registered by a process that allowed private addresses…
    const lax = await open(`sqlite:${file}`, { webhookAllowPrivate: true, webhookDelivery: false });
    await lax.putWebhook('by-ip', { url: `http://127.0.0.1:${port}/ip`, secret: receiver.secret, queues: [q] });
    await lax.putWebhook('by-name', { url: `http://localhost:${port}/name`, secret: receiver.secret, queues: [q] });
    await lax.close();
    // …delivered by one that does not.
    const ferry = await open(`sqlite:${file}`);
    try {
      await ferry.send(q, 1);
      await ferry.ack(await receiveOne(ferry, q));
      for (const name of ['by-ip', 'by-name']) {
        const [attempt] = await waitFor(async () => {
          const log = await ferry.webhookDeliveries(name);
          return log.length > 0 && log;
        }, `an attempt of ${name}`);
        assert.equal(attempt?.status, null);
        assert.equal(attempt?.outcome, 'retrying');
        assert.match(attempt?.error ?? '', /127\.0\.0\.1.*loopback, private/, name);
      }
      await sleep(200);
      assert.equal(receiver.received.length, 0, 'nothing reached the receiver');
    } finally {
      await ferry.close();
      await receiver.close();
      for (const suffix of ['', '-wal', '-shm']) await rm(file + suffix, { force: true });
    }
  });
});
