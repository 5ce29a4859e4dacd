-- The operator (OPERATOR_TOKEN) manages any organization's members and invitations without an
-- account of its own: an invitation it sends has no inviter (the audit log names the operator).
alter table invitations alter column invited_by drop not null;
