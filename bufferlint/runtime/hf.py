"""The `transformers` recipe: build a `PreTrainedModel` the way `from_pretrained` does and give
it memory and initial values the way `from_pretrained` does, with transformers' own functions.

What runs, in the order `PreTrainedModel.from_pretrained` runs it (transformers 5.x,
modeling_utils.py):

1. the model is built under `cls.get_init_context(float32, ...)`: `torch.device("meta")`,
   `no_tie_weights()`, `meta_device_safe_creation_ops()` and the local dtype, so `post_init()`
   skips `init_weights()` on meta;
2. `cls._load_pretrained_model(model, {}, None, load_config)` loads the checkpoint, which is
   empty: every parameter and buffer is a missing key (see CHECKPOINT_NOTE);
3. `cls._finalize_model_loading(model, load_config, loading_info)`:
   `mark_tied_weights_as_initialized`, `_move_missing_keys_from_meta_to_device` (a fresh
   `torch.empty_like` for every missing key and every non-persistent buffer),
   `_initialize_missing_keys` (`initialize_weights()`: the owning model's `_init_weights` on
   every submodule, post-order, nested `PreTrainedModel`s with their own, modules flagged
   `_is_hf_initialized` skipped), then `tie_weights`.

Only hub resolution, dtype guessing, quantizers, device maps and generation configs are left
out of `from_pretrained`, and none of them touches a buffer. bufferlint builds the model itself
(rather than calling `from_pretrained(None, config=..., state_dict={})`) so that it can reseed
`initialize_weights` before it runs and judge one submodule of the model it built.

Also here: tiny configs (`tiny_config`), and for a class that is not itself a
`PreTrainedModel` a model of its module that contains one (`container`), or else one that is
made to hold one (`holder`). Imported in workers only, with transformers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.utils import logging as hf_logging

HOOKS = ("initialize_weights",)  # what the recorder reseeds and the eager replay calls
# The checkpoint is empty: every tensor is a missing key and gets empty_like memory, so every
# buffer must be rebuilt by `_init_weights`. That is what HF's own tests require
# (test_can_init_all_missing_weights, test_init_weights_can_init_buffers), what training from
# scratch and `to_empty()` + `init_weights()` need, and what from_pretrained needs for any
# buffer a checkpoint lacks; non-persistent buffers are never in a checkpoint.
CHECKPOINT_NOTE = (
    "checkpoint: none (state_dict={}), so every buffer must be rebuilt by _init_weights; "
    "a checkpoint that holds a persistent buffer restores it, never a non-persistent one"
)
MAX_ELEMENTS = 1 << 25  # a tiny config that still builds a bigger model is not tiny
# What a model may hold: a check builds it four times.

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()


def is_model(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, PreTrainedModel)


# --- tiny configs -----------------------------------------------------------------------------

HIDDEN = 64
HEADS = 4
LAYERS = 2
VOCAB = 128
_SIZES: dict[str, int] = {
    **dict.fromkeys(
        """hidden_size d_model n_embd embed_dim embedding_size projection_dim hidden_dim
        text_hidden_size out_hidden_size output_hidden_size decoder_hidden_size
        encoder_hidden_size word_embed_proj_dim embedding_dim vision_embed_dim
        text_embed_dim projector_hidden_size output_dim codebook_dim""".split(),
        HIDDEN,
    ),
    **dict.fromkeys(
        """intermediate_size encoder_ffn_dim decoder_ffn_dim ffn_dim d_ff mlp_dim n_inner
        decoder_intermediate_size""".split(),
        2 * HIDDEN,
    ),
    **dict.fromkeys(
        """moe_intermediate_size shared_expert_intermediate_size expert_intermediate_size
        moe_ffn_hidden_size""".split(),
        HIDDEN // 2,
    ),
    **dict.fromkeys(
        """num_hidden_layers num_layers n_layer n_layers encoder_layers decoder_layers
        num_encoder_layers num_decoder_layers depth""".split(),
        LAYERS,
    ),
    **dict.fromkeys(
        """num_attention_heads n_head n_heads num_heads encoder_attention_heads
        decoder_attention_heads attention_heads""".split(),
        HEADS,
    ),
    **dict.fromkeys("head_dim d_kv d_head dim_head attention_head_dim".split(), HIDDEN // HEADS),
    **dict.fromkeys(
        """max_position_embeddings n_positions max_source_positions max_target_positions n_ctx
        max_seq_len max_sequence_length context_length""".split(),
        128,
    ),
    **dict.fromkeys("num_experts num_local_experts n_routed_experts moe_num_experts".split(), 4),
    **dict.fromkeys("num_experts_per_tok moe_topk num_experts_per_token".split(), 2),
    **dict.fromkeys("n_group topk_group".split(), 1),
    "vocab_size": VOCAB,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 8,
    "qk_head_dim": 16,
    "v_head_dim": 16,
    "kv_lora_rank": 16,
    "q_lora_rank": 32,
}
_KV_HEADS = ("num_key_value_heads", "n_kv_heads", "num_kv_heads")
_LAYER_COUNTS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers")
# Per-stage lists of vision backbones: widths are divided by one power of two (keeping their
# ratios and divisibility), depths and heads capped.
_STAGE_WIDTHS = ("hidden_sizes", "embed_dims", "neck_hidden_sizes", "dims", "embed_dim")
_STAGE_CAPS = {"depths": 2, "num_heads": 2, "num_attention_heads": 2}


def _fields(config: PreTrainedConfig) -> dict[str, Any]:
    """The config's own fields (dataclass fields in transformers 5, attributes before)."""
    if dataclasses.is_dataclass(config):
        return {f.name: getattr(config, f.name, None) for f in dataclasses.fields(config) if f.init}
    return {k: v for k, v in vars(config).items() if not k.startswith("_")}


def _token_field(name: str) -> bool:
    return name.endswith(("_token_id", "_token_index", "_token_ids"))


@dataclass
class _Shrink:
    """One level of shrinking; token ids above the new vocabulary get small distinct ids,
    the same one for the same id everywhere in the tree of configs."""

    widths: bool = True
    vision: bool = True
    tokens: dict[int, int] = dataclasses.field(default_factory=dict)

    def token(self, value: int) -> int:
        if value < VOCAB:
            return value
        if value not in self.tokens:
            self.tokens[value] = VOCAB - 1 - len(self.tokens) % (VOCAB // 4)
        return self.tokens[value]

    def overrides(self, config: PreTrainedConfig) -> dict[str, Any]:
        fields = _fields(config)
        out: dict[str, Any] = {}
        for name, value in fields.items():
            if isinstance(value, PreTrainedConfig):
                out[name] = self.config(value)
            elif isinstance(value, bool) or value is None:
                continue
            elif _token_field(name):
                if isinstance(value, int):
                    out[name] = self.token(value)
                elif isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
                    out[name] = type(value)(self.token(v) for v in value)
            elif isinstance(value, int) and name in _SIZES and value > _SIZES[name]:
                if self.widths or name in (*_LAYER_COUNTS, "vocab_size") or "position" in name:
                    out[name] = _SIZES[name]
            elif isinstance(value, int) and name in _KV_HEADS and self.widths:
                heads = fields.get("num_attention_heads") or value
                out[name] = min(value, HEADS if value >= heads else HEADS // 2)
        self._vision(fields, out)
        self._layer_lists(fields, out)
        if self.widths:
            self._stages(fields, out)
        return out

    def _stages(self, fields: dict[str, Any], out: dict[str, Any]) -> None:
        for name, value in fields.items():
            if name in out or not isinstance(value, (list, tuple)) or not value:
                continue
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
                continue
            if name in _STAGE_WIDTHS:
                factor = 1
                while all(v % (2 * factor) == 0 and v // (2 * factor) >= 16 for v in value):
                    factor *= 2
                out[name] = type(value)(v // factor for v in value)
            elif name in _STAGE_CAPS:
                out[name] = type(value)(min(v, _STAGE_CAPS[name]) for v in value)

    def _vision(self, fields: dict[str, Any], out: dict[str, Any]) -> None:
        image, patch = fields.get("image_size"), fields.get("patch_size")
        if self.vision and isinstance(image, int) and isinstance(patch, int) and patch:
            if image % patch == 0 and image // patch > 4:
                out["image_size"] = 4 * patch

    def _layer_lists(self, fields: dict[str, Any], out: dict[str, Any]) -> None:
        """Per-layer lists (`layer_types`, `mlp_only_layers`...) follow the new layer count."""
        for count in _LAYER_COUNTS:
            old, new = fields.get(count), out.get(count)
            if not isinstance(old, int) or new is None:
                continue
            for name, value in fields.items():
                if name in out or not isinstance(value, (list, tuple)) or isinstance(value, str):
                    continue
                if len(value) == old:
                    out[name] = type(value)(value[:new])
                elif name.endswith(("layers", "indexes", "indices")) and all(
                    isinstance(v, int) and not isinstance(v, bool) for v in value
                ):
                    kept = dict.fromkeys(max(-new, min(v, new - 1)) for v in value)
                    out[name] = type(value)(kept)

    def config(self, config: PreTrainedConfig) -> PreTrainedConfig:
        overrides = self.overrides(config)
        if not overrides:
            return config
        kept = {k: v for k, v in _fields(config).items() if k not in overrides}
        return type(config)(**{**kept, **overrides})


_LEVELS = (
    ("tiny", _Shrink()),
    ("tiny, vision sizes kept", _Shrink(vision=False)),
    ("fewer layers, widths kept", _Shrink(widths=False, vision=False)),
)


def tiny_configs(config: PreTrainedConfig) -> Iterator[tuple[str, PreTrainedConfig | None, str]]:
    """Smaller and smaller versions of `config`: (label, config or None, error if it failed)."""
    for label, level in _LEVELS:
        shrink = dataclasses.replace(level, tokens={})
        try:
            yield label, shrink.config(config), ""
        except Exception as exc:
            yield label, None, f"{type(exc).__name__}: {_first_line(exc)}"
    yield "default config", config, ""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= 200 else text[:197] + "..."


def describe(config: PreTrainedConfig, default: PreTrainedConfig) -> str:
    """`LlamaConfig(hidden_size=64, ...)` with only the fields that differ from `default`."""
    mine, theirs = _fields(config), _fields(default)
    changed = []
    for name, value in mine.items():
        if isinstance(value, PreTrainedConfig):
            if isinstance(theirs.get(name), PreTrainedConfig):
                inner = describe(value, theirs[name])
                if inner.endswith("()"):
                    continue
                changed.append(f"{name}={inner}")
        elif value != theirs.get(name) and not isinstance(value, (dict, list, tuple)):
            changed.append(f"{name}={value!r}")
    return f"{type(config).__name__}({', '.join(changed)})"


# --- building ---------------------------------------------------------------------------------


def build(model_cls: type, config: PreTrainedConfig) -> nn.Module:
    """`model_cls(config)` as transformers builds it: on meta (the default device is meta) under
    `get_init_context`, as from_pretrained does; anywhere else plainly, as `Model(config)`."""
    if torch.get_default_device().type != "meta":
        return model_cls(config)
    with contextlib.ExitStack() as stack:
        for context in _init_context(model_cls):
            stack.enter_context(context)
        return model_cls(config)


def _init_context(model_cls: type) -> list[Any]:
    get = model_cls.get_init_context
    names = list(inspect.signature(get).parameters)
    values = {
        "dtype": torch.float32,
        "is_quantized": False,
        "_is_ds_init_called": False,
        "allow_all_kernels": None,
    }
    return list(get(**{n: values[n] for n in names if n in values}))


def default_config(model_cls: type) -> PreTrainedConfig:
    config_cls = getattr(model_cls, "config_class", None)
    if not (isinstance(config_cls, type) and issubclass(config_cls, PreTrainedConfig)):
        raise LookupError(f"{model_cls.__name__} has no config_class")
    return config_cls()


def _size(model: nn.Module) -> int:
    return sum(t.numel() for t in [*model.parameters(), *model.buffers()])


@dataclass(frozen=True)
class Plan:
    """How to build a class: `model_cls(config)`, then judge the submodule at `part`."""

    model_cls: type
    config: PreTrainedConfig
    part: str
    description: str

    def make(self) -> nn.Module:
        return build(self.model_cls, _copy(self.config))


def _copy(config: PreTrainedConfig) -> PreTrainedConfig:
    import copy

    return copy.deepcopy(config)


def plan_model(model_cls: type, attempts: list[str]) -> tuple[Plan, nn.Module] | None:
    """The smallest config `model_cls` builds from on meta, and that meta build."""
    try:
        default = default_config(model_cls)
    except Exception as exc:
        attempts.append(f"{model_cls.__name__} config: {type(exc).__name__}: {_first_line(exc)}")
        return None
    for label, config, error in tiny_configs(default):
        if config is None:
            attempts.append(f"{label} config: {error}")
            continue
        try:
            with torch.device("meta"):
                model = build(model_cls, _copy(config))
        except Exception as exc:
            attempts.append(f"{label}: {type(exc).__name__}: {_first_line(exc)}")
            continue
        size = _size(model)
        if size > MAX_ELEMENTS:
            attempts.append(f"{label}: too large to build eagerly ({size:,} elements)")
            continue
        shown = describe(config, default)
        if shown.endswith("()"):
            label = "default config"
        return Plan(
            model_cls, config, "", f"transformers {model_cls.__name__}({shown}), {label}"
        ), model
    return None


def _candidates(cls: type) -> list[type]:
    """PreTrainedModel subclasses defined in `cls`'s module: public ones (`__all__`) first,
    shortest names first (the base model before its heads), `*PreTrainedModel` last."""
    module = importlib.import_module(cls.__module__)

    def models(names: list[str]) -> list[type]:
        found = [getattr(module, name, None) for name in names]
        return [c for c in found if is_model(c) and c.__module__ == module.__name__]

    def order(c: type) -> tuple[bool, int]:
        return c.__name__.endswith("PreTrainedModel"), len(c.__name__)

    public = sorted(models(list(getattr(module, "__all__", None) or [])), key=order)
    rest = sorted(models(sorted(vars(module))), key=order)
    return list(dict.fromkeys([*public, *rest]))


def container(cls: type, attempts: list[str]) -> Plan | None:
    """A model of `cls`'s own module that contains an instance of `cls`, and where."""
    for model_cls in _candidates(cls):
        planned = plan_model(model_cls, [])
        if planned is None:
            continue
        plan, model = planned
        inside = [q for q, m in model.named_modules() if type(m) is cls] or [
            q for q, m in model.named_modules() if isinstance(m, cls)
        ]
        if inside:
            text = f"{plan.description}, judged at {inside[0]}"
            return dataclasses.replace(plan, part=inside[0], description=text)
    attempts.append(
        f"no PreTrainedModel in {cls.__module__} that builds from a tiny config contains a "
        f"{cls.__name__}"
    )
    return None


def holder(cls: type, attempts: list[str]) -> Plan | None:
    """When no model of `cls`'s module contains one: the first model there that builds from a
    tiny config, with an instance of `cls` added as `held`, so that the model's own
    `_init_weights` sees it as it would see a submodule."""
    from bufferlint.runtime.build import constructions

    ways, notes = constructions(cls, None, "")
    attempts.extend(notes)
    for model_cls in _candidates(cls):
        planned = plan_model(model_cls, [])
        if planned is None:
            continue
        for way in ways:
            try:
                with torch.device("meta"):
                    way.make()
            except Exception as exc:  # a guess at the arguments that does not build
                attempts.append(f"{cls.__name__}, {way.description}: {_first_line(exc)}")
                continue
            wrapper = _holding(model_cls, cls, way.make)
            text = f"{planned[0].description}, holding {cls.__name__} ({way.description}) as held"
            return dataclasses.replace(planned[0], model_cls=wrapper, part="held", description=text)
    attempts.append(f"no PreTrainedModel in {cls.__module__} builds from a tiny config to hold it")
    return None


def _holding(model_cls: type, cls: type, make: Any) -> type:
    def __init__(self: Any, config: PreTrainedConfig, *args: Any, **kwargs: Any) -> None:
        model_cls.__init__(self, config, *args, **kwargs)
        self.held = make()

    name = f"{model_cls.__name__}Holding{cls.__name__}"
    return type(name, (model_cls,), {"__init__": __init__, "__module__": model_cls.__module__})


def plan(cls: type, attempts: list[str]) -> Plan | None:
    """How to build `cls` for the transformers recipe, or None (reasons in `attempts`)."""
    if is_model(cls):
        planned = plan_model(cls, attempts)
        return planned[0] if planned else None
    return container(cls, attempts) or holder(cls, attempts)


# --- materializing ----------------------------------------------------------------------------


def materialize(model: nn.Module, device: torch.device) -> list[str]:
    """from_pretrained's loading and finalizing, with an empty checkpoint, on `device`."""
    if not isinstance(model, PreTrainedModel):
        raise TypeError(
            f"the transformers recipe needs a PreTrainedModel, got {type(model).__name__}"
        )
    from transformers.modeling_utils import LoadStateDictConfig, get_model_conversion_mapping

    cls = type(model)
    load_config = LoadStateDictConfig(
        device_map=None if device.type == "cpu" else {"": str(device)},
        dtype=torch.float32,
        weight_mapping=get_model_conversion_mapping(model, None, None),
    )
    info, _ = cls._load_pretrained_model(model, {}, None, load_config)
    cls._finalize_model_loading(model, load_config, info)
    return []


def forget_initialized(model: nn.Module) -> None:
    """Clear the `_is_hf_initialized` flags `Model(config)` left, so that replaying
    `initialize_weights()` on an eager build runs `_init_weights` again."""
    for module in model.modules():
        module.__dict__.pop("_is_hf_initialized", None)
        for tensor in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
            tensor.__dict__.pop("_is_hf_initialized", None)


def owners(model: nn.Module) -> dict[str, str]:
    """Buffer name -> `module:Class` of the module that registers it."""
    out = {}
    for qualname, module in model.named_modules(remove_duplicate=False):
        for name, _ in module.named_buffers(recurse=False):
            key = f"{qualname}.{name}" if qualname else name
            out.setdefault(key, f"{type(module).__module__}:{type(module).__qualname__}")
    return out


def part_of(model: nn.Module, part: str) -> nn.Module:
    return model.get_submodule(part) if part else model
