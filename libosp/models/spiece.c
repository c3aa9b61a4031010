/* spiece.c — SentencePiece unigram model: loading, normalizer, Viterbi
 * (see spiece.h and spec/t5.md §3.2–3.4). */
#include "spiece.h"

#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "protobuf.h"

/* A byte trie over the pieces the segmenter matches (NORMAL, USER_DEFINED,
 * UNUSED), stored as a hash table of edges (parent node, byte) -> child. */
typedef struct piece_trie {
    uint64_t *keys;  /* (parent << 8 | byte) + 1; 0 marks an empty slot */
    int32_t *child;
    size_t cap;      /* power of two */
    int32_t *piece;  /* per node: piece id ending here, or -1 */
    size_t n_nodes;
} piece_trie;

struct osp_spiece {
    int32_t n;
    char *text;       /* all pieces, concatenated */
    size_t *offset;   /* n + 1: piece i is text[offset[i] .. offset[i+1]) */
    float *score;
    uint8_t *type;
    int32_t unk_id;
    float min_score, max_score; /* over NORMAL pieces */
    bool has_user_defined;
    bool byte_fallback;
    int32_t byte_id[256];
    piece_trie trie;
    /* normalizer_spec and trainer_spec flags */
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    bool whitespace_as_suffix;
    /* precompiled charsmap: Darts-clone units and the replacement strings */
    uint32_t *units;
    size_t n_units;
    char *replacements;
    size_t replacements_len;
};

static const char kSpace[] = "\xe2\x96\x81"; /* U+2581, the escaped space */
#define SPACE_LEN 3

/* ---------------------------------------------------------------- UTF-8 */

/* Length of the character that starts with byte b, from the lead byte
 * alone (SentencePiece's OneCharLen; invalid lead bytes count as 1–4). */
static size_t one_char_len(uint8_t b)
{
    return b < 0xc0 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
}

/* Length of a valid UTF-8 character at s, or 0 if the bytes there are not
 * one (overlong, surrogate, > U+10FFFF, truncated). */
static size_t valid_char_len(const uint8_t *s, size_t n)
{
    uint32_t cp;
    size_t len;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0 && n >= 2) {
        len = 2;
        cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
        if (cp < 0x80)
            return 0;
    } else if ((s[0] & 0xf0) == 0xe0 && n >= 3) {
        len = 3;
        cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
        if (cp < 0x800)
            return 0;
    } else if ((s[0] & 0xf8) == 0xf0 && n >= 4) {
        len = 4;
        cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
             (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
        if (cp < 0x10000)
            return 0;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((cp >= 0xd800 && cp < 0xe000) || cp > 0x10ffff)
        return 0;
    return len;
}

/* ----------------------------------------------------------- piece trie */

static size_t edge_slot(const piece_trie *t, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ (h >> 29)) & (t->cap - 1);
}

static int32_t trie_child(const piece_trie *t, int32_t node, uint8_t byte)
{
    uint64_t key = ((uint64_t)node << 8 | byte) + 1;
    for (size_t i = edge_slot(t, key);; i = (i + 1) & (t->cap - 1)) {
        if (t->keys[i] == key)
            return t->child[i];
        if (t->keys[i] == 0)
            return -1;
    }
}

static bool is_matchable(uint8_t type)
{
    return type == OSP_SPIECE_NORMAL || type == OSP_SPIECE_USER_DEFINED ||
           type == OSP_SPIECE_UNUSED;
}

static osp_status build_trie(osp_spiece *sp, const char *label)
{
    piece_trie *t = &sp->trie;
    size_t max_nodes = 1; /* root + at most one node per byte of matchable pieces */
    for (int32_t i = 0; i < sp->n; i++)
        if (is_matchable(sp->type[i]))
            max_nodes += sp->offset[i + 1] - sp->offset[i];
    t->cap = 16;
    while (t->cap < 2 * max_nodes)
        t->cap *= 2;
    t->keys = calloc(t->cap, sizeof *t->keys);
    t->child = malloc(t->cap * sizeof *t->child);
    t->piece = malloc(max_nodes * sizeof *t->piece);
    if (!t->keys || !t->child || !t->piece)
        return osp_error_nomem("piece trie", t->cap * 12 + max_nodes * 4);
    t->n_nodes = 1;
    t->piece[0] = -1;
    for (int32_t id = 0; id < sp->n; id++) {
        if (!is_matchable(sp->type[id]))
            continue;
        int32_t node = 0;
        for (size_t k = sp->offset[id]; k < sp->offset[id + 1]; k++) {
            uint8_t b = (uint8_t)sp->text[k];
            int32_t next = trie_child(t, node, b);
            if (next < 0) {
                uint64_t key = ((uint64_t)node << 8 | b) + 1;
                size_t i = edge_slot(t, key);
                while (t->keys[i])
                    i = (i + 1) & (t->cap - 1);
                next = (int32_t)t->n_nodes++;
                t->keys[i] = key;
                t->child[i] = next;
                t->piece[next] = -1;
            }
            node = next;
        }
        if (t->piece[node] >= 0)
            return osp_error(OSP_ERR_DATA, "%s: piece %d \"%.*s\" is already defined (id %d)",
                             label, id, (int)(sp->offset[id + 1] - sp->offset[id]),
                             sp->text + sp->offset[id], t->piece[node]);
        t->piece[node] = id;
    }
    return OSP_OK;
}

/* -------------------------------------------------------------- loading */

typedef struct raw_piece {
    const uint8_t *text;
    size_t len;
    float score;
    int32_t type;
} raw_piece;

typedef struct raw_model {
    raw_piece *pieces;
    size_t n, cap;
    int32_t model_type;
    bool byte_fallback, whitespace_as_suffix;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    const uint8_t *charsmap;
    size_t charsmap_len;
} raw_model;

#define TRY(expr)                      \
    do {                               \
        osp_status st_ = (expr);       \
        if (st_)                       \
            return st_;                \
    } while (0)

static osp_status parse_piece(osp_pb_reader *r, raw_piece *out)
{
    *out = (raw_piece){.text = NULL, .len = 0, .score = 0.0f, .type = OSP_SPIECE_NORMAL};
    while (osp_pb_has_more(r)) {
        uint32_t field;
        int wire;
        TRY(osp_pb_next_key(r, &field, &wire));
        if (field == 1)
            TRY(osp_pb_read_bytes(r, wire, &out->text, &out->len));
        else if (field == 2)
            TRY(osp_pb_read_float(r, wire, &out->score));
        else if (field == 3)
            TRY(osp_pb_read_int32(r, wire, &out->type));
        else
            TRY(osp_pb_skip(r, field, wire));
    }
    return OSP_OK;
}

static osp_status parse_trainer_spec(osp_pb_reader *r, raw_model *m)
{
    while (osp_pb_has_more(r)) {
        uint32_t field;
        int wire;
        TRY(osp_pb_next_key(r, &field, &wire));
        if (field == 3)
            TRY(osp_pb_read_int32(r, wire, &m->model_type));
        else if (field == 24)
            TRY(osp_pb_read_bool(r, wire, &m->whitespace_as_suffix));
        else if (field == 35)
            TRY(osp_pb_read_bool(r, wire, &m->byte_fallback));
        else
            TRY(osp_pb_skip(r, field, wire));
    }
    return OSP_OK;
}

static osp_status parse_normalizer_spec(osp_pb_reader *r, raw_model *m)
{
    while (osp_pb_has_more(r)) {
        uint32_t field;
        int wire;
        TRY(osp_pb_next_key(r, &field, &wire));
        if (field == 2)
            TRY(osp_pb_read_bytes(r, wire, &m->charsmap, &m->charsmap_len));
        else if (field == 3)
            TRY(osp_pb_read_bool(r, wire, &m->add_dummy_prefix));
        else if (field == 4)
            TRY(osp_pb_read_bool(r, wire, &m->remove_extra_whitespaces));
        else if (field == 5)
            TRY(osp_pb_read_bool(r, wire, &m->escape_whitespaces));
        else
            TRY(osp_pb_skip(r, field, wire));
    }
    return OSP_OK;
}

/* Walks the ModelProto. Sub-messages that appear twice merge, as protobuf
 * does; absent fields keep their proto2 defaults. */
static osp_status parse_model(osp_pb_reader *r, raw_model *m)
{
    while (osp_pb_has_more(r)) {
        uint32_t field;
        int wire;
        const uint8_t *data;
        size_t len;
        TRY(osp_pb_next_key(r, &field, &wire));
        if (field < 1 || field > 3) {
            TRY(osp_pb_skip(r, field, wire));
            continue;
        }
        TRY(osp_pb_read_bytes(r, wire, &data, &len));
        osp_pb_reader sub = osp_pb_sub_reader(r, data, len);
        if (field == 1) {
            if (m->n == m->cap) {
                size_t cap = m->cap ? 2 * m->cap : 1024;
                raw_piece *p = realloc(m->pieces, cap * sizeof *p);
                if (!p)
                    return osp_error_nomem("pieces", cap * sizeof *p);
                m->pieces = p;
                m->cap = cap;
            }
            TRY(parse_piece(&sub, &m->pieces[m->n++]));
        } else if (field == 2) {
            TRY(parse_trainer_spec(&sub, m));
        } else {
            TRY(parse_normalizer_spec(&sub, m));
        }
    }
    return OSP_OK;
}

/* Splits the charsmap blob: u32 trie size T, T bytes of units, then the
 * replacement strings. */
static osp_status load_charsmap(osp_spiece *sp, const raw_model *m, const char *label)
{
    const uint8_t *b = m->charsmap;
    size_t len = m->charsmap_len;
    if (len == 0)
        return OSP_OK; /* no charsmap: the identity normalizer */
    if (len <= 4)
        return osp_error(OSP_ERR_DATA, "%s: precompiled_charsmap is too short (%zu bytes)",
                         label, len);
    uint32_t trie_size = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                         (uint32_t)b[3] << 24;
    if (trie_size > len - 4 || trie_size % 4 || trie_size == 0)
        return osp_error(OSP_ERR_DATA, "%s: precompiled_charsmap trie size %u does not fit "
                         "its %zu-byte blob", label, trie_size, len);
    sp->n_units = trie_size / 4;
    sp->units = malloc(trie_size);
    sp->replacements_len = len - 4 - trie_size;
    sp->replacements = malloc(sp->replacements_len + 1);
    if (!sp->units || !sp->replacements)
        return osp_error_nomem("charsmap", len);
    for (size_t i = 0; i < sp->n_units; i++) {
        const uint8_t *u = b + 4 + 4 * i;
        sp->units[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 |
                       (uint32_t)u[3] << 24;
    }
    memcpy(sp->replacements, b + 4 + trie_size, sp->replacements_len);
    sp->replacements[sp->replacements_len] = 0;
    return OSP_OK;
}

static osp_status check_piece(const raw_piece *p, size_t i, const char *label)
{
    if (p->len == 0)
        return osp_error(OSP_ERR_DATA, "%s: piece %zu is empty", label, i);
    if (p->type < OSP_SPIECE_NORMAL || p->type > OSP_SPIECE_BYTE)
        return osp_error(OSP_ERR_DATA, "%s: piece %zu has unknown type %d", label, i,
                         (int)p->type);
    return OSP_OK;
}

/* 0..15 for 0-9 and A-F (SentencePiece spells byte pieces upper-case and
 * matches them exactly), else -1. */
static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static osp_status build_model(osp_spiece *sp, const raw_model *m, const char *label)
{
    if (m->model_type != 1)
        return osp_error(OSP_ERR_DATA, "%s: model type %d is not supported (only UNIGRAM = 1)",
                         label, (int)m->model_type);
    if (m->n == 0)
        return osp_error(OSP_ERR_DATA, "%s: the model has no pieces", label);
    if (m->n > INT32_MAX - 1)
        return osp_error(OSP_ERR_DATA, "%s: too many pieces (%zu)", label, m->n);
    size_t total = 0;
    for (size_t i = 0; i < m->n; i++) {
        TRY(check_piece(&m->pieces[i], i, label));
        total += m->pieces[i].len; /* cannot overflow: all lie inside one buffer */
    }
    sp->n = (int32_t)m->n;
    sp->text = malloc(total + 1);
    sp->offset = malloc((m->n + 1) * sizeof *sp->offset);
    sp->score = malloc(m->n * sizeof *sp->score);
    sp->type = malloc(m->n);
    if (!sp->text || !sp->offset || !sp->score || !sp->type)
        return osp_error_nomem("pieces", total + m->n * 20);

    sp->unk_id = -1;
    sp->min_score = FLT_MAX;
    sp->max_score = FLT_MIN; /* SentencePiece's initial value (not -FLT_MAX) */
    sp->byte_fallback = m->byte_fallback;
    size_t at = 0;
    for (size_t i = 0; i < m->n; i++) {
        const raw_piece *p = &m->pieces[i];
        memcpy(sp->text + at, p->text, p->len);
        sp->offset[i] = at;
        at += p->len;
        sp->score[i] = p->score;
        sp->type[i] = (uint8_t)p->type;
        if (p->type == OSP_SPIECE_UNKNOWN) {
            if (sp->unk_id >= 0)
                return osp_error(OSP_ERR_DATA, "%s: pieces %d and %zu are both UNKNOWN", label,
                                 sp->unk_id, i);
            sp->unk_id = (int32_t)i;
        } else if (p->type == OSP_SPIECE_NORMAL) {
            sp->min_score = p->score < sp->min_score ? p->score : sp->min_score;
            sp->max_score = p->score > sp->max_score ? p->score : sp->max_score;
        } else if (p->type == OSP_SPIECE_USER_DEFINED) {
            sp->has_user_defined = true;
        } else if (p->type == OSP_SPIECE_BYTE && !m->byte_fallback) {
            return osp_error(OSP_ERR_DATA, "%s: byte piece %zu found but byte_fallback is off",
                             label, i);
        }
    }
    sp->offset[m->n] = at;
    sp->text[at] = 0;
    if (sp->unk_id < 0)
        return osp_error(OSP_ERR_DATA, "%s: no piece has type UNKNOWN", label);

    /* Byte pieces are spelled <0xXX> (two upper-case hex digits, nothing
     * else: no sign, no space); a missing one falls back to unknown. */
    for (int b = 0; b < 256; b++)
        sp->byte_id[b] = sp->unk_id;
    for (int32_t i = 0; i < sp->n; i++) {
        const char *name = sp->text + sp->offset[i];
        int hi, lo;
        if (sp->type[i] == OSP_SPIECE_BYTE && sp->offset[i + 1] - sp->offset[i] == 6 &&
            memcmp(name, "<0x", 3) == 0 && name[5] == '>' && (hi = hex_digit(name[3])) >= 0 &&
            (lo = hex_digit(name[4])) >= 0)
            sp->byte_id[hi << 4 | lo] = i;
    }

    sp->add_dummy_prefix = m->add_dummy_prefix;
    sp->remove_extra_whitespaces = m->remove_extra_whitespaces;
    sp->escape_whitespaces = m->escape_whitespaces;
    sp->whitespace_as_suffix = m->whitespace_as_suffix;
    TRY(load_charsmap(sp, m, label));
    return build_trie(sp, label);
}

osp_spiece *osp_spiece_parse(const void *data, size_t len, const char *label)
{
    raw_model m = {.model_type = 1, /* proto2 defaults */
                   .add_dummy_prefix = true,
                   .remove_extra_whitespaces = true,
                   .escape_whitespaces = true};
    osp_pb_reader r = osp_pb_reader_init(data, len, label);
    osp_spiece *sp = calloc(1, sizeof *sp);
    osp_status st = sp ? parse_model(&r, &m) : osp_error_nomem("spiece model", sizeof *sp);
    if (!st)
        st = build_model(sp, &m, label);
    free(m.pieces);
    if (st) {
        osp_spiece_free(sp);
        return NULL;
    }
    return sp;
}

osp_spiece *osp_spiece_load(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        osp_error(OSP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        char *bigger = cap <= ((size_t)1 << 31) ? realloc(buf, cap * 2) : NULL;
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int read_error = ferror(f);
    fclose(f);
    if (!buf) {
        osp_error(OSP_ERR_DATA, "%s: file too large for a SentencePiece model", path);
        return NULL;
    }
    osp_spiece *sp = NULL;
    if (read_error)
        osp_error(OSP_ERR_IO, "%s: read error", path);
    else
        sp = osp_spiece_parse(buf, len, path);
    free(buf);
    return sp;
}

void osp_spiece_free(osp_spiece *sp)
{
    if (!sp)
        return;
    free(sp->text);
    free(sp->offset);
    free(sp->score);
    free(sp->type);
    free(sp->trie.keys);
    free(sp->trie.child);
    free(sp->trie.piece);
    free(sp->units);
    free(sp->replacements);
    free(sp);
}

int32_t osp_spiece_size(const osp_spiece *sp)
{
    return sp->n;
}

int32_t osp_spiece_unk_id(const osp_spiece *sp)
{
    return sp->unk_id;
}

const char *osp_spiece_piece(const osp_spiece *sp, int32_t id, size_t *len)
{
    if (id < 0 || id >= sp->n)
        return NULL;
    *len = sp->offset[id + 1] - sp->offset[id];
    return sp->text + sp->offset[id];
}

float osp_spiece_score(const osp_spiece *sp, int32_t id)
{
    return id >= 0 && id < sp->n ? sp->score[id] : 0.0f;
}

osp_spiece_type osp_spiece_piece_type(const osp_spiece *sp, int32_t id)
{
    return id >= 0 && id < sp->n ? (osp_spiece_type)sp->type[id] : OSP_SPIECE_UNKNOWN;
}

/* ----------------------------------------------------------- normalizer */

/* Longest charsmap entry that is a prefix of s[0..n): its replacement
 * (maybe empty) and length; false if none. The Darts-clone walk checks
 * every index, so a corrupt charsmap cannot make it read outside. */
static bool charsmap_match(const osp_spiece *sp, const uint8_t *s, size_t n, const char **rep,
                           size_t *rep_len, size_t *consumed)
{
#define UNIT_OFFSET(u) (((u) >> 10) << (((u) & 0x200) >> 6))
    const uint32_t *unit = sp->units;
    size_t pos = UNIT_OFFSET(unit[0]);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        pos ^= s[i];
        if (pos >= sp->n_units)
            break;
        uint32_t u = unit[pos];
        if ((u & 0x800000ffu) != s[i])
            break;
        pos ^= UNIT_OFFSET(u);
        if (pos >= sp->n_units)
            break;
        if ((u >> 8) & 1) {
            size_t value = unit[pos] & 0x7fffffffu;
            if (value >= sp->replacements_len) /* corrupt: treat as no further match */
                break;
            *rep = sp->replacements + value;
            *rep_len = strlen(*rep); /* replacements_len has a NUL after it */
            *consumed = i + 1;
            found = true;
        }
    }
    return found;
#undef UNIT_OFFSET
}

/* SentencePiece's NormalizePrefix at s[0..n), n > 0: the replacement of
 * the longest rule that applies, and how many input bytes it consumes. */
static size_t normalize_prefix(const osp_spiece *sp, const uint8_t *s, size_t n,
                               const char **rep, size_t *rep_len)
{
    if (sp->has_user_defined) { /* user-defined pieces pass unnormalized */
        size_t longest = 0;
        int32_t node = 0;
        for (size_t i = 0; i < n && (node = trie_child(&sp->trie, node, s[i])) >= 0; i++) {
            int32_t id = sp->trie.piece[node];
            if (id >= 0 && sp->type[id] == OSP_SPIECE_USER_DEFINED)
                longest = i + 1;
        }
        if (longest) {
            *rep = (const char *)s;
            *rep_len = longest;
            return longest;
        }
    }
    size_t consumed;
    if (sp->units && charsmap_match(sp, s, n, rep, rep_len, &consumed))
        return consumed;
    size_t len = valid_char_len(s, n);
    if (len == 0) {
        *rep = "\xef\xbf\xbd"; /* U+FFFD for one invalid byte */
        *rep_len = 3;
        return 1;
    }
    *rep = (const char *)s;
    *rep_len = len;
    return len;
}

typedef struct buffer {
    char *data;
    size_t len, cap;
    bool failed;
} buffer;

static void buf_append(buffer *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len <= n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

static bool ends_with(const buffer *b, const char *s, size_t n)
{
    return b->len >= n && memcmp(b->data + b->len - n, s, n) == 0;
}

char *osp_spiece_normalize(const osp_spiece *sp, const char *text, size_t text_len, size_t *len)
{
    const uint8_t *s = (const uint8_t *)text;
    const char *space = sp->escape_whitespaces ? kSpace : " ";
    size_t space_len = sp->escape_whitespaces ? SPACE_LEN : 1;
    buffer out = {0};
    buf_append(&out, "", 0);
    size_t p = 0;
    const char *rep;
    size_t rep_len;

    if (sp->remove_extra_whitespaces) { /* drop leading whitespace */
        while (p < text_len) {
            size_t c = normalize_prefix(sp, s + p, text_len - p, &rep, &rep_len);
            if (rep_len != 1 || rep[0] != ' ')
                break;
            p += c;
        }
    }
    if (p < text_len) {
        if (sp->add_dummy_prefix && !sp->whitespace_as_suffix)
            buf_append(&out, space, space_len);
        bool prev_space = sp->remove_extra_whitespaces;
        while (p < text_len) {
            size_t c = normalize_prefix(sp, s + p, text_len - p, &rep, &rep_len);
            while (prev_space && rep_len > 0 && rep[0] == ' ') {
                rep++;
                rep_len--;
            }
            if (rep_len > 0) {
                for (size_t k = 0; k < rep_len; k++) {
                    if (rep[k] == ' ')
                        buf_append(&out, space, space_len);
                    else
                        buf_append(&out, rep + k, 1);
                }
                prev_space = rep[rep_len - 1] == ' ';
            }
            p += c;
            if (!sp->remove_extra_whitespaces)
                prev_space = false;
        }
        if (sp->remove_extra_whitespaces) /* drop trailing whitespace */
            while (!out.failed && ends_with(&out, space, space_len))
                out.data[out.len -= space_len] = 0;
        if (sp->add_dummy_prefix && sp->whitespace_as_suffix)
            buf_append(&out, space, space_len);
    }
    if (out.failed) {
        free(out.data);
        osp_error_nomem("normalized text", out.cap * 2);
        return NULL;
    }
    *len = out.len;
    return out.data;
}

/* --------------------------------------------------------------- Viterbi */

typedef struct best_node {
    float score;   /* best path score ending here */
    int32_t start; /* where the last piece of that path starts; -1 = unset */
    int32_t id;
} best_node;

/* Best-path table of SentencePiece's optimized unigram encoder. Scores are
 * float32 but a piece's candidate is compared in double before it is
 * stored, exactly as the library's `auto` arithmetic does (piece scores go
 * through a double expression; the unknown candidate stays float). */
static void viterbi(const osp_spiece *sp, const uint8_t *s, size_t n, best_node *best)
{
    const float unk_score = sp->min_score - 10.0f;
    for (size_t e = 0; e <= n; e++)
        best[e] = (best_node){.score = 0.0f, .start = -1, .id = -1};
    for (size_t p = 0; p < n;) {
        const float base = best[p].score;
        size_t m = one_char_len(s[p]);
        if (m > n - p)
            m = n - p;
        bool single = false;
        int32_t node = 0;
        for (size_t e = p; e < n && (node = trie_child(&sp->trie, node, s[e])) >= 0;) {
            e++;
            int32_t id = sp->trie.piece[node];
            if (id < 0 || sp->type[id] == OSP_SPIECE_UNUSED)
                continue;
            double score = sp->type[id] == OSP_SPIECE_USER_DEFINED
                               ? (double)((float)(e - p) * sp->max_score) - 0.1
                               : (double)sp->score[id];
            double cand = score + (double)base;
            if (best[e].start < 0 || cand > (double)best[e].score)
                best[e] = (best_node){.score = (float)cand, .start = (int32_t)p, .id = id};
            if (e - p == m)
                single = true;
        }
        if (!single) {
            float cand = unk_score + base;
            if (best[p + m].start < 0 || cand > best[p + m].score)
                best[p + m] = (best_node){.score = cand, .start = (int32_t)p, .id = sp->unk_id};
        }
        p += m;
    }
}

void osp_spiece_encoding_free(osp_spiece_encoding *enc)
{
    free(enc->normalized);
    free(enc->ids);
    free(enc->begin);
    *enc = (osp_spiece_encoding){0};
}

osp_status osp_spiece_encode(const osp_spiece *sp, const char *text, size_t text_len,
                             osp_spiece_encoding *enc)
{
    *enc = (osp_spiece_encoding){0};
    enc->normalized = osp_spiece_normalize(sp, text, text_len, &enc->normalized_len);
    if (!enc->normalized)
        return osp_error_code();
    size_t n = enc->normalized_len;
    if (n > INT32_MAX)
        return osp_error(OSP_ERR_DATA, "text too long to tokenize (%zu bytes)", n);
    const uint8_t *s = (const uint8_t *)enc->normalized;

    /* Worst case one piece per byte, or four byte pieces per byte. */
    size_t cap = sp->byte_fallback ? 4 * n + 1 : n + 1;
    best_node *best = malloc((n + 1) * sizeof *best);
    size_t *ends = malloc((n + 1) * sizeof *ends);
    enc->ids = malloc(cap * sizeof *enc->ids);
    enc->begin = malloc((cap + 1) * sizeof *enc->begin);
    if (!best || !ends || !enc->ids || !enc->begin) {
        free(best);
        free(ends);
        return osp_error_nomem("tokenizer lattice", (n + 1) * 40);
    }
    viterbi(sp, s, n, best);

    /* Backtrack: piece ends from the last to the first. */
    size_t k = 0;
    for (size_t e = n; e > 0; e = (size_t)best[e].start)
        ends[k++] = e;

    size_t count = 0, at = 0;
    bool prev_unk = false;
    while (k > 0) {
        size_t e = ends[--k];
        int32_t id = best[e].id;
        bool unk = id == sp->unk_id;
        if (unk && sp->byte_fallback) {
            for (size_t b = at; b < e; b++) {
                enc->begin[count] = at; /* all but the last byte piece are empty */
                enc->ids[count++] = sp->byte_id[s[b]];
            }
        } else if (!(unk && prev_unk)) { /* a run of unknowns is one piece */
            enc->begin[count] = at;
            enc->ids[count++] = id;
        }
        prev_unk = unk;
        at = e;
    }
    enc->begin[count] = n;
    enc->n = count;
    free(best);
    free(ends);
    return OSP_OK;
}
