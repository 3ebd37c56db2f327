-- Every index is paid for on every row the writer inserts: two that only repeated their
-- table's primary key in another order are folded into it, and each read keeps an index.
--
-- executions: an order's executions are read by order_id, which now leads the key. An
-- execution is still stored once: replayed, it has the same order, partition and
-- sequence (the engine's numbering), so it is the same key.
ALTER TABLE executions DROP CONSTRAINT executions_pkey,
    ADD CONSTRAINT executions_pkey PRIMARY KEY (order_id, partition, sequence);
DROP INDEX executions_order;

-- orders: every read names the account (GET or cancel by orderId, the newest-first list
-- paged by orderId), so the key is (account_id, order_id); order ids come unique from the
-- gateway's allocator, and the engine refuses a live one twice.
ALTER TABLE orders DROP CONSTRAINT orders_pkey,
    ADD CONSTRAINT orders_pkey PRIMARY KEY (account_id, order_id);
DROP INDEX orders_account_order;
