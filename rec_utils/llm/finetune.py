"""Fine-tuning the local LLM on LLMSeqPrompt cases (transformers ``Trainer``; full or LoRA).

Each example is ``prompt`` (the chat template applied to system + user, with the generation
prompt; RecSys'23: the raw prompt) followed by ``completion`` (the answer + end-of-turn token);
the loss is on the completion tokens only. The validation loss is computed every ``eval_steps``
steps on the validation cases; training stops early after ``patience`` evaluations without
improvement, by steps and epochs, never by time, and the best checkpoint (lowest validation
loss) is the model kept. ``lora=True`` trains a ``peft`` LoRA adapter (r, alpha, dropout, all
linear layers) that is merged into the weights afterwards; ``lora_layers=k`` puts the adapters on
the top ``k`` decoder layers only (peft ``layers_to_transform``): nothing below them needs a
gradient, so the backward pass stops at the lowest adapted layer. Measured (LoRA, bf16, 2 threads,
GenItem cases of ~190 tokens): every layer (30) 133 train tokens/s, the top 10 layers 382 (the
backward through frozen layers costs more than its FLOPs suggest on a CPU: its input gradients run
through bf16 autocast casts and unfused elementwise kernels).

Speed (``scripts/benchmark_llmseqprompt.py --measure``): ``batching`` ``grouped`` forms batches of
similar length (transformers' ``LengthGroupedSampler``: little padding, a seeded order), ``packed``
concatenates a batch into one row without padding (position ids restart per example, so the
attention is block-diagonal; on a CPU the masked attention over the whole row costs more than the
padding it saves when examples are similar in length); ``loss_head="answer"`` applies the LM head
(49k x 576 for SmolLM2) only where the loss is, the answer tokens, instead of at every prompt
position (:func:`answer_loss`, the same loss). The optimiser is the fused AdamW
(``adamw_torch_fused``: transformers' default since torch 2.8, so the reference path used it
already; now explicit). The reference path (``padded``, ``all``) is the one before these options.

``precision="bf16"`` (an option, CPUs with avx512_bf16 / amx_bf16 only) trains with the Trainer's
bf16 autocast (``bf16=True``; fp32 master weights and optimiser; the model kept is fp32). With
``lora=True`` the frozen base weights are held in bf16 themselves (they have no gradient or
optimiser state, so they need no fp32 master copy, and autocast stops re-casting them every
step; the adapters stay fp32): the kept, merged model is fp32 with bf16-rounded base weights. Profile
of one step (batch 8 x 104 tokens, answer-only head, 2 threads, load ~4-5): fp32 ``aten::mm`` 53 %
of the step, elementwise ``mul``/``add`` 21 %; with bf16 autocast ``mm`` halves (11.8 → 6.3 s CPU) but
the casts (``copy_``) add 5.4 s: measured 31 s → 12 s a step in that run, the interleaved figures of
``scripts/benchmark_llmseqprompt.py --precisions fp32 bf16`` are in results/benchmarks. It enters
the key only when not fp32 (:func:`finetune_key`).

The kept model is cached under ``<cache>/finetuned/<key>/`` where ``key`` hashes the base
model's identity, the examples' text and every training hyper-parameter, so the same data and
config never train twice (and an interrupted study resumes), and anything else trains anew.
``torch.set_flush_denormal(True)`` is set; a GPU is used when present (the Trainer's device).
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..utils import atomic_write_text, short_hash
from .local import default_llm_cache, load_model, prepare_torch


BATCHING = ("padded", "grouped", "packed")
LOSS_HEADS = ("all", "answer")
PRECISIONS = ("fp32", "bf16")


def check_lora_layers(lora_layers: int, lora: bool, *, where: str) -> None:
    """Refuse a ``lora_layers`` that cannot be built: negative, or > 0 without ``lora=True``
    (``where`` names the config in the message). Shared by :class:`TrainConfig` and
    ``LLMSeqPromptConfig``, which checks it before any model is loaded."""
    if lora_layers < 0 or (lora_layers and not lora):
        raise ValueError(f"{where}: lora_layers must be 0 (every layer) or > 0 with lora=True, "
                         f"got lora_layers={lora_layers}, lora={lora}")


@dataclass
class TrainConfig:
    """Fine-tuning hyper-parameters (defaults: docs/local-models' measured recipe)."""

    epochs: float = 1.0  # passes over the training examples
    lr: float | None = None  # AdamW learning rate; None: 5e-5 full, 2e-4 LoRA
    batch_size: int = 8  # examples per step
    eval_steps: int = 10  # validation loss every this many steps
    patience: int = 3  # evaluations without improvement before stopping
    lora: bool = False  # LoRA adapter (peft) instead of full fine-tuning
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_layers: int = 0  # > 0: adapters on the top this many decoder layers only, so the backward pass stops below them (~3x faster on a CPU); 0: every layer
    weight_decay: float = 0.0
    warmup_steps: int = 0
    seed: int = 0
    max_steps: int = -1  # > 0: stop after this many steps (CI)
    batching: str = "padded"  # padded (reference: random batches padded to their longest) | grouped | packed
    loss_head: str = "all"  # all (reference: LM head at every position) | answer (only where the loss is)
    precision: str = "fp32"  # fp32 (reference) | bf16: Trainer bf16 autocast (fp32 master weights); native bf16 only

    def __post_init__(self):
        for name, ok in (("batching", BATCHING), ("loss_head", LOSS_HEADS), ("precision", PRECISIONS)):
            if getattr(self, name) not in ok:
                raise ValueError(f"TrainConfig: {name} must be one of {ok}, got {getattr(self, name)!r}")
        check_lora_layers(self.lora_layers, self.lora, where="TrainConfig")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (2e-4 if self.lora else 5e-5)


def tokenize_examples(tok, examples: list[tuple[str, str]]) -> list[dict]:
    """``(prompt, completion)`` texts → input ids with labels −100 on the prompt tokens."""
    if not examples:
        return []
    p = tok([e[0] for e in examples], add_special_tokens=False)["input_ids"]
    c = tok([e[1] for e in examples], add_special_tokens=False)["input_ids"]
    return [{"input_ids": a + b, "labels": [-100] * len(a) + b} for a, b in zip(p, c)]


def _collate(pad_id: int):
    import torch  # heavy: loaded only where tensors are used

    def collate(batch):
        n = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
        lab = torch.full((len(batch), n), -100, dtype=torch.long)
        att = torch.zeros((len(batch), n), dtype=torch.long)
        for i, b in enumerate(batch):
            m = len(b["input_ids"])
            ids[i, :m] = torch.tensor(b["input_ids"]); lab[i, :m] = torch.tensor(b["labels"]); att[i, :m] = 1
        return {"input_ids": ids, "labels": lab, "attention_mask": att}

    return collate


def _collate_packed(batch):
    """The batch's examples as **one** row without padding: ids and labels concatenated, position
    ids restarting at 0 for every example and no attention mask, from which transformers builds a
    block-diagonal causal mask (``masking_utils.find_packed_sequence_indices``): no token attends
    across an example boundary, and every example's first label is −100 (a prompt token), so no
    loss crosses one either. transformers detects packed rows only without a key/value cache:
    :func:`finetune` trains with ``use_cache=False``."""
    import torch  # heavy: loaded only where tensors are used

    ids = [t for b in batch for t in b["input_ids"]]
    lab = [t for b in batch for t in b["labels"]]
    pos = [p for b in batch for p in range(len(b["input_ids"]))]
    as_row = lambda v: torch.tensor([v], dtype=torch.long)
    return {"input_ids": as_row(ids), "labels": as_row(lab), "position_ids": as_row(pos)}


def answer_loss(model, inputs: dict):
    """Mean cross-entropy of the answer tokens, with the LM head applied **only** at the
    positions whose next token is an answer token (labels ≠ −100): the same loss as the model's
    own (``labels`` shifted by one, mean over the batch's answer tokens) without the logits of the
    prompt positions (~85 % of the tokens: a 49k x 576 matrix product each, forward and backward).

    Args:
        model: a causal LM (or a peft model around one) with ``get_decoder`` and ``get_output_embeddings``.
        inputs: ``input_ids``, ``labels`` (B, L) and optionally ``attention_mask`` / ``position_ids``.
    Returns: the scalar loss.
    """
    import torch.nn.functional as F

    labels = inputs["labels"]
    kw = {k: inputs[k] for k in ("input_ids", "attention_mask", "position_ids") if k in inputs}
    hidden = model.get_decoder()(**kw, use_cache=False).last_hidden_state  # no cache: packed rows are detected
    target = labels[:, 1:]
    where = target != -100
    logits = model.get_output_embeddings()(hidden[:, :-1][where]).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = cap * (logits / cap).tanh()
    return F.cross_entropy(logits, target[where])


def _trainer_class(loss_head: str):
    from transformers import Trainer  # heavy: loaded only by LLM runs

    if loss_head == "all":
        return Trainer

    class AnswerHeadTrainer(Trainer):
        """The Trainer with :func:`answer_loss` (evaluation included)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = answer_loss(model, inputs)
            return (loss, {"loss": loss}) if return_outputs else loss

    return AnswerHeadTrainer


def finetune_key(base_id: str, train: list[tuple[str, str]], val: list[tuple[str, str]], cfg: TrainConfig) -> str:
    """Content key of a fine-tuning: base weights, examples and every hyper-parameter. ``precision``
    enters only when it is not the reference ``fp32``, so fp32 keys stay what they were before the
    field existed and a bf16 fine-tuning never stands for an fp32 one (or the reverse)."""
    fields = asdict(cfg)
    if not fields["lora_layers"]:  # every layer: the key of before the field existed
        del fields["lora_layers"]
    if fields["precision"] == "fp32":
        del fields["precision"]
    elif cfg.lora:  # LoRA in bf16 holds the frozen base in bf16 (since issue 24's second pass)
        fields["lora_base"] = "bf16"
    return short_hash(base_id, train, val, fields)


def finetune(model_name: str, tok, train: list[tuple[str, str]], val: list[tuple[str, str]], cfg: TrainConfig,
             *, base_id: str, cache: Path | None = None, progress: bool = True, num_threads: int | None = None):
    """Fine-tune (or load the cached result) and return ``(model, info)``.

    Args:
        model_name: base model (``smollm2``, ``tiny-random`` or a folder; see :mod:`.local`).
        train, val: ``(prompt, completion)`` texts; ``val`` may be empty (no eval, no early stop).
        base_id: identity of the base weights (:func:`.local.base_model_id`), part of the key.

    Returns:
        the fine-tuned causal LM (eval mode) and ``info``: key, steps, epochs, best step, best
        validation loss, train tokens, train seconds, tokens/s and the loss ``history`` (one
        dict per logged step: ``step``, ``loss`` or ``eval_loss``).
    """
    import torch  # heavy: loaded only where tensors are used
    from transformers import AutoModelForCausalLM, EarlyStoppingCallback, TrainingArguments  # heavy: loaded only by LLM runs

    prepare_torch(num_threads)
    if not train:
        raise ValueError("no training example to fine-tune on")
    key = finetune_key(base_id, train, val, cfg)
    root = Path(cache or default_llm_cache()) / "finetuned" / key
    info_path = root / "info.json"
    if info_path.is_file() and (root / "model" / "config.json").is_file():
        info = json.loads(info_path.read_text())
        lm = AutoModelForCausalLM.from_pretrained(root / "model", dtype=torch.float32)
        if torch.cuda.is_available():
            lm = lm.to("cuda")
        return lm.eval(), {**info, "cached": True}
    lm = load_model(model_name, tok, seed=cfg.seed)
    if cfg.lora:
        from peft import LoraConfig, get_peft_model  # heavy: loaded only for LoRA

        if cfg.precision == "bf16":  # the frozen base in bf16: no per-step casts of its weights
            lm = lm.to(torch.bfloat16)

        n_layers = lm.config.num_hidden_layers
        top = list(range(n_layers - cfg.lora_layers, n_layers)) if 0 < cfg.lora_layers < n_layers else None
        # peft's "all-linear" spelled out (every linear layer but the LM head): layers_to_transform needs names
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in lm.named_modules()
                         if isinstance(m, torch.nn.Linear) and m is not lm.get_output_embeddings()})
        lm = get_peft_model(lm, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                           target_modules=linear if top else "all-linear", task_type="CAUSAL_LM",
                                           layers_to_transform=top))
    tr, va = tokenize_examples(tok, train), tokenize_examples(tok, val)
    lm.config.use_cache = False  # training needs no cache, and packed rows are only detected without one
    work = root.parent / f".work-{key}"
    shutil.rmtree(work, ignore_errors=True)
    has_val = len(va) > 0
    args = TrainingArguments(
        output_dir=str(work), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps, eval_on_start=has_val,
        lr_scheduler_type="linear", logging_steps=1, eval_strategy="steps" if has_val else "no",
        eval_steps=cfg.eval_steps, save_strategy="steps" if has_val else "no", save_steps=cfg.eval_steps,
        save_total_limit=1, save_only_model=True, load_best_model_at_end=has_val,
        metric_for_best_model="eval_loss", greater_is_better=False, seed=cfg.seed, data_seed=cfg.seed,
        report_to=[], disable_tqdm=not progress, prediction_loss_only=True, dataloader_num_workers=0, remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(), optim="adamw_torch_fused", bf16=cfg.precision == "bf16",
        train_sampling_strategy="group_by_length" if cfg.batching == "grouped" else "random")
    callbacks = [EarlyStoppingCallback(early_stopping_patience=cfg.patience)] if has_val else []
    collate = _collate_packed if cfg.batching == "packed" else _collate(tok.pad_token_id)
    trainer = _trainer_class(cfg.loss_head)(model=lm, args=args, train_dataset=tr, eval_dataset=va if has_val else None,
                                            data_collator=collate, callbacks=callbacks)
    t0 = time.perf_counter()
    out = trainer.train()
    dt = time.perf_counter() - t0
    lm = trainer.model
    if cfg.lora:
        lm = lm.merge_and_unload().float()
    lm.config.use_cache = True
    hist = [{k: v for k, v in h.items() if k in ("step", "epoch", "loss", "eval_loss", "learning_rate")}
            for h in trainer.state.log_history]
    steps = int(trainer.state.global_step)
    n_tok = sum(len(e["input_ids"]) for e in tr)
    trained_tokens = int(n_tok * steps * cfg.batch_size / max(len(tr), 1))  # tokens seen (examples average)
    evals = [h for h in hist if "eval_loss" in h]
    info = {"key": key, "steps": steps, "epochs": float(trainer.state.epoch or 0), "train_examples": len(tr),
            "val_examples": len(va), "best_step": (min(evals, key=lambda h: h["eval_loss"])["step"] if evals else steps),
            "best_eval_loss": (min(h["eval_loss"] for h in evals) if evals else None),
            "train_loss": float(out.training_loss), "train_tokens": trained_tokens, "train_s": round(dt, 3),
            "train_tokens_per_s": trained_tokens / dt if dt > 0 else None, "lora": cfg.lora,
            "batching": cfg.batching, "loss_head": cfg.loss_head, "precision": cfg.precision,
            "device": str(next(lm.parameters()).device), "threads": torch.get_num_threads(), "history": hist}
    tmp = root.parent / f".tmp-{key}"
    shutil.rmtree(tmp, ignore_errors=True)
    lm.save_pretrained(tmp / "model")
    atomic_write_text(tmp / "info.json", json.dumps(info, indent=1))
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    shutil.rmtree(work, ignore_errors=True)
    return lm.eval(), {**info, "cached": False}
