/* unicode_tables.h — Unicode and HTML data generated from Python's
 * unicodedata and html modules by gen_unicode_tables.py (see there). */
#ifndef OSP_UNICODE_TABLES_H
#define OSP_UNICODE_TABLES_H

#include <stddef.h>
#include <stdint.h>

typedef struct osp_cp_range {
    uint32_t first, last; /* inclusive */
} osp_cp_range;

/* count code points first, first + stride, … map to cp + delta. */
typedef struct osp_case_run {
    uint32_t first;
    uint32_t count;
    uint32_t stride;
    int32_t delta;
} osp_case_run;

extern const osp_cp_range osp_word_ranges[];    /* str.isalnum() or '_' */
extern const size_t osp_word_ranges_count;
extern const osp_cp_range osp_decimal_ranges[]; /* str.isdecimal() */
extern const size_t osp_decimal_ranges_count;
/* Final_Sigma context of str.lower(): case-ignorable characters, and cased
 * ones among the others. */
extern const osp_cp_range osp_case_ignorable_ranges[];
extern const size_t osp_case_ignorable_ranges_count;
extern const osp_cp_range osp_cased_ranges[];
extern const size_t osp_cased_ranges_count;
extern const osp_case_run osp_lower_runs[];     /* str.lower(), 1:1 mappings, sorted */
extern const size_t osp_lower_runs_count;

typedef struct osp_html_entity {
    const char *name;  /* as in html.entities.html5, e.g. "amp;" or "amp" */
    const char *value; /* UTF-8 */
} osp_html_entity;

extern const osp_html_entity osp_html_entities[]; /* sorted by name (bytes) */
extern const size_t osp_html_entities_count;
/* windows-1252 decoding of bytes 0x80..0x9F; 0 where the codec has none. */
extern const uint16_t osp_cp1252_80_9f[32];
/* html.unescape: numeric references replaced by another character
 * ({number, replacement}, sorted), and code points it deletes. */
extern const uint32_t osp_html_invalid_charrefs[][2];
extern const size_t osp_html_invalid_charrefs_count;
extern const osp_cp_range osp_html_invalid_codepoints[];
extern const size_t osp_html_invalid_codepoints_count;
/* ftfy's fix_character_width: full- and half-width forms and U+3000 to
 * their NFKC equivalents ({from, to, second to or 0}, sorted). */
extern const uint32_t osp_width_map[][3];
extern const size_t osp_width_map_count;

#endif
