-- free_slots is a security-definer SQL function, so Postgres plans its body on each call without
-- inlining it, with generate_series' default estimate of 1,000 rows per call: the plan's cost
-- passes jit_above_cost (100,000) and, with jit on (Postgres' default), every call compiled the
-- plan with LLVM first. Measured on the seeded bench directory: 1.5–3.5 s per call for one
-- professional over three days under load, 1.6 ms with JIT off. The function's own setting keeps
-- it off for its body only.
alter function cryptocare.free_slots(uuid[], timestamptz, timestamptz, timestamptz, boolean) set jit = off;
