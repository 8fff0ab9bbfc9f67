"""Ids are opaque labels: a column becomes int64 only when every value is an integer id
written canonically; otherwise it stays text, so distinct ids always stay distinct."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_INT64_MAX = str(np.iinfo(np.int64).max)  # 19 digits
_INT64_MIN_ABS = str(np.iinfo(np.int64).min)[1:]  # 19 digits


def id_text(values: pd.Series | np.ndarray) -> Any:
    """Ids as stripped text (numbers by their ``str``): an arrow ``large_string`` array.

    Arrow's vectorised string kernels keep a many-million-row id column fast.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pd.Series(values) if isinstance(values, np.ndarray) else values
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) == "string":
        obj = values.to_numpy(dtype=object)
    else:
        obj = values.astype(object).map(str).to_numpy(dtype=object)
    return pc.utf8_trim_whitespace(pa.array(obj, type=pa.large_string()))


def canonical_int(text: Any) -> np.ndarray:
    """Mask of the texts (``id_text``) that are an integer written canonically within int64.

    Canonical: an optional minus sign, digits without leading zeros ("0" itself, never
    "-0"), no exponent, no decimal point, no sign "+", no inner spaces.  Only such ids may
    become numbers: ``007`` and ``7``, ``1e3`` and ``1000`` are different labels.
    """
    import pyarrow.compute as pc

    ok = pc.match_substring_regex(text, r"^(?:0|-?[1-9][0-9]*)$")
    digits = pc.utf8_ltrim(text, characters="-")
    length = pc.utf8_length(digits)
    limit = pc.if_else(pc.starts_with(text, "-"), _INT64_MIN_ABS, _INT64_MAX)
    # 19 digits: the same length as the bound, so text order is numeric order
    fits = pc.or_(pc.less(length, 19), pc.and_(pc.equal(length, 19), pc.less_equal(digits, limit)))
    return pc.and_(ok, fits).to_numpy(zero_copy_only=False).astype(bool)


def parse_ids(values: pd.Series) -> np.ndarray:
    """Raw ids of one column: int64 when every value is an integer id, else strings.

    Integer columns stay int64 (uint64 values above the int64 range make the column text);
    float columns become int64 only when every value is integral and below 2**53 in
    magnitude (exact in a float); text columns only when every value is a canonical integer
    in the int64 range (``canonical_int``).  Nothing goes through float, so distinct ids
    always stay distinct.  Text ids are stripped of surrounding spaces.
    """
    import pyarrow as pa

    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    as_text = False
    if pd.api.types.is_bool_dtype(values.dtype):
        as_text = True
    elif pd.api.types.is_integer_dtype(values.dtype):
        if pd.api.types.is_unsigned_integer_dtype(values.dtype) and len(values):
            as_text = int(values.max()) > np.iinfo(np.int64).max
        if not as_text:
            return values.to_numpy(np.int64)
    elif pd.api.types.is_float_dtype(values.dtype):
        a = values.to_numpy(np.float64)
        if np.isfinite(a).all() and (a == np.floor(a)).all() and (np.abs(a) < 2.0**53).all():
            return a.astype(np.int64)
        as_text = True
    text = id_text(values)
    if not as_text and canonical_int(text).all():
        return text.cast(pa.int64()).to_numpy()  # exact: parsed as integers, never floats
    return text.to_numpy(zero_copy_only=False).astype(object)
