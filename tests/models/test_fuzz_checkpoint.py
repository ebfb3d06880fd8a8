"""Fuzzing the weight readers: any bytes give a model or a CheckpointError, never a crash."""

import contextlib
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.checkpoint import CheckpointError, load, load_official, read_flax_msgpack, save
from models.maskgit import MaskGIT, preset

FIXTURE = Path(__file__).parent.parent / "fixtures" / "official-small"
MSGPACK = (FIXTURE / "maskgit_checkpoint").read_bytes()


@pytest.fixture(scope="module")
def safetensors_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("fuzz") / "tiny.safetensors"
    torch.manual_seed(0)
    save(MaskGIT(preset("tiny")), path)
    return path.read_bytes()


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    b = bytearray(data)
    for pos, value in edits:
        b[pos % len(b)] = value
    return bytes(b[:cut] if cut is not None else b)


edits = st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), max_size=8)
cuts = st.one_of(st.none(), st.integers(0, 4096))
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_random_bytes_are_refused_cleanly(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("r") / "x"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        read_flax_msgpack(path)
    with pytest.raises(CheckpointError):
        load(path)


@SETTINGS
@given(e=edits, cut=cuts)
def test_mutated_msgpack_loads_or_is_refused(e, cut, tmp_path_factory):
    # Mutations near the header hit the structure; the head of the file is where it lives.
    head = [(p % 4096, v) for p, v in e]
    path = tmp_path_factory.mktemp("m") / "maskgit"
    path.write_bytes(mutate(MSGPACK, head, cut))
    with contextlib.suppress(CheckpointError):
        load_official(FIXTURE / "tokenizer_checkpoint", path)


@SETTINGS
@given(e=edits, cut=cuts)
def test_mutated_safetensors_loads_or_is_refused(e, cut, safetensors_bytes, tmp_path_factory):
    head = [(p % 4096, v) for p, v in e]
    path = tmp_path_factory.mktemp("s") / "m.safetensors"
    path.write_bytes(mutate(safetensors_bytes, head, cut))
    with contextlib.suppress(CheckpointError):
        load(path)
