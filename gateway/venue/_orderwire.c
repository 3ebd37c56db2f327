/* venue._orderwire: POST /v1/orders/batch's common case in C.
 *
 * A batch of well-formed orders, each with a clientOrderId, is decoded, checked,
 * encoded as engine Commands and answered here without a Python object per order:
 * in Python those steps were most of the gateway's CPU under batch load.
 *
 * The fast path is only ever an answer the Python path would give. Whatever it does
 * not fully understand (an escape in a string, a number it does not spell as plain
 * digits, an unknown field or symbol, any order Python would reject, a repeated key)
 * makes scan() return None, and venue.api.routes.batch decodes, checks and words the
 * batch in Python: the errors have one author. tests/unit/test_orderwire.py holds the
 * two paths to the same answers.
 *
 *   table = make_table(instruments, side_numbers, type_numbers, tif_numbers)
 *   scan(table, body) -> None | (count, plan, shards)
 *   encode(table, body, plan, ids, account_id, shards) -> [(ids, coids, frames)]
 *   answer(table, body, plan, ids, shards, originals) -> bytes
 *   repeated_key(document, levels=0) -> str | None | Ellipsis  (every body and message)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "engine_wire.h"

#define MAX_SYMBOL 32
#define MAX_CLIENT_ORDER_ID 63
#define MAX_DIGITS 18 /* every value below 10**18 fits an int64 */
#define MAX_SHARDS 1024

typedef struct {
    char symbol[MAX_SYMBOL + 1];
    Py_ssize_t symbol_len;
    int64_t id;
    int shard;
    int price_places, lot_places;
    int64_t price_mantissa, lot_mantissa;
    int64_t min_ticks, max_ticks, max_lots;
} Instrument;

typedef struct {
    Py_ssize_t count;
    Instrument *instruments;
    Py_ssize_t slots_size; /* a power of two, at least twice count */
    int32_t *slots;        /* instrument index, -1 empty */
    int64_t sides[2], types[2], tifs[4];
} Table;

/* One checked order of a batch. */
typedef struct {
    uint32_t coid_at;
    uint16_t coid_len;
    uint16_t instrument;
    uint8_t side, type, tif, post_only;
    int64_t price_ticks, quantity_lots;
} Order;

static const char TABLE_NAME[] = "venue._orderwire.Table";

/* --- the instrument table --------------------------------------------------------- */

static uint64_t hash_bytes(const char *data, Py_ssize_t len) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (Py_ssize_t i = 0; i < len; i++) {
        h ^= (unsigned char)data[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void table_free(PyObject *capsule) {
    Table *table = PyCapsule_GetPointer(capsule, TABLE_NAME);
    if (table == NULL) return;
    PyMem_Free(table->instruments);
    PyMem_Free(table->slots);
    PyMem_Free(table);
}

static int read_numbers(PyObject *sequence, int64_t *out, Py_ssize_t count, const char *what) {
    PyObject *fast = PySequence_Fast(sequence, what);
    if (fast == NULL) return -1;
    if (PySequence_Fast_GET_SIZE(fast) != count) {
        PyErr_Format(PyExc_ValueError, "%s: %zd numbers expected", what, count);
        Py_DECREF(fast);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        out[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast, i));
        if (out[i] == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    return 0;
}

/* make_table(instruments, side_numbers, type_numbers, tif_numbers): instruments are
 * (symbol, id, shard, price_places, price_mantissa, lot_places, lot_mantissa,
 * min_ticks, max_ticks, max_lots); the numbers are the protobuf enums of
 * (buy, sell), (limit, market) and (gtc, ioc, fok, day). */
static PyObject *make_table(PyObject *self, PyObject *args) {
    PyObject *instruments, *sides, *types, *tifs;
    if (!PyArg_ParseTuple(args, "OOOO", &instruments, &sides, &types, &tifs)) return NULL;
    PyObject *fast = PySequence_Fast(instruments, "instruments must be a sequence");
    if (fast == NULL) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fast);
    Table *table = PyMem_Calloc(1, sizeof(Table));
    if (table == NULL) goto fail;
    table->count = count;
    table->instruments = PyMem_Calloc(count ? count : 1, sizeof(Instrument));
    table->slots_size = 8;
    while (table->slots_size < 2 * count) table->slots_size *= 2;
    table->slots = PyMem_Malloc(table->slots_size * sizeof(int32_t));
    if (table->instruments == NULL || table->slots == NULL) goto fail;
    for (Py_ssize_t i = 0; i < table->slots_size; i++) table->slots[i] = -1;
    for (Py_ssize_t i = 0; i < count; i++) {
        Instrument *in = &table->instruments[i];
        const char *symbol;
        Py_ssize_t symbol_len;
        long long id, price_mantissa, lot_mantissa, min_ticks, max_ticks, max_lots;
        int shard, price_places, lot_places;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "s#LiiLiLLLL", &symbol,
                              &symbol_len, &id, &shard, &price_places, &price_mantissa,
                              &lot_places, &lot_mantissa, &min_ticks, &max_ticks, &max_lots))
            goto fail;
        if (symbol_len < 1 || symbol_len > MAX_SYMBOL || shard < 0 || shard >= MAX_SHARDS ||
            price_places < 0 || price_places > MAX_DIGITS || lot_places < 0 ||
            lot_places > MAX_DIGITS || price_mantissa < 1 || lot_mantissa < 1) {
            PyErr_Format(PyExc_ValueError, "instrument %zd is out of the fast path's range", i);
            goto fail;
        }
        memcpy(in->symbol, symbol, symbol_len);
        in->symbol_len = symbol_len;
        in->id = id;
        in->shard = shard;
        in->price_places = price_places;
        in->price_mantissa = price_mantissa;
        in->lot_places = lot_places;
        in->lot_mantissa = lot_mantissa;
        in->min_ticks = min_ticks;
        in->max_ticks = max_ticks;
        in->max_lots = max_lots;
        Py_ssize_t slot = hash_bytes(symbol, symbol_len) & (table->slots_size - 1);
        while (table->slots[slot] != -1) slot = (slot + 1) & (table->slots_size - 1);
        table->slots[slot] = (int32_t)i;
    }
    if (read_numbers(sides, table->sides, 2, "side_numbers") < 0 ||
        read_numbers(types, table->types, 2, "type_numbers") < 0 ||
        read_numbers(tifs, table->tifs, 4, "tif_numbers") < 0)
        goto fail;
    Py_DECREF(fast);
    PyObject *capsule = PyCapsule_New(table, TABLE_NAME, table_free);
    if (capsule == NULL) {
        PyMem_Free(table->instruments);
        PyMem_Free(table->slots);
        PyMem_Free(table);
    }
    return capsule;
fail:
    Py_DECREF(fast);
    if (table != NULL) {
        PyMem_Free(table->instruments);
        PyMem_Free(table->slots);
        PyMem_Free(table);
    }
    if (!PyErr_Occurred()) PyErr_NoMemory();
    return NULL;
}

static int find_instrument(const Table *table, const char *symbol, Py_ssize_t len) {
    Py_ssize_t slot = hash_bytes(symbol, len) & (table->slots_size - 1);
    for (;;) {
        int32_t index = table->slots[slot];
        if (index < 0) return -1;
        const Instrument *in = &table->instruments[index];
        if (in->symbol_len == len && memcmp(in->symbol, symbol, len) == 0) return index;
        slot = (slot + 1) & (table->slots_size - 1);
    }
}

/* --- JSON, the subset the fast path takes ------------------------------------------ */

typedef struct {
    const char *at, *start, *end;
} Cursor;

static inline void skip_space(Cursor *c) {
    while (c->at < c->end && (*c->at == ' ' || *c->at == '\n' || *c->at == '\r' ||
                              *c->at == '\t'))
        c->at++;
}

static inline int take(Cursor *c, char ch) {
    skip_space(c);
    if (c->at < c->end && *c->at == ch) {
        c->at++;
        return 1;
    }
    return 0;
}

static inline int take_word(Cursor *c, const char *word, Py_ssize_t len) {
    if (c->end - c->at >= len && memcmp(c->at, word, len) == 0) {
        c->at += len;
        return 1;
    }
    return 0;
}

/* A string of printable ASCII without escapes; anything else is Python's to read. */
static inline int take_string(Cursor *c, const char **text, Py_ssize_t *len) {
    skip_space(c);
    if (c->at >= c->end || *c->at != '"') return 0;
    const char *first = ++c->at;
    while (c->at < c->end) {
        unsigned char ch = (unsigned char)*c->at;
        if (ch == '"') {
            *text = first;
            *len = c->at - first;
            c->at++;
            return 1;
        }
        if (ch == '\\' || ch < 0x20 || ch >= 0x7f) return 0;
        c->at++;
    }
    return 0;
}

static inline int is(const char *text, Py_ssize_t len, const char *word) {
    Py_ssize_t n = (Py_ssize_t)strlen(word);
    return len == n && memcmp(text, word, n) == 0;
}

/* Plain digits with at most one point, on a grid of `mantissa` units of 10**-places:
 * the units, or -1 (anything else, off the grid, or too long to be exact here). */
static int64_t grid_units(const char *text, Py_ssize_t len, int places, int64_t mantissa) {
    Py_ssize_t i = 0, whole = 0, fraction = 0;
    int64_t value = 0;
    while (i < len && text[i] >= '0' && text[i] <= '9') {
        if (++whole + places > MAX_DIGITS) return -1;
        value = value * 10 + (text[i++] - '0');
    }
    if (whole == 0) return -1;
    if (i < len && text[i] == '.') {
        i++;
        while (i < len && text[i] >= '0' && text[i] <= '9') {
            if (++fraction > places) return -1;
            value = value * 10 + (text[i++] - '0');
        }
    }
    if (i != len) return -1;
    for (Py_ssize_t k = fraction; k < places; k++) value *= 10;
    return value % mantissa == 0 ? value / mantissa : -1;
}

static int good_client_order_id(const char *text, Py_ssize_t len) {
    if (len < 1 || len > MAX_CLIENT_ORDER_ID) return 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        char ch = text[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == ':' || ch == '-'))
            return 0;
    }
    return 1;
}

enum { F_SYMBOL = 1, F_SIDE = 2, F_QUANTITY = 4, F_TYPE = 8, F_TIF = 16, F_PRICE = 32,
       F_COID = 64, F_POST_ONLY = 128 };

/* One order object, checked as venue.api.order_wire.check would pass it: 1, or 0 when
 * Python must look at it. */
static int scan_order(const Table *table, Cursor *c, Order *order) {
    const char *symbol = NULL, *quantity = NULL, *price = NULL, *coid = NULL;
    Py_ssize_t symbol_len = 0, quantity_len = 0, price_len = 0, coid_len = 0;
    int seen = 0, side = -1, type = 0, tif = 0, post_only = 0;
    if (!take(c, '{')) return 0;
    if (take(c, '}')) return 0;
    do {
        const char *key, *text;
        Py_ssize_t key_len, len;
        int field;
        if (!take_string(c, &key, &key_len) || !take(c, ':')) return 0;
        if (is(key, key_len, "symbol")) field = F_SYMBOL;
        else if (is(key, key_len, "side")) field = F_SIDE;
        else if (is(key, key_len, "quantity")) field = F_QUANTITY;
        else if (is(key, key_len, "type")) field = F_TYPE;
        else if (is(key, key_len, "timeInForce")) field = F_TIF;
        else if (is(key, key_len, "price")) field = F_PRICE;
        else if (is(key, key_len, "clientOrderId")) field = F_COID;
        else if (is(key, key_len, "postOnly")) field = F_POST_ONLY;
        else return 0;
        if (seen & field) return 0;
        seen |= field;
        if (field == F_POST_ONLY) {
            skip_space(c);
            if (take_word(c, "true", 4)) post_only = 1;
            else if (!take_word(c, "false", 5)) return 0;
            continue;
        }
        if (!take_string(c, &text, &len)) return 0;
        switch (field) {
        case F_SYMBOL: symbol = text; symbol_len = len; break;
        case F_QUANTITY: quantity = text; quantity_len = len; break;
        case F_PRICE: price = text; price_len = len; break;
        case F_COID: coid = text; coid_len = len; break;
        case F_SIDE:
            if (is(text, len, "buy")) side = 0;
            else if (is(text, len, "sell")) side = 1;
            else return 0;
            break;
        case F_TYPE:
            if (is(text, len, "limit")) type = 0;
            else if (is(text, len, "market")) type = 1;
            else return 0;
            break;
        case F_TIF:
            if (is(text, len, "gtc")) tif = 0;
            else if (is(text, len, "ioc")) tif = 1;
            else if (is(text, len, "fok")) tif = 2;
            else if (is(text, len, "day")) tif = 3;
            else return 0;
            break;
        }
    } while (take(c, ','));
    if (!take(c, '}')) return 0;
    if ((seen & (F_SYMBOL | F_SIDE | F_QUANTITY | F_COID)) != (F_SYMBOL | F_SIDE | F_QUANTITY | F_COID))
        return 0;
    if ((price == NULL) != (type == 1)) return 0;  /* a limit order has a price, a market order none */
    if (post_only && (type != 0 || tif == 1 || tif == 2)) return 0;  /* rests: a limit, gtc or day */
    if (type == 1) {  /* a market order never rests: ioc unless given, never gtc or day */
        if (!(seen & F_TIF)) tif = 1;
        else if (tif == 0 || tif == 3) return 0;
    }
    if (!good_client_order_id(coid, coid_len)) return 0;
    int index = find_instrument(table, symbol, symbol_len);
    if (index < 0) return 0;
    const Instrument *in = &table->instruments[index];
    int64_t ticks = 0;
    if (price != NULL) {
        ticks = grid_units(price, price_len, in->price_places, in->price_mantissa);
        if (ticks <= 0 || ticks < in->min_ticks || ticks > in->max_ticks) return 0;
    }
    int64_t lots = grid_units(quantity, quantity_len, in->lot_places, in->lot_mantissa);
    if (lots <= 0 || lots > in->max_lots) return 0;
    order->coid_at = (uint32_t)(coid - c->start);
    order->coid_len = (uint16_t)coid_len;
    order->instrument = (uint16_t)index;
    order->side = (uint8_t)side;
    order->type = (uint8_t)type;
    order->tif = (uint8_t)tif;
    order->post_only = (uint8_t)post_only;
    order->price_ticks = ticks;
    order->quantity_lots = lots;
    return 1;
}

static Table *table_of(PyObject *capsule) {
    return PyCapsule_GetPointer(capsule, TABLE_NAME);
}

/* scan(table, body): None, or (count, plan, shards): how many orders, the checked
 * orders, and the shards they go to in the order first seen. */
static PyObject *scan(PyObject *self, PyObject *args) {
    PyObject *capsule;
    Py_buffer body;
    if (!PyArg_ParseTuple(args, "Oy*", &capsule, &body)) return NULL;
    Table *table = table_of(capsule);
    PyObject *result = NULL;
    Order *orders = NULL;
    if (table == NULL) goto done;
    if (body.len > UINT32_MAX) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    Cursor c = {body.buf, body.buf, (const char *)body.buf + body.len};
    const char *key;
    Py_ssize_t key_len;
    if (!take(&c, '{') || !take_string(&c, &key, &key_len) || !is(key, key_len, "orders") ||
        !take(&c, ':') || !take(&c, '[')) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    Py_ssize_t count = 0, capacity = 64;
    orders = PyMem_Calloc(capacity, sizeof(Order)); /* padding too: the plan is bytes */
    if (orders == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int ok = !take(&c, ']');
    while (ok) {
        if (count == capacity) {
            capacity *= 2;
            Order *grown = PyMem_Realloc(orders, capacity * sizeof(Order));
            if (grown == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            orders = grown;
            memset(orders + count, 0, (capacity - count) * sizeof(Order));
        }
        if (!scan_order(table, &c, &orders[count])) {
            ok = 0;
            break;
        }
        count++;
        if (take(&c, ']')) break;
        if (!take(&c, ',')) ok = 0;
    }
    ok = ok && count > 0 && take(&c, '}');
    skip_space(&c);
    if (!ok || c.at != c.end) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    int8_t seen[MAX_SHARDS] = {0};
    PyObject *shards = PyList_New(0);
    if (shards == NULL) goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        int shard = table->instruments[orders[i].instrument].shard;
        if (!seen[shard]) {
            seen[shard] = 1;
            PyObject *number = PyLong_FromLong(shard);
            if (number == NULL || PyList_Append(shards, number) < 0) {
                Py_XDECREF(number);
                Py_DECREF(shards);
                goto done;
            }
            Py_DECREF(number);
        }
    }
    PyObject *plan = PyBytes_FromStringAndSize((const char *)orders, count * sizeof(Order));
    if (plan == NULL) {
        Py_DECREF(shards);
        goto done;
    }
    result = Py_BuildValue("(nNN)", count, plan, shards);
done:
    PyMem_Free(orders);
    PyBuffer_Release(&body);
    return result;
}

/* --- repeated keys ------------------------------------------------------------------ */

/* An object that names a key twice means what its reader makes of it (RFC 8259, 4: most
 * keep the last, msgspec among them; some the first), so the gateway refuses one: an
 * order that says "side" twice is not one order. repeated_key(document, levels=0) reads
 * a document the decoder took (it is JSON) and answers the first key an object of it
 * names again, as written (str); None when none does; Ellipsis when it cannot tell, for
 * a key it compared is written with an escape (two spellings may be one key: Python's
 * json module tells). `levels` > 0 looks only at the objects that many levels deep or
 * less (1: the document's own).
 *
 * It compares each object's first KEYS_COMPARED keys, which is all of any object the
 * API takes: none has as many fields, so an object with more names one it does not take
 * (refused for it) or names one twice among its first few. */
#define KEYS_COMPARED 16
#define KEY_LEVELS 64 /* deeper than the decoder lets a request go (MAX_JSON_DEPTH) */

typedef struct {
    const char *at;
    Py_ssize_t len;
} Key;

static PyObject *repeated_key(PyObject *self, PyObject *args) {
    PyObject *document;
    int levels = 0;
    if (!PyArg_ParseTuple(args, "O|i", &document, &levels)) return NULL;
    Py_buffer view = {0};
    const char *p;
    Py_ssize_t size;
    if (PyUnicode_Check(document)) {
        p = PyUnicode_AsUTF8AndSize(document, &size);
        if (p == NULL) return NULL;
    } else {
        if (PyObject_GetBuffer(document, &view, PyBUF_SIMPLE) < 0) return NULL;
        p = view.buf;
        size = view.len;
    }
    const char *end = p + size;
    static Key keys[KEY_LEVELS][KEYS_COMPARED]; /* the GIL is held throughout */
    int count[KEY_LEVELS];  /* the keys of the object at each level; -1: an array */
    int is_key[KEY_LEVELS]; /* the next string at that level is a key */
    int depth = 0, unsure = 0;
    PyObject *result = NULL;
    while (p < end) {
        char ch = *p++;
        if (ch == '"') {
            const char *first = p;
            int escaped = 0;
            while (p < end && *p != '"') {
                if (*p == '\\') {
                    escaped = 1;
                    p++;
                }
                p++;
            }
            if (p >= end) break;
            Py_ssize_t len = p - first;
            p++;
            if (depth == 0 || count[depth - 1] < 0 || !is_key[depth - 1]) continue;
            is_key[depth - 1] = 0;
            int n = count[depth - 1];
            if (n == KEYS_COMPARED || (levels > 0 && depth > levels)) continue;
            Key *seen = keys[depth - 1];
            for (int i = 0; i < n; i++) {
                if (seen[i].len == len && memcmp(seen[i].at, first, len) == 0) {
                    result = PyUnicode_DecodeUTF8(first, len, "replace");
                    goto done;
                }
            }
            unsure |= escaped;
            seen[n].at = first;
            seen[n].len = len;
            count[depth - 1] = n + 1;
        } else if (ch == '{' || ch == '[') {
            if (depth == KEY_LEVELS) break; /* the decoder's to refuse, not this */
            count[depth] = ch == '{' ? 0 : -1;
            is_key[depth] = 1;
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0) break;
            depth--;
        } else if (ch == ',' && depth > 0) {
            is_key[depth - 1] = 1;
        }
    }
    result = Py_NewRef(unsure ? Py_Ellipsis : Py_None);
done:
    if (view.obj != NULL) PyBuffer_Release(&view);
    return result;
}

/* --- writing ------------------------------------------------------------------------ */

typedef struct {
    char *data;
    Py_ssize_t len, capacity;
} Buffer;

static int reserve(Buffer *b, Py_ssize_t more) {
    if (b->len + more <= b->capacity) return 0;
    Py_ssize_t capacity = b->capacity ? b->capacity : 256;
    while (capacity < b->len + more) capacity *= 2;
    char *grown = PyMem_Realloc(b->data, capacity);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = grown;
    b->capacity = capacity;
    return 0;
}

static inline Py_ssize_t varint_size(uint64_t v) {
    Py_ssize_t n = 1;
    while (v > 0x7F) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline void put_varint(Buffer *b, uint64_t v) {
    while (v > 0x7F) {
        b->data[b->len++] = (char)((v & 0x7F) | 0x80);
        v >>= 7;
    }
    b->data[b->len++] = (char)v;
}

static inline void put(Buffer *b, const char *data, Py_ssize_t len) {
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static inline void put_decimal(Buffer *b, int64_t v) {
    char digits[24];
    int n = 0;
    uint64_t u = (uint64_t)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n) b->data[b->len++] = digits[--n];
}

/* The orders of a plan, each checked against the table and the body it was made of:
 * a plan with another body never reads outside it. */
static const Order *plan_orders(PyObject *plan, const Table *table, Py_ssize_t body_len,
                                Py_ssize_t *count) {
    if (!PyBytes_Check(plan) || PyBytes_GET_SIZE(plan) % sizeof(Order) != 0) {
        PyErr_SetString(PyExc_TypeError, "plan must be scan()'s");
        return NULL;
    }
    *count = PyBytes_GET_SIZE(plan) / sizeof(Order);
    const Order *orders = (const Order *)PyBytes_AS_STRING(plan);
    for (Py_ssize_t i = 0; i < *count; i++) {
        if (orders[i].instrument >= table->count ||
            (Py_ssize_t)orders[i].coid_at + orders[i].coid_len > body_len) {
            PyErr_SetString(PyExc_ValueError, "plan does not belong to this table and body");
            return NULL;
        }
    }
    return orders;
}

/* Each order's id, in batch order, from `ids` grouped by shard: the orders of shards[0]
 * in batch order, then those of shards[1], and so on. Consecutive ids then make each
 * shard's entry one run of them, which is what Redis keeps to find a queued order. */
static int64_t *read_ids(PyObject *ids, const Order *orders, Py_ssize_t count,
                         const Table *table, const int16_t *position, Py_ssize_t groups) {
    if (!PyList_Check(ids) || PyList_GET_SIZE(ids) != count) {
        PyErr_SetString(PyExc_ValueError, "ids must be a list of one id per order");
        return NULL;
    }
    int64_t *out = PyMem_Malloc((count ? count : 1) * sizeof(int64_t));
    Py_ssize_t *next = PyMem_Calloc(groups + 1, sizeof(Py_ssize_t));
    if (out == NULL || next == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        int16_t at = position[table->instruments[orders[i].instrument].shard];
        if (at < 0) {
            PyErr_SetString(PyExc_ValueError, "an order's shard is not in shards");
            goto fail;
        }
        next[at]++;
    }
    for (Py_ssize_t g = 0, start = 0; g < groups; g++) {
        Py_ssize_t orders_of_group = next[g];
        next[g] = start;
        start += orders_of_group;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        int16_t at = position[table->instruments[orders[i].instrument].shard];
        out[i] = PyLong_AsLongLong(PyList_GET_ITEM(ids, next[at]++));
        if (out[i] < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "an order id is negative");
            goto fail;
        }
    }
    PyMem_Free(next);
    return out;
fail:
    PyMem_Free(next);
    PyMem_Free(out);
    return NULL;
}

/* Position of each shard in `shards` (-1 for others), which must hold every order's. */
static int shard_positions(PyObject *shards, int16_t *position) {
    for (int i = 0; i < MAX_SHARDS; i++) position[i] = -1;
    if (!PyList_Check(shards)) {
        PyErr_SetString(PyExc_TypeError, "shards must be scan()'s list");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(shards); i++) {
        long shard = PyLong_AsLong(PyList_GET_ITEM(shards, i));
        if (shard < 0 || shard >= MAX_SHARDS || position[shard] != -1) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "shards must be distinct and in range");
            return -1;
        }
        position[shard] = (int16_t)i;
    }
    return 0;
}

/* encode(table, body, plan, ids, account_id, shards): per shard of `shards`, the enqueue
 * script's strings for its orders in batch order: order ids each followed by ",",
 * clientOrderIds each followed by " ", the Commands each framed by its length, and the
 * framed sizes each followed by "," (venue.queue.order_queue.OrderQueue
 * .enqueue_new_orders). `ids` are grouped by shard (read_ids). */
/* The keys encode() writes are one byte each: field numbers below 16. */
_Static_assert(PB_Command_new_order < 16 && PB_NewOrder_order_id < 16 &&
                   PB_NewOrder_client_order_id < 16 && PB_NewOrder_account_id < 16 &&
                   PB_NewOrder_instrument_id < 16 && PB_NewOrder_side < 16 &&
                   PB_NewOrder_type < 16 && PB_NewOrder_time_in_force < 16 &&
                   PB_NewOrder_price < 16 && PB_NewOrder_quantity < 16 &&
                   PB_NewOrder_post_only < 16,
               "a key of more than one byte");

static PyObject *encode(PyObject *self, PyObject *args) {
    PyObject *capsule, *plan, *ids_list, *shards;
    Py_buffer body;
    long long account_id;
    if (!PyArg_ParseTuple(args, "Oy*OOLO", &capsule, &body, &plan, &ids_list, &account_id,
                          &shards))
        return NULL;
    PyObject *result = NULL;
    int64_t *ids = NULL;
    Buffer *buffers = NULL;
    Py_ssize_t count, groups = 0;
    int16_t position[MAX_SHARDS];
    Table *table = table_of(capsule);
    const Order *orders = table ? plan_orders(plan, table, body.len, &count) : NULL;
    if (orders != NULL && account_id < 0) {
        PyErr_SetString(PyExc_ValueError, "account_id is negative");
        orders = NULL;
    }
    if (orders == NULL || shard_positions(shards, position) < 0) goto done;
    groups = PyList_GET_SIZE(shards);
    if ((ids = read_ids(ids_list, orders, count, table, position, groups)) == NULL) goto done;
    buffers = PyMem_Calloc(groups * 4 + 1, sizeof(Buffer)); /* ids, coids, frames, sizes */
    if (buffers == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const char *text = body.buf;
    for (Py_ssize_t i = 0; i < count; i++) {
        const Order *o = &orders[i];
        const Instrument *in = &table->instruments[o->instrument];
        int16_t at = position[in->shard];
        if (at < 0) {
            PyErr_SetString(PyExc_ValueError, "an order's shard is not in shards");
            goto done;
        }
        Buffer *id_text = &buffers[4 * at], *coids = &buffers[4 * at + 1],
               *frames = &buffers[4 * at + 2], *sizes = &buffers[4 * at + 3];
        if (reserve(id_text, 21) < 0 || reserve(coids, o->coid_len + 1) < 0 ||
            reserve(sizes, 21) < 0)
            goto done;
        put_decimal(id_text, ids[i]);
        id_text->data[id_text->len++] = ',';
        put(coids, text + o->coid_at, o->coid_len);
        coids->data[coids->len++] = ' ';
        /* NewOrder, field by field as protobuf writes it (venue.api.commands); every key
         * is one byte (see the assertions above encode). */
        uint64_t side = table->sides[o->side], type = table->types[o->type],
                 tif = table->tifs[o->tif];
        Py_ssize_t body_len =
            1 + varint_size(ids[i]) + 1 + varint_size(o->coid_len) + o->coid_len +
            1 + varint_size(account_id) + 1 + varint_size(in->id) + 1 + varint_size(side) +
            1 + varint_size(type) + 1 + varint_size(tif) +
            (o->price_ticks ? 1 + varint_size(o->price_ticks) : 0) +
            1 + varint_size(o->quantity_lots) + (o->post_only ? 2 : 0);
        Py_ssize_t command_len = 1 + varint_size(body_len) + body_len;
        put_decimal(sizes, varint_size(command_len) + command_len);
        sizes->data[sizes->len++] = ',';
        if (reserve(frames, varint_size(command_len) + command_len) < 0) goto done;
        put_varint(frames, command_len);
        frames->data[frames->len++] = KEY(PB_Command_new_order, WIRE_BYTES);
        put_varint(frames, body_len);
        frames->data[frames->len++] = KEY(PB_NewOrder_order_id, WIRE_VARINT);
        put_varint(frames, ids[i]);
        frames->data[frames->len++] = KEY(PB_NewOrder_client_order_id, WIRE_BYTES);
        put_varint(frames, o->coid_len);
        put(frames, text + o->coid_at, o->coid_len);
        frames->data[frames->len++] = KEY(PB_NewOrder_account_id, WIRE_VARINT);
        put_varint(frames, account_id);
        frames->data[frames->len++] = KEY(PB_NewOrder_instrument_id, WIRE_VARINT);
        put_varint(frames, in->id);
        frames->data[frames->len++] = KEY(PB_NewOrder_side, WIRE_VARINT);
        put_varint(frames, side);
        frames->data[frames->len++] = KEY(PB_NewOrder_type, WIRE_VARINT);
        put_varint(frames, type);
        frames->data[frames->len++] = KEY(PB_NewOrder_time_in_force, WIRE_VARINT);
        put_varint(frames, tif);
        if (o->price_ticks) {
            frames->data[frames->len++] = KEY(PB_NewOrder_price, WIRE_VARINT);
            put_varint(frames, o->price_ticks);
        }
        frames->data[frames->len++] = KEY(PB_NewOrder_quantity, WIRE_VARINT);
        put_varint(frames, o->quantity_lots);
        if (o->post_only) {
            frames->data[frames->len++] = KEY(PB_NewOrder_post_only, WIRE_VARINT);
            frames->data[frames->len++] = 1; /* true */
        }
    }
    result = PyList_New(groups);
    if (result == NULL) goto done;
    for (Py_ssize_t g = 0; g < groups; g++) {
        const Buffer *b = &buffers[4 * g];
        PyObject *item = Py_BuildValue(
            "(y#y#y#y#)", b[0].data ? b[0].data : "", b[0].len, b[1].data ? b[1].data : "",
            b[1].len, b[2].data ? b[2].data : "", b[2].len, b[3].data ? b[3].data : "",
            b[3].len);
        if (item == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, g, item);
    }
done:
    if (buffers != NULL)
        for (Py_ssize_t g = 0; g < groups * 4; g++) PyMem_Free(buffers[g].data);
    PyMem_Free(buffers);
    PyMem_Free(ids);
    PyBuffer_Release(&body);
    return result;
}

/* answer(table, body, plan, ids, shards, originals): the response body of a batch whose
 * every order was queued or found a duplicate (venue.api.routes.batch's results).
 * originals[g] holds, per order of shards[g] in batch order, b"" when it was queued or
 * the original order's id when its clientOrderId was taken; `ids` are as encode()'s. */
static PyObject *answer(PyObject *self, PyObject *args) {
    PyObject *capsule, *plan, *ids_list, *shards, *originals;
    Py_buffer body;
    if (!PyArg_ParseTuple(args, "Oy*OOOO", &capsule, &body, &plan, &ids_list, &shards,
                          &originals))
        return NULL;
    PyObject *result = NULL;
    int64_t *ids = NULL;
    Buffer out = {0};
    Py_ssize_t count, cursor[MAX_SHARDS] = {0};
    int16_t position[MAX_SHARDS];
    Table *table = table_of(capsule);
    const Order *orders = table ? plan_orders(plan, table, body.len, &count) : NULL;
    if (orders == NULL || shard_positions(shards, position) < 0) goto done;
    if (!PyList_Check(originals) || PyList_GET_SIZE(originals) != PyList_GET_SIZE(shards)) {
        PyErr_SetString(PyExc_ValueError, "originals must hold a list per shard");
        goto done;
    }
    if ((ids = read_ids(ids_list, orders, count, table, position,
                        PyList_GET_SIZE(shards))) == NULL)
        goto done;
    static const char head[] = "{\"accepted\":", middle[] = ",\"rejected\":0,\"results\":[";
    if (reserve(&out, 64) < 0) goto done;
    put(&out, head, sizeof(head) - 1);
    put_decimal(&out, count);
    put(&out, middle, sizeof(middle) - 1);
    const char *text = body.buf;
    for (Py_ssize_t i = 0; i < count; i++) {
        const Order *o = &orders[i];
        int16_t at = position[table->instruments[o->instrument].shard];
        PyObject *group = at < 0 ? NULL : PyList_GET_ITEM(originals, at);
        if (group == NULL || !PyList_Check(group) || cursor[at] >= PyList_GET_SIZE(group)) {
            PyErr_SetString(PyExc_ValueError, "originals do not match the plan");
            goto done;
        }
        PyObject *original = PyList_GET_ITEM(group, cursor[at]++);
        if (!PyBytes_Check(original) || PyBytes_GET_SIZE(original) > 20) {
            PyErr_SetString(PyExc_TypeError, "an original is not an order id's bytes");
            goto done;
        }
        Py_ssize_t original_len = PyBytes_GET_SIZE(original);
        if (reserve(&out, 140 + o->coid_len) < 0) goto done;
        static const char index[] = "{\"index\":", status[] = ",\"status\":\"pending_new\",\"orderId\":\"",
                          coid[] = "\",\"clientOrderId\":\"", duplicate[] = "\",\"duplicate\":";
        if (i) out.data[out.len++] = ',';
        put(&out, index, sizeof(index) - 1);
        put_decimal(&out, i);
        put(&out, status, sizeof(status) - 1);
        if (original_len) put(&out, PyBytes_AS_STRING(original), original_len);
        else put_decimal(&out, ids[i]);
        put(&out, coid, sizeof(coid) - 1);
        put(&out, text + o->coid_at, o->coid_len);
        put(&out, duplicate, sizeof(duplicate) - 1);
        if (original_len) put(&out, "true}", 5);
        else put(&out, "false}", 6);
    }
    if (reserve(&out, 2) < 0) goto done;
    put(&out, "]}", 2);
    result = PyBytes_FromStringAndSize(out.data, out.len);
done:
    PyMem_Free(out.data);
    PyMem_Free(ids);
    PyBuffer_Release(&body);
    return result;
}

static PyMethodDef methods[] = {
    {"make_table", make_table, METH_VARARGS, "The venue's instruments, for scan()."},
    {"scan", scan, METH_VARARGS, "Decode and check a batch body: None or (plan, shards)."},
    {"encode", encode, METH_VARARGS, "The enqueue script's strings per shard."},
    {"answer", answer, METH_VARARGS, "The response body of a queued batch."},
    {"repeated_key", repeated_key, METH_VARARGS,
     "The first key an object of a JSON document names again: str, None, or Ellipsis."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "venue._orderwire",
                                    "POST /v1/orders/batch's common case in C.", -1, methods};

PyMODINIT_FUNC PyInit__orderwire(void) { return PyModule_Create(&module); }
