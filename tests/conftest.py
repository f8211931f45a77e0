"""Shared fixtures: small random models of both supported families, and the course model."""

import copy

import pytest
import torch
from transformers import (AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                          LlamaForCausalLM)

import mechinterp_course as mc
from mechinterp_course.hooked import HookedModel
from mechinterp_course.models import COURSE_MODEL_DIR


@pytest.fixture(scope="session")
def tokenizer():
    return AutoTokenizer.from_pretrained(COURSE_MODEL_DIR)


def random_gpt2(vocab: int) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=3, n_embd=64, n_head=4, vocab_size=vocab, n_positions=64,
                     initializer_range=0.2, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(cfg).eval()


def random_llama(vocab: int) -> LlamaForCausalLM:
    """Llama family with grouped-query attention (4 query heads share 2 kv heads) and RoPE."""
    torch.manual_seed(0)
    cfg = LlamaConfig(num_hidden_layers=3, hidden_size=64, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=128, vocab_size=vocab,
                      max_position_embeddings=128, initializer_range=0.2, bos_token_id=0,
                      eos_token_id=0, pad_token_id=0)
    return LlamaForCausalLM(cfg).eval()


def fresh_copy(hf):
    """The same weights in a model untouched by our wrapper, with transformers' eager attention."""
    ref = type(hf)(copy.deepcopy(hf.config))
    ref.load_state_dict(hf.state_dict())
    ref.set_attn_implementation("eager")
    return ref.eval()


@pytest.fixture(scope="session")
def gpt2_model(tokenizer):
    return HookedModel(random_gpt2(len(tokenizer)), tokenizer, "random-gpt2")


@pytest.fixture(scope="session")
def llama_model(tokenizer):
    return HookedModel(random_llama(len(tokenizer)), tokenizer, "random-llama")


@pytest.fixture(scope="session")
def course_model():
    return mc.load_model("course", device="cpu")


@pytest.fixture(params=["gpt2_model", "llama_model", "course_model"])
def any_model(request):
    return request.getfixturevalue(request.param)
