"""Rows of a cached .npy file by position, written and read with pwrite/pread.

A memory map would do the same, but every page it touches counts in the process's resident
memory until the kernel evicts it: streaming a data set larger than RAM through one would make
memory grow with the data after all. Through pread/pwrite the pages stay in the OS's cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class Rows:
    """One .npy file of shape (rows, ...): row i at `offset + i * row_bytes`."""

    def __init__(self, path: str | Path, dtype, shape: tuple[int, ...], offset: int, writable: bool = False):
        self.path, self.dtype, self.shape, self.offset = Path(path), np.dtype(dtype), tuple(shape), offset
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)

    @classmethod
    def create(cls, path: Path, dtype, shape: tuple[int, ...]) -> "Rows":
        """A new file: the .npy header, then every data block reserved now (a full disk is an
        OSError here, not a failure on some later write)."""
        with open(path, "wb") as f:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                      "shape": tuple(shape)}
            np.lib.format.write_array_header_1_0(f, header)
            offset = f.tell()
        rows = cls(path, dtype, shape, offset, writable=True)
        os.posix_fallocate(rows.fd, 0, offset + shape[0] * rows.row_bytes)
        return rows

    @classmethod
    def open(cls, path: Path, writable: bool = False) -> "Rows":
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
            offset = f.tell()
        return cls(path, dtype, shape, offset, writable)

    @classmethod
    def of(cls, array: np.memmap) -> "Rows":
        """The file behind a memory-mapped array (np.load(..., mmap_mode="r"))."""
        return cls(array.filename, array.dtype, array.shape, array.offset)

    def write(self, row: int, values: np.ndarray) -> None:
        data = np.ascontiguousarray(values, dtype=self.dtype)
        os.pwrite(self.fd, data.tobytes(), self.offset + row * self.row_bytes)

    def read_range(self, start: int, stop: int) -> np.ndarray:
        data = os.pread(self.fd, (stop - start) * self.row_bytes, self.offset + start * self.row_bytes)
        return np.frombuffer(data, self.dtype).reshape(stop - start, *self.shape[1:])

    def read(self, rows: np.ndarray) -> np.ndarray:
        """These rows, in this order; runs of consecutive rows are read in one call each."""
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
        for run in np.split(np.arange(len(rows)), breaks):
            if len(run):
                out[order[run]] = self.read_range(int(ordered[run[0]]), int(ordered[run[-1]]) + 1)
        return out

    def sync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)
