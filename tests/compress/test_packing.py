import pytest
import torch

from search.compress.packing import pack_bits, pack_mask, unpack_bits, unpack_mask


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 257, 1001])
def test_round_trip_and_exact_size(bits, n):
    codes = torch.randint(0, 2**bits, (n,))
    packed = pack_bits(codes, bits)
    assert packed.dtype == torch.uint8
    assert packed.numel() == (n * bits + 7) // 8
    assert torch.equal(unpack_bits(packed, bits, n), codes.to(torch.int32))


def test_bit_order_is_lsb_first_across_bytes():
    # 3-bit codes 1, 2, 7: bits 100 010 111 -> byte0 = 1 | 2<<3 | (7&3)<<6 = 0xD1, byte1 = 7>>2 = 1
    assert pack_bits(torch.tensor([1, 2, 7]), 3).tolist() == [0xD1, 0x01]


def test_mask_round_trip():
    mask = torch.rand(5, 13) > 0.5
    assert torch.equal(unpack_mask(pack_mask(mask), (5, 13)), mask)
