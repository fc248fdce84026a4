/** The attribute digest's byte layout, checked against bytes written out by hand (the SDK verifies only the body's). */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { md5Hex, md5OfAttributes } from '../../src/server/sqs/digest.ts';

const md5 = (bytes: number[]) => createHash('md5').update(Buffer.from(bytes)).digest('hex');
const ascii = (text: string) => [...Buffer.from(text)];

describe('SQS digests', () => {
  it('MD5OfMessageBody is the MD5 of the UTF-8 body', () => {
    assert.equal(md5Hex(''), 'd41d8cd98f00b204e9800998ecf8427e');
    assert.equal(md5Hex('é'), md5([0xc3, 0xa9]));
  });

  it('MD5OfMessageAttributes: by name; length-prefixed name, type, transport byte, value', () => {
    const expected = md5([
      ...[0, 0, 0, 1],
      ...ascii('a'),
      ...[0, 0, 0, 6],
      ...ascii('Binary'),
      2,
      ...[0, 0, 0, 2],
      0xff,
      0x00,
      ...[0, 0, 0, 1],
      ...ascii('b'),
      ...[0, 0, 0, 6],
      ...ascii('Number'),
      1,
      ...[0, 0, 0, 2],
      ...ascii('42'),
      ...[0, 0, 0, 1],
      ...ascii('c'),
      ...[0, 0, 0, 10],
      ...ascii('String.lbl'),
      1,
      ...[0, 0, 0, 2],
      0xc3,
      0xa9,
    ]);
    const given = {
      c: { DataType: 'String.lbl', StringValue: 'é' },
      a: { DataType: 'Binary', BinaryValue: new Uint8Array([0xff, 0x00]) },
      b: { DataType: 'Number', StringValue: '42' },
    };
    assert.equal(md5OfAttributes(given), expected);
    assert.equal(md5OfAttributes({}), null, 'no attributes, no digest');
  });
});
