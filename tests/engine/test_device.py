"""Device names and precision (engine.device): which CPUs get bf16 autocast, the thread spin limit."""

from __future__ import annotations

import pytest
import torch

from engine.device import autocast_dtype, check_device_name, cpu_flags, cpu_has_native_bf16
from engine.errors import InvalidOptionError

SAPPHIRE_RAPIDS = "flags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
ZEN_4 = "flags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n"
ICE_LAKE = "flags\t\t: fpu avx512f avx512_vnni\n"


def test_native_bf16_means_amx_or_avx512_bf16():
    assert cpu_has_native_bf16(SAPPHIRE_RAPIDS) and cpu_has_native_bf16(ZEN_4)
    assert not cpu_has_native_bf16(ICE_LAKE) and not cpu_has_native_bf16("")
    assert cpu_flags(ICE_LAKE) == {"flags", ":", "fpu", "avx512f", "avx512_vnni"}


def test_this_cpu_autocasts_to_bf16_exactly_when_it_has_native_bf16():
    expected = torch.bfloat16 if cpu_has_native_bf16() else None
    assert autocast_dtype(torch.device("cpu")) == expected


def test_device_names_are_checked_without_the_hardware():
    assert check_device_name("CUDA:1") == "cuda:1" and check_device_name("auto") == "auto"
    with pytest.raises(InvalidOptionError, match="device must be one of"):
        check_device_name("tpu")
