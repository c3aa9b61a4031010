/* t5_tokenizer.h — HF T5Tokenizer (transformers 4.39.1, slow, legacy mode)
 * over a SentencePiece model; spec/t5.md §3.1.
 *
 * The literal strings <pad>, </s>, <unk> and <extra_id_0> … <extra_id_99>
 * are split out of the text and become their ids directly (whitespace next
 * to an <extra_id_N> is dropped); every other segment goes through
 * SentencePiece on its own. osp_t5_encode then truncates to max_length − 1
 * ids, appends </s> unless the ids already end with it, and right-pads with
 * <pad> to max_length, with the attention mask 1 on every non-pad position.
 *
 *   osp_t5_tokenizer *tok = osp_t5_tokenizer_load("DeepFloyd/t5-v1_1-xxl");
 *   int64_t ids[300], mask[300];
 *   osp_t5_encode(tok, text, strlen(text), 300, ids, mask);
 */
#ifndef OSP_T5_TOKENIZER_H
#define OSP_T5_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "spiece.h"

#define OSP_T5_EXTRA_IDS 100 /* <extra_id_0> … <extra_id_99> */

typedef struct osp_t5_tokenizer osp_t5_tokenizer;

/* path: a model folder holding spiece.model, or the spiece.model file. */
osp_t5_tokenizer *osp_t5_tokenizer_load(const char *path);
void osp_t5_tokenizer_free(osp_t5_tokenizer *tok);

const osp_spiece *osp_t5_tokenizer_spiece(const osp_t5_tokenizer *tok);
/* Ids the tokenizer can produce: pieces + 100 sentinels (32100 for T5). */
int64_t osp_t5_vocab_size(const osp_t5_tokenizer *tok);
int64_t osp_t5_pad_id(const osp_t5_tokenizer *tok);
int64_t osp_t5_eos_id(const osp_t5_tokenizer *tok);

/* All ids of a text, without EOS, truncation or padding (malloc'd; *ids
 * may be NULL when *n is 0). */
osp_status osp_t5_tokenize(const osp_t5_tokenizer *tok, const char *text, size_t len,
                           int64_t **ids, size_t *n);

/* ids and mask: max_length (>= 1) entries each, filled as HF does with
 * truncation=True, padding="max_length", add_special_tokens=True. */
osp_status osp_t5_encode(const osp_t5_tokenizer *tok, const char *text, size_t len,
                         int64_t max_length, int64_t *ids, int64_t *mask);

#endif
