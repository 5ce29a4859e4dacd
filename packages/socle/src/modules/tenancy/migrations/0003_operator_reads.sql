-- Operators (OPERATOR_TOKEN) list every organization and count its members. Their reads present
-- app.operator_read = 'on' (tenancy's operator store sets it on that statement only); a statement
-- that forgets it still sees only the organizations of its tenant and user. Reads only: nothing
-- here lets an operator's statement write.
create policy organizations_operator_read on organizations for select
  using (current_setting('app.operator_read', true) = 'on');
create policy memberships_operator_read on memberships for select
  using (current_setting('app.operator_read', true) = 'on');
