/* html_text.c — BeautifulSoup(text, "html.parser").text and
 * html.unescape(), re-stated from bs4 4.12.3 (builder/_htmlparser.py,
 * __init__.py) over Python 3.11's html/parser.py and _markupbase.py.
 *
 * The parser part follows HTMLParser.goahead() step by step with
 * convert_charrefs=False (as bs4 sets it), fed once and then closed, so
 * the text runs through goahead(0) and what it leaves through goahead(1).
 * Its regular expressions are html.parser's own, run by pyre. The tree
 * part keeps only what .text depends on: the pending data run (bs4 merges
 * consecutive data and collapses an all-ASCII-whitespace run to one space
 * or newline outside <pre>/<textarea>), the stack of open tag names (for
 * the string class of <script>, <style>, <template>, <rt>, <rp>, whose
 * strings .text skips) and bs4's list of auto-closed void tags. */
#include "html_text.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "unicode_tables.h"
#include "utext.h"

/* ------------------------------------------------------------- patterns */

enum {
    RE_STARTTAG_END, RE_TAGFIND, RE_ATTRFIND, RE_ENDTAGFIND, RE_COMMENT_CLOSE, RE_ENTITYREF,
    RE_CHARREF, RE_INCOMPLETE, RE_DECLNAME, RE_MARKED_CLOSE, RE_MS_MARKED_CLOSE,
    RE_CDATA_END_SCRIPT, RE_CDATA_END_STYLE, RE_UNESCAPE, RE_COUNT
};

/* html.parser's patterns (locatestarttagend_tolerant without its VERBOSE
 * layout); the cdata ends spell out re.IGNORECASE's matches. */
static const char *const patterns[RE_COUNT] = {
    [RE_STARTTAG_END] = "<[a-zA-Z][^\\t\\n\\r\\f />\\x00]*(?:[\\s/]*(?:(?<=['\"\\s/])[^\\s/>]"
                        "[^\\s/=>]*(?:\\s*=+\\s*(?:'[^']*'|\"[^\"]*\"|(?!['\"])[^>\\s]*)\\s*)?"
                        "(?:\\s|/(?!>))*)*)?\\s*",
    [RE_TAGFIND] = "([a-zA-Z][^\\t\\n\\r\\f />\\x00]*)(?:\\s|/(?!>))*",
    [RE_ATTRFIND] = "((?<=['\"\\s/])[^\\s/>][^\\s/=>]*)(\\s*=+\\s*('[^']*'|\"[^\"]*\"|"
                    "(?!['\"])[^>\\s]*))?(?:\\s|/(?!>))*",
    [RE_ENDTAGFIND] = "</\\s*([a-zA-Z][-.a-zA-Z0-9:_]*)\\s*>",
    [RE_COMMENT_CLOSE] = "--\\s*>",
    [RE_ENTITYREF] = "&([a-zA-Z][-.a-zA-Z0-9]*)[^a-zA-Z0-9]",
    [RE_CHARREF] = "&#(?:[0-9]+|[xX][0-9a-fA-F]+)[^0-9a-fA-F]",
    [RE_INCOMPLETE] = "&[a-zA-Z#]",
    [RE_DECLNAME] = "[a-zA-Z][-_.a-zA-Z0-9]*\\s*",
    [RE_MARKED_CLOSE] = "]\\s*]\\s*>",
    [RE_MS_MARKED_CLOSE] = "]\\s*>",
    [RE_CDATA_END_SCRIPT] = "</\\s*[sS\\u017f][cC][rR][iI\\u0130\\u0131][pP][tT]\\s*>",
    [RE_CDATA_END_STYLE] = "</\\s*[sS\\u017f][tT][yY][lL][eE]\\s*>",
    [RE_UNESCAPE] = "&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\\t\\n\\f <&#;]{1,32};?)",
};

static osp_pyre *compiled[RE_COUNT];
static pthread_once_t compile_once = PTHREAD_ONCE_INIT;

static void compile_patterns(void)
{
    for (int i = 0; i < RE_COUNT; i++)
        compiled[i] = osp_pyre_compile(patterns[i]);
}

static osp_status ready(void)
{
    pthread_once(&compile_once, compile_patterns);
    for (int i = 0; i < RE_COUNT; i++)
        if (!compiled[i])
            return osp_error(OSP_ERR_RUNTIME, "html parser: pattern %d does not compile", i);
    return OSP_OK;
}

/* ------------------------------------------------------ code point text */

static bool equals_ascii(const uint32_t *s, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (n != k)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] != (uint8_t)lit[i])
            return false;
    return true;
}

static bool starts_with(const uint32_t *s, size_t n, size_t at, const char *lit)
{
    size_t k = strlen(lit);
    return at <= n && n - at >= k && equals_ascii(s + at, k, lit);
}

static size_t find_char(const uint32_t *s, size_t n, size_t from, uint32_t c)
{
    for (size_t i = from; i < n; i++)
        if (s[i] == c)
            return i;
    return SIZE_MAX;
}

/* ------------------------------------------------------------ the soup */

typedef struct tag_name {
    uint32_t *cp;
    size_t len;
} tag_name;

typedef struct names {
    tag_name *v;
    size_t n, cap;
} names;

enum string_kind { STR_TEXT, STR_CDATA, STR_OTHER }; /* .text keeps TEXT and CDATA */

typedef struct soup {
    const uint32_t *raw; /* rawdata of the current goahead() */
    size_t n;
    int cdata_re;        /* RE_CDATA_END_* while inside <script>/<style>, else -1 */
    osp_cpbuf data;      /* the pending data run */
    bool has_data;
    names open;          /* open tags, innermost last */
    names closed_void;   /* bs4's already_closed_empty_element */
    osp_cpbuf *out;
    size_t caps[8];
    osp_status st;
} soup;

static void fail_nomem(soup *s)
{
    if (!s->st)
        s->st = osp_error_nomem("html text", 0);
}

static void handle_data(soup *s, const uint32_t *p, size_t len)
{
    if (!s->st && osp_cpbuf_append(&s->data, p, len))
        s->st = osp_error_code();
    s->has_data = true;
}

static void handle_data_ascii(soup *s, const char *lit)
{
    for (; *lit; lit++) {
        uint32_t c = (uint8_t)*lit;
        handle_data(s, &c, 1);
    }
}

static bool name_is_any(const tag_name *t, const char *const *list)
{
    for (; *list; list++)
        if (equals_ascii(t->cp, t->len, *list))
            return true;
    return false;
}

static const char *const preserve_whitespace_tags[] = {"pre", "textarea", NULL};
static const char *const string_container_tags[] = {"rt", "rp", "style", "script", "template",
                                                    NULL};
static const char *const void_tags[] = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "menuitem",
    "meta", "param", "source", "track", "wbr", "basefont", "bgsound", "command", "frame",
    "image", "isindex", "nextid", "spacer", NULL};

/* BeautifulSoup.endData(): closes the pending data run as one string. */
static void end_data(soup *s, enum string_kind kind)
{
    if (!s->has_data || s->st)
        return;
    bool preserve = false, in_container = false;
    for (size_t i = 0; i < s->open.n; i++)
        preserve = preserve || name_is_any(&s->open.v[i], preserve_whitespace_tags);
    for (size_t i = s->open.n; i-- > 0 && !in_container;)
        in_container = name_is_any(&s->open.v[i], string_container_tags);
    osp_cpbuf *d = &s->data;
    if (!preserve) {
        bool all_space = true, newline = false;
        for (size_t i = 0; i < d->len && all_space; i++) {
            uint32_t c = d->cp[i];
            all_space = c == ' ' || c == '\n' || c == '\t' || c == '\f' || c == '\r';
            newline = newline || c == '\n';
        }
        if (all_space) { /* also an empty run (an empty CDATA section) */
            d->len = 0;
            uint32_t c = newline ? '\n' : ' ';
            if (osp_cpbuf_append(d, &c, 1))
                s->st = osp_error_code();
        }
    }
    bool kept = kind == STR_CDATA || (kind == STR_TEXT && !in_container);
    if (kept && !s->st && osp_cpbuf_append(s->out, d->cp, d->len))
        s->st = osp_error_code();
    d->len = 0;
    s->has_data = false;
}

static bool push_name(soup *s, names *list, const uint32_t *cp, size_t len)
{
    if (list->n == list->cap) {
        size_t cap = list->cap ? 2 * list->cap : 16;
        tag_name *v = realloc(list->v, cap * sizeof *v);
        if (!v) {
            fail_nomem(s);
            return false;
        }
        list->v = v;
        list->cap = cap;
    }
    tag_name *t = &list->v[list->n];
    t->cp = malloc((len ? len : 1) * sizeof *t->cp);
    if (!t->cp) {
        fail_nomem(s);
        return false;
    }
    memcpy(t->cp, cp, len * sizeof *cp);
    t->len = len;
    list->n++;
    return true;
}

static void free_names(names *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->v[i].cp);
    free(list->v);
}

static bool same_name(const tag_name *t, const tag_name *u)
{
    return t->len == u->len && memcmp(t->cp, u->cp, t->len * sizeof *t->cp) == 0;
}

/* BeautifulSoup.handle_endtag: end the data run, then pop up to and
 * including the innermost open tag of that name, if there is one. */
static void soup_end_tag(soup *s, const tag_name *name)
{
    end_data(s, STR_TEXT);
    size_t i = s->open.n;
    while (i > 0 && !same_name(&s->open.v[i - 1], name))
        i--;
    if (i == 0)
        return;
    while (s->open.n >= i)
        free(s->open.v[--s->open.n].cp);
}

/* BeautifulSoupHTMLParser.handle_endtag */
static void parser_end_tag(soup *s, const tag_name *name, bool check_already_closed)
{
    if (check_already_closed) {
        for (size_t i = 0; i < s->closed_void.n; i++) {
            if (same_name(&s->closed_void.v[i], name)) {
                free(s->closed_void.v[i].cp);
                memmove(&s->closed_void.v[i], &s->closed_void.v[i + 1],
                        (s->closed_void.n - i - 1) * sizeof *s->closed_void.v);
                s->closed_void.n--;
                return;
            }
        }
    }
    soup_end_tag(s, name);
}

/* BeautifulSoupHTMLParser.handle_starttag: void tags close at once. */
static void parser_start_tag(soup *s, const tag_name *name, bool handle_empty_element)
{
    end_data(s, STR_TEXT);
    if (!push_name(s, &s->open, name->cp, name->len))
        return;
    if (handle_empty_element && name_is_any(name, void_tags)) {
        parser_end_tag(s, name, false);
        push_name(s, &s->closed_void, name->cp, name->len);
    }
}

/* Comments, declarations, processing instructions and marked sections:
 * their own string, of a class .text keeps only for CDATA. */
static void handle_special(soup *s, const uint32_t *p, size_t len, enum string_kind kind)
{
    end_data(s, STR_TEXT);
    handle_data(s, p, len);
    end_data(s, kind);
}

/* ------------------------------------------------ references (bs4 rules) */

static const osp_html_entity *find_entity(const uint32_t *name, size_t len, bool semicolon)
{
    char key[80];
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] >= 0x80 || k + 2 >= sizeof key)
            return NULL; /* all entity names are short ASCII */
        key[k++] = (char)name[i];
    }
    if (semicolon)
        key[k++] = ';';
    key[k] = 0;
    size_t lo = 0, hi = osp_html_entities_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(osp_html_entities[mid].name, key);
        if (c == 0)
            return &osp_html_entities[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void append_utf8(osp_cpbuf *b, const char *utf8, osp_status *st)
{
    size_t n;
    uint32_t *cps = osp_utf8_to_cps(utf8, strlen(utf8), &n);
    if (!cps || osp_cpbuf_append(b, cps, n))
        *st = cps ? osp_error_code() : osp_error_nomem("entity", 0);
    free(cps);
}

/* Parses decimal or hex digits, saturating far above U+10FFFF. */
static uint64_t parse_number(const uint32_t *p, size_t len, int base)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t c = p[i];
        int d = c <= '9' ? (int)c - '0' : (int)(c | 0x20) - 'a' + 10;
        v = v * (uint64_t)base + (uint64_t)d;
        if (v > 0x7fffffff)
            v = 0x7fffffff;
    }
    return v;
}

/* BeautifulSoupHTMLParser.handle_charref: numbers below 256 are read as
 * windows-1252 bytes; anything chr() refuses becomes U+FFFD. */
static void handle_charref(soup *s, const uint32_t *name, size_t len)
{
    bool hex = name[0] == 'x' || name[0] == 'X';
    uint64_t v = parse_number(name + hex, len - hex, hex ? 16 : 10);
    uint32_t c = (uint32_t)v;
    if (v >= 0x80 && v < 0xa0 && osp_cp1252_80_9f[v - 0x80])
        c = osp_cp1252_80_9f[v - 0x80];
    else if (v > 0x10ffff)
        c = OSP_REPLACEMENT_CHAR;
    handle_data(s, &c, 1);
}

/* BeautifulSoupHTMLParser.handle_entityref: a known name (with or without
 * ';' in the HTML5 list) gives its characters, else the text "&name". */
static void handle_entityref(soup *s, const uint32_t *name, size_t len)
{
    const osp_html_entity *e = find_entity(name, len, true);
    if (!e)
        e = find_entity(name, len, false);
    if (e) {
        osp_cpbuf tmp = {0};
        osp_status st = OSP_OK;
        append_utf8(&tmp, e->value, &st);
        if (st)
            s->st = st;
        else
            handle_data(s, tmp.cp, tmp.len);
        osp_cpbuf_free(&tmp);
        return;
    }
    handle_data_ascii(s, "&");
    handle_data(s, name, len);
}

/* --------------------------------------------------- html.parser parts */

static bool re_match(soup *s, int which, size_t at)
{
    bool m = false;
    if (!s->st)
        s->st = osp_pyre_match(compiled[which], s->raw, s->n, at, s->caps, &m);
    return m && !s->st;
}

static bool re_search(soup *s, int which, size_t at)
{
    bool m = false;
    if (!s->st)
        s->st = osp_pyre_search(compiled[which], s->raw, s->n, at, s->caps, &m);
    return m && !s->st;
}

/* Lower-cased copy of raw[a, b) as a tag name (owned by the caller). */
static tag_name lower_name(soup *s, size_t a, size_t b)
{
    tag_name t = {.cp = malloc((2 * (b - a) + 1) * sizeof *t.cp), .len = 0};
    if (!t.cp)
        fail_nomem(s);
    else
        t.len = osp_py_lower(s->raw + a, b - a, t.cp);
    return t;
}

static long parse_bogus_comment(soup *s, size_t i)
{
    size_t pos = find_char(s->raw, s->n, i + 2, '>');
    if (pos == SIZE_MAX)
        return -1;
    handle_special(s, s->raw + i + 2, pos - i - 2, STR_OTHER);
    return (long)pos + 1;
}

static long parse_comment(soup *s, size_t i)
{
    if (!re_search(s, RE_COMMENT_CLOSE, i + 4))
        return -1;
    handle_special(s, s->raw + i + 4, s->caps[0] - i - 4, STR_OTHER);
    return (long)s->caps[1];
}

/* _markupbase.parse_marked_section; an unknown keyword is where the
 * reference raises (AssertionError, ParserRejectedMarkup in bs4). */
static long parse_marked_section(soup *s, size_t i)
{
    size_t at = i + 3;
    if (at == s->n)
        return -1;
    if (!re_match(s, RE_DECLNAME, at)) {
        if (!s->st)
            s->st = osp_error(OSP_ERR_DATA, "caption: the reference HTML parser rejects this "
                              "text (expected a name after \"<![\")");
        return -1;
    }
    size_t name_end = s->caps[1];
    if (name_end == s->n)
        return -1;
    while (name_end > at && osp_py_isspace(s->raw[name_end - 1]))
        name_end--;
    size_t len = name_end - at;
    uint32_t name[8];
    for (size_t k = 0; k < len && k < 8; k++)
        name[k] = s->raw[at + k] | 0x20; /* the name is ASCII: lower-case it */
    static const char *const standard[] = {"temp", "cdata", "ignore", "include", "rcdata", NULL};
    static const char *const office[] = {"if", "else", "endif", NULL};
    tag_name t = {.cp = name, .len = len < 8 ? len : 8};
    int close;
    if (len < 8 && name_is_any(&t, standard)) {
        close = RE_MARKED_CLOSE;
    } else if (len < 8 && name_is_any(&t, office)) {
        close = RE_MS_MARKED_CLOSE;
    } else {
        if (!s->st)
            s->st = osp_error(OSP_ERR_DATA, "caption: the reference HTML parser rejects this "
                              "text (unknown keyword in a \"<![\" section)");
        return -1;
    }
    if (!re_search(s, close, i + 3))
        return -1;
    /* unknown_decl: CDATA[... is character data, the rest a declaration */
    const uint32_t *d = s->raw + i + 3;
    size_t dlen = s->caps[0] - i - 3;
    bool cdata = dlen >= 6;
    for (size_t k = 0; k < 6 && cdata; k++) {
        uint32_t c = d[k];
        cdata = (c >= 'a' && c <= 'z' ? c - 32 : c) == (uint8_t)"CDATA["[k];
    }
    if (cdata)
        handle_special(s, d + 6, dlen - 6, STR_CDATA);
    else
        handle_special(s, d, dlen, STR_OTHER);
    return (long)s->caps[1];
}

static long parse_html_declaration(soup *s, size_t i)
{
    if (starts_with(s->raw, s->n, i, "<!--"))
        return parse_comment(s, i);
    if (starts_with(s->raw, s->n, i, "<!["))
        return parse_marked_section(s, i);
    bool doctype = s->n - i >= 9;
    for (size_t k = 0; k < 9 && doctype; k++) {
        uint32_t c = s->raw[i + k];
        doctype = (c >= 'A' && c <= 'Z' ? c + 32 : c) == (uint8_t)"<!doctype"[k];
    }
    if (doctype) {
        size_t gt = find_char(s->raw, s->n, i + 9, '>');
        if (gt == SIZE_MAX)
            return -1;
        handle_special(s, s->raw + i + 2, 0, STR_OTHER); /* a Doctype: never in .text */
        return (long)gt + 1;
    }
    return parse_bogus_comment(s, i);
}

static long parse_pi(soup *s, size_t i)
{
    size_t gt = find_char(s->raw, s->n, i + 2, '>');
    if (gt == SIZE_MAX)
        return -1;
    handle_special(s, s->raw + i + 2, gt - i - 2, STR_OTHER);
    return (long)gt + 1;
}

static long check_for_whole_start_tag(soup *s, size_t i)
{
    if (!re_match(s, RE_STARTTAG_END, i))
        return s->st ? -1 : (long)i + 1; /* cannot happen: '<' + letter always matches */
    size_t j = s->caps[1];
    if (j == s->n)
        return -1;
    uint32_t next = s->raw[j];
    if (next == '>')
        return (long)j + 1;
    if (next == '/') {
        if (starts_with(s->raw, s->n, j, "/>"))
            return (long)j + 2;
        return -1; /* "/" then something: html.parser calls it a buffer boundary */
    }
    if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || next == '=' ||
        next == '/')
        return -1;
    return j > i ? (long)j : (long)i + 1;
}

static bool is_cdata_content(const tag_name *t)
{
    return equals_ascii(t->cp, t->len, "script") || equals_ascii(t->cp, t->len, "style");
}

static long parse_starttag(soup *s, size_t i)
{
    long endpos = check_for_whole_start_tag(s, i);
    if (endpos < 0)
        return endpos;
    if (!re_match(s, RE_TAGFIND, i + 1))
        return -1;
    size_t k = s->caps[1];
    tag_name tag = lower_name(s, s->caps[2], s->caps[3]);
    while (k < (size_t)endpos && re_match(s, RE_ATTRFIND, k))
        k = s->caps[1];
    /* end = rawdata[k:endpos].strip() must be ">" or "/>" */
    size_t b = (size_t)endpos, a = k < b ? k : b;
    while (a < b && osp_py_isspace(s->raw[a]))
        a++;
    while (b > a && osp_py_isspace(s->raw[b - 1]))
        b--;
    bool close_slash = b - a == 2 && s->raw[a] == '/' && s->raw[a + 1] == '>';
    if (!(b - a == 1 && s->raw[a] == '>') && !close_slash) {
        handle_data(s, s->raw + i, (size_t)endpos - i);
    } else if (close_slash) {
        parser_start_tag(s, &tag, false);
        parser_end_tag(s, &tag, true);
    } else {
        parser_start_tag(s, &tag, true);
        if (is_cdata_content(&tag))
            s->cdata_re = equals_ascii(tag.cp, tag.len, "script") ? RE_CDATA_END_SCRIPT
                                                                  : RE_CDATA_END_STYLE;
    }
    free(tag.cp);
    return endpos;
}

static long parse_endtag(soup *s, size_t i)
{
    size_t gt = find_char(s->raw, s->n, i + 1, '>');
    if (gt == SIZE_MAX)
        return -1;
    gt++;
    if (!re_match(s, RE_ENDTAGFIND, i)) {
        if (s->cdata_re >= 0) {
            handle_data(s, s->raw + i, gt - i);
            return (long)gt;
        }
        if (!re_match(s, RE_TAGFIND, i + 2)) {
            if (starts_with(s->raw, s->n, i, "</>"))
                return (long)i + 3;
            return parse_bogus_comment(s, i);
        }
        tag_name name = lower_name(s, s->caps[2], s->caps[3]);
        size_t close = find_char(s->raw, s->n, s->caps[1], '>');
        parser_end_tag(s, &name, true);
        free(name.cp);
        return (long)close + 1;
    }
    tag_name elem = lower_name(s, s->caps[2], s->caps[3]);
    if (s->cdata_re >= 0) {
        bool same = equals_ascii(elem.cp, elem.len,
                                 s->cdata_re == RE_CDATA_END_SCRIPT ? "script" : "style");
        if (!same) {
            handle_data(s, s->raw + i, gt - i);
            free(elem.cp);
            return (long)gt;
        }
    }
    parser_end_tag(s, &elem, true);
    s->cdata_re = -1;
    free(elem.cp);
    return (long)gt;
}

/* HTMLParser.goahead(end); returns how much of raw it consumed. */
static size_t goahead(soup *s, bool end)
{
    const uint32_t *raw = s->raw;
    size_t n = s->n, i = 0;
    while (i < n && !s->st) {
        size_t j;
        if (s->cdata_re < 0) {
            j = i;
            while (j < n && raw[j] != '<' && raw[j] != '&')
                j++;
        } else if (re_search(s, s->cdata_re, i)) {
            j = s->caps[0];
        } else {
            break;
        }
        if (i < j)
            handle_data(s, raw + i, j - i);
        i = j;
        if (i == n)
            break;
        if (raw[i] == '<') {
            long k;
            bool letter = i + 1 < n && ((raw[i + 1] | 0x20) >= 'a' && (raw[i + 1] | 0x20) <= 'z');
            if (letter)
                k = parse_starttag(s, i);
            else if (starts_with(raw, n, i, "</"))
                k = parse_endtag(s, i);
            else if (starts_with(raw, n, i, "<!--"))
                k = parse_comment(s, i);
            else if (starts_with(raw, n, i, "<?"))
                k = parse_pi(s, i);
            else if (starts_with(raw, n, i, "<!"))
                k = parse_html_declaration(s, i);
            else if (i + 1 < n) {
                handle_data_ascii(s, "<");
                k = (long)i + 1;
            } else {
                break;
            }
            if (s->st)
                break;
            if (k < 0) {
                if (!end)
                    break;
                size_t gt = find_char(raw, n, i + 1, '>');
                if (gt != SIZE_MAX) {
                    k = (long)gt + 1;
                } else {
                    size_t lt = find_char(raw, n, i + 1, '<');
                    k = lt != SIZE_MAX ? (long)lt : (long)i + 1;
                }
                handle_data(s, raw + i, (size_t)k - i);
            }
            i = (size_t)k;
        } else if (starts_with(raw, n, i, "&#")) {
            if (re_match(s, RE_CHARREF, i)) {
                size_t k = s->caps[1];
                handle_charref(s, raw + i + 2, k - i - 3);
                i = raw[k - 1] == ';' ? k : k - 1;
                continue;
            }
            if (find_char(raw, n, i, ';') != SIZE_MAX) { /* bail by consuming "&#" */
                handle_data(s, raw + i, 2);
                i += 2;
            }
            break;
        } else { /* '&' */
            if (re_match(s, RE_ENTITYREF, i)) {
                size_t k = s->caps[1];
                handle_entityref(s, raw + s->caps[2], s->caps[3] - s->caps[2]);
                i = raw[k - 1] == ';' ? k : k - 1;
                continue;
            }
            if (re_match(s, RE_INCOMPLETE, i)) {
                if (end && s->caps[1] == n)
                    i++;
                break;
            }
            if (i + 1 < n) {
                handle_data_ascii(s, "&");
                i++;
            } else {
                break;
            }
        }
    }
    if (end && i < n && s->cdata_re < 0 && !s->st) {
        handle_data(s, raw + i, n - i);
        i = n;
    }
    return i;
}

osp_status osp_html_soup_text(const uint32_t *text, size_t n, osp_cpbuf *out)
{
    osp_status st = ready();
    if (st)
        return st;
    out->len = 0;
    soup s = {.raw = text, .n = n, .cdata_re = -1, .out = out};
    size_t used = goahead(&s, false); /* feed() */
    s.raw += used;
    s.n -= used;
    goahead(&s, true); /* close() */
    end_data(&s, STR_TEXT);
    st = s.st;
    osp_cpbuf_free(&s.data);
    free_names(&s.open);
    free_names(&s.closed_void);
    return st;
}

/* ------------------------------------------------------- html.unescape */

static bool in_ranges(const osp_cp_range *r, size_t count, uint32_t cp)
{
    for (size_t i = 0; i < count; i++)
        if (cp >= r[i].first && cp <= r[i].last)
            return true;
    return false;
}

/* html._replace_charref for the text after '&' (s[0..len)). */
static osp_status replace_charref(const uint32_t *s, size_t len, osp_cpbuf *out)
{
    osp_status st = OSP_OK;
    if (s[0] == '#') {
        bool hex = s[1] == 'x' || s[1] == 'X';
        size_t digits = len - 1 - hex - (s[len - 1] == ';');
        uint64_t num = parse_number(s + 1 + hex, digits, hex ? 16 : 10);
        uint32_t c = (uint32_t)num;
        for (size_t i = 0; i < osp_html_invalid_charrefs_count; i++)
            if (osp_html_invalid_charrefs[i][0] == num)
                return osp_cpbuf_append(out, &osp_html_invalid_charrefs[i][1], 1);
        if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff)
            c = OSP_REPLACEMENT_CHAR;
        else if (in_ranges(osp_html_invalid_codepoints, osp_html_invalid_codepoints_count, c))
            return OSP_OK;
        return osp_cpbuf_append(out, &c, 1);
    }
    const osp_html_entity *e = find_entity(s, len, false);
    size_t used = len;
    /* else the longest known prefix of at least two characters */
    for (size_t x = len - 1; !e && x > 1; x--) {
        e = find_entity(s, x, false);
        used = x;
    }
    if (!e) {
        uint32_t amp = '&';
        st = osp_cpbuf_append(out, &amp, 1);
        return st ? st : osp_cpbuf_append(out, s, len);
    }
    append_utf8(out, e->value, &st);
    return st ? st : osp_cpbuf_append(out, s + used, len - used);
}

osp_status osp_html_unescape(const uint32_t *text, size_t n, osp_cpbuf *out)
{
    osp_status st = ready();
    if (st)
        return st;
    out->len = 0;
    size_t caps[4], at = 0;
    while (!st) {
        bool found;
        st = osp_pyre_search(compiled[RE_UNESCAPE], text, n, at, caps, &found);
        if (st || !found)
            break;
        st = osp_cpbuf_append(out, text + at, caps[0] - at);
        if (!st)
            st = replace_charref(text + caps[2], caps[3] - caps[2], out);
        at = caps[1];
    }
    return st ? st : osp_cpbuf_append(out, text + at, n - at);
}
