-- Accounts own orders; API keys (hashed) name an account.
CREATE TABLE accounts (
    account_id  bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_hash    bytea PRIMARY KEY,          -- sha256 of the key; the key itself is never stored
    account_id  bigint NOT NULL REFERENCES accounts (account_id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- The latest state of every order the engine has reported on. Prices in ticks,
-- quantities in lots, notional in ticks * lots: integers only.
CREATE TABLE orders (
    order_id         bigint PRIMARY KEY,
    client_order_id  text NOT NULL,
    account_id       bigint NOT NULL,
    instrument_id    integer NOT NULL,
    side             text NOT NULL CHECK (side IN ('buy', 'sell')),
    type             text NOT NULL CHECK (type IN ('limit', 'market')),
    time_in_force    text NOT NULL,
    post_only        boolean NOT NULL DEFAULT false,
    price            bigint NOT NULL,
    quantity         bigint NOT NULL CHECK (quantity >= 0),
    status           text NOT NULL,
    cum_qty          bigint NOT NULL CHECK (cum_qty >= 0),
    leaves_qty       bigint NOT NULL CHECK (leaves_qty >= 0),
    cum_notional     numeric(38, 0) NOT NULL,
    reject_reason    text,
    partition        integer NOT NULL,
    last_sequence    bigint NOT NULL,      -- the engine sequence this row reflects
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX orders_account_client_order_id ON orders (account_id, client_order_id);
CREATE INDEX orders_open ON orders (account_id, instrument_id) WHERE status IN ('new', 'partially_filled');

-- Every execution report, once: (partition, sequence) is the engine's own numbering.
CREATE TABLE executions (
    partition       integer NOT NULL,
    sequence        bigint NOT NULL,
    order_id        bigint NOT NULL,
    exec_type       text NOT NULL,
    order_status    text NOT NULL,
    last_qty        bigint NOT NULL,
    last_px         bigint NOT NULL,
    cum_qty         bigint NOT NULL,
    leaves_qty      bigint NOT NULL,
    cum_notional    numeric(38, 0) NOT NULL,
    reject_reason   text,
    trade_id        bigint,
    engine_time     timestamptz NOT NULL,
    PRIMARY KEY (partition, sequence)
);
CREATE INDEX executions_order ON executions (order_id);

CREATE TABLE trades (
    partition       integer NOT NULL,
    trade_id        bigint NOT NULL,
    sequence        bigint NOT NULL,
    instrument_id   integer NOT NULL,
    price           bigint NOT NULL,
    quantity        bigint NOT NULL CHECK (quantity > 0),
    buy_order_id    bigint NOT NULL,
    sell_order_id   bigint NOT NULL,
    aggressor_side  text NOT NULL,
    engine_time     timestamptz NOT NULL,
    PRIMARY KEY (partition, trade_id)
);
CREATE INDEX trades_instrument_time ON trades (instrument_id, engine_time DESC);
