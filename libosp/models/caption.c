/* caption.c — the reference's clean_caption, step by step (spec/t5.md §2,
 * numbers in comments are the spec's steps). Text is worked on as code
 * points so every regex sees what Python's re sees. */
#include "caption.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "html_text.h"
#include "pyre.h"
#include "unicode_tables.h"
#include "utext.h"

typedef struct sub_step {
    const char *pattern; /* Python syntax, as in the reference */
    const char *repl;
} sub_step;

/* Steps 3–5: before the HTML parser. */
static const sub_step before_html[] = {
    {"<person>", "person"},
    {"\\b((?:https?:(?:\\/{1,3}|[a-zA-Z0-9%])|[a-zA-Z0-9.\\-]+[.](?:com|co|ru|net|org|edu|gov|"
     "it)[\\w/-]*\\b\\/?(?!@)))", ""},
    {"\\b((?:www:(?:\\/{1,3}|[a-zA-Z0-9%])|[a-zA-Z0-9.\\-]+[.](?:com|co|ru|net|org|edu|gov|"
     "it)[\\w/-]*\\b\\/?(?!@)))", ""},
};

/* Steps 7–19: between the HTML parser and the dash rule. */
static const sub_step after_html[] = {
    {"@[\\w\\d]+\\b", ""},
    {"[\\u31c0-\\u31ef]+", ""}, /* CJK strokes */
    {"[\\u31f0-\\u31ff]+", ""}, /* Katakana phonetic extensions */
    {"[\\u3200-\\u32ff]+", ""}, /* enclosed CJK letters and months */
    {"[\\u3300-\\u33ff]+", ""}, /* CJK compatibility */
    {"[\\u3400-\\u4dbf]+", ""}, /* CJK unified ideographs extension A */
    {"[\\u4dc0-\\u4dff]+", ""}, /* Yijing hexagram symbols */
    {"[\\u4e00-\\u9fff]+", ""}, /* CJK unified ideographs */
    {"[\\u002D\\u058A\\u05BE\\u1400\\u1806\\u2010-\\u2015\\u2E17\\u2E1A\\u2E3A\\u2E3B\\u2E40"
     "\\u301C\\u3030\\u30A0\\uFE31\\uFE32\\uFE58\\uFE63\\uFF0D]+", "-"},
    {"[`\\u00b4\\u00ab\\u00bb\\u201c\\u201d\\u00a8]", "\""},
    {"[\\u2018\\u2019]", "'"},
    {"&quot;?", ""},
    {"&amp", ""},
    {"\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}", " "}, /* IP addresses */
    {"\\d:\\d\\d\\s+$", ""},                           /* article ids */
    {"\\\\n", " "},
    {"#\\d{1,3}\\b", ""},
    {"#\\d{5,}\\b", ""},
    {"\\b\\d{6,}\\b", ""},
    {"[\\S]+\\.(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)", ""}, /* file names */
    {"[\\\"\\']{2,}", "\""},
    {"[\\.]{2,}", " "},
    /* bad_punct_regex: # ® • © ™ & @ · º ½ ¾ ¿ ¡ § ~ ) ( ] [ } { | \ / * */
    {"[#\\u00ae\\u2022\\u00a9\\u2122&@\\u00b7\\u00ba\\u00bd\\u00be\\u00bf\\u00a1\\u00a7~"
     "\\)\\(\\]\\[\\}\\{\\|\\\\/\\*]{1,}", " "},
    {"\\s+\\.\\s+", " "},
};

/* Steps 22–31: after ftfy and html.unescape. */
static const sub_step after_ftfy[] = {
    {"\\b[a-zA-Z]{1,3}\\d{3,15}\\b", ""},         /* jc6640 */
    {"\\b[a-zA-Z]+\\d+[a-zA-Z]+\\b", ""},          /* jc6640vc */
    {"\\b\\d+[a-zA-Z]+\\d+\\b", ""},               /* 6640vc231 */
    {"(worldwide\\s+)?(free\\s+)?shipping", ""},
    {"(free\\s)?download(\\sfree)?", ""},
    {"\\bclick\\b\\s(?:for|on)\\s\\w+", ""},
    {"\\b(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)(\\simage[s]?)?", ""},
    {"\\bpage\\s+\\d+\\b", ""},
    {"\\b\\d*[a-zA-Z]+\\d+[a-zA-Z]+\\d+[a-zA-Z\\d]*\\b", " "}, /* j2d1a2a */
    {"\\b\\d+\\.?\\d*[x\\u0445\\u00d7]\\d+\\.?\\d*\\b", ""},    /* 1920x1080 */
    {"\\b\\s+\\:\\s+", ": "},
    {"(\\D[,\\./])\\b", "\\1 "},
    {"\\s+", " "},
    {"^[\\\"\\']([\\w\\W]+)[\\\"\\']$", "\\1"},
    {"^[\\'\\_,\\-\\:;]", ""},
    {"[\\'\\_,\\-\\:\\-\\+]$", ""},
    {"^\\.\\S+$", ""},
};

/* ftfy's remove_terminal_escapes */
static const char terminal_escape[] = "\\u001b\\[((?:\\d|;)*)([a-zA-Z])";

#define N_BEFORE (sizeof before_html / sizeof before_html[0])
#define N_AFTER_HTML (sizeof after_html / sizeof after_html[0])
#define N_AFTER_FTFY (sizeof after_ftfy / sizeof after_ftfy[0])

static osp_pyre *re_before[N_BEFORE], *re_after_html[N_AFTER_HTML],
    *re_after_ftfy[N_AFTER_FTFY], *re_terminal;
static pthread_once_t compile_once = PTHREAD_ONCE_INIT;

static void compile_all(void)
{
    for (size_t i = 0; i < N_BEFORE; i++)
        re_before[i] = osp_pyre_compile(before_html[i].pattern);
    for (size_t i = 0; i < N_AFTER_HTML; i++)
        re_after_html[i] = osp_pyre_compile(after_html[i].pattern);
    for (size_t i = 0; i < N_AFTER_FTFY; i++)
        re_after_ftfy[i] = osp_pyre_compile(after_ftfy[i].pattern);
    re_terminal = osp_pyre_compile(terminal_escape);
}

/* The working text, and a second buffer that each step writes into. */
typedef struct work {
    osp_cpbuf cur, tmp;
} work;

static void swap(work *w)
{
    osp_cpbuf t = w->cur;
    w->cur = w->tmp;
    w->tmp = t;
}

static osp_status run_subs(work *w, osp_pyre *const *res, const sub_step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!res[i])
            return osp_error(OSP_ERR_RUNTIME, "caption: pattern \"%s\" does not compile",
                             steps[i].pattern);
        osp_status st = osp_pyre_sub(res[i], w->cur.cp, w->cur.len, steps[i].repl, &w->tmp);
        if (st)
            return st;
        swap(w);
    }
    return OSP_OK;
}

/* ------------------------------------------------------ simple steps */

static void strip(osp_cpbuf *b)
{
    size_t a = 0, e = b->len;
    while (a < e && osp_py_isspace(b->cp[a]))
        a++;
    while (e > a && osp_py_isspace(b->cp[e - 1]))
        e--;
    if (a > 0 && e > a)
        memmove(b->cp, b->cp + a, (e - a) * sizeof *b->cp);
    b->len = e - a;
}

static osp_status lower(work *w)
{
    osp_status st = osp_cpbuf_reserve(&w->tmp, 2 * w->cur.len); /* İ becomes two */
    if (st)
        return st;
    w->tmp.len = osp_py_lower(w->cur.cp, w->cur.len, w->tmp.cp);
    swap(w);
    return OSP_OK;
}

static int hex_digit(uint32_t c)
{
    return c >= '0' && c <= '9' ? (int)c - '0' : c >= 'a' && c <= 'f' ? (int)c - 'a' + 10
         : c >= 'A' && c <= 'F' ? (int)c - 'A' + 10 : -1;
}

/* Step 1, urllib.parse.unquote_plus: '+' is a space; in each run of ASCII
 * characters %XX becomes a byte and the run is decoded as UTF-8 with
 * errors="replace"; other characters are kept. */
static osp_status unquote_plus(work *w)
{
    osp_cpbuf *s = &w->cur;
    for (size_t i = 0; i < s->len; i++)
        if (s->cp[i] == '+')
            s->cp[i] = ' ';
    w->tmp.len = 0;
    uint8_t *bytes = malloc(s->len + 1);
    if (!bytes)
        return osp_error_nomem("caption", s->len);
    osp_status st = OSP_OK;
    for (size_t i = 0; i < s->len && !st;) {
        size_t j = i;
        if (s->cp[i] >= 0x80) { /* a non-ASCII run: unchanged */
            while (j < s->len && s->cp[j] >= 0x80)
                j++;
            st = osp_cpbuf_append(&w->tmp, s->cp + i, j - i);
            i = j;
            continue;
        }
        size_t nb = 0;
        for (; j < s->len && s->cp[j] < 0x80; j++) {
            int hi, lo;
            if (s->cp[j] == '%' && j + 2 < s->len && (hi = hex_digit(s->cp[j + 1])) >= 0 &&
                (lo = hex_digit(s->cp[j + 2])) >= 0) {
                bytes[nb++] = (uint8_t)(hi << 4 | lo);
                j += 2;
            } else {
                bytes[nb++] = (uint8_t)s->cp[j];
            }
        }
        for (size_t k = 0; k < nb && !st;) {
            uint32_t cp;
            k += osp_utf8_decode(bytes + k, nb - k, &cp);
            st = osp_cpbuf_append(&w->tmp, &cp, 1);
        }
        i = j;
    }
    free(bytes);
    if (!st)
        swap(w);
    return st;
}

/* Step 20: more than three '-'/'_' in all: every one becomes a space. */
static void dashes_to_spaces(osp_cpbuf *b)
{
    size_t count = 0;
    for (size_t i = 0; i < b->len; i++)
        count += b->cp[i] == '-' || b->cp[i] == '_';
    if (count > 3)
        for (size_t i = 0; i < b->len; i++)
            if (b->cp[i] == '-' || b->cp[i] == '_')
                b->cp[i] = ' ';
}

/* ------------------------------------------------- ftfy.fix_text subset */

static const struct {
    uint32_t from;
    uint32_t to[3];
} ligatures[] = { /* ftfy.chardata.LIGATURES */
    {0x132, {'I', 'J'}}, {0x133, {'i', 'j'}}, {0x149, {0x2bc, 'n'}}, {0x1f1, {'D', 'Z'}},
    {0x1f2, {'D', 'z'}}, {0x1f3, {'d', 'z'}}, {0x1c4, {'D', 0x17d}}, {0x1c5, {'D', 0x17e}},
    {0x1c6, {'d', 0x17e}}, {0x1c7, {'L', 'J'}}, {0x1c8, {'L', 'j'}}, {0x1c9, {'l', 'j'}},
    {0x1ca, {'N', 'J'}}, {0x1cb, {'N', 'j'}}, {0x1cc, {'n', 'j'}}, {0xfb00, {'f', 'f'}},
    {0xfb01, {'f', 'i'}}, {0xfb02, {'f', 'l'}}, {0xfb03, {'f', 'f', 'i'}},
    {0xfb04, {'f', 'f', 'l'}}, {0xfb05, {0x17f, 't'}}, {0xfb06, {'s', 't'}},
};

/* ftfy.chardata.CONTROL_CHARS (remove_control_chars) */
static bool is_ftfy_control(uint32_t c)
{
    return c <= 0x08 || c == 0x0b || (c >= 0x0e && c <= 0x1f) || c == 0x7f ||
           (c >= 0x206a && c <= 0x206f) || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffc);
}

/* The per-character fixers in ftfy's order; returns the replacement of c
 * (n code points, 0 = deleted). Surrogates and line breaks need context
 * and are handled by the caller. */
static size_t fix_char(uint32_t c, uint32_t out[3])
{
    if (c >= 0x80 && c <= 0x9f && osp_cp1252_80_9f[c - 0x80]) /* fix_c1_controls */
        c = osp_cp1252_80_9f[c - 0x80];
    for (size_t i = 0; i < sizeof ligatures / sizeof ligatures[0]; i++) {
        if (ligatures[i].from == c) {
            size_t n = ligatures[i].to[2] ? 3 : 2;
            memcpy(out, ligatures[i].to, n * sizeof *out);
            return n;
        }
    }
    size_t lo = 0, hi = osp_width_map_count; /* fix_character_width */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (osp_width_map[mid][0] < c) {
            lo = mid + 1;
        } else if (osp_width_map[mid][0] > c) {
            hi = mid;
        } else {
            out[0] = osp_width_map[mid][1];
            out[1] = osp_width_map[mid][2];
            return out[1] ? 2 : 1;
        }
    }
    if ((c >= 0x2018 && c <= 0x201b) || c == 0x2bc) /* uncurl_quotes */
        c = '\'';
    else if (c >= 0x201c && c <= 0x201f)
        c = '"';
    out[0] = c;
    return 1;
}

/* One round of ftfy's fixers (unescape_html is left out: step 18 has
 * already turned every '&' into a space, so it can never apply). */
static osp_status ftfy_round(work *w)
{
    osp_cpbuf *s = &w->cur;
    osp_status st = OSP_OK;
    w->tmp.len = 0;
    for (size_t i = 0; i < s->len && !st; i++) { /* C1, ligatures, width, quotes */
        uint32_t out[3];
        size_t n = fix_char(s->cp[i], out);
        st = osp_cpbuf_append(&w->tmp, out, n);
    }
    if (st)
        return st;
    swap(w);
    size_t k = 0; /* fix_line_breaks and fix_surrogates, in place */
    for (size_t i = 0; i < s->len; i++) {
        uint32_t c = s->cp[i];
        if (c == '\r' && i + 1 < s->len && s->cp[i + 1] == '\n')
            continue; /* "\r\n" -> "\n" */
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85)
            c = '\n';
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < s->len && s->cp[i + 1] >= 0xdc00 &&
            s->cp[i + 1] <= 0xdfff) {
            c = 0x10000 + ((c - 0xd800) << 10) + (s->cp[i + 1] - 0xdc00);
            i++;
        } else if (c >= 0xd800 && c <= 0xdfff) {
            c = OSP_REPLACEMENT_CHAR;
        }
        s->cp[k++] = c;
    }
    s->len = k;
    if (!re_terminal)
        return osp_error(OSP_ERR_RUNTIME, "caption: terminal-escape pattern does not compile");
    if ((st = osp_pyre_sub(re_terminal, s->cp, s->len, "", &w->tmp)))
        return st;
    swap(w);
    k = 0; /* remove_control_chars */
    for (size_t i = 0; i < w->cur.len; i++)
        if (!is_ftfy_control(w->cur.cp[i]))
            w->cur.cp[k++] = w->cur.cp[i];
    w->cur.len = k;
    return OSP_OK;
}

/* ftfy.fix_text: the fixers repeat until the text stops changing. */
static osp_status ftfy_fix_text(work *w)
{
    osp_cpbuf before = {0};
    osp_status st = OSP_OK;
    for (int round = 0; round < 16 && !st; round++) {
        before.len = 0;
        st = osp_cpbuf_append(&before, w->cur.cp, w->cur.len);
        if (!st)
            st = ftfy_round(w);
        if (!st && before.len == w->cur.len &&
            (before.len == 0 || memcmp(before.cp, w->cur.cp, before.len * sizeof *before.cp) == 0))
            break;
    }
    osp_cpbuf_free(&before);
    return st;
}

/* ------------------------------------------------------------ one pass */

static osp_status clean_once(work *w, bool training)
{
    osp_status st = unquote_plus(w); /* 1 */
    if (!st) {
        strip(&w->cur); /* 2 */
        st = lower(w);
    }
    if (!st)
        st = run_subs(w, re_before, before_html, N_BEFORE); /* 3–5 */
    if (!st && !(st = osp_html_soup_text(w->cur.cp, w->cur.len, &w->tmp))) /* 6 */
        swap(w);
    if (!st)
        st = run_subs(w, re_after_html, after_html, N_AFTER_HTML); /* 7–19 */
    if (!st) {
        dashes_to_spaces(&w->cur); /* 20 */
        st = ftfy_fix_text(w);     /* 21 */
    }
    for (int k = 0; k < 2 && !st; k++)
        if (!(st = osp_html_unescape(w->cur.cp, w->cur.len, &w->tmp)))
            swap(w);
    if (!st && training)
        strip(&w->cur);
    if (!st)
        st = run_subs(w, re_after_ftfy, after_ftfy, N_AFTER_FTFY); /* 22–31 */
    if (!st)
        strip(&w->cur); /* 32 */
    return st;
}

bool osp_clean_mode_parse(const char *name, osp_clean_mode *mode)
{
    static const char *const names[] = {"inference", "training", "lower", "none"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, names[i]) == 0) {
            *mode = (osp_clean_mode)i;
            return true;
        }
    }
    return false;
}

const char *osp_clean_mode_name(osp_clean_mode mode)
{
    static const char *const names[] = {"inference", "training", "lower", "none"};
    return (unsigned)mode < 4 ? names[mode] : "?";
}

char *osp_caption_clean(const char *text, size_t len, osp_clean_mode mode, size_t *out_len)
{
    if (mode == OSP_CLEAN_NONE) {
        char *copy = malloc(len + 1);
        if (!copy) {
            osp_error_nomem("caption", len + 1);
            return NULL;
        }
        if (len)
            memcpy(copy, text, len);
        copy[len] = 0;
        if (out_len)
            *out_len = len;
        return copy;
    }
    pthread_once(&compile_once, compile_all);
    work w = {0};
    size_t n;
    w.cur.cp = osp_utf8_to_cps(text, len, &n);
    w.cur.len = w.cur.cap = n;
    osp_status st = w.cur.cp ? OSP_OK : osp_error_nomem("caption", len * 4);
    if (!st && mode == OSP_CLEAN_LOWER) {
        st = lower(&w);
        strip(&w.cur);
    }
    for (int pass = 0; pass < 2 && !st && mode != OSP_CLEAN_LOWER; pass++)
        st = clean_once(&w, mode == OSP_CLEAN_TRAINING);
    char *out = NULL;
    if (!st) {
        out = osp_cps_to_utf8(w.cur.cp, w.cur.len, out_len);
        if (!out)
            osp_error_nomem("caption", w.cur.len * 4);
    }
    osp_cpbuf_free(&w.cur);
    osp_cpbuf_free(&w.tmp);
    return out;
}
