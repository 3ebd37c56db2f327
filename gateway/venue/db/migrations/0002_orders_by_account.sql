-- GET /v1/orders lists an account's orders newest first, paged by order id: without
-- this index a busy account's page sorts every order it ever sent.
CREATE INDEX orders_account_order ON orders (account_id, order_id);
