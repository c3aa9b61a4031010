#!/usr/bin/env python3
"""Writes ordered_dict_metadata.bin: a torch.save-style state dict made by
CPython's own pickle (protocol 2) and zipfile modules, with torch's classes
stubbed, so the C reader is checked against bytes it did not write; and
forbidden_global.bin, the same layout whose data.pkl calls os.system (a
reader must refuse it).

Like torch.save(model.state_dict()): an OrderedDict whose _metadata
attribute is pickled with BUILD; tensors pickle as
torch._utils._rebuild_tensor_v2(persistent storage id, offset, size, stride,
False, OrderedDict()). Unlike torch, zipfile does not align the data, and
the archive folder is "archive/". Storage i holds bytes (7*j + i) % 256.
Needs only the standard library: python3 make_cpython_archive.py DIR"""
import collections, io, pickle, sys, types, zipfile

torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")
sys.modules["torch"], sys.modules["torch._utils"] = torch, utils


def _rebuild_tensor_v2(*args):
    return args


_rebuild_tensor_v2.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
ITEM = {"FloatStorage": 4, "BFloat16Storage": 2, "HalfStorage": 2}
for name in ITEM:
    cls = type(name, (), {})
    cls.__module__ = "torch"
    setattr(torch, name, cls)


class Storage:
    def __init__(self, kind, numel):
        self.kind, self.numel = kind, numel


class Tensor:
    def __init__(self, kind, shape):
        self.shape, numel, stride = shape, 1, []
        for d in reversed(shape):
            stride.insert(0, numel)
            numel *= d
        self.stride, self.storage = stride, Storage(kind, numel)

    def __reduce_ex__(self, protocol):
        return (_rebuild_tensor_v2, (self.storage, 0, tuple(list(self.shape)),
                                     tuple(self.stride), False, collections.OrderedDict()))


def write_evil(out):
    pkl = b"\x80\x02cos\nsystem\nX\x0a\x00\x00\x00echo pwnedq\x00\x85R}\x86."
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")


def main(out):
    d = collections.OrderedDict()
    for i, (kind, shape) in enumerate([("FloatStorage", (2, 3)), ("BFloat16Storage", (4,)),
                                       ("HalfStorage", (2, 2, 2, 2))]):
        d["layer.%d.weight" % i] = Tensor(kind, shape)
    d._metadata = collections.OrderedDict({"": {"version": 1}, "enc": {"version": 1}})
    keys = {}

    def persistent_id(obj):
        if isinstance(obj, Storage):
            key = keys.setdefault(id(obj), str(len(keys)))
            return ("storage", getattr(torch, obj.kind), key, "cpu", obj.numel)
        return None

    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=2)
    pickler.persistent_id = persistent_id
    pickler.dump(d)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        for i, t in enumerate(d.values()):
            size = t.storage.numel * ITEM[t.storage.kind]
            z.writestr("archive/data/%d" % i, bytes((7 * j + i) % 256 for j in range(size)))
        z.writestr("archive/version", "3\n")


if __name__ == "__main__":
    main(sys.argv[1] + "/ordered_dict_metadata.bin")
    write_evil(sys.argv[1] + "/forbidden_global.bin")
