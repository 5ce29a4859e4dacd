import { describe, expect, it } from 'vitest';
import { operationOfPath } from './operation-name.js';

describe('operationOfPath', () => {
  it('keeps the method and the path without its query', () => {
    expect(operationOfPath('POST', 'v1/checkout/sessions')).toBe('POST v1/checkout/sessions');
    expect(operationOfPath('GET', 'v1/events?limit=100&starting_after=evt_1')).toBe('GET v1/events');
  });

  it("replaces the objects' ids so that label values stay few", () => {
    expect(operationOfPath('GET', 'v1/checkout/sessions/cs_test_a1B2c3D4e5F6g7')).toBe(
      'GET v1/checkout/sessions/:id',
    );
    expect(operationOfPath('POST', 'v1/payment_intents/pi_3NxYz12345abcdef/cancel')).toBe(
      'POST v1/payment_intents/:id/cancel',
    );
    expect(operationOfPath('DELETE', 'v2/meetings/85746065432')).toBe('DELETE v2/meetings/:id');
    expect(operationOfPath('GET', 'api/v1/invoices/0b9c6a7e-1f2d-4c3b-9a8e-7d6c5b4a3f21')).toBe(
      'GET api/v1/invoices/:id',
    );
  });

  it('keeps versions and short names that carry a digit', () => {
    expect(operationOfPath('POST', 'oauth2/token')).toBe('POST oauth2/token');
    expect(
      operationOfPath(
        'GET',
        'androidpublisher/v3/applications/com.example.game/purchases/products/coins_500',
      ),
    ).toBe('GET androidpublisher/v3/applications/com.example.game/purchases/products/coins_500');
  });
});
