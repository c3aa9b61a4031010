/* spiece.h — a SentencePiece unigram model (spiece.model) in C.
 *
 * Loads the serialized sentencepiece.ModelProto (pieces with scores and
 * types, trainer and normalizer specs), normalizes text with the model's
 * own precompiled charsmap (Darts-clone double array, longest match), and
 * segments it with SentencePiece's "optimized" unigram Viterbi, merging runs
 * of unknown pieces into one (or splitting them into byte pieces when the
 * model has byte fallback). Token-exact with sentencepiece 0.1.99; see
 * spec/t5.md §3.2–3.4.
 *
 * Text is UTF-8 given as (pointer, length); it may contain NUL bytes.
 * Invalid UTF-8 is not rejected: as in SentencePiece, each invalid byte
 * normalizes to U+FFFD. A loaded model is read-only and may be shared by
 * threads. */
#ifndef OSP_SPIECE_H
#define OSP_SPIECE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum osp_spiece_type {
    OSP_SPIECE_NORMAL = 1,
    OSP_SPIECE_UNKNOWN = 2,
    OSP_SPIECE_CONTROL = 3,
    OSP_SPIECE_USER_DEFINED = 4,
    OSP_SPIECE_UNUSED = 5,
    OSP_SPIECE_BYTE = 6,
} osp_spiece_type;

typedef struct osp_spiece osp_spiece;

/* Reads a spiece.model file (OSP_ERR_IO if unreadable, OSP_ERR_DATA naming
 * the file if malformed or not a unigram model). */
osp_spiece *osp_spiece_load(const char *path);
/* The same from bytes in memory; `label` names them in errors. */
osp_spiece *osp_spiece_parse(const void *data, size_t len, const char *label);
void osp_spiece_free(osp_spiece *sp);

int32_t osp_spiece_size(const osp_spiece *sp); /* number of pieces */
int32_t osp_spiece_unk_id(const osp_spiece *sp);
/* Piece i as UTF-8 (not NUL-terminated: *len bytes); NULL if out of range. */
const char *osp_spiece_piece(const osp_spiece *sp, int32_t id, size_t *len);
float osp_spiece_score(const osp_spiece *sp, int32_t id);
osp_spiece_type osp_spiece_piece_type(const osp_spiece *sp, int32_t id);

/* The normalized form of a text (NUL-terminated, malloc'd, *len bytes):
 * spaces escaped as U+2581, dummy prefix added, extra whitespace removed,
 * as the model's normalizer_spec says. NULL on out-of-memory only. */
char *osp_spiece_normalize(const osp_spiece *sp, const char *text, size_t text_len,
                           size_t *len);

/* The segmentation of a text. Piece i is normalized[begin[i] .. begin[i+1])
 * with id ids[i]; a run of unknown characters is one piece. With byte
 * fallback an unknown character becomes several byte pieces, of which all
 * but the last cover no bytes (begin[i] == begin[i+1]). */
typedef struct osp_spiece_encoding {
    char *normalized; /* NUL-terminated */
    size_t normalized_len;
    size_t n;       /* number of pieces */
    int32_t *ids;   /* n ids */
    size_t *begin;  /* n + 1 byte offsets into normalized */
} osp_spiece_encoding;

/* Fills *enc (free it with osp_spiece_encoding_free, also after a failure). */
osp_status osp_spiece_encode(const osp_spiece *sp, const char *text, size_t text_len,
                             osp_spiece_encoding *enc);
void osp_spiece_encoding_free(osp_spiece_encoding *enc);

#endif
