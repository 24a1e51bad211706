/**
 * Proves the syslog wire format: an RFC 6587 octet-counted frame whose length is the
 * byte length of an RFC 5424 message (multi-byte UTF-8 included), with PRI from facility
 * authpriv and the severity given, header fields restricted to printable ASCII.
 */
import { describe, expect, it } from 'vitest';
import { FACILITY_AUTHPRIV, headerField, SEVERITY, syslogFrame, syslogHeader } from '../src/audit/sinks/syslog.js';

describe('syslog frames', () => {
  it('count the bytes of the message and carry an RFC 5424 header before the JSON', () => {
    const header = syslogHeader('gate-1.example', 'etcdgate', 4242);
    const json = JSON.stringify({ key: '/größe/日本' });
    const frame = syslogFrame(header, SEVERITY.notice, 'call', new Date('2024-01-15T10:00:00.000Z'), json);
    const space = frame.indexOf(0x20);
    const length = Number(frame.subarray(0, space).toString('latin1'));
    const message = frame.subarray(space + 1);
    expect(message.length).toBe(length);
    expect(length).toBeGreaterThan(message.toString('utf8').length);
    expect(message.toString('utf8')).toBe(`<85>1 2024-01-15T10:00:00.000Z gate-1.example etcdgate 4242 call - ${json}`);
    expect(FACILITY_AUTHPRIV * 8 + SEVERITY.info).toBe(86);
  });

  it('never lets a header field contain spaces or non-ASCII, and uses "-" for empty', () => {
    expect(headerField('my host\tname', 255)).toBe('myhostname');
    expect(headerField('größe', 48)).toBe('gre');
    expect(headerField('', 48)).toBe('-');
    expect(headerField('x'.repeat(100), 48)).toHaveLength(48);
  });
});
