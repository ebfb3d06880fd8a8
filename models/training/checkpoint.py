"""The one file format of training, and `train export` to the app's weight format.

Every file a job writes (the resumable checkpoint, the float16 shards a time-limited remote run
brings back, the decoder snapshots of the GAN fine-tuning) is one `.safetensors` with:

    tensors   model weights under their MaskGIT names ('tokenizer.encoder.conv_in.weight',
              'transformer.layers.0.qkv.weight', or another part such as 'disc.net.0.weight'),
              optimizer moments as 'opt.<part>.<parameter>.<moment>', anything else the job
              needs to resume (a generator's state) as 'extra.<name>'
    metadata  format (FORMAT), kind (tokenizer, transformer, decoder, weights), parts (the module
              prefixes in the file), state (JSON: step, elapsed seconds, trained classes...),
              config (the MaskGITConfig, when the file belongs to one) and run (the job's own
              settings, when it has some)

so a shard, a checkpoint and the app's own model file (models/checkpoint.py) share key names,
and `read_weights` takes any of them. Files are written to a temporary name and renamed: a
crash mid-write never destroys the last good checkpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from models.checkpoint import save as save_model
from models.maskgit import MaskGIT, MaskGITConfig
from models.training.env import TrainingError

FORMAT = "maskgit-editor/train-2"

# A module of the file under its prefix, with the optimizer whose moments are kept (or None).
Part = tuple[nn.Module, torch.optim.Optimizer | None]


class Weights(NamedTuple):
    config: MaskGITConfig
    tensors: dict[str, torch.Tensor]  # one part's weights, prefix removed, float32
    state: dict[str, Any]  # the training state stored with them (step, classes, ...)


def _opt_tensors(name: str, module: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    names = {id(p): n for n, p in module.named_parameters()}
    out = {}
    for group in opt.param_groups:
        for p in group["params"]:
            for k, v in opt.state.get(p, {}).items():
                out[f"opt.{name}.{names[id(p)]}.{k}"] = v.detach().float().cpu().contiguous()
    return out


def save_state(
    path: Path,
    kind: str,
    parts: Mapping[str, Part],
    state: Mapping[str, Any],
    *,
    config: MaskGITConfig | None = None,
    extra: Mapping[str, torch.Tensor] | None = None,
    run: Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> None:
    """Write `parts` (floating weights in `dtype`, optimizer moments in float32), `extra` and
    the JSON `state`/`config`/`run` as one file of FORMAT."""
    tensors: dict[str, torch.Tensor] = {}
    for name, (module, opt) in parts.items():
        for k, v in module.state_dict().items():
            v = v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype)
            tensors[f"{name}.{k}"] = v.contiguous()
        if opt is not None:
            tensors.update(_opt_tensors(name, module, opt))
    tensors.update({f"extra.{k}": v.cpu().contiguous() for k, v in (extra or {}).items()})
    meta = {"format": FORMAT, "kind": kind, "parts": json.dumps(list(parts)),
            "state": json.dumps(dict(state))}
    if config is not None:
        meta["config"] = json.dumps(config.to_dict())
    if run is not None:
        meta["run"] = json.dumps(dict(run))
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def read_meta(path: str | Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta: dict[str, str] = f.metadata() or {}
    except SafetensorError as e:
        raise TrainingError(f"{path}: not a .safetensors file ({e})") from e
    return meta


def read_state(path: str | Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """(metadata, tensors) of a training file; TrainingError for anything else."""
    meta = read_meta(path)
    if meta.get("format") != FORMAT:
        raise TrainingError(f"{path}: not a training checkpoint (format {FORMAT})")
    return meta, load_file(str(path))


def restore_state(
    path: str | Path, parts: Mapping[str, Part]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load `parts` (weights and optimizer moments) from `path`; returns (state, extra)."""
    meta, t = read_state(path)
    for name, (module, opt) in parts.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in t.items() if k.startswith(prefix)})
        if opt is None:
            continue
        for n, p in module.named_parameters():
            pre = f"opt.{name}.{n}."
            st = {k[len(pre):]: v.to(p.device) for k, v in t.items() if k.startswith(pre)}
            if st:
                opt.state[p] = st
    extra = {k[6:]: v for k, v in t.items() if k.startswith("extra.")}
    return json.loads(meta["state"]), extra


def save_shards(
    module: nn.Module,
    prefix: str,
    config: MaskGITConfig,
    out: Path,
    name: str,
    shard_bytes: int,
    state: Mapping[str, Any],
) -> list[Path]:
    """Model-only float16 weights of one half of a MaskGIT ('tokenizer' / 'transformer'), split
    into files of at most `shard_bytes` (the device machine returns files <= 16 MiB)."""
    tensors = {k: v.detach().to("cpu", torch.float16).contiguous()
               for k, v in module.state_dict().items()}
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for k, v in tensors.items():
        n = v.numel() * v.element_size()
        if shards[-1] and size + n > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][k] = v
        size += n
    for old in out.glob(f"{name}-*.safetensors"):
        old.unlink()
    paths = []
    for i, s in enumerate(shards):
        p = out / f"{name}-{i:02d}.safetensors"
        save_file({f"{prefix}.{k}": v for k, v in s.items()}, str(p.with_suffix(".tmp")),
                  metadata={"format": FORMAT, "kind": "weights", "parts": json.dumps([prefix]),
                            "state": json.dumps(dict(state)),
                            "config": json.dumps(config.to_dict())})
        os.replace(p.with_suffix(".tmp"), p)
        paths.append(p)
    return paths


def read_weights(paths: Iterable[str | Path], prefix: str) -> Weights:
    """One part's weights ('tokenizer' or 'transformer') from training checkpoints, float16
    shards, or a full MaskGIT .safetensors of the app."""
    paths = list(paths)
    config = None
    state: dict[str, Any] = {}
    out: dict[str, torch.Tensor] = {}
    for path in paths:
        meta = read_meta(path)
        if "config" not in meta:
            raise TrainingError(f"{path}: no MaskGIT config in the file")
        config = MaskGITConfig.from_dict(json.loads(meta["config"]))
        state = json.loads(meta.get("state", "{}"))
        t = load_file(str(path))
        out.update({k[len(prefix) + 1:]: v.float() for k, v in t.items()
                    if k.startswith(f"{prefix}.")})
    if config is None or not out:
        raise TrainingError(f"no {prefix} weights in {[str(p) for p in paths]}")
    return Weights(config, out, state)


def export(
    tokenizer: Iterable[str | Path],
    transformer: Iterable[str | Path],
    out: str | Path,
    name: str | None = None,
    half: bool = False,
) -> MaskGIT:
    """Combine a tokenizer and a transformer into one model file of the app. The classes the
    transformer was trained on (when its files record them) go into the file."""
    tok = read_weights(tokenizer, "tokenizer")
    tf = read_weights(transformer, "transformer")
    if tok.config.tokenizer != tf.config.tokenizer:
        raise TrainingError("tokenizer and transformer were trained with different tokenizers")
    config = MaskGITConfig(name or tf.config.name, tok.config.tokenizer, tf.config.transformer)
    model = MaskGIT(config)
    model.tokenizer.load_state_dict(tok.tensors)
    model.transformer.load_state_dict(tf.tensors)
    if tf.state.get("classes") is not None:
        model.trained_classes = tuple(int(c) for c in tf.state["classes"])
    save_model(model, out, dtype=torch.float16 if half else torch.float32)
    return model


def replace_decoder(model_path: str | Path, decoder_path: str | Path, out: str | Path) -> None:
    """`model_path` with its decoder replaced by `decoder_path`'s (a snapshot or checkpoint of
    `train decoder`), in the same dtype and config. Every other tensor is copied byte for byte."""
    from models.checkpoint import read_config

    read_config(Path(model_path))  # a MaskGIT file of ours, or raise
    meta = read_meta(model_path)
    t = load_file(str(model_path))
    new = {k: v for k, v in read_state(decoder_path)[1].items()
           if k.startswith("tokenizer.decoder.")}
    missing = [k for k in t if k.startswith("tokenizer.decoder.") and k not in new]
    extra = [k for k in new if k not in t]
    if missing or extra:
        raise TrainingError(f"decoder keys do not match: missing {missing[:3]}, extra {extra[:3]}")
    for k, v in new.items():
        t[k] = v.to(t[k].dtype).contiguous()
    save_file(t, str(out), metadata=meta)
