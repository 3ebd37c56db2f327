-- GET /v1/orders?status=open pages an account's open orders newest first, by order id:
-- keyed by (account_id, instrument_id), the open-orders index made that a sort of all
-- of them, and every order the writer inserted went into a run of equal keys (a handful
-- of accounts and instruments), which Postgres's deduplication compacted again and
-- again. Keyed by order id it serves the page in order, and inserts append at its end.
DROP INDEX orders_open;
CREATE INDEX orders_open ON orders (account_id, order_id)
    WHERE status IN ('new', 'partially_filled');
