-- Notional (ticks * lots) fits in bigint: the engine refuses an order whose quantity at
-- its instrument's top price would not. bigint is also what COPY writes fastest.
ALTER TABLE orders ALTER COLUMN cum_notional TYPE bigint;
ALTER TABLE executions ALTER COLUMN cum_notional TYPE bigint;
