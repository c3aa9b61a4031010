/* torch_pickle.h — PyTorch checkpoints (torch.save of a state dict, e.g.
 * Hugging Face pytorch_model-0000N-of-0000M.bin) read without Python, and
 * written the same way.
 *
 * Format: a zip archive (entries stored, not compressed; zip_stored.h)
 * holding <archive>/data.pkl, a pickle (protocol 2) of a dict name ->
 * tensor, and one entry <archive>/data/<key> per storage with its raw
 * little-endian bytes. Each tensor pickles as
 *   torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
 *                                   requires_grad, OrderedDict()[, metadata])
 * where `storage` is a persistent id ('storage', torch.<T>Storage, key,
 * location, numel) naming the data/<key> entry.
 *
 * Security: a pickle is a program; running an arbitrary one runs arbitrary
 * code. The unpickler here is a small machine that knows only the opcodes a
 * state dict uses (PROTO FRAME EMPTY_DICT EMPTY_TUPLE MARK STOP NONE
 * NEWTRUE NEWFALSE BININT BININT1 BININT2 LONG1 BINUNICODE SHORT_BINUNICODE
 * BINUNICODE8 TUPLE TUPLE1-3 GLOBAL STACK_GLOBAL REDUCE BINPERSID SETITEM
 * SETITEMS BUILD BINPUT LONG_BINPUT MEMOIZE BINGET LONG_BINGET) and calls
 * only these globals: collections.OrderedDict (empty), torch._utils.
 * _rebuild_tensor_v2 and _rebuild_parameter, and the storage types
 * torch.{Float,Half,BFloat16,Double,Long,Int,Byte}Storage (as persistent
 * ids only). BUILD is accepted on a dict only (its attribute state, such as
 * a state dict's _metadata, is ignored). Any other opcode or global is
 * rejected with an OSP_ERR_DATA error naming it and its byte offset. Every
 * storage must exist in the archive with exactly numel elements, and every
 * tensor's offset, sizes and strides must stay inside its storage.
 *
 * Tensors come back as views of the mmapped file in their stored dtype
 * (copy-on-write pages, like safetensors.h); a tensor that is not
 * contiguous or not aligned to its element size is returned as a copy. */
#ifndef OSP_TORCH_PICKLE_H
#define OSP_TORCH_PICKLE_H

#include <stdbool.h>

#include "core/tensor.h"
#include "safetensors.h" /* osp_st_entry */

typedef struct osp_torch_file osp_torch_file;

osp_torch_file *osp_torch_open(const char *path);
/* From memory (the buffer must outlive the handle; tensors are copies). */
osp_torch_file *osp_torch_open_memory(const void *data, size_t size, const char *label);
void osp_torch_close(osp_torch_file *f);

/* True when the file starts like a zip archive (the torch.save format);
 * false for anything else, including unreadable files. */
bool osp_torch_is_archive(const char *path);

size_t osp_torch_count(const osp_torch_file *f);
/* i-th tensor in the pickle's order. offset is the file offset of the
 * first element, nbytes = numel x element size. */
const osp_st_entry *osp_torch_entry(const osp_torch_file *f, size_t i);
const osp_st_entry *osp_torch_find(const osp_torch_file *f, const char *name);
/* The tensor in its stored dtype (pool-owned), or NULL + error if absent. */
osp_tensor *osp_torch_get(osp_torch_file *f, const char *name);

/* Writes host tensors as torch.save(dict) writes them (zip of data.pkl,
 * byteorder, data/<key>, version; 64-byte aligned data; pickle protocol 2
 * with the pickler's memo), atomically (temp + rename). Each tensor gets
 * its own storage. With OSP_TORCH_SAVE_ZIP64 the ZIP64 fields are written
 * even where the sizes do not need them (for tests of the reader). */
enum { OSP_TORCH_SAVE_ZIP64 = 1 };
osp_status osp_torch_save(const char *path, int n, const char *const *names,
                          osp_tensor *const *tensors, unsigned flags);

#endif
