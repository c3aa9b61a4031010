/* utext.h — Unicode text as Python's str sees it, for the tokenizer's HF
 * layer and the caption cleaner: UTF-8 decoding with Python's replacement
 * rule, and the character classes of str.isspace(), re's \w and \d, and
 * str.lower(). Tables in unicode_tables.c (Unicode 14, Python 3.11). */
#ifndef OSP_UTEXT_H
#define OSP_UTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OSP_REPLACEMENT_CHAR 0xfffdu

/* Decodes one character of s[0..n), n > 0; returns the bytes consumed. An
 * ill-formed sequence gives U+FFFD and consumes its maximal valid prefix
 * (at least one byte), as Python's bytes.decode("utf-8", "replace"). */
size_t osp_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Writes cp as UTF-8 (1–4 bytes) into out; returns the length. */
size_t osp_utf8_encode(uint32_t cp, char out[4]);

/* Decodes a whole string into a malloc'd array of code points (*n of
 * them); NULL on out-of-memory. */
uint32_t *osp_utf8_to_cps(const char *s, size_t len, size_t *n);
/* Encodes code points into a malloc'd NUL-terminated UTF-8 string. */
char *osp_cps_to_utf8(const uint32_t *cps, size_t n, size_t *len);

bool osp_py_isspace(uint32_t cp);   /* str.isspace(), re \s */
bool osp_py_isword(uint32_t cp);    /* str.isalnum() or '_', re \w */
bool osp_py_isdecimal(uint32_t cp); /* str.isdecimal(), re \d */
/* Simple lower-case mapping (str.lower() except its final-sigma and
 * multi-character rules, which osp_py_lower handles). */
uint32_t osp_py_tolower(uint32_t cp);
/* str.lower() of cps[0..n) into out (room for 2n code points); returns the
 * new length. */
size_t osp_py_lower(const uint32_t *cps, size_t n, uint32_t *out);

#endif
