"""A tiny causal LM and tokenizer built on the spot (no downloads)."""
from __future__ import annotations

from pathlib import Path

TEXTS = [
    "The cat sat on the mat and looked at the door.",
    "A dog ran across the park chasing a red ball.",
    "Compression ratios measure how redundant a text is.",
    "Language models assign probabilities to the next token.",
] * 5


def tiny_lm(folder: Path, bos: bool = True, softcap: float | None = None) -> Path:
    """A 2-layer GPT-2; with ``softcap``, a 2-layer Gemma 2 whose forward soft-caps its logits."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (Gemma2Config, Gemma2ForCausalLM, GPT2Config, GPT2LMHeadModel,
                              PreTrainedTokenizerFast)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TEXTS, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>",
                                   bos_token="<|endoftext|>" if bos else None)
    torch.manual_seed(0)
    if softcap is None:
        config = GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=256, n_embd=32, n_layer=2, n_head=2)
        model = GPT2LMHeadModel(config)
    else:
        config = Gemma2Config(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64,
                              num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                              head_dim=16, max_position_embeddings=256, final_logit_softcapping=softcap,
                              attn_logit_softcapping=None, pad_token_id=1, bos_token_id=0, eos_token_id=0)
        model = Gemma2ForCausalLM(config)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def bpe_tokenizer_file(texts: list[str], path: Path, vocab_size: int = 400):
    """A byte-level BPE ``tokenizer.json`` trained on ``texts``; returns the tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["[UNK]"]))
    tok.save(str(path))
    return tok
