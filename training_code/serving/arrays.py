"""NumPy's formats: `.npy` and `.npz` request bodies to feature rows (answers/`Answer` writes `.npy` answers).

An `.npy` body is read in place (the array is a view of the body, not a copy of it), and nothing is unpickled:
object arrays are refused, as `np.load(allow_pickle=False)` refuses them.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from training_code.contract import NPY
from training_code.serving.errors import PayloadError
from training_code.serving.schema import Schema

# An .npz body may hold one array, or several of which this one is the rows.
NPZ_ROWS_NAME = "instances"
NUMERIC_KINDS = "iuf"
UNPACKED_PER_PACKED = 10
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
# The longest header the format allows (version 2.0: a 4-byte length) is far above any real one.
_HEADER_PREFIX_BYTES = 64 * 1024


def read(body: bytes | bytearray, content_type: str, schema: Schema) -> np.ndarray:
    """Float64 rows of the model's width from an .npy or .npz body."""
    array = _npy(body) if content_type == NPY else _npz(body)
    return _rows(array, schema)


def _npy(body: bytes | bytearray) -> np.ndarray:
    prefix = io.BytesIO(bytes(body[:_HEADER_PREFIX_BYTES]))
    try:
        version = np.lib.format.read_magic(prefix)
        reader = _HEADER_READERS.get(version)
        if reader is None:
            raise ValueError(f"format version {version} is not supported")
        shape, fortran_order, dtype = reader(prefix)
    except ValueError as error:
        raise PayloadError(f"the body is not a NumPy .npy array ({error})") from None
    _check_dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    offset = prefix.tell()
    if len(body) - offset != count * dtype.itemsize:
        raise PayloadError(
            f"the .npy header says {shape} of {dtype} ({count * dtype.itemsize} bytes), the body holds "
            f"{len(body) - offset} bytes after it"
        )
    flat = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape, order="F" if fortran_order else "C")


def _npz(body: bytes | bytearray) -> np.ndarray:
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        members = {member.filename.removesuffix(".npy"): member for member in archive.infolist()}
    except zipfile.BadZipFile as error:
        raise PayloadError(f"the body is not a NumPy .npz archive ({error})") from None
    if len(members) == 1:
        ((name, member),) = members.items()
    elif NPZ_ROWS_NAME in members:
        name, member = NPZ_ROWS_NAME, members[NPZ_ROWS_NAME]
    else:
        names = sorted(members)[:10]
        raise PayloadError(f"the .npz archive holds {names}: send one array, or name the rows {NPZ_ROWS_NAME!r}")
    # A compressed archive may unpack to far more than it weighs: bounded to what real rows compress from.
    if member.file_size > UNPACKED_PER_PACKED * len(body) + _HEADER_PREFIX_BYTES:
        raise PayloadError(f"the .npz array {name!r} unpacks to {member.file_size} bytes; too large", 413)
    try:
        return _npy(archive.read(member))
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise PayloadError(f"the .npz archive is damaged ({error})") from None


def _check_dtype(dtype: np.dtype) -> None:
    if dtype.hasobject or dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
        raise PayloadError(f"the array holds {dtype} values; send numbers (integers or floats)", 415)


def _rows(array: np.ndarray, schema: Schema) -> np.ndarray:
    if not schema.numeric:
        names = ", ".join(schema.encoding.categorical[:5])
        raise PayloadError(f"the model has text columns ({names}), which arrays cannot carry; send CSV or JSON", 415)
    width = len(schema.feature_names)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != width:
        raise PayloadError(f"the array's shape is {array.shape}; the model takes rows of {width} values")
    if array.shape[0] == 0:
        raise PayloadError("the array holds no rows; send at least one")
    matrix = array.astype(np.float64)
    # NaN is a missing value, filled in as training did where training had missing values in that column.
    bad = np.isinf(matrix) | (np.isnan(matrix) & np.isnan(schema.encoding.fills))
    if bad.any():
        row, column = (int(index) + 1 for index in np.argwhere(bad)[0])
        raise PayloadError(
            f"row {row}, {schema.describe_column(column)}: {matrix[row - 1, column - 1]} is not a finite number"
            + (" (training had no missing values in this column)" if np.isnan(matrix[row - 1, column - 1]) else ""),
            row=row,
            column=column,
        )
    return matrix
