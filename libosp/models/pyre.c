/* pyre.c — a backtracking matcher for a subset of Python's re (pyre.h).
 *
 * The pattern is compiled by recursive descent straight into a small
 * program (Pike/Thompson-style instructions); a counted repetition
 * re-parses its atom once per copy, so no syntax tree is needed. The
 * matcher runs the program with an explicit backtrack stack (no recursion
 * on the text, so long captions cannot overflow the C stack). */
#include "pyre.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "utext.h"

enum op {
    OP_CHAR, OP_CLASS, OP_BEHIND, OP_SPLIT, OP_JMP, OP_SAVE, OP_ASSERT, OP_NLOOK, OP_LOOKEND,
    OP_MATCH
};
enum assertion { AT_BEGIN, AT_END, AT_BOUNDARY, AT_NON_BOUNDARY };
/* Category bits of a class (\d \D \w \W \s \S inside or as the class). */
enum { CAT_D = 1, CAT_ND = 2, CAT_W = 4, CAT_NW = 8, CAT_S = 16, CAT_NS = 32 };

typedef struct inst {
    uint8_t op;
    uint32_t arg;  /* CHAR: code point; CLASS, BEHIND: class index; SAVE: slot; ASSERT: kind */
    int32_t x, y;  /* SPLIT: preferred, other; JMP: x; NLOOK: y = after the lookahead */
} inst;

typedef struct cls {
    uint32_t (*ranges)[2];
    size_t n_ranges;
    unsigned cats;
    bool negate;
} cls;

struct osp_pyre {
    inst *prog;
    size_t n_prog, cap_prog;
    cls *classes;
    size_t n_classes, cap_classes;
    int n_groups; /* capturing groups, group 0 excluded */
};

/* ------------------------------------------------------------ compiler */

typedef struct parser {
    osp_pyre *re;
    const char *pat;  /* whole pattern, for messages and group numbering */
    const char *p;    /* next byte */
    bool failed;
    const char *why;
} parser;

static void fail(parser *ps, const char *why)
{
    if (!ps->failed) {
        ps->failed = true;
        ps->why = why;
    }
}

static int32_t emit(parser *ps, uint8_t op, uint32_t arg, int32_t x, int32_t y)
{
    osp_pyre *re = ps->re;
    if (ps->failed)
        return 0;
    if (re->n_prog == re->cap_prog) {
        size_t cap = re->cap_prog ? 2 * re->cap_prog : 64;
        inst *p = realloc(re->prog, cap * sizeof *p);
        if (!p) {
            fail(ps, "out of memory");
            return 0;
        }
        re->prog = p;
        re->cap_prog = cap;
    }
    re->prog[re->n_prog] = (inst){.op = op, .arg = arg, .x = x, .y = y};
    return (int32_t)re->n_prog++;
}

static int32_t here(const parser *ps)
{
    return (int32_t)ps->re->n_prog;
}

static uint32_t next_cp(parser *ps)
{
    uint32_t cp;
    size_t len = strlen(ps->p);
    ps->p += osp_utf8_decode((const uint8_t *)ps->p, len, &cp);
    return cp;
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static uint32_t parse_hex(parser *ps, int digits)
{
    uint32_t v = 0;
    for (int i = 0; i < digits; i++) {
        int h = hex_value(ps->p[0]);
        if (h < 0) {
            fail(ps, "bad hex escape");
            return 0;
        }
        v = v << 4 | (uint32_t)h;
        ps->p++;
    }
    return v;
}

/* After a backslash: a category (*cat set, returns 0), an assertion
 * (*assertion set), or a literal code point. */
static uint32_t parse_escape(parser *ps, unsigned *cat, int *assertion)
{
    *cat = 0;
    *assertion = -1;
    char c = *ps->p;
    if (!c) {
        fail(ps, "trailing backslash");
        return 0;
    }
    ps->p++;
    switch (c) {
    case 'd': *cat = CAT_D; return 0;
    case 'D': *cat = CAT_ND; return 0;
    case 'w': *cat = CAT_W; return 0;
    case 'W': *cat = CAT_NW; return 0;
    case 's': *cat = CAT_S; return 0;
    case 'S': *cat = CAT_NS; return 0;
    case 'b': *assertion = AT_BOUNDARY; return 0;
    case 'B': *assertion = AT_NON_BOUNDARY; return 0;
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    case 'u': return parse_hex(ps, 4);
    case 'x': return parse_hex(ps, 2);
    default:
        /* Python rejects unknown ASCII letter/digit escapes; so do we. */
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            fail(ps, "unsupported escape");
            return 0;
        }
        ps->p--;
        return next_cp(ps);
    }
}

static bool add_range(parser *ps, cls *k, uint32_t lo, uint32_t hi)
{
    uint32_t (*r)[2] = realloc(k->ranges, (k->n_ranges + 1) * sizeof *r);
    if (!r) {
        fail(ps, "out of memory");
        return false;
    }
    k->ranges = r;
    r[k->n_ranges][0] = lo;
    r[k->n_ranges][1] = hi;
    k->n_ranges++;
    return true;
}

static uint32_t new_class(parser *ps, cls k)
{
    osp_pyre *re = ps->re;
    if (re->n_classes == re->cap_classes) {
        size_t cap = re->cap_classes ? 2 * re->cap_classes : 8;
        cls *c = realloc(re->classes, cap * sizeof *c);
        if (!c) {
            free(k.ranges);
            fail(ps, "out of memory");
            return 0;
        }
        re->classes = c;
        re->cap_classes = cap;
    }
    re->classes[re->n_classes] = k;
    return (uint32_t)re->n_classes++;
}

/* "[...]" after the '['; returns the new class's index. */
static uint32_t parse_class(parser *ps)
{
    cls k = {0};
    if (*ps->p == '^') {
        k.negate = true;
        ps->p++;
    }
    bool first = true;
    while (!ps->failed) {
        if (!*ps->p) {
            fail(ps, "unterminated character class");
            break;
        }
        if (*ps->p == ']' && !first) {
            ps->p++;
            break;
        }
        first = false;
        uint32_t lo;
        unsigned cat = 0;
        int assertion = -1;
        if (*ps->p == '\\') {
            ps->p++;
            lo = parse_escape(ps, &cat, &assertion);
            if (assertion == AT_BOUNDARY)
                lo = '\b'; /* \b in a class is a backspace */
            else if (assertion >= 0)
                fail(ps, "bad escape in class");
        } else {
            lo = next_cp(ps);
        }
        if (cat) {
            k.cats |= cat;
            continue;
        }
        uint32_t hi = lo;
        if (ps->p[0] == '-' && ps->p[1] && ps->p[1] != ']') { /* a range */
            ps->p++;
            if (*ps->p == '\\') {
                ps->p++;
                hi = parse_escape(ps, &cat, &assertion);
                if (cat || assertion >= 0)
                    fail(ps, "bad class range");
            } else {
                hi = next_cp(ps);
            }
            if (hi < lo)
                fail(ps, "bad class range");
        }
        add_range(ps, &k, lo, hi);
    }
    if (ps->failed) {
        free(k.ranges);
        return 0;
    }
    return new_class(ps, k);
}

/* Capturing group number of the '(' at `at`: one more than the number of
 * capturing '(' before it (outside classes, not escaped). */
static int group_number(const parser *ps, const char *at)
{
    int n = 0;
    bool in_class = false;
    for (const char *q = ps->pat; q < at; q++) {
        if (*q == '\\') {
            q++;
            continue;
        }
        if (in_class) {
            in_class = *q != ']';
            continue;
        }
        if (*q == '[') {
            in_class = true;
            if (q[1] == '^')
                q++;
            if (q[1] == ']') /* a leading ']' is literal */
                q++;
        } else if (*q == '(' && q[1] != '?') {
            n++;
        }
    }
    return n + 1;
}

static bool parse_alternation(parser *ps);

/* One atom; returns whether it can match the empty string. */
static bool parse_atom(parser *ps)
{
    char c = *ps->p;
    if (c == '(') {
        const char *open = ps->p++;
        bool nullable;
        if (ps->p[0] == '?' && ps->p[1] == ':') {
            ps->p += 2;
            nullable = parse_alternation(ps);
        } else if (ps->p[0] == '?' && ps->p[1] == '!') {
            ps->p += 2;
            int32_t look = emit(ps, OP_NLOOK, 0, 0, 0);
            parse_alternation(ps);
            emit(ps, OP_LOOKEND, 0, 0, 0);
            if (!ps->failed)
                ps->re->prog[look].y = here(ps);
            nullable = true;
        } else if (ps->p[0] == '?' && ps->p[1] == '<' && ps->p[2] == '=' && ps->p[3] == '[') {
            ps->p += 4; /* lookbehind of one character class: (?<=[...]) */
            emit(ps, OP_BEHIND, parse_class(ps), 0, 0);
            nullable = true;
        } else if (ps->p[0] == '?') {
            fail(ps, "unsupported group");
            return false;
        } else {
            int g = group_number(ps, open);
            if (g > ps->re->n_groups)
                ps->re->n_groups = g;
            emit(ps, OP_SAVE, (uint32_t)(2 * g), 0, 0);
            nullable = parse_alternation(ps);
            emit(ps, OP_SAVE, (uint32_t)(2 * g + 1), 0, 0);
        }
        if (*ps->p != ')')
            fail(ps, "missing )");
        else
            ps->p++;
        return nullable;
    }
    if (c == '[') {
        ps->p++;
        emit(ps, OP_CLASS, parse_class(ps), 0, 0);
        return false;
    }
    if (c == '^' || c == '$') {
        ps->p++;
        emit(ps, OP_ASSERT, c == '^' ? AT_BEGIN : AT_END, 0, 0);
        return true;
    }
    if (c == '.' || c == '*' || c == '+' || c == '?') {
        fail(ps, c == '.' ? "'.' is not supported" : "nothing to repeat");
        return false;
    }
    if (c == '\\') {
        ps->p++;
        unsigned cat;
        int assertion;
        uint32_t cp = parse_escape(ps, &cat, &assertion);
        if (assertion >= 0) {
            emit(ps, OP_ASSERT, (uint32_t)assertion, 0, 0);
            return true;
        }
        if (cat) {
            emit(ps, OP_CLASS, new_class(ps, (cls){.cats = cat}), 0, 0);
            return false;
        }
        emit(ps, OP_CHAR, cp, 0, 0);
        return false;
    }
    emit(ps, OP_CHAR, next_cp(ps), 0, 0);
    return false;
}

/* "{m}", "{m,}", "{,n}", "{m,n}", "{,}" at ps->p (an empty m is 0, an empty
 * n unbounded); false, consuming nothing, if the brace is not a
 * quantifier (Python then reads it literally, as in "{}" or "{x}"). */
static bool parse_braces(parser *ps, long *min, long *max)
{
    const char *q = ps->p + 1;
    char *end = (char *)q;
    if (*q == '}')
        return false;
    *min = *q >= '0' && *q <= '9' ? strtol(q, &end, 10) : 0;
    *max = *min;
    if (*end == ',') {
        q = end + 1;
        *max = *q >= '0' && *q <= '9' ? strtol(q, &end, 10) : -1;
        if (*max < 0)
            end = (char *)q;
    }
    if (*end != '}' || *min > 1000 || *max > 1000 || (*max >= 0 && *max < *min))
        return false;
    ps->p = end + 1;
    return true;
}

/* An atom with an optional greedy quantifier. Copies of the atom are made
 * by parsing its text again. */
static bool parse_repeat(parser *ps)
{
    const char *atom = ps->p;
    int32_t start = here(ps);
    bool nullable = parse_atom(ps);
    long min, max;
    char q = *ps->p;
    if (q == '*' || q == '+' || q == '?') {
        min = q == '+';
        max = q == '?' ? 1 : -1;
        ps->p++;
    } else if (q != '{' || !parse_braces(ps, &min, &max)) {
        return nullable;
    }
    if (*ps->p == '?' || *ps->p == '+' || *ps->p == '*' || *ps->p == '{') {
        fail(ps, "lazy or nested quantifiers are not supported");
        return false;
    }
    if (nullable && max < 0) {
        fail(ps, "unbounded repeat of something that can match empty");
        return false;
    }
    const char *resume = ps->p;
    /* The first copy is already emitted; drop it when min is 0. */
    if (min == 0)
        ps->re->n_prog = (size_t)start;
    for (long i = 1; i < min; i++) {
        ps->p = atom;
        parse_atom(ps);
    }
    if (max < 0) { /* star: L: SPLIT body, out; body; JMP L */
        int32_t loop = emit(ps, OP_SPLIT, 0, 0, 0);
        ps->p = atom;
        parse_atom(ps);
        emit(ps, OP_JMP, 0, loop, 0);
        if (!ps->failed) {
            ps->re->prog[loop].x = loop + 1;
            ps->re->prog[loop].y = here(ps);
        }
    } else { /* max − min nested optional copies */
        long extra = max - min;
        int32_t *splits = malloc((size_t)(extra > 0 ? extra : 1) * sizeof *splits);
        if (!splits) {
            fail(ps, "out of memory");
            return false;
        }
        for (long i = 0; i < extra; i++) {
            splits[i] = emit(ps, OP_SPLIT, 0, 0, 0);
            ps->p = atom;
            parse_atom(ps);
        }
        for (long i = 0; i < extra && !ps->failed; i++) {
            ps->re->prog[splits[i]].x = splits[i] + 1;
            ps->re->prog[splits[i]].y = here(ps);
        }
        free(splits);
    }
    ps->p = resume;
    return min == 0 || nullable;
}

static bool parse_sequence(parser *ps)
{
    bool nullable = true;
    while (!ps->failed && *ps->p && *ps->p != '|' && *ps->p != ')')
        nullable = parse_repeat(ps) && nullable;
    return nullable;
}

/* seq ('|' seq)*: SPLIT a, b; a: seq1; JMP end; b: SPLIT ... */
static bool parse_alternation(parser *ps)
{
    int32_t split = emit(ps, OP_SPLIT, 0, 0, 0);
    bool nullable = parse_sequence(ps);
    if (*ps->p != '|') { /* no alternation: the SPLIT becomes a no-op jump */
        if (!ps->failed)
            ps->re->prog[split] = (inst){.op = OP_JMP, .x = split + 1};
        return nullable;
    }
    ps->p++;
    int32_t jump = emit(ps, OP_JMP, 0, 0, 0);
    int32_t other = here(ps);
    nullable = parse_alternation(ps) || nullable;
    if (!ps->failed) {
        ps->re->prog[split].x = split + 1;
        ps->re->prog[split].y = other;
        ps->re->prog[jump].x = here(ps);
    }
    return nullable;
}

osp_pyre *osp_pyre_compile(const char *pattern)
{
    osp_pyre *re = calloc(1, sizeof *re);
    if (!re) {
        osp_error_nomem("regex", sizeof *re);
        return NULL;
    }
    parser ps = {.re = re, .pat = pattern, .p = pattern};
    emit(&ps, OP_SAVE, 0, 0, 0);
    parse_alternation(&ps);
    if (*ps.p)
        fail(&ps, "unbalanced )");
    emit(&ps, OP_SAVE, 1, 0, 0);
    emit(&ps, OP_MATCH, 0, 0, 0);
    if (ps.failed) {
        osp_error(OSP_ERR_RUNTIME, "regex \"%s\": %s at offset %d", pattern, ps.why,
                  (int)(ps.p - pattern));
        osp_pyre_free(re);
        return NULL;
    }
    return re;
}

void osp_pyre_free(osp_pyre *re)
{
    if (!re)
        return;
    for (size_t i = 0; i < re->n_classes; i++)
        free(re->classes[i].ranges);
    free(re->classes);
    free(re->prog);
    free(re);
}

/* ------------------------------------------------------------- matcher */

static bool class_matches(const cls *k, uint32_t c)
{
    bool in = false;
    for (size_t i = 0; i < k->n_ranges && !in; i++)
        in = c >= k->ranges[i][0] && c <= k->ranges[i][1];
    if (!in && k->cats) {
        unsigned m = k->cats;
        in = ((m & CAT_D) && osp_py_isdecimal(c)) || ((m & CAT_ND) && !osp_py_isdecimal(c)) ||
             ((m & CAT_W) && osp_py_isword(c)) || ((m & CAT_NW) && !osp_py_isword(c)) ||
             ((m & CAT_S) && osp_py_isspace(c)) || ((m & CAT_NS) && !osp_py_isspace(c));
    }
    return in != k->negate;
}

static bool assertion_holds(uint32_t kind, const uint32_t *s, size_t n, size_t at)
{
    switch (kind) {
    case AT_BEGIN:
        return at == 0;
    case AT_END:
        return at == n || (at + 1 == n && s[at] == '\n');
    default: {
        if (n == 0) /* Python: no boundary in an empty string */
            return kind == AT_NON_BOUNDARY;
        bool before = at > 0 && osp_py_isword(s[at - 1]);
        bool after = at < n && osp_py_isword(s[at]);
        return (before != after) == (kind == AT_BOUNDARY);
    }
    }
}

/* Backtrack entries: a branch to resume (slot < 0) or a capture to restore. */
typedef struct frame {
    int32_t pc;   /* branch: where to resume; restore: −1 − slot */
    size_t at;    /* branch: text position; restore: old capture value */
} frame;

typedef struct stack {
    frame *f;
    size_t n, cap;
} stack;

static bool push(stack *st, int32_t pc, size_t at)
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 256;
        frame *f = realloc(st->f, cap * sizeof *f);
        if (!f)
            return false;
        st->f = f;
        st->cap = cap;
    }
    st->f[st->n++] = (frame){.pc = pc, .at = at};
    return true;
}

typedef enum { RUN_NO_MATCH, RUN_MATCH, RUN_NOMEM } run_result;

/* Runs the program from pc at text position `at`. A MATCH (or LOOKEND in
 * a lookahead) ends it; `reject_empty` refuses a match ending at `begin`
 * (re.sub's rule after an empty match). */
static run_result run(const osp_pyre *re, const uint32_t *s, size_t n, int32_t pc, size_t at,
                      size_t *caps, bool reject_empty, size_t begin)
{
    stack st = {0};
    run_result result = RUN_NO_MATCH;
    for (;;) {
        const inst *in = &re->prog[pc];
        bool ok = true;
        switch (in->op) {
        case OP_CHAR:
            ok = at < n && s[at] == in->arg;
            at += ok;
            pc++;
            break;
        case OP_CLASS:
            ok = at < n && class_matches(&re->classes[in->arg], s[at]);
            at += ok;
            pc++;
            break;
        case OP_BEHIND:
            ok = at > 0 && class_matches(&re->classes[in->arg], s[at - 1]);
            pc++;
            break;
        case OP_SPLIT:
            if (!push(&st, in->y, at)) {
                result = RUN_NOMEM;
                goto done;
            }
            pc = in->x;
            break;
        case OP_JMP:
            pc = in->x;
            break;
        case OP_SAVE:
            if (!push(&st, -1 - (int32_t)in->arg, caps[in->arg])) {
                result = RUN_NOMEM;
                goto done;
            }
            caps[in->arg] = at;
            pc++;
            break;
        case OP_ASSERT:
            ok = assertion_holds(in->arg, s, n, at);
            pc++;
            break;
        case OP_NLOOK: {
            run_result r = run(re, s, n, pc + 1, at, caps, false, at);
            if (r == RUN_NOMEM) {
                result = r;
                goto done;
            }
            ok = r == RUN_NO_MATCH;
            pc = in->y;
            break;
        }
        case OP_LOOKEND:
            result = RUN_MATCH;
            goto done;
        case OP_MATCH:
            if (!(reject_empty && at == begin)) {
                result = RUN_MATCH;
                goto done;
            }
            ok = false;
            break;
        }
        if (ok)
            continue;
        for (;;) { /* backtrack */
            if (st.n == 0)
                goto done;
            frame f = st.f[--st.n];
            if (f.pc < 0) {
                caps[-1 - f.pc] = f.at;
                continue;
            }
            pc = f.pc;
            at = f.at;
            break;
        }
    }
done:
    /* A lookahead's captures are not kept (none of our patterns has any). */
    free(st.f);
    return result;
}

int osp_pyre_groups(const osp_pyre *re)
{
    return re->n_groups;
}

/* Tries a match starting exactly at `at`; caps cleared first. */
static run_result try_at(const osp_pyre *re, const uint32_t *s, size_t n, size_t at, size_t *caps,
                         bool reject_empty)
{
    for (size_t i = 0; i < 2 * ((size_t)re->n_groups + 1); i++)
        caps[i] = SIZE_MAX;
    return run(re, s, n, 0, at, caps, reject_empty, at);
}

osp_status osp_pyre_match(const osp_pyre *re, const uint32_t *s, size_t n, size_t at,
                          size_t *caps, bool *matched)
{
    run_result r = at <= n ? try_at(re, s, n, at, caps, false) : RUN_NO_MATCH;
    *matched = r == RUN_MATCH;
    return r == RUN_NOMEM ? osp_error_nomem("regex backtracking", 0) : OSP_OK;
}

osp_status osp_pyre_search(const osp_pyre *re, const uint32_t *s, size_t n, size_t at,
                           size_t *caps, bool *matched)
{
    *matched = false;
    for (; at <= n; at++) {
        run_result r = try_at(re, s, n, at, caps, false);
        if (r == RUN_NOMEM)
            return osp_error_nomem("regex backtracking", 0);
        if (r == RUN_MATCH) {
            *matched = true;
            break;
        }
    }
    return OSP_OK;
}

osp_status osp_cpbuf_reserve(osp_cpbuf *b, size_t n)
{
    if (b->cap >= n)
        return OSP_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < n)
        cap *= 2;
    uint32_t *p = realloc(b->cp, cap * sizeof *p);
    if (!p)
        return osp_error_nomem("text", cap * sizeof *p);
    b->cp = p;
    b->cap = cap;
    return OSP_OK;
}

osp_status osp_cpbuf_append(osp_cpbuf *b, const uint32_t *cps, size_t n)
{
    osp_status st = osp_cpbuf_reserve(b, b->len + n);
    if (st)
        return st;
    if (n)
        memcpy(b->cp + b->len, cps, n * sizeof *cps);
    b->len += n;
    return OSP_OK;
}

void osp_cpbuf_free(osp_cpbuf *b)
{
    free(b->cp);
    *b = (osp_cpbuf){0};
}

static osp_status append_replacement(osp_cpbuf *out, const char *repl, const uint32_t *s,
                                     const size_t *caps, int n_groups)
{
    osp_status st = OSP_OK;
    for (const char *r = repl; *r && !st;) {
        if (r[0] == '\\' && r[1] >= '1' && r[1] <= '9' && r[1] - '0' <= n_groups) {
            int g = r[1] - '0';
            size_t a = caps[2 * g], b = caps[2 * g + 1];
            if (a != SIZE_MAX && b != SIZE_MAX && b >= a)
                st = osp_cpbuf_append(out, s + a, b - a);
            r += 2;
            continue;
        }
        if (r[0] == '\\' && r[1] == '\\')
            r++;
        uint32_t cp;
        r += osp_utf8_decode((const uint8_t *)r, strlen(r), &cp);
        st = osp_cpbuf_append(out, &cp, 1);
    }
    return st;
}

osp_status osp_pyre_sub(const osp_pyre *re, const uint32_t *text, size_t n, const char *repl,
                        osp_cpbuf *out)
{
    size_t n_caps = 2 * ((size_t)re->n_groups + 1);
    size_t *caps = malloc(n_caps * sizeof *caps);
    if (!caps)
        return osp_error_nomem("regex captures", n_caps * sizeof *caps);
    out->len = 0;
    osp_status st = OSP_OK;
    size_t pos = 0, copied = 0;
    bool must_advance = false;
    while (!st && pos <= n) {
        size_t start = pos;
        run_result r = RUN_NO_MATCH;
        for (; start <= n; start++) {
            r = try_at(re, text, n, start, caps, must_advance && start == pos);
            if (r != RUN_NO_MATCH)
                break;
        }
        if (r == RUN_NOMEM)
            st = osp_error_nomem("regex backtracking", 0);
        if (r != RUN_MATCH)
            break;
        size_t end = caps[1];
        st = osp_cpbuf_append(out, text + copied, start - copied);
        if (!st)
            st = append_replacement(out, repl, text, caps, re->n_groups);
        copied = end;
        must_advance = end == start;
        pos = end;
    }
    if (!st)
        st = osp_cpbuf_append(out, text + copied, n - copied);
    free(caps);
    return st;
}
