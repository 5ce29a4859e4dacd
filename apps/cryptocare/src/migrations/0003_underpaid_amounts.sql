-- What the processor received for an appointment's invoice when it was less than the price (the
-- payments module's partially paid / underpaid invoice), and what was missing: the patient sees
-- it, the practice settles it (the appointment is never confirmed on an underpayment).
alter table appointments add column received_sats bigint check (received_sats >= 0);
alter table appointments add column missing_sats bigint check (missing_sats >= 0);
