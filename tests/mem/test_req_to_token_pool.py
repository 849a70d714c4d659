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


def test_write_each_appends_one_slot_per_row_and_checks_bounds():
    pool = ReqToTokenPool(4, 8, torch.device("cpu"))
    pool.write(1, 0, torch.tensor([5, 6]))
    pool.write(3, 0, torch.tensor([7]))
    pool.write_each([1, 3], [2, 1], torch.tensor([10, 11]))
    assert pool.req_to_token[1, :3].tolist() == [5, 6, 10]
    assert pool.req_to_token[3, :2].tolist() == [7, 11]
    with pytest.raises(ValueError, match="max_context_len"):
        pool.write_each([0], [8], torch.tensor([1]))
