/* pyre.h — the subset of Python's `re` that the caption cleaner uses,
 * with Python 3 semantics on Unicode code points.
 *
 * Syntax: literals, escapes (\d \D \w \W \s \S \b \B, \uXXXX, \xXX, \n \t
 * \r \f \v, an escaped punctuation character), classes [...] with ranges
 * and negation, groups (...) (?:...), negative lookahead (?!...) and a
 * one-class lookbehind (?<=[...]),
 * alternation |, greedy quantifiers * + ? {m} {m,} {m,n}, anchors ^ and $
 * (no MULTILINE: $ also matches before a final "\n"). \w, \d and \s are
 * Unicode-aware as in Python (utext.h). Matching is backtracking in
 * Python's order (leftmost, first alternative, greedy), so results are
 * identical to re's for these patterns. Anything else is rejected at
 * compile time.
 *
 *   osp_pyre *re = osp_pyre_compile("\\b\\d{6,}\\b");
 *   n = osp_pyre_sub(re, text, n, "", out);       // re.sub(pattern, "", text)
 */
#ifndef OSP_PYRE_H
#define OSP_PYRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct osp_pyre osp_pyre;

/* pattern: UTF-8, Python syntax. NULL with OSP_ERR_RUNTIME naming the
 * pattern if it uses something unsupported or is malformed. */
osp_pyre *osp_pyre_compile(const char *pattern);
void osp_pyre_free(osp_pyre *re);

/* Number of capturing groups; match results hold 2 * (groups + 1) offsets
 * (start, end of the whole match, then of each group; SIZE_MAX = unset). */
int osp_pyre_groups(const osp_pyre *re);
/* pattern.match(s, at): anchored at `at` (^, \b and lookbehind still see
 * the text before it). */
osp_status osp_pyre_match(const osp_pyre *re, const uint32_t *s, size_t n, size_t at,
                          size_t *caps, bool *matched);
/* pattern.search(s, at): the first match starting at or after `at`. */
osp_status osp_pyre_search(const osp_pyre *re, const uint32_t *s, size_t n, size_t at,
                           size_t *caps, bool *matched);

/* A growable code point string. */
typedef struct osp_cpbuf {
    uint32_t *cp;
    size_t len, cap;
} osp_cpbuf;

osp_status osp_cpbuf_append(osp_cpbuf *b, const uint32_t *cps, size_t n);
/* Makes room for at least n code points in total. */
osp_status osp_cpbuf_reserve(osp_cpbuf *b, size_t n);
void osp_cpbuf_free(osp_cpbuf *b);

/* re.sub(pattern, repl, text): every non-overlapping match, left to right,
 * replaced by repl (UTF-8; \1..\9 insert a group, an unmatched group
 * inserts nothing). The result replaces *out's content. */
osp_status osp_pyre_sub(const osp_pyre *re, const uint32_t *text, size_t n, const char *repl,
                        osp_cpbuf *out);

#endif
