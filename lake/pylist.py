"""Arrow arrays from Python lists without importing pandas.

``pa.array`` looks for pandas at its first call (to tell a pandas object from a list) and so imports it:
about 0.25 s of CPU, a third of a ``ql sql``, ``ql tables`` or ``ql header`` process, which have no use for
pandas. :func:`column` builds the common lists (strings, integers, floats, with None) from their buffers
instead, with the type ``pa.array`` would give them.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def column(values: list[Any]) -> pa.Array:
    """``values`` as Arrow, of the type ``pa.array`` gives them (``string`` when there are none): lists of
    strings, integers or floats (with None) from their buffers, other lists through ``pa.array``."""
    import array
    import itertools

    kinds = {type(v) for v in values} - {type(None)}
    if values and not kinds:
        return pa.nulls(len(values))
    valid = [v is not None for v in values]
    bits = None
    if not all(valid):
        packed = bytearray((len(values) + 7) // 8)
        for i, ok in enumerate(valid):
            if ok:
                packed[i >> 3] |= 1 << (i & 7)
        bits = pa.py_buffer(bytes(packed))
    nulls = len(values) - sum(valid)
    try:
        if kinds <= {str}:
            data = [v.encode() if v is not None else b"" for v in values]
            offsets = array.array("i", itertools.accumulate((len(d) for d in data), initial=0))
            buffers = [bits, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(data))]
            return pa.Array.from_buffers(pa.string(), len(values), buffers, nulls)
        if kinds == {int}:
            ints = array.array("q", (v if v is not None else 0 for v in values))
            return pa.Array.from_buffers(pa.int64(), len(values), [bits, pa.py_buffer(ints.tobytes())], nulls)
        if kinds == {int, float} or kinds == {float}:
            floats = array.array("d", (v if v is not None else 0.0 for v in values))
            return pa.Array.from_buffers(
                pa.float64(), len(values), [bits, pa.py_buffer(floats.tobytes())], nulls
            )
    except OverflowError:  # beyond int32 offsets or int64 values: as pa.array takes them (or refuses)
        pass
    return pa.array(values)
