"""Whether a venue lost or doubled anything: accepted orders against Postgres.

Used by `venue bench e2e` after its load and by the fault tests after each kill.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg


async def audit_orders(database_url: str, accepted: list[int], settle_s: float) -> dict:
    """Wait until every accepted order is persisted (or settle_s passed), then count:
    persisted orders and executions, lost (accepted, never persisted), duplicated (an
    order twice under one clientOrderId, or one execution twice: the same new, fill,
    cancel, reject or expiry of an order; a replace, or a refused cancel or replace, may
    well come twice alike), instruments whose bought quantity differs from their sold
    quantity, and minutes whose candle (candles_1m) does not count their trades once."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("CREATE TEMP TABLE accepted (order_id bigint PRIMARY KEY)")
        await connection.copy_records_to_table("accepted", records=[(i,) for i in accepted])
        deadline = time.monotonic() + settle_s
        while True:
            lost = await connection.fetchval(
                "SELECT count(*) FROM accepted a WHERE NOT EXISTS "
                "(SELECT 1 FROM orders o WHERE o.order_id = a.order_id)")
            if lost == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        row = await connection.fetchrow("""
            SELECT
              (SELECT count(*) FROM orders o JOIN accepted USING (order_id))
                AS persisted_orders,
              (SELECT count(*) FROM executions e JOIN accepted USING (order_id))
                AS persisted_executions,
              (SELECT count(*) - count(DISTINCT (account_id, client_order_id)) FROM orders)
                AS doubled_orders,
              (SELECT count(*) FROM (SELECT 1 FROM executions
                 WHERE exec_type NOT IN ('replaced', 'cancel_rejected', 'replace_rejected')
                 GROUP BY order_id, exec_type, cum_qty, leaves_qty, last_qty
                 HAVING count(*) > 1) d) AS doubled_executions,
              (SELECT count(*) FROM trades) AS trades,
              (SELECT count(*) FROM (
                 SELECT o.instrument_id,
                        sum(e.last_qty) FILTER (WHERE o.side = 'buy') AS bought,
                        sum(e.last_qty) FILTER (WHERE o.side = 'sell') AS sold
                 FROM executions e JOIN orders o USING (order_id)
                 WHERE e.exec_type = 'trade' GROUP BY o.instrument_id) q
               WHERE bought IS DISTINCT FROM sold) AS unbalanced_instruments,
              (SELECT count(*) FROM (
                 SELECT instrument_id, date_bin('1 minute', engine_time,
                                                timestamptz 'epoch') AS minute,
                        count(*) AS trades, sum(quantity) AS volume
                 FROM trades GROUP BY 1, 2) t
               FULL JOIN candles_1m c USING (instrument_id, minute)
               WHERE (t.trades, t.volume) IS DISTINCT FROM (c.trades, c.volume))
                AS miscounted_candles""")
        return dict(row) | {"lost": lost,
                            "duplicated": row["doubled_orders"] + row["doubled_executions"]}
    finally:
        await connection.close()
