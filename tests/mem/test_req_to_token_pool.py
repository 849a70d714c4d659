import pytest
import torch
from sglang.mem import ReqToTokenPool

CPU = torch.device("cpu")


def test_shape_dtype_and_rows():
    pool = ReqToTokenPool(3, 16, CPU)
    assert pool.req_to_token.shape == (3, 16)
    assert pool.req_to_token.dtype == torch.int64
    rows = [pool.alloc() for _ in range(3)]
    assert rows == [0, 1, 2]
    assert pool.available_size() == 0
    assert pool.alloc() is None


def test_free_reuse_and_double_free():
    pool = ReqToTokenPool(2, 8, CPU)
    a = pool.alloc()
    pool.free(a)
    assert pool.available_size() == 2
    with pytest.raises(ValueError, match="double free"):
        pool.free(a)
    with pytest.raises(ValueError, match="out of range"):
        pool.free(5)
    b = pool.alloc()
    assert b == a


def test_write():
    pool = ReqToTokenPool(2, 8, CPU)
    row = pool.alloc()
    pool.write(row, 2, torch.tensor([7, 8, 9]))
    assert pool.req_to_token[row, 2:5].tolist() == [7, 8, 9]
    with pytest.raises(ValueError):
        pool.write(row, 6, torch.tensor([1, 2, 3]))
