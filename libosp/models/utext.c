/* utext.c — see utext.h. */
#include "utext.h"

#include <stdlib.h>

#include "unicode_tables.h"

size_t osp_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t b = s[0];
    size_t len;
    uint32_t c;
    uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
        c = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        c = b & 0x0f;
        if (b == 0xe0)
            lo = 0xa0; /* no overlong forms */
        if (b == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        c = b & 0x07;
        if (b == 0xf0)
            lo = 0x90;
        if (b == 0xf4)
            hi = 0x8f; /* nothing above U+10FFFF */
    } else {
        *cp = OSP_REPLACEMENT_CHAR;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        uint8_t lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xbf;
        if (i >= n || s[i] < lo_i || s[i] > hi_i) {
            *cp = OSP_REPLACEMENT_CHAR; /* the maximal valid prefix is one error */
            return i;
        }
        c = c << 6 | (s[i] & 0x3f);
    }
    *cp = c;
    return len;
}

size_t osp_utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

uint32_t *osp_utf8_to_cps(const char *s, size_t len, size_t *n)
{
    uint32_t *out = malloc((len + 1) * sizeof *out);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len;)
        i += osp_utf8_decode((const uint8_t *)s + i, len - i, &out[k++]);
    *n = k;
    return out;
}

char *osp_cps_to_utf8(const uint32_t *cps, size_t n, size_t *len)
{
    char *out = malloc(4 * n + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += osp_utf8_encode(cps[i], out + k);
    out[k] = 0;
    if (len)
        *len = k;
    return out;
}

static bool in_ranges(const osp_cp_range *r, size_t count, uint32_t cp)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].first)
            hi = mid;
        else if (cp > r[mid].last)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

bool osp_py_isspace(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 ||
           cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

bool osp_py_isword(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
               (cp >= 'A' && cp <= 'Z') || cp == '_';
    return in_ranges(osp_word_ranges, osp_word_ranges_count, cp);
}

bool osp_py_isdecimal(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    return in_ranges(osp_decimal_ranges, osp_decimal_ranges_count, cp);
}

uint32_t osp_py_tolower(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    size_t lo = 0, hi = osp_lower_runs_count; /* last run starting at or before cp */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (osp_lower_runs[mid].first <= cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return cp;
    const osp_case_run *r = &osp_lower_runs[lo - 1];
    uint32_t k = cp - r->first;
    if (k % r->stride == 0 && k / r->stride < r->count)
        return (uint32_t)((int64_t)cp + r->delta);
    return cp;
}

/* Python's Final_Sigma test for the capital sigma at cps[i]: a cased
 * character before it and none after it, skipping case-ignorable ones. */
static bool final_sigma(const uint32_t *cps, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && in_ranges(osp_case_ignorable_ranges, osp_case_ignorable_ranges_count,
                              cps[j - 1]))
        j--;
    if (j == 0 || !in_ranges(osp_cased_ranges, osp_cased_ranges_count, cps[j - 1]))
        return false;
    for (j = i + 1; j < n; j++)
        if (!in_ranges(osp_case_ignorable_ranges, osp_case_ignorable_ranges_count, cps[j]))
            return !in_ranges(osp_cased_ranges, osp_cased_ranges_count, cps[j]);
    return true;
}

size_t osp_py_lower(const uint32_t *cps, size_t n, uint32_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        if (c == 0x130) { /* İ lower-cases to i + combining dot above */
            out[k++] = 'i';
            out[k++] = 0x307;
        } else if (c == 0x3a3) { /* Σ at the end of a word becomes final ς */
            out[k++] = final_sigma(cps, n, i) ? 0x3c2 : 0x3c3;
        } else {
            out[k++] = osp_py_tolower(c);
        }
    }
    return k;
}
