"""The Redis Streams order queue as its parts use it: the gateway appends orders
(order_queue, with their ids from order_ids and their clientOrderId claims in claims),
and the writer records how far each shard is persisted (persisted). The Redis side is
two Lua scripts, enqueue.lua and persist.lua. The keys and the entries'
format are venue.contract's.
"""
