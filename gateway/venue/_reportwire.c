/* venue._reportwire: the writer's reading of an events-stream entry, in C.
 *
 * add_batch() reads one serialized ReportBatch (engine/proto/engine.proto) straight off
 * the wire and does what venue.writer.rows.Rows.add (the tests' reference) does with the
 * decoded message: execution and trade rows appended in COPY's binary format, each
 * order's latest state kept in the `orders` dict as an OrderState (a named structure
 * this module defines). In Python, reading the reports' fields was most of the writer's
 * CPU. tests/unit/test_reportwire.py holds the two to the same rows and states.
 *
 *   add_batch(data, executions, trades, orders, candles, execution_text, side_text,
 *             pg_epoch_us, exec_type_new, exec_type_trade, stateless_exec_types, set_aside)
 *     -> (partition, next_sequence, first_sequence, last_sequence, events)
 *
 * Each trade is also folded into its instrument's candle of its UTC minute: `candles`
 * maps (instrument_id, minute) to a bytearray holding a Candle (below; minute in Postgres
 * microseconds, the minute's start).
 *
 * execution_text maps (exec_type, order_status, reject_reason) to the encoded text
 * columns of an execution row, side_text a side to the trade row's; an unknown key
 * raises KeyError there, as it does in Python. A report whose exec type is a bit of
 * stateless_exec_types (a refused cancel or replace), or that names no order, is an
 * execution row but changes no order's state.
 *
 * An event that cannot be stored (an enum value the mappings do not know, a
 * clientOrderId that is not UTF-8, a malformed body) is set aside: nothing of it is
 * kept, (sequence, its bytes, the error) is appended to the list set_aside, and the
 * rest of the batch is read on; its sequence counts as covered. A batch whose framing
 * is broken, or an event without a sequence, raises ValueError: nothing of it is placed.
 *
 *   market_events(data) -> (next_sequence, events)
 *
 * is the market feed's reading of the same batch (venue.market.feed): its next_sequence
 * (0 when absent) and only its book level changes and trades, in order, each a tuple
 *   (sequence, timestamp_ns, instrument_id, side, price, quantity, trade_id)
 * where a level change's side is the book's side and its trade_id None, and a trade's
 * side is its aggressor's. Broken framing, or an event without a sequence, raises
 * ValueError.
 *
 *   order_rows(orders, new_rows, terms_text, state_text) -> [order id, ...]
 *
 * does what Rows.order_rows does with those states: the COPY row of each order first
 * reported in the run is appended to new_rows, in order id order, and the ids of the
 * others (whose rows are updated) are returned, in the dict's order. terms_text maps
 * (side, type, time_in_force) and state_text (status, reject_reason) to the encoded text
 * columns.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "engine_wire.h"

typedef struct {
    const uint8_t *at, *end;
} Reader;

static int fail(const char *why) {
    PyErr_Format(PyExc_ValueError, "malformed ReportBatch: %s", why);
    return -1;
}

static inline int read_varint(Reader *r, uint64_t *value) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->at >= r->end) return fail("truncated varint");
        uint8_t byte = *r->at++;
        v |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *value = v;
            return 0;
        }
    }
    return fail("varint too long");
}

/* The next field: its number and wire type, and for a length-delimited one its bytes. */
static inline int read_key(Reader *r, uint32_t *field, uint32_t *wire) {
    uint64_t key;
    if (read_varint(r, &key) < 0) return -1;
    *field = (uint32_t)(key >> 3);
    *wire = (uint32_t)(key & 7);
    return 0;
}

static inline int read_bytes(Reader *r, Reader *inner) {
    uint64_t len;
    if (read_varint(r, &len) < 0) return -1;
    if (len > (uint64_t)(r->end - r->at)) return fail("truncated field");
    inner->at = r->at;
    inner->end = r->at + len;
    r->at += len;
    return 0;
}

static int skip(Reader *r, uint32_t wire) {
    uint64_t ignored;
    Reader inner;
    switch (wire) {
    case WIRE_VARINT: return read_varint(r, &ignored);
    case WIRE_FIXED64:
        if (r->end - r->at < 8) return fail("truncated fixed64");
        r->at += 8;
        return 0;
    case WIRE_BYTES: return read_bytes(r, &inner);
    case WIRE_FIXED32:
        if (r->end - r->at < 4) return fail("truncated fixed32");
        r->at += 4;
        return 0;
    default: return fail("unsupported wire type");
    }
}

/* A varint field's value (its wire type checked); protobuf's int32 enums and int64s are
 * two's complement, so the cast back gives the signed value. */
static inline int read_number(Reader *r, uint32_t wire, uint64_t *value) {
    if (wire != WIRE_VARINT) return fail("a number field is not a varint");
    return read_varint(r, value);
}

typedef struct {
    uint64_t order_id, account_id, trade_id;
    int64_t price, quantity, last_qty, last_px, cum_qty, leaves_qty, cum_notional;
    int64_t side, type, tif, exec_type, status, reason;
    uint32_t instrument_id;
    int post_only;
    const uint8_t *client_order_id;
    Py_ssize_t client_order_id_len;
} Report;

typedef struct {
    uint64_t trade_id, buy_order_id, sell_order_id;
    uint32_t instrument_id;
    int64_t price, quantity, aggressor_side;
} Trade;

static int read_report(Reader r, Report *out) {
    memset(out, 0, sizeof(*out));
    out->client_order_id = (const uint8_t *)"";
    while (r.at < r.end) {
        uint32_t field, wire;
        uint64_t v = 0;
        if (read_key(&r, &field, &wire) < 0) return -1;
        if (field == PB_ExecutionReport_client_order_id) {
            Reader text;
            if (wire != WIRE_BYTES) return fail("clientOrderId");
            if (read_bytes(&r, &text) < 0) return -1;
            out->client_order_id = text.at;
            out->client_order_id_len = text.end - text.at;
            continue;
        }
        if (wire != WIRE_VARINT) { /* every other field it takes is a number */
            if (skip(&r, wire) < 0) return -1;
            continue;
        }
        if (read_number(&r, wire, &v) < 0) return -1;
        switch (field) {
        case PB_ExecutionReport_order_id: out->order_id = v; break;
        case PB_ExecutionReport_account_id: out->account_id = v; break;
        case PB_ExecutionReport_instrument_id: out->instrument_id = (uint32_t)v; break;
        case PB_ExecutionReport_side: out->side = (int32_t)v; break;
        case PB_ExecutionReport_type: out->type = (int32_t)v; break;
        case PB_ExecutionReport_time_in_force: out->tif = (int32_t)v; break;
        case PB_ExecutionReport_price: out->price = (int64_t)v; break;
        case PB_ExecutionReport_quantity: out->quantity = (int64_t)v; break;
        case PB_ExecutionReport_exec_type: out->exec_type = (int32_t)v; break;
        case PB_ExecutionReport_order_status: out->status = (int32_t)v; break;
        case PB_ExecutionReport_last_qty: out->last_qty = (int64_t)v; break;
        case PB_ExecutionReport_last_px: out->last_px = (int64_t)v; break;
        case PB_ExecutionReport_cum_qty: out->cum_qty = (int64_t)v; break;
        case PB_ExecutionReport_leaves_qty: out->leaves_qty = (int64_t)v; break;
        case PB_ExecutionReport_cum_notional: out->cum_notional = (int64_t)v; break;
        case PB_ExecutionReport_reject_reason: out->reason = (int32_t)v; break;
        case PB_ExecutionReport_trade_id: out->trade_id = v; break;
        case PB_ExecutionReport_post_only: out->post_only = v != 0; break;
        default: break; /* shard, stream_ms, stream_seq: for tracing, not stored */
        }
    }
    return 0;
}

/* The number fields 1..count of a message whose fields are all numbers, into
 * values[field - 1] (0 when absent); any other field is skipped. */
static int read_numbers(Reader r, uint64_t *values, uint32_t count) {
    memset(values, 0, count * sizeof(*values));
    while (r.at < r.end) {
        uint32_t field, wire;
        if (read_key(&r, &field, &wire) < 0) return -1;
        if (wire != WIRE_VARINT || !field || field > count) {
            if (skip(&r, wire) < 0) return -1;
            continue;
        }
        if (read_varint(&r, &values[field - 1]) < 0) return -1;
    }
    return 0;
}

static int read_trade(Reader r, Trade *out) {
    uint64_t v[PB_Trade_aggressor_side]; /* its last field */
    if (read_numbers(r, v, PB_Trade_aggressor_side) < 0) return -1;
    out->trade_id = v[PB_Trade_trade_id - 1];
    out->instrument_id = (uint32_t)v[PB_Trade_instrument_id - 1];
    out->price = (int64_t)v[PB_Trade_price - 1];
    out->quantity = (int64_t)v[PB_Trade_quantity - 1];
    out->buy_order_id = v[PB_Trade_buy_order_id - 1];
    out->sell_order_id = v[PB_Trade_sell_order_id - 1];
    out->aggressor_side = (int32_t)v[PB_Trade_aggressor_side - 1];
    return 0;
}

/* --- COPY rows ---------------------------------------------------------------------- */

typedef struct {
    uint8_t *data;
    Py_ssize_t len;
} Row;

static inline void put16(Row *row, int16_t v) {
    row->data[row->len++] = (uint8_t)((uint16_t)v >> 8);
    row->data[row->len++] = (uint8_t)v;
}

static inline void put32(Row *row, int32_t v) {
    uint32_t u = (uint32_t)v;
    for (int shift = 24; shift >= 0; shift -= 8) row->data[row->len++] = (uint8_t)(u >> shift);
}

static inline void put64(Row *row, int64_t v) {
    uint64_t u = (uint64_t)v;
    for (int shift = 56; shift >= 0; shift -= 8) row->data[row->len++] = (uint8_t)(u >> shift);
}

static inline void field32(Row *row, int32_t v) {
    put32(row, 4);
    put32(row, v);
}

static inline void field64(Row *row, int64_t v) {
    put32(row, 8);
    put64(row, v);
}

/* Appends `len` bytes to a bytearray. */
static int extend(PyObject *array, const void *data, Py_ssize_t len) {
    Py_ssize_t at = PyByteArray_GET_SIZE(array);
    if (PyByteArray_Resize(array, at + len) < 0) return -1;
    memcpy(PyByteArray_AS_STRING(array) + at, data, len);
    return 0;
}

static int extend_bytes(PyObject *array, PyObject *bytes) {
    if (!PyBytes_Check(bytes)) {
        PyErr_SetString(PyExc_TypeError, "an encoded text is not bytes");
        return -1;
    }
    return extend(array, PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
}

/* Python's floor division, for a clock before 1970 as well. */
static inline int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* --- the order state: named structures (OrderState, OrderTerms) ---------------------- */

/* An order's latest state in a run: what its last report said, and what its reports do
 * not change (its terms, read from its first). Python reads them by name. */
enum {
    STATE_SEQUENCE, STATE_UPDATED_AT, STATE_CREATED_AT, STATE_IS_NEW, STATE_PARTITION,
    STATE_PRICE, STATE_QUANTITY, STATE_STATUS, STATE_REASON, STATE_CUM_QTY, STATE_LEAVES_QTY,
    STATE_CUM_NOTIONAL, STATE_TERMS, STATE_FIELDS
};
enum {
    TERMS_ACCOUNT_ID, TERMS_INSTRUMENT_ID, TERMS_POST_ONLY, TERMS_CLIENT_ORDER_ID, TERMS_SIDE,
    TERMS_TYPE, TERMS_TIME_IN_FORCE, TERMS_FIELDS
};

static PyStructSequence_Field state_fields[] = {
    {"sequence", "the engine sequence of its last report"},
    {"updated_at", "that report's time (Postgres microseconds)"},
    {"created_at", "its first report's time"},
    {"is_new", "its first report here is its NEW report: a row to insert"},
    {"partition", NULL}, {"price", NULL}, {"quantity", NULL}, {"status", NULL},
    {"reason", "reject reason"}, {"cum_qty", NULL}, {"leaves_qty", NULL},
    {"cum_notional", NULL}, {"terms", "OrderTerms"}, {NULL, NULL}};
static PyStructSequence_Field terms_fields[] = {
    {"account_id", NULL}, {"instrument_id", NULL}, {"post_only", NULL},
    {"client_order_id", NULL}, {"side", NULL}, {"type", NULL}, {"time_in_force", NULL},
    {NULL, NULL}};
static PyStructSequence_Desc state_desc = {"venue._reportwire.OrderState",
                                           "An order's latest state in a run of reports.",
                                           state_fields, STATE_FIELDS};
static PyStructSequence_Desc terms_desc = {"venue._reportwire.OrderTerms",
                                           "What an order's reports do not change.",
                                           terms_fields, TERMS_FIELDS};
static PyTypeObject *OrderStateType, *OrderTermsType;

/* A new structure of `type` from `count` new references (stolen; NULL fails it). */
static PyObject *structure(PyTypeObject *type, PyObject **items, int count) {
    PyObject *out = PyStructSequence_New(type);
    for (int i = 0; i < count; i++) {
        if (items[i] == NULL || out == NULL) {
            for (int j = i; j < count; j++) Py_XDECREF(items[j]);
            Py_XDECREF(out);
            return NULL;
        }
        PyStructSequence_SET_ITEM(out, i, items[i]);
    }
    return out;
}

static int is_state(PyObject *state) {
    if (Py_IS_TYPE(state, OrderStateType) &&
        Py_IS_TYPE(PyStructSequence_GET_ITEM(state, STATE_TERMS), OrderTermsType))
        return 1;
    PyErr_SetString(PyExc_TypeError, "an order's state is not Rows' (an OrderState)");
    return 0;
}

/* A minute's candle of one instrument, from a run's trades (venue.writer.rows.CANDLE,
 * native byte order). Open is the price of its first trade by (time, sequence), close
 * its last's; their times and sequences are kept, so two candles of the same minute
 * merge in either order (venue.writer.store). */
typedef struct {
    int64_t open, high, low, close, volume, trades;
    int64_t open_at, open_sequence, close_at, close_sequence;
} Candle;

#define MINUTE_US INT64_C(60000000)
#define CANDLE_CACHE 8 /* candles found lately, by instrument id modulo this */

typedef struct {
    uint32_t instrument_id;
    int64_t minute;
    Candle *candle; /* inside a bytearray the candles dict holds: NULL, none yet */
} CandleSlot;

typedef struct {
    PyObject *executions, *trades, *orders, *candles, *execution_text, *side_text;
    int64_t pg_epoch_us, exec_type_new, exec_type_trade;
    uint64_t stateless_exec_types; /* bit n: exec type n changes no order's state */
    uint32_t partition;
    /* The last (exec_type, status, reason) looked up, and its text (borrowed). */
    int64_t last_key[3];
    PyObject *last_text;
    /* For one call only: the dict keeps each bytearray, and no bytearray is resized. */
    CandleSlot candle_cache[CANDLE_CACHE];
} Sink;

static PyObject *order_terms(const Report *r) {
    PyObject *items[TERMS_FIELDS] = {
        [TERMS_ACCOUNT_ID] = PyLong_FromUnsignedLongLong(r->account_id),
        [TERMS_INSTRUMENT_ID] = PyLong_FromUnsignedLong(r->instrument_id),
        [TERMS_POST_ONLY] = Py_NewRef(r->post_only ? Py_True : Py_False),
        [TERMS_CLIENT_ORDER_ID] = PyUnicode_DecodeUTF8((const char *)r->client_order_id,
                                                       r->client_order_id_len, NULL),
        [TERMS_SIDE] = PyLong_FromLongLong(r->side),
        [TERMS_TYPE] = PyLong_FromLongLong(r->type),
        [TERMS_TIME_IN_FORCE] = PyLong_FromLongLong(r->tif)};
    return structure(OrderTermsType, items, TERMS_FIELDS);
}

/* The state a report gives its order; `known` (borrowed, or NULL) is its state before. */
static PyObject *order_state(const Sink *sink, uint64_t sequence, int64_t at, const Report *r,
                             PyObject *known) {
    PyObject *terms = known != NULL ? Py_NewRef(PyStructSequence_GET_ITEM(known, STATE_TERMS))
                                    : order_terms(r);
    PyObject *items[STATE_FIELDS] = {
        [STATE_SEQUENCE] = PyLong_FromUnsignedLongLong(sequence),
        [STATE_UPDATED_AT] = PyLong_FromLongLong(at),
        [STATE_CREATED_AT] = known != NULL
                                 ? Py_NewRef(PyStructSequence_GET_ITEM(known, STATE_CREATED_AT))
                                 : PyLong_FromLongLong(at),
        [STATE_IS_NEW] = known != NULL
                             ? Py_NewRef(PyStructSequence_GET_ITEM(known, STATE_IS_NEW))
                             : Py_NewRef(r->exec_type == sink->exec_type_new ? Py_True : Py_False),
        [STATE_PARTITION] = PyLong_FromUnsignedLong(sink->partition),
        [STATE_PRICE] = PyLong_FromLongLong(r->price),
        [STATE_QUANTITY] = PyLong_FromLongLong(r->quantity),
        [STATE_STATUS] = PyLong_FromLongLong(r->status),
        [STATE_REASON] = PyLong_FromLongLong(r->reason),
        [STATE_CUM_QTY] = PyLong_FromLongLong(r->cum_qty),
        [STATE_LEAVES_QTY] = PyLong_FromLongLong(r->leaves_qty),
        [STATE_CUM_NOTIONAL] = PyLong_FromLongLong(r->cum_notional),
        [STATE_TERMS] = terms};
    return structure(OrderStateType, items, STATE_FIELDS);
}

static int add_report(Sink *sink, uint64_t sequence, int64_t at, const Report *r) {
    /* field count, partition (4 + 4), then 8 or 9 eight-byte fields (4 + 8 each) */
    uint8_t buffer[2 + (4 + 4) + 9 * (4 + 8)];
    Row row = {buffer, 0};
    int trade = r->exec_type == sink->exec_type_trade;
    put16(&row, 13);
    field32(&row, (int32_t)sink->partition);
    field64(&row, (int64_t)sequence);
    field64(&row, (int64_t)r->order_id);
    field64(&row, r->last_qty);
    field64(&row, r->last_px);
    field64(&row, r->cum_qty);
    field64(&row, r->leaves_qty);
    field64(&row, r->cum_notional);
    field64(&row, at);
    if (trade) field64(&row, (int64_t)r->trade_id);
    if (extend(sink->executions, buffer, row.len) < 0) return -1;
    if (sink->last_text == NULL || sink->last_key[0] != r->exec_type ||
        sink->last_key[1] != r->status || sink->last_key[2] != r->reason) {
        PyObject *key = Py_BuildValue("(LLL)", (long long)r->exec_type, (long long)r->status,
                                      (long long)r->reason);
        if (key == NULL) return -1;
        PyObject *text = PyObject_GetItem(sink->execution_text, key);
        Py_DECREF(key);
        if (text == NULL) return -1;
        Py_DECREF(text); /* the mapping keeps it */
        sink->last_text = text;
        sink->last_key[0] = r->exec_type;
        sink->last_key[1] = r->status;
        sink->last_key[2] = r->reason;
    }
    if (extend_bytes(sink->executions, sink->last_text) < 0) return -1;
    if (r->order_id == 0 || (r->exec_type >= 0 && r->exec_type < 64 &&
                             (sink->stateless_exec_types >> r->exec_type) & 1))
        return 0;

    /* The order's latest state (venue.writer.rows.Rows._report). */
    PyObject *order_id = PyLong_FromUnsignedLongLong(r->order_id);
    if (order_id == NULL) return -1;
    PyObject *known = PyDict_GetItemWithError(sink->orders, order_id); /* borrowed */
    PyObject *state = NULL;
    if (known == NULL) {
        if (PyErr_Occurred()) goto fail;
    } else {
        if (!is_state(known)) goto fail;
        unsigned long long seen = PyLong_AsUnsignedLongLong(
            PyStructSequence_GET_ITEM(known, STATE_SEQUENCE));
        if (seen == (unsigned long long)-1 && PyErr_Occurred()) goto fail;
        if (seen >= sequence) {
            Py_DECREF(order_id);
            return 0;
        }
    }
    state = order_state(sink, sequence, at, r, known);
    if (state == NULL || PyDict_SetItem(sink->orders, order_id, state) < 0) goto fail;
    Py_DECREF(state);
    Py_DECREF(order_id);
    return 0;
fail:
    Py_XDECREF(state);
    Py_DECREF(order_id);
    return -1;
}

/* The candle of a trade's instrument and minute, made when first met (NULL: failed). */
static Candle *candle_of(Sink *sink, uint32_t instrument_id, int64_t minute, int *made) {
    CandleSlot *slot = &sink->candle_cache[instrument_id % CANDLE_CACHE];
    *made = 0;
    if (slot->candle != NULL && slot->instrument_id == instrument_id && slot->minute == minute)
        return slot->candle;
    PyObject *key = Py_BuildValue("(kL)", (unsigned long)instrument_id, (long long)minute);
    if (key == NULL) return NULL;
    PyObject *record = PyDict_GetItemWithError(sink->candles, key); /* borrowed */
    if (record == NULL) {
        if (PyErr_Occurred() ||
            (record = PyByteArray_FromStringAndSize(NULL, sizeof(Candle))) == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        int failed = PyDict_SetItem(sink->candles, key, record);
        Py_DECREF(record); /* the dict keeps it */
        if (failed < 0) {
            Py_DECREF(key);
            return NULL;
        }
        *made = 1;
    } else if (!PyByteArray_Check(record) || PyByteArray_GET_SIZE(record) != sizeof(Candle)) {
        Py_DECREF(key);
        PyErr_SetString(PyExc_TypeError, "a candle is not Rows' (a bytearray of a Candle)");
        return NULL;
    }
    Py_DECREF(key);
    *slot = (CandleSlot){instrument_id, minute, (Candle *)PyByteArray_AS_STRING(record)};
    return slot->candle;
}

/* A trade into its instrument's candle of its minute (venue.writer.rows.Rows._candle). A
 * volume past int64 raises ValueError, and the candle stays as it was. */
static int add_to_candle(Sink *sink, uint64_t sequence, int64_t at, const Trade *t) {
    int64_t minute = floor_div(at, MINUTE_US) * MINUTE_US;
    int64_t seq = (int64_t)sequence;
    int made;
    Candle *c = candle_of(sink, t->instrument_id, minute, &made);
    if (c == NULL) return -1;
    if (made) {
        *c = (Candle){t->price, t->price, t->price, t->price, t->quantity, 1,
                      at, seq, at, seq};
        return 0;
    }
    int64_t volume;
    if (__builtin_add_overflow(c->volume, t->quantity, &volume)) {
        PyErr_Format(PyExc_ValueError, "the volume of instrument %lu's minute is out of range",
                     (unsigned long)t->instrument_id);
        return -1;
    }
    c->volume = volume;
    c->trades += 1;
    if (t->price > c->high) c->high = t->price;
    if (t->price < c->low) c->low = t->price;
    if (at < c->open_at || (at == c->open_at && seq < c->open_sequence)) {
        c->open = t->price;
        c->open_at = at;
        c->open_sequence = seq;
    }
    if (at > c->close_at || (at == c->close_at && seq > c->close_sequence)) {
        c->close = t->price;
        c->close_at = at;
        c->close_sequence = seq;
    }
    return 0;
}

static int add_trade(Sink *sink, uint64_t sequence, int64_t at, const Trade *t) {
    /* field count, two four-byte fields (4 + 4 each), seven eight-byte (4 + 8 each) */
    uint8_t buffer[2 + 2 * (4 + 4) + 7 * (4 + 8)];
    Row row = {buffer, 0};
    put16(&row, 10);
    field32(&row, (int32_t)sink->partition);
    field64(&row, (int64_t)t->trade_id);
    field64(&row, (int64_t)sequence);
    field32(&row, (int32_t)t->instrument_id);
    field64(&row, t->price);
    field64(&row, t->quantity);
    field64(&row, (int64_t)t->buy_order_id);
    field64(&row, (int64_t)t->sell_order_id);
    field64(&row, at);
    if (extend(sink->trades, buffer, row.len) < 0) return -1;
    PyObject *side = PyLong_FromLongLong(t->aggressor_side);
    if (side == NULL) return -1;
    PyObject *text = PyObject_GetItem(sink->side_text, side);
    Py_DECREF(side);
    if (text == NULL) return -1;
    int result = extend_bytes(sink->trades, text);
    Py_DECREF(text);
    if (result < 0) return -1;
    return add_to_candle(sink, sequence, at, t);
}

enum { BODY_NONE, BODY_REPORT, BODY_TRADE, BODY_LEVEL };

typedef struct {
    uint64_t sequence; /* 0 until read */
    int64_t timestamp_ns;
    int body;
    Reader body_bytes; /* not read yet */
} Event;

/* An event's sequence, time and body. On failure, e->sequence is what was read of it
 * before (0 when the sequence was not). */
static int read_event(Reader r, Event *e) {
    uint64_t v;
    memset(e, 0, sizeof(*e));
    e->body = BODY_NONE;
    while (r.at < r.end) {
        uint32_t field, wire;
        if (read_key(&r, &field, &wire) < 0) return -1;
        if (field == PB_Event_sequence || field == PB_Event_timestamp_ns) {
            if (read_number(&r, wire, &v) < 0) return -1;
            if (field == PB_Event_sequence) e->sequence = v;
            else e->timestamp_ns = (int64_t)v;
        } else if (field == PB_Event_report || field == PB_Event_trade || field == PB_Event_level) {
            if (wire != WIRE_BYTES) return fail("an event body is not a message");
            if (read_bytes(&r, &e->body_bytes) < 0) return -1;
            e->body = field == PB_Event_report  ? BODY_REPORT
                      : field == PB_Event_trade ? BODY_TRADE
                                                : BODY_LEVEL;
        } else if (skip(&r, wire) < 0) {
            return -1;
        }
    }
    return 0;
}

/* One event into the sink; *sequence_out is its sequence as soon as it is read (0 while
 * it is not). */
static int add_event(Sink *sink, Reader r, uint64_t *sequence_out) {
    Event e;
    int read = read_event(r, &e);
    *sequence_out = e.sequence;
    if (read < 0) return -1;
    int64_t at = floor_div(e.timestamp_ns, 1000) - sink->pg_epoch_us;
    if (e.body == BODY_REPORT) {
        Report report;
        if (read_report(e.body_bytes, &report) < 0) return -1;
        return add_report(sink, e.sequence, at, &report);
    }
    if (e.body == BODY_TRADE) {
        Trade trade;
        if (read_trade(e.body_bytes, &trade) < 0) return -1;
        return add_trade(sink, e.sequence, at, &trade);
    }
    return 0; /* a level update (market data) or nothing: not for the database */
}

/* The event just tried is set aside: what it added is taken back, and (sequence, its
 * bytes, the error's text) goes to `set_aside`. -1 when even that fails. */
static int set_event_aside(Sink *sink, PyObject *set_aside, uint64_t sequence, Reader event,
                           Py_ssize_t executions_len, Py_ssize_t trades_len) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *why = value != NULL ? PyObject_Repr(value) : PyUnicode_FromString("error");
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    if (why == NULL) return -1;
    PyObject *entry = Py_BuildValue("(Ky#N)", (unsigned long long)sequence, event.at,
                                    (Py_ssize_t)(event.end - event.at), why);
    if (entry == NULL) return -1;
    int result = PyByteArray_Resize(sink->executions, executions_len) < 0 ||
                         PyByteArray_Resize(sink->trades, trades_len) < 0 ||
                         PyList_Append(set_aside, entry) < 0
                     ? -1
                     : 0;
    Py_DECREF(entry);
    return result;
}

static PyObject *add_batch(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data;
    Sink sink = {0};
    long long pg_epoch_us, exec_type_new, exec_type_trade;
    unsigned long long stateless;
    PyObject *set_aside;
    if (!PyArg_ParseTuple(args, "y*O!O!O!O!OOLLLKO!", &data, &PyByteArray_Type,
                          &sink.executions, &PyByteArray_Type, &sink.trades, &PyDict_Type,
                          &sink.orders, &PyDict_Type, &sink.candles,
                          &sink.execution_text, &sink.side_text, &pg_epoch_us,
                          &exec_type_new, &exec_type_trade, &stateless, &PyList_Type,
                          &set_aside))
        return NULL;
    sink.pg_epoch_us = pg_epoch_us;
    sink.exec_type_new = exec_type_new;
    sink.exec_type_trade = exec_type_trade;
    sink.stateless_exec_types = stateless;
    PyObject *result = NULL;
    Reader r = {data.buf, (const uint8_t *)data.buf + data.len};
    uint64_t partition = 0, next_sequence = 0, first = 0, last = 0;
    int events = 0;
    /* The partition comes before the events on the engine's wire; read it first anyway,
     * whatever the order of the fields. */
    Reader scan = r;
    while (scan.at < scan.end) {
        uint32_t field, wire;
        uint64_t v;
        if (read_key(&scan, &field, &wire) < 0) goto done;
        if ((field == PB_ReportBatch_partition || field == PB_ReportBatch_next_sequence) &&
            wire == WIRE_VARINT) {
            if (read_varint(&scan, &v) < 0) goto done;
            if (field == PB_ReportBatch_partition) partition = v;
            else next_sequence = v;
        } else if (skip(&scan, wire) < 0) {
            goto done;
        }
    }
    sink.partition = (uint32_t)partition;
    while (r.at < r.end) {
        uint32_t field, wire;
        if (read_key(&r, &field, &wire) < 0) goto done;
        if (field == PB_ReportBatch_events && wire == WIRE_BYTES) {
            Reader event;
            uint64_t sequence;
            if (read_bytes(&r, &event) < 0) goto done;
            Py_ssize_t executions_len = PyByteArray_GET_SIZE(sink.executions);
            Py_ssize_t trades_len = PyByteArray_GET_SIZE(sink.trades);
            if (add_event(&sink, event, &sequence) < 0) {
                /* Out of memory is no fault of the event's. Without a sequence it cannot
                 * even be placed: the batch is refused with ValueError, whatever the
                 * event's own error (an unknown side is a KeyError). */
                if (PyErr_ExceptionMatches(PyExc_MemoryError)) goto done;
                if (sequence == 0) {
                    PyObject *type, *value, *traceback;
                    PyErr_Fetch(&type, &value, &traceback);
                    PyErr_NormalizeException(&type, &value, &traceback);
                    PyErr_Format(PyExc_ValueError, "an event without a sequence: %R",
                                 value != NULL ? value : Py_None);
                    Py_XDECREF(type);
                    Py_XDECREF(value);
                    Py_XDECREF(traceback);
                    goto done;
                }
                if (set_event_aside(&sink, set_aside, sequence, event, executions_len,
                                    trades_len) < 0)
                    goto done;
            }
            if (!events++) first = sequence;
            last = sequence;
        } else if (skip(&r, wire) < 0) {
            goto done;
        }
    }
    result = Py_BuildValue("(KKKKi)", (unsigned long long)partition,
                           (unsigned long long)next_sequence, (unsigned long long)first,
                           (unsigned long long)last, events);
done:
    PyBuffer_Release(&data);
    return result;
}

/* --- orders' rows ------------------------------------------------------------------- */

/* The integer at `index` of a tuple into *out; -1 with an exception when it is not one. */
static inline int item_int(PyObject *tuple, Py_ssize_t index, long long *out) {
    *out = PyLong_AsLongLong(PyTuple_GET_ITEM(tuple, index));
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* The encoded text `mapping` holds for the key (a, b[, c]); a new reference. The last
 * key and text are remembered in last_key/last_text (a borrowed text the mapping keeps). */
static PyObject *text_of(PyObject *mapping, PyObject *key_tuple, PyObject **last_key,
                         PyObject **last_text) {
    if (*last_key != NULL) {
        int same = PyObject_RichCompareBool(*last_key, key_tuple, Py_EQ);
        if (same < 0) return NULL;
        if (same) return Py_NewRef(*last_text);
    }
    PyObject *text = PyObject_GetItem(mapping, key_tuple);
    if (text == NULL) return NULL;
    Py_XSETREF(*last_key, Py_NewRef(key_tuple));
    *last_text = text; /* borrowed from here on: the mapping keeps it */
    return text;       /* GetItem's reference, the caller's */
}

/* One new order's COPY row (venue.writer.copy_format.ORDER_ROW and its text columns). */
static int add_order_row(PyObject *rows, long long id, PyObject *state,
                         PyObject *terms_text, PyObject *state_text, PyObject **last[4]) {
    PyObject *terms = PyStructSequence_GET_ITEM(state, STATE_TERMS);
    long long sequence, updated_at, created_at, partition, price, quantity, cum_qty,
        leaves_qty, cum_notional, account_id, instrument_id;
    if (item_int(state, STATE_SEQUENCE, &sequence) < 0 ||
        item_int(state, STATE_UPDATED_AT, &updated_at) < 0 ||
        item_int(state, STATE_CREATED_AT, &created_at) < 0 ||
        item_int(state, STATE_PARTITION, &partition) < 0 ||
        item_int(state, STATE_PRICE, &price) < 0 || item_int(state, STATE_QUANTITY, &quantity) < 0 ||
        item_int(state, STATE_CUM_QTY, &cum_qty) < 0 ||
        item_int(state, STATE_LEAVES_QTY, &leaves_qty) < 0 ||
        item_int(state, STATE_CUM_NOTIONAL, &cum_notional) < 0 ||
        item_int(terms, TERMS_ACCOUNT_ID, &account_id) < 0 ||
        item_int(terms, TERMS_INSTRUMENT_ID, &instrument_id) < 0)
        return -1;
    if (instrument_id < INT32_MIN || instrument_id > INT32_MAX || partition < INT32_MIN ||
        partition > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "an order's instrument or partition is out of range");
        return -1;
    }
    int post_only = PyObject_IsTrue(PyStructSequence_GET_ITEM(terms, TERMS_POST_ONLY));
    if (post_only < 0) return -1;
    Py_ssize_t coid_len;
    const char *coid = PyUnicode_AsUTF8AndSize(
        PyStructSequence_GET_ITEM(terms, TERMS_CLIENT_ORDER_ID), &coid_len);
    if (coid == NULL) return -1;
    /* field count, 5 + 1 + 5 + 2 eight-byte fields... as _ORDER_ROW: q q i ? q*5 i q*3 */
    uint8_t buffer[2 + 2 * (4 + 8) + (4 + 4) + (4 + 1) + 5 * (4 + 8) + (4 + 4) + 3 * (4 + 8) + 4];
    Row row = {buffer, 0};
    put16(&row, 19);
    field64(&row, id);
    field64(&row, account_id);
    field32(&row, (int32_t)instrument_id);
    put32(&row, 1);
    row.data[row.len++] = (uint8_t)post_only;
    field64(&row, price);
    field64(&row, quantity);
    field64(&row, cum_qty);
    field64(&row, leaves_qty);
    field64(&row, cum_notional);
    field32(&row, (int32_t)partition);
    field64(&row, sequence);
    field64(&row, created_at);
    field64(&row, updated_at);
    if (coid_len > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "a clientOrderId is too long");
        return -1;
    }
    put32(&row, (int32_t)coid_len);
    if (extend(rows, buffer, row.len) < 0 || extend(rows, coid, coid_len) < 0) return -1;
    PyObject *key = PyTuple_Pack(3, PyStructSequence_GET_ITEM(terms, TERMS_SIDE),
                                 PyStructSequence_GET_ITEM(terms, TERMS_TYPE),
                                 PyStructSequence_GET_ITEM(terms, TERMS_TIME_IN_FORCE));
    if (key == NULL) return -1;
    PyObject *text = text_of(terms_text, key, last[0], last[1]);
    Py_DECREF(key);
    if (text == NULL) return -1;
    int result = extend_bytes(rows, text);
    Py_DECREF(text);
    if (result < 0) return -1;
    key = PyTuple_Pack(2, PyStructSequence_GET_ITEM(state, STATE_STATUS),
                       PyStructSequence_GET_ITEM(state, STATE_REASON));
    if (key == NULL) return -1;
    text = text_of(state_text, key, last[2], last[3]);
    Py_DECREF(key);
    if (text == NULL) return -1;
    result = extend_bytes(rows, text);
    Py_DECREF(text);
    return result;
}

typedef struct {
    long long id;
    PyObject *state; /* borrowed from the orders dict */
} NewOrder;

static int by_id(const void *a, const void *b) {
    long long x = ((const NewOrder *)a)->id, y = ((const NewOrder *)b)->id;
    return (x > y) - (x < y);
}

static PyObject *order_rows(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *orders, *rows, *terms_text, *state_text;
    if (!PyArg_ParseTuple(args, "O!O!OO", &PyDict_Type, &orders, &PyByteArray_Type, &rows,
                          &terms_text, &state_text))
        return NULL;
    PyObject *updated = PyList_New(0);
    if (updated == NULL) return NULL;
    PyObject *terms_key = NULL, *terms_last = NULL, *state_key = NULL, *state_last = NULL;
    PyObject **last[4] = {&terms_key, &terms_last, &state_key, &state_last};
    /* The new orders in order id order: the run's inserts then append to the end of
     * every index led by the order id, rather than split pages in its middle. */
    NewOrder *fresh = PyMem_Malloc(sizeof(NewOrder) * (size_t)(PyDict_GET_SIZE(orders) + 1));
    if (fresh == NULL) {
        Py_DECREF(updated);
        return PyErr_NoMemory();
    }
    Py_ssize_t at = 0, n_fresh = 0;
    PyObject *order_id, *state;
    while (PyDict_Next(orders, &at, &order_id, &state)) {
        if (!is_state(state)) goto fail;
        int is_new = PyObject_IsTrue(PyStructSequence_GET_ITEM(state, STATE_IS_NEW));
        if (is_new < 0) goto fail;
        if (!is_new) {
            if (PyList_Append(updated, order_id) < 0) goto fail;
            continue;
        }
        long long id = PyLong_AsLongLong(order_id);
        if (id == -1 && PyErr_Occurred()) goto fail;
        fresh[n_fresh++] = (NewOrder){id, state};
    }
    qsort(fresh, (size_t)n_fresh, sizeof(NewOrder), by_id);
    for (Py_ssize_t i = 0; i < n_fresh; i++) {
        if (add_order_row(rows, fresh[i].id, fresh[i].state, terms_text, state_text, last) < 0)
            goto fail;
    }
    PyMem_Free(fresh);
    Py_XDECREF(terms_key);
    Py_XDECREF(state_key);
    return updated;
fail:
    PyMem_Free(fresh);
    Py_XDECREF(terms_key);
    Py_XDECREF(state_key);
    Py_DECREF(updated);
    return NULL;
}

/* batch_timing(batch: bytes) -> (received, match_start, matched, journaled, answered) in
 * unix ns, or None when the batch carries no timing: the submitter's trace of a batch,
 * read without decoding its events (they are skipped over). */
static PyObject *batch_timing(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    Reader r = {(const uint8_t *)view.buf, (const uint8_t *)view.buf + view.len};
    int64_t times[5] = {0, 0, 0, 0, 0};
    int found = 0;
    PyObject *result = NULL;
    while (r.at < r.end) {
        uint32_t field, wire;
        if (read_key(&r, &field, &wire) < 0) goto done;
        if (field != PB_ReportBatch_timing || wire != WIRE_BYTES) {
            if (skip(&r, wire) < 0) goto done;
            continue;
        }
        Reader inner;
        if (read_bytes(&r, &inner) < 0) goto done;
        found = 1;
        while (inner.at < inner.end) {
            uint64_t value;
            if (read_key(&inner, &field, &wire) < 0) goto done;
            if (field >= PB_BatchTiming_received_ns && field <= PB_BatchTiming_answered_ns) {
                if (read_number(&inner, wire, &value) < 0) goto done;
                times[field - PB_BatchTiming_received_ns] = (int64_t)value;
            } else if (skip(&inner, wire) < 0) {
                goto done;
            }
        }
    }
    if (found)
        result = Py_BuildValue("(LLLLL)", (long long)times[0], (long long)times[1],
                               (long long)times[2], (long long)times[3], (long long)times[4]);
    else
        result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&view);
    return result;
}

/* --- the market feed's events ------------------------------------------------------ */

typedef struct {
    uint32_t instrument_id;
    int64_t side, price, quantity;
} Level;

static int read_level(Reader r, Level *out) {
    uint64_t v[PB_LevelUpdate_quantity]; /* the last field it takes */
    if (read_numbers(r, v, PB_LevelUpdate_quantity) < 0) return -1;
    out->instrument_id = (uint32_t)v[PB_LevelUpdate_instrument_id - 1];
    out->side = (int32_t)v[PB_LevelUpdate_side - 1];
    out->price = (int64_t)v[PB_LevelUpdate_price - 1];
    out->quantity = (int64_t)v[PB_LevelUpdate_quantity - 1];
    return 0;
}

/* One event: its sequence and time, and its level change or trade as a tuple appended to
 * `events` (an execution report appends nothing). */
static int market_event(Reader r, PyObject *events, uint64_t *sequence_out) {
    Event e;
    if (read_event(r, &e) < 0) return -1;
    if (!e.sequence) return fail("an event without a sequence");
    *sequence_out = e.sequence;
    unsigned long long sequence = e.sequence;
    long long timestamp_ns = e.timestamp_ns;
    PyObject *item = NULL;
    if (e.body == BODY_LEVEL) {
        Level level;
        if (read_level(e.body_bytes, &level) < 0) return -1;
        item = Py_BuildValue("(KLILLLO)", sequence, timestamp_ns,
                             (unsigned int)level.instrument_id, (long long)level.side,
                             (long long)level.price, (long long)level.quantity, Py_None);
    } else if (e.body == BODY_TRADE) {
        Trade trade;
        if (read_trade(e.body_bytes, &trade) < 0) return -1;
        item = Py_BuildValue("(KLILLLK)", sequence, timestamp_ns,
                             (unsigned int)trade.instrument_id, (long long)trade.aggressor_side,
                             (long long)trade.price, (long long)trade.quantity,
                             (unsigned long long)trade.trade_id);
    } else {
        return 0;
    }
    if (item == NULL) return -1;
    int result = PyList_Append(events, item);
    Py_DECREF(item);
    return result;
}

static PyObject *market_events(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    Reader r = {(const uint8_t *)view.buf, (const uint8_t *)view.buf + view.len};
    uint64_t next_sequence = 0;
    PyObject *result = NULL, *events = PyList_New(0);
    if (events == NULL) goto done;
    while (r.at < r.end) {
        uint32_t field, wire;
        if (read_key(&r, &field, &wire) < 0) goto done;
        if (field == PB_ReportBatch_events && wire == WIRE_BYTES) {
            Reader event;
            uint64_t sequence = 0;
            if (read_bytes(&r, &event) < 0 || market_event(event, events, &sequence) < 0)
                goto done;
        } else if (field == PB_ReportBatch_next_sequence && wire == WIRE_VARINT) {
            if (read_varint(&r, &next_sequence) < 0) goto done;
        } else if (skip(&r, wire) < 0) {
            goto done;
        }
    }
    result = Py_BuildValue("(KO)", (unsigned long long)next_sequence, events);
done:
    Py_XDECREF(events);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"batch_timing", batch_timing, METH_O,
     "(received, match_start, matched, journaled, answered) unix ns of a ReportBatch, or None."},
    {"add_batch", add_batch, METH_VARARGS, "Rows.add of one serialized ReportBatch."},
    {"order_rows", order_rows, METH_VARARGS, "Rows.order_rows: new orders' COPY rows."},
    {"market_events", market_events, METH_O,
     "(next_sequence, [(sequence, ns, instrument, side, price, quantity, trade id)]) of "
     "a ReportBatch."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "venue._reportwire",
                                    "Report batches read in C: the writer's, the feed's.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__reportwire(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    OrderStateType = PyStructSequence_NewType(&state_desc);
    OrderTermsType = PyStructSequence_NewType(&terms_desc);
    if (OrderStateType == NULL || OrderTermsType == NULL ||
        PyModule_AddObjectRef(m, "OrderState", (PyObject *)OrderStateType) < 0 ||
        PyModule_AddObjectRef(m, "OrderTerms", (PyObject *)OrderTermsType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
