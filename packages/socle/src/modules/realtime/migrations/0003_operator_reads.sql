-- Operators (OPERATOR_TOKEN) list every organization's realtime apps (the console's realtime page
-- without an account). Their reads present app.operator_read = 'on' (set on that statement only,
-- as tenancy's operator reads do). Reads only; the listing selects no secret column.
create policy apps_operator_read on apps for select
  using (current_setting('app.operator_read', true) = 'on');
