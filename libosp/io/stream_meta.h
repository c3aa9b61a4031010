/* stream_meta.h — osp_meta <-> msgpack (internal to the stream reader and
 * writer). */
#ifndef OSP_STREAM_META_H
#define OSP_STREAM_META_H

#include <msgpack.h>

#include "stream.h"

/* Decodes a msgpack map into *m (initialised here). Values: str, int,
 * float, bool, or arrays of those. On error *m is left empty and the osp
 * error names the offending key. */
osp_status osp_meta_from_msgpack(osp_meta *m, const msgpack_object *o);
/* "an int", "a str", "nil", ... for error messages. */
const char *osp_msgpack_kind(const msgpack_object *o);
/* Packs m as a msgpack map, validating each value first. */
osp_status osp_meta_pack(msgpack_packer *pk, const osp_meta *m);

#endif
