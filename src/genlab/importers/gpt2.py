"""Import a Hugging Face GPT-2 checkpoint directory (any size, small to XL) as a genlab run.

    genlab import gpt2 path/to/gpt2 --out runs/gpt2
    genlab sample runs/gpt2 --set prompt="Hello" --set max_new_tokens=40

The directory holds config.json, the weights (model.safetensors, or pytorch_model.bin read
with torch.load(weights_only=True), or their sharded *.index.json forms), and GPT-2's
tokenizer files vocab.json + merges.txt. Nothing is downloaded.

The mapping is one to one (genlab's GPT uses GPT-2's module names) except for two details:
- GPT-2 implements its linear layers as `Conv1D`, whose weight is stored (in, out); nn.Linear
  stores (out, in), so c_attn, c_proj and c_fc weights are transposed;
- keys may or may not carry the `transformer.` prefix (GPT2LMHeadModel vs GPT2Model), and
  the attention-mask buffers (`attn.bias`, `attn.masked_bias`) of old checkpoints are not weights.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError, RunDirError
from ..models.gpt import GPT, GPTConfig

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
SUPPORTED_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")  # both are GELU's tanh approximation


def read_gpt2_config(src: Path) -> GPTConfig:
    """GPTConfig from a Hugging Face GPT-2 config.json; DataError for anything genlab's GPT cannot run."""
    path = src / "config.json"
    if not path.is_file():
        raise DataError(f"not a GPT-2 checkpoint directory (no config.json): {src}")
    try:
        c = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(c, dict) or c.get("model_type") != "gpt2":
        kind = c.get("model_type") if isinstance(c, dict) else None
        raise DataError(f"{path} is not a GPT-2 config (model_type {kind!r}, expected 'gpt2')")
    unsupported = [
        (c.get("activation_function", "gelu_new") not in SUPPORTED_ACTIVATIONS,
         f"activation_function {c.get('activation_function')!r}"),
        (c.get("n_inner") not in (None, 4 * c.get("n_embd", 0)), f"n_inner {c.get('n_inner')}"),
        (c.get("scale_attn_by_inverse_layer_idx", False), "scale_attn_by_inverse_layer_idx"),
        (not c.get("scale_attn_weights", True), "scale_attn_weights=false"),
        (c.get("add_cross_attention", False), "add_cross_attention"),
    ]
    for bad, what in unsupported:
        if bad:
            raise DataError(f"{path}: unsupported GPT-2 variant ({what})")
    try:
        cfg = GPTConfig(vocab_size=int(c["vocab_size"]), block_size=int(c.get("n_positions", c.get("n_ctx"))),
                        n_layer=int(c["n_layer"]), n_head=int(c["n_head"]), n_embd=int(c["n_embd"]),
                        dropout=0.0, bias=True, tie_weights=bool(c.get("tie_word_embeddings", True)),
                        layer_norm_eps=float(c.get("layer_norm_epsilon", 1e-5)))
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise DataError(f"{path}: incomplete or invalid GPT-2 config ({type(e).__name__}: {e})") from None
    sizes = {k: getattr(cfg, k) for k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")}
    bad = [f"{k} = {v}" for k, v in sizes.items() if not 1 <= v < 2**31]
    if bad or cfg.n_embd % cfg.n_head or not 0 < cfg.layer_norm_eps < 1:
        what = ", ".join(bad) or f"n_embd {cfg.n_embd}, n_head {cfg.n_head}, layer_norm_epsilon {cfg.layer_norm_eps}"
        raise DataError(f"{path}: invalid GPT-2 config ({what})")
    return cfg


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: {str(e).splitlines()[0]}") from None


def _load_torch(path: Path) -> dict[str, torch.Tensor]:
    try:
        # weights_only: a checkpoint from the internet must never run code; mmap avoids a second copy
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # truncated zip, forbidden pickle opcode, not a torch file...
        raise DataError(f"cannot read {path} (weights only): {str(e).splitlines()[0]}") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(f"{path} does not hold a dict of tensors")
    return obj


def _read_weights(src: Path) -> dict[str, torch.Tensor]:
    for name, loader in (("model.safetensors", _load_safetensors), ("pytorch_model.bin", _load_torch)):
        if (src / name).is_file():
            return loader(src / name)
        index = src / f"{name}.index.json"
        if index.is_file():  # sharded: weight_map says which file holds each tensor
            try:
                shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                raise DataError(f"cannot read {index}: {e}") from None
            out: dict[str, torch.Tensor] = {}
            for shard in shards:
                if not (src / shard).is_file():
                    raise DataError(f"{index} names a missing shard: {shard}")
                out.update(loader(src / shard))
            return out
    raise DataError(f"no GPT-2 weights in {src} (expected model.safetensors or pytorch_model.bin)")


def convert_state_dict(hf: dict[str, torch.Tensor], cfg: GPTConfig) -> dict[str, torch.Tensor]:
    """Hugging Face GPT-2 tensors -> genlab GPT state_dict (checked against the model's shapes)."""
    state: dict[str, torch.Tensor] = {}
    for key in list(hf):
        value = hf.pop(key)  # release each source tensor once converted (GPT-2 XL is 6 GB in fp32)
        k = key.removeprefix("transformer.")
        if k.endswith(("attn.bias", "attn.masked_bias")) and not k.endswith("c_attn.bias"):
            continue  # causal-mask buffers, not parameters
        if k.endswith(CONV1D):
            value = value.t()
        state[k] = value.float().contiguous()
    if "lm_head.weight" not in state or cfg.tie_weights:
        if not cfg.tie_weights:
            raise DataError("the checkpoint's config unties lm_head from the embeddings but holds no lm_head.weight")
        state["lm_head.weight"] = state.get("wte.weight")  # tied: the embedding is the output layer
    with torch.device("meta"):
        expected = {k: v.shape for k, v in GPT(cfg).state_dict().items()}
    missing = [k for k in expected if state.get(k) is None]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        what = f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}"
        raise DataError(f"GPT-2 weights do not match config.json ({what})")
    for k, shape in expected.items():
        if state[k].shape != shape:
            raise DataError(f"GPT-2 weight {k} has shape {tuple(state[k].shape)}, config.json implies {tuple(shape)}")
    return state


def read_gpt2_checkpoint(src_dir: str | Path) -> tuple[GPTConfig, dict[str, torch.Tensor], Any]:
    """(model config, genlab state_dict, GPT2Tokenizer) from a Hugging Face GPT-2 directory."""
    from ..tokenizers import GPT2Tokenizer

    src = Path(src_dir)
    if not src.is_dir():
        raise DataError(f"GPT-2 checkpoint directory not found: {src}")
    cfg = read_gpt2_config(src)
    for name in ("vocab.json", "merges.txt"):
        if not (src / name).is_file():
            raise DataError(f"GPT-2 tokenizer file missing: {src / name}")
    tokenizer = GPT2Tokenizer.from_files(src / "vocab.json", src / "merges.txt")
    if tokenizer.vocab_size > cfg.vocab_size:
        raise DataError(f"vocab.json has ids up to {tokenizer.vocab_size - 1}, but the model's vocab_size "
                        f"is {cfg.vocab_size}")
    state = convert_state_dict(_read_weights(src), cfg)
    return cfg, state, tokenizer


def import_gpt2(src_dir: str | Path, out: str | Path) -> Path:
    """Write a genlab run directory (recipe 'gpt', tokenizer 'gpt2') holding the checkpoint."""
    from ..engine.config import apply_overrides, config_dict
    from ..engine.rundir import RunDir
    from ..recipes.gpt import GPTRecipe

    run = RunDir(out)
    if run.exists():
        raise RunDirError(f"run directory {run.path} already holds a run: choose another --out")
    cfg, state, tokenizer = read_gpt2_checkpoint(src_dir)
    train_cfg = apply_overrides(GPTRecipe.Config(), {
        "tokenizer": "gpt2", "vocab_size": cfg.vocab_size, "block_size": cfg.block_size,
        "n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_embd": cfg.n_embd, "dropout": 0.0, "bias": True,
        "tie_weights": cfg.tie_weights, "layer_norm_eps": cfg.layer_norm_eps,
    }, f"GPT-2 config of {src_dir}")
    run.path.mkdir(parents=True, exist_ok=True)
    tokenizer.save(run.path)
    run.save_weights({"model": _StateHolder(state)}, step=0)
    run.write_config(GPTRecipe.name, config_dict(train_cfg))  # last: a config.toml marks a complete run
    return run.path


class _StateHolder(torch.nn.Module):
    """Lets RunDir.save_weights write a plain state_dict without building the (maybe huge) model."""

    def __init__(self, state: dict[str, torch.Tensor]):
        super().__init__()
        self._state = state

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return self._state
