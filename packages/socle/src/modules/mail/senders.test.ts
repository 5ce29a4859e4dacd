import { describe, expect, it } from 'vitest';
import { domainOf, redactCredentials } from './senders.js';

describe('SMTP error hygiene', () => {
  it('removes the URL, user and password (raw and percent-encoded) from a message', () => {
    const url = 'smtp://mailer:p%40ss-word@smtp.example:587';
    expect(redactCredentials(`Cannot reach ${url}: login p@ss-word for mailer refused`, url)).toBe(
      'Cannot reach [redacted]: login [redacted] for [redacted] refused',
    );
  });

  it('takes the Message-ID domain from MAIL_FROM', () => {
    expect(domainOf('Acme <no-reply@acme.example>')).toBe('acme.example');
    expect(domainOf('robot@socle.test')).toBe('socle.test');
    expect(domainOf('Socle')).toBe('localhost');
  });
});
