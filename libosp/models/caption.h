/* caption.h — the reference's caption cleaning (spec/t5.md §2).
 *
 *   inference  VideoGenPipeline._clean_caption, applied twice (what
 *              sample_t2v.py does; the default of osp-textenc)
 *   training   clean_caption of opensora/utils/utils.py, twice (the same
 *              steps plus a strip() after ftfy)
 *   lower      text.lower().strip() (the pipeline with clean_caption=False)
 *   none       the text unchanged
 *
 * Exact for the reference on text that ftfy leaves alone (printable text
 * that is not mojibake). Known differences, all in step 21 (ftfy.fix_text):
 * osp applies ftfy's character-level fixers (C1 controls as windows-1252,
 * Latin ligatures, full-/half-width forms, curly quotes, line breaks,
 * surrogates, terminal escapes, control characters) but neither its
 * mojibake repair (fix_encoding) nor its final NFC normalization. Invalid
 * UTF-8 in the input is read as U+FFFD per ill-formed sequence (Python
 * never sees such input). */
#ifndef OSP_CAPTION_H
#define OSP_CAPTION_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef enum osp_clean_mode {
    OSP_CLEAN_INFERENCE,
    OSP_CLEAN_TRAINING,
    OSP_CLEAN_LOWER,
    OSP_CLEAN_NONE,
} osp_clean_mode;

/* "inference", "training", "lower", "none". */
bool osp_clean_mode_parse(const char *name, osp_clean_mode *mode);
const char *osp_clean_mode_name(osp_clean_mode mode);

/* The cleaned text, malloc'd and NUL-terminated (*out_len bytes, may be
 * NULL). NULL on error: OSP_ERR_DATA when the reference itself would
 * reject the text (its HTML parser raises), OSP_ERR_NOMEM. */
char *osp_caption_clean(const char *text, size_t len, osp_clean_mode mode, size_t *out_len);

#endif
