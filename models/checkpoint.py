"""Reading and writing MaskGIT weights.

Our format is one `.safetensors` file per model with the full `MaskGITConfig` as JSON in the
metadata, so a file describes itself. The official Google checkpoints are Flax msgpack blobs
(`{'params': ...}` with arrays as msgpack ext type 1); they are read with msgpack + numpy, no JAX.
Nothing here unpickles: foreign torch files go through `torch.load(weights_only=True)` only.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from models.maskgit import MaskGIT, MaskGITConfig
from models.tokenizer import ResBlock, TokenizerConfig
from models.transformer import TransformerConfig

FORMAT = "maskgit-editor/1"


class CheckpointError(ValueError):
    """A weights file that cannot be used; the message names the file and the problem."""


# ----------------------------------------------------------------------------- our format


def save(model: MaskGIT, path: str | Path, dtype: torch.dtype = torch.float32) -> None:
    """Write `model` with its config. `dtype` lets the embedded model ship in half precision."""
    tensors = {
        k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
        for k, v in model.state_dict().items()
    }
    meta = {"format": FORMAT, "config": json.dumps(model.config.to_dict())}
    if model.trained_classes is not None:
        meta["trained_classes"] = json.dumps(sorted(model.trained_classes))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written in a fresh private folder next to the target (mkdtemp: 0700, unpredictable), then
    # renamed over it: a half-written file never has the target's name, and nothing planted in
    # a shared folder can redirect the write through a symlink.
    private = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file(tensors, str(private / "weights"), metadata=meta)
        os.chmod(private / "weights", 0o644)
        os.replace(private / "weights", path)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def read_config(path: str | Path) -> MaskGITConfig:
    """The config stored in one of our files, without reading the weights."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable .safetensors file ({e})") from e
    if "config" not in meta:
        raise CheckpointError(f"{path}: no MaskGIT config in the file's metadata")
    try:
        config = MaskGITConfig.from_dict(json.loads(meta["config"]))
    except Exception as e:  # any JSON value may stand anywhere: wrong types raise many kinds
        raise CheckpointError(f"{path}: invalid config in metadata "
                              f"({type(e).__name__}: {e})") from e
    check_config(config, str(path))
    return config


# What any MaskGIT this app can run stays inside (the official 512 px model: 24 layers, hidden
# 768, f = 16, 1025 positions). A file declaring more would build millions of modules, or
# allocate beyond any machine, before its tensors were even compared with the config.
LIMITS = {
    "tokenizer.filters": 1024, "tokenizer.channel_multipliers": 16,
    "tokenizer.levels": 6, "tokenizer.num_res_blocks": 8, "tokenizer.embedding_dim": 4096,
    "tokenizer.codebook_size": 1 << 16, "tokenizer.image_size": 1024,
    "tokenizer.norm_groups": 1024, "transformer.num_classes": 1 << 16,
    "transformer.hidden_size": 4096, "transformer.num_layers": 64,
    "transformer.num_heads": 128, "transformer.intermediate_size": 16384,
    "transformer.max_positions": 1 + (1024 // 4) ** 2,
}


def _min_parameters(config: MaskGITConfig) -> int:
    """A lower bound of the parameter count (the largest matrices only, biases and norms left
    out), from the config alone."""
    t, m = config.tokenizer, config.transformer
    h = m.hidden_size
    transformer = ((m.vocab_size + m.max_positions) * h
                   + m.num_layers * (4 * h * h + 2 * h * m.intermediate_size))
    # Every ResBlock has at least one 3x3 conv from its width to its width, encoder and decoder.
    tokenizer = t.codebook_size * t.embedding_dim + 2 * t.num_res_blocks * sum(
        9 * (t.filters * k) ** 2 for k in t.channel_multipliers)
    return transformer + tokenizer


def check_config(config: MaskGITConfig, source: str) -> None:
    """Refuse a config outside `LIMITS` (or not even well formed) before any module or tensor
    exists; raises CheckpointError naming the field."""
    t, m = config.tokenizer, config.transformer

    def bad(field: str, value: object, why: str) -> CheckpointError:
        return CheckpointError(f"{source}: config {field} = {str(value)[:40]} {why}")

    def whole(field: str, value: object, low: int = 1) -> int:
        if type(value) is not int or not low <= value <= LIMITS.get(field, value):
            raise bad(field, value, f"is not a whole number in {low}..{LIMITS.get(field)}")
        return value

    if not isinstance(config.name, str) or len(config.name) > 200:
        raise bad("name", config.name, "is not a short text")
    if not isinstance(t.channel_multipliers, tuple) or not 1 <= len(t.channel_multipliers) <= (
            LIMITS["tokenizer.levels"]):
        raise bad("tokenizer.channel_multipliers", t.channel_multipliers,
                  f"must have 1..{LIMITS['tokenizer.levels']} levels")
    for v in t.channel_multipliers:
        whole("tokenizer.channel_multipliers", v)
    for name in ("filters", "num_res_blocks", "embedding_dim", "codebook_size", "image_size",
                 "norm_groups"):
        whole(f"tokenizer.{name}", getattr(t, name))
    if t.image_size % t.downsample:
        raise bad("tokenizer.image_size", t.image_size, f"is not a multiple of {t.downsample}")
    whole("transformer.num_classes", m.num_classes, 0)
    for name in ("codebook_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                 "max_positions"):
        whole(f"transformer.{name}", getattr(m, name))
    if m.hidden_size % m.num_heads:
        raise bad("transformer.num_heads", m.num_heads, f"does not divide {m.hidden_size}")
    if not isinstance(m.layer_norm_eps, float | int) or not 0 < m.layer_norm_eps < 1:
        raise bad("transformer.layer_norm_eps", m.layer_norm_eps, "is not in (0, 1)")


def load(path: str | Path, device: str | torch.device = "cpu") -> MaskGIT:
    """Load one of our .safetensors files (weights are cast to float32)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    config = read_config(path)
    size = path.stat().st_size
    if _min_parameters(config) > size:  # even at one byte per weight: not worth building
        raise CheckpointError(f"{path}: its config declares at least "
                              f"{_min_parameters(config):,} weights, more than its "
                              f"{size:,} bytes can hold")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: cannot read weights ({e})") from e
    model = _empty(config)
    _assign(model, tensors, str(path))
    model.trained_classes = read_trained_classes(path, config)
    return model.to(device).eval()


def read_trained_classes(path: str | Path, config: MaskGITConfig) -> tuple[int, ...] | None:
    """The classes the file says its transformer was trained on (None when it does not say)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        raw = (f.metadata() or {}).get("trained_classes")
    if raw is None:
        return None
    try:
        classes = json.loads(raw)
    except ValueError as e:
        raise CheckpointError(f"{path}: invalid trained_classes in metadata ({e})") from e
    n = config.transformer.num_classes
    if (not isinstance(classes, list) or not classes
            or not all(type(c) is int and 0 <= c < n for c in classes)):
        raise CheckpointError(f"{path}: trained_classes is not a list of class ids below {n}")
    return tuple(sorted(set(classes)))


def _empty(config: MaskGITConfig) -> MaskGIT:
    # Built on the meta device: random initialisation of 230 M parameters takes longer than
    # reading them, and every one is overwritten by _assign anyway.
    with torch.device("meta"):
        return MaskGIT(config)


def _assign(model: nn.Module, tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy `tensors` into `model`, insisting on exactly the expected names and shapes."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    if missing:
        raise CheckpointError(
            f"{source}: missing parameter {missing[0]!r} ({len(missing)} missing)"
        )
    extra = [k for k in tensors if k not in expected]
    if extra:
        raise CheckpointError(f"{source}: unexpected parameter {extra[0]!r}")
    for k, v in expected.items():
        t = tensors[k]
        if tuple(t.shape) != tuple(v.shape):
            raise CheckpointError(
                f"{source}: parameter {k!r} has shape {tuple(t.shape)}, expected {tuple(v.shape)}"
            )
        if not torch.isfinite(t.float()).all():
            raise CheckpointError(f"{source}: parameter {k!r} holds NaN or infinity")
    dtype = torch.float32
    model.load_state_dict({k: t.to(dtype).contiguous() for k, t in tensors.items()}, assign=True)


# ----------------------------------------------------------------------------- official Flax


def read_flax_msgpack(path: str | Path) -> dict[str, np.ndarray]:
    """A Flax msgpack checkpoint -> flat {'a/b/c': array} of its 'params' tree."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")

    def ext_hook(code: int, data: bytes) -> object:
        if code != 1:  # Flax uses ext 1 for ndarrays; nothing else is expected in params
            raise CheckpointError(f"{path}: unexpected msgpack extension type {code}")
        shape, dtype, buf = msgpack.unpackb(data, raw=False)
        arr = np.frombuffer(buf, dtype=np.dtype(dtype))
        if arr.size != math.prod(shape):
            raise CheckpointError(f"{path}: array of shape {shape} holds {arr.size} values")
        return arr.reshape(shape)

    try:
        tree = msgpack.unpackb(
            path.read_bytes(), ext_hook=ext_hook, raw=False, strict_map_key=False
        )
    except CheckpointError:
        raise
    except Exception as e:  # msgpack raises several unrelated types on bad input
        raise CheckpointError(
            f"{path}: not a Flax msgpack checkpoint ({type(e).__name__}: {e})"
        ) from e
    if not isinstance(tree, dict) or not isinstance(tree.get("params"), dict):
        raise CheckpointError(f"{path}: no 'params' tree in the checkpoint")
    flat: dict[str, np.ndarray] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}/{k}" if prefix else str(k))
        elif isinstance(node, np.ndarray):
            flat[prefix] = node
        else:
            raise CheckpointError(f"{path}: leaf {prefix!r} is {type(node).__name__}, not an array")

    walk(tree["params"], "")
    return flat


def write_flax_msgpack(flat: Mapping[str, np.ndarray], path: str | Path) -> None:
    """Write a flat {'a/b': array} tree as a Flax msgpack checkpoint (for tests and tools)."""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value

    def default(obj: object) -> object:
        if isinstance(obj, np.ndarray):
            a = np.ascontiguousarray(obj)
            return msgpack.ExtType(1, msgpack.packb((a.shape, a.dtype.name, a.tobytes())))
        raise TypeError(f"cannot serialise {type(obj).__name__}")

    Path(path).write_bytes(msgpack.packb({"params": tree}, default=default))


def _count(flat: Mapping[str, np.ndarray], prefix: str, name: str) -> int:
    pat = re.compile(rf"^{re.escape(prefix)}/{name}_(\d+)/")
    ids = {int(m.group(1)) for k in flat if (m := pat.match(k))}
    return max(ids) + 1 if ids else 0


def _get(flat: Mapping[str, np.ndarray], key: str, source: str) -> np.ndarray:
    if key not in flat:
        raise CheckpointError(f"{source}: missing parameter {key!r}")
    return flat[key]


def infer_tokenizer_config(
    flat: Mapping[str, np.ndarray], source: str, image_size: int = 256
) -> TokenizerConfig:
    codebook = _get(flat, "quantizer/codebook", source)
    filters = _get(flat, "encoder/Conv_0/kernel", source).shape[3]
    n_levels = _count(flat, "decoder", "Conv") - 1  # conv_in + (levels-1) upsample convs + conv_out
    n_blocks = _count(flat, "encoder", "ResBlock")
    if not 1 <= n_levels <= LIMITS["tokenizer.levels"] or n_blocks % (n_levels + 1):
        raise CheckpointError(f"{source}: cannot infer the tokenizer layout from its parameters")
    per_level = n_blocks // (n_levels + 1)
    mults = tuple(
        int(_get(flat, f"encoder/ResBlock_{i * per_level}/Conv_0/kernel", source).shape[3])
        // filters
        for i in range(n_levels)
    )
    return TokenizerConfig(
        filters=int(filters),
        channel_multipliers=mults,
        num_res_blocks=per_level,
        embedding_dim=int(codebook.shape[1]),
        codebook_size=int(codebook.shape[0]),
        image_size=image_size,
    )


def infer_transformer_config(
    flat: Mapping[str, np.ndarray], source: str, codebook_size: int
) -> TransformerConfig:
    vocab, hidden = _get(flat, "Embed_0/word_embeddings/embedding", source).shape
    q = _get(flat, "TransformerLayer_0/Attention_0/self_attention/query/kernel", source)
    return TransformerConfig(
        codebook_size=codebook_size,
        num_classes=int(vocab) - codebook_size - 1,
        hidden_size=int(hidden),
        num_layers=_count_top(flat, "TransformerLayer"),
        num_heads=int(q.shape[1]),
        intermediate_size=int(
            _get(flat, "TransformerLayer_0/Mlp_0/intermediate_output/kernel", source).shape[1]
        ),
        max_positions=int(_get(flat, "Embed_0/position_embeddings/embedding", source).shape[0]),
    )


def _count_top(flat: Mapping[str, np.ndarray], name: str) -> int:
    ids = {int(m.group(1)) for k in flat if (m := re.match(rf"^{name}_(\d+)/", k))}
    return max(ids) + 1 if ids else 0


def _conv(a: np.ndarray) -> np.ndarray:
    return a.transpose(3, 2, 0, 1)  # Flax (kh, kw, in, out) -> torch (out, in, kh, kw)


def _tokenizer_state(
    flat: Mapping[str, np.ndarray], model: nn.Module, source: str
) -> dict[str, np.ndarray]:
    """Map the official VQVAE tree onto our VQGAN's state_dict names."""
    sd: dict[str, np.ndarray] = {"quantizer.codebook": _get(flat, "quantizer/codebook", source)}
    for part in ("encoder", "decoder"):
        module: Any = getattr(model, part)
        convs = [f"{part}.conv_in"]
        blocks = []
        for name, m in module.blocks.named_children():
            if isinstance(m, ResBlock):
                blocks.append((f"{part}.blocks.{name}", m))
            elif isinstance(m, nn.Conv2d):
                convs.append(f"{part}.blocks.{name}")
        convs.append(f"{part}.conv_out")
        for i, dst in enumerate(convs):
            sd[f"{dst}.weight"] = _conv(_get(flat, f"{part}/Conv_{i}/kernel", source))
            if f"{part}/Conv_{i}/bias" in flat:
                sd[f"{dst}.bias"] = flat[f"{part}/Conv_{i}/bias"]
        sd[f"{part}.norm_out.weight"] = _get(flat, f"{part}/GroupNorm_0/scale", source)
        sd[f"{part}.norm_out.bias"] = _get(flat, f"{part}/GroupNorm_0/bias", source)
        for i, (dst, block) in enumerate(blocks):
            src = f"{part}/ResBlock_{i}"
            for j, conv in enumerate(("conv1", "conv2", "shortcut")):
                if conv == "shortcut" and block.shortcut is None:
                    continue
                sd[f"{dst}.{conv}.weight"] = _conv(_get(flat, f"{src}/Conv_{j}/kernel", source))
            for j, norm in enumerate(("norm1", "norm2")):
                sd[f"{dst}.{norm}.weight"] = _get(flat, f"{src}/GroupNorm_{j}/scale", source)
                sd[f"{dst}.{norm}.bias"] = _get(flat, f"{src}/GroupNorm_{j}/bias", source)
    return sd


def _transformer_state(
    flat: Mapping[str, np.ndarray], cfg: TransformerConfig, source: str
) -> dict[str, np.ndarray]:
    """Map the official BERT tree onto our Transformer's state_dict names."""
    d = cfg.hidden_size

    def g(key: str) -> np.ndarray:
        return _get(flat, key, source)

    sd: dict[str, np.ndarray] = {
        "word_embeddings.weight": g("Embed_0/word_embeddings/embedding"),
        "position_embeddings.weight": g("Embed_0/position_embeddings/embedding"),
        "embed_ln.weight": g("Embed_0/embeddings_ln/scale"),
        "embed_ln.bias": g("Embed_0/embeddings_ln/bias"),
        "head_dense.weight": g("MlmLayer_0/mlm_dense/kernel").T,
        "head_dense.bias": g("MlmLayer_0/mlm_dense/bias"),
        "head_ln.weight": g("MlmLayer_0/mlm_ln/scale"),
        "head_ln.bias": g("MlmLayer_0/mlm_ln/bias"),
        "head_bias": g("MlmLayer_0/mlm_bias/bias"),
    }
    for i in range(cfg.num_layers):
        src, dst = f"TransformerLayer_{i}", f"layers.{i}"
        att = f"{src}/Attention_0/self_attention"
        # (d, heads, head_dim) kernels -> one fused (3d, d) torch weight
        sd[f"{dst}.qkv.weight"] = np.concatenate(
            [g(f"{att}/{p}/kernel").reshape(d, d).T for p in ("query", "key", "value")]
        )
        sd[f"{dst}.qkv.bias"] = np.concatenate(
            [g(f"{att}/{p}/bias").reshape(d) for p in ("query", "key", "value")]
        )
        sd[f"{dst}.attn_out.weight"] = g(f"{att}/out/kernel").reshape(d, d).T
        sd[f"{dst}.attn_out.bias"] = g(f"{att}/out/bias")
        sd[f"{dst}.attn_ln.weight"] = g(f"{src}/Attention_0/attention_output_ln/scale")
        sd[f"{dst}.attn_ln.bias"] = g(f"{src}/Attention_0/attention_output_ln/bias")
        sd[f"{dst}.mlp_in.weight"] = g(f"{src}/Mlp_0/intermediate_output/kernel").T
        sd[f"{dst}.mlp_in.bias"] = g(f"{src}/Mlp_0/intermediate_output/bias")
        sd[f"{dst}.mlp_out.weight"] = g(f"{src}/Mlp_0/layer_output/kernel").T
        sd[f"{dst}.mlp_out.bias"] = g(f"{src}/Mlp_0/layer_output/bias")
        sd[f"{dst}.mlp_ln.weight"] = g(f"{src}/Mlp_0/layer_output_ln/scale")
        sd[f"{dst}.mlp_ln.bias"] = g(f"{src}/Mlp_0/layer_output_ln/bias")
    return sd


def _to_torch(sd: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in sd.items()}


def load_official(
    tokenizer_file: str | Path, maskgit_file: str | Path, name: str | None = None
) -> MaskGIT:
    """Load the official `tokenizer_*` + `maskgit_*` pair; the config is inferred from shapes.

    Either file may also be a PyTorch .ckpt/.pt whose state_dict is keyed like the official tree
    (the converted files people publish); those are read with `weights_only=True`.
    """
    return official_from_flat(
        _read_official(tokenizer_file),
        _read_official(maskgit_file),
        str(tokenizer_file),
        str(maskgit_file),
        name,
    )


def _read_official(path: str | Path) -> dict[str, np.ndarray]:
    if Path(path).suffix.lower() in (".ckpt", ".pt", ".pth", ".bin"):
        return flat_from_state_dict(load_torch_state_dict(path))
    return read_flax_msgpack(path)


def flat_from_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """A torch state_dict keyed like the Flax tree ('params.encoder.Conv_0.kernel' or with '/')."""
    flat = {}
    for key, value in sd.items():
        parts = re.split(r"[./]", key)
        if parts[0] == "params":
            parts = parts[1:]
        flat["/".join(parts)] = value.detach().float().cpu().numpy()
    return flat


def official_from_flat(
    tok_flat: Mapping[str, np.ndarray],
    tr_flat: Mapping[str, np.ndarray],
    tok_src: str = "tokenizer",
    tr_src: str = "transformer",
    name: str | None = None,
) -> MaskGIT:
    codebook = int(_get(tok_flat, "quantizer/codebook", tok_src).shape[0])
    tr_cfg = infer_transformer_config(tr_flat, tr_src, codebook)
    side = math.isqrt(tr_cfg.num_image_tokens)
    if side * side != tr_cfg.num_image_tokens:
        raise CheckpointError(f"{tr_src}: {tr_cfg.num_image_tokens} image tokens is not a square")
    tok_cfg = infer_tokenizer_config(tok_flat, tok_src)
    tok_cfg = TokenizerConfig.from_dict(
        {**tok_cfg.to_dict(), "image_size": side * tok_cfg.downsample}
    )
    config = MaskGITConfig(name or f"imagenet-{tok_cfg.image_size}", tok_cfg, tr_cfg)
    check_config(config, f"{tok_src} + {tr_src}")
    model = _empty(config)
    tok_read, tr_read = _Recorded(tok_flat), _Recorded(tr_flat)
    tok_sd = _tokenizer_state(tok_read, model.tokenizer, tok_src)
    tr_sd = _transformer_state(tr_read, tr_cfg, tr_src)
    tok_read.check_all_read(tok_src)
    tr_read.check_all_read(tr_src)
    _assign(model.tokenizer, _to_torch(tok_sd), tok_src)
    _assign(model.transformer, _to_torch(tr_sd), tr_src)
    return model.eval()


class _Recorded(dict[str, np.ndarray]):
    """A flat parameter tree that remembers which entries the mapping read, so a parameter it
    does not know (another architecture, a newer layer) is an error instead of silently left
    out of the model."""

    def __init__(self, flat: Mapping[str, np.ndarray]):
        super().__init__(flat)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> np.ndarray:
        self.read.add(key)
        return super().__getitem__(key)

    def check_all_read(self, source: str) -> None:
        unmapped = sorted(set(self) - self.read)
        if unmapped:
            raise CheckpointError(
                f"{source}: {len(unmapped)} parameter(s) this loader does not map, e.g. "
                f"{unmapped[0]!r}: not a MaskGIT checkpoint of the known layout"
            )


# ----------------------------------------------------------------------------- foreign torch


def load_torch_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A foreign .ckpt/.pt file's tensors, refusing anything that would run code on load."""
    import pickle

    path = Path(path)
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refused: the file holds Python objects that would run code when loaded "
            f"(only plain tensors are accepted): {str(e).splitlines()[0]}"
        ) from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable torch file ({e})") from e
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a dict of tensors (a state_dict)")
    return obj
