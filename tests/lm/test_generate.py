import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from aqaa.lm.fast import FastLlama
from aqaa.lm.generate import Generator, SamplingConfig, sample
from aqaa.lm.layouts import LAYOUTS, parse_answer
from aqaa.vocab import Vocabulary, train_text_tokenizer

TEXTS = ["what is seven plus five", "seven plus five is twelve", "the capital of france is paris"]


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary(train_text_tokenizer(TEXTS, vocab_size=300, min_frequency=1), linguistic_size=16,
                      semantic_size=32)


def tiny_llama(vocab_size, seed=0, kv_heads=2):
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=512,
                         tie_word_embeddings=False)
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("kernel", ["cpp", "python"])
@pytest.mark.parametrize("kv_heads", [4, 2])
def test_greedy_tokens_equal_hf_generate(kv_heads, kernel):
    model = tiny_llama(500, kv_heads=kv_heads)
    prompt = torch.randint(0, 500, (1, 12), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        hf = model.generate(prompt, max_new_tokens=60, min_new_tokens=60, do_sample=False)[0, 12:].tolist()
    fast = FastLlama(model, 128, kernel=kernel)
    assert fast.kernel == kernel
    logits, ours = fast.forward(prompt[0]), []
    for _ in range(60):
        ours.append(int(logits.argmax()))
        logits = fast.forward(torch.tensor([ours[-1]]))
    assert ours == hf


@pytest.mark.parametrize("kernel", ["cpp", "python"])
def test_incremental_logits_equal_a_full_forward(kernel):
    model = tiny_llama(500)
    ids = torch.randint(0, 500, (40,), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        full = model(ids[None]).logits[0]
    fast = FastLlama(model, 64, kernel=kernel)
    torch.testing.assert_close(fast.forward(ids[:25]), full[24], rtol=1e-4, atol=1e-5)
    for t in range(25, 40):  # one by one, then a chunk after a reset
        step = fast.forward(ids[t:t + 1])
        torch.testing.assert_close(step, full[t], rtol=1e-4, atol=1e-5)
    fast.reset()
    fast.forward(ids[:10])
    torch.testing.assert_close(fast.forward(ids[10:30]), full[29], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="max_len"):
        fast.forward(ids)


@pytest.mark.parametrize("kernel", ["python", "cpp"])
def test_decode_steps_compute_hf_cached_logits(kernel):
    """Every op of a Python decode step is HF Llama's own arithmetic (fused products over transposed views, fused
    RMSNorm, RoPE by roll with a signed sine table), so its logits are equal, not merely close. The C++ step sums
    in another order: equal to float rounding, also after a truncation (a rejected draft)."""
    model = tiny_llama(500, kv_heads=2)
    ids = torch.randint(0, 500, (30,), generator=torch.Generator().manual_seed(3))
    fast = FastLlama(model, 64, kernel=kernel)

    def check(ours, theirs):
        if kernel == "python":
            assert torch.equal(ours, theirs)
        else:
            torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)

    with torch.inference_mode():
        out = model(ids[None, :20], use_cache=True)
        fast.forward(ids[:20])
        for t in range(20, 30):
            out = model(ids[None, t:t + 1], cache=out.past_key_values, use_cache=True)
            check(fast.forward(ids[t:t + 1]), out.logits[0, -1])
        fast.truncate(25)  # against a full forward, which sums differently from a cached step: close, not equal
        torch.testing.assert_close(fast.forward(ids[25:26]), model(ids[None, :26]).logits[0, -1], rtol=0,
                                   atol=1e-5)


def test_int8_cpp_steps_compute_the_python_int8_logits():
    """Weight-only int8 in both paths: the C++ step's own int8 product agrees with the Python path's widened one."""
    model = tiny_llama(500, kv_heads=2)
    ids = torch.randint(0, 500, (30,), generator=torch.Generator().manual_seed(6))
    cpp, python = FastLlama(model, 64, weights="int8", kernel="cpp"), FastLlama(model, 64, weights="int8",
                                                                                  kernel="python")
    cpp.forward(ids[:20])
    python.forward(ids[:20])
    for t in range(20, 30):
        torch.testing.assert_close(cpp.forward(ids[t:t + 1]), python.forward(ids[t:t + 1]), rtol=0, atol=1e-5)


def test_kernel_choice_is_checked():
    model = tiny_llama(500)
    assert FastLlama(model, 64, weights="int8").kernel == "cpp"
    assert FastLlama(model, 64, weights="bf16").kernel == "python"  # "auto": the C++ step reads fp32 and int8
    with pytest.raises(ValueError, match="int8"):
        FastLlama(model, 64, weights="bf16", kernel="cpp")
    with pytest.raises(ValueError, match="kernel"):
        FastLlama(model, 64, kernel="cuda")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_sampled_answers_are_always_well_formed(vocab, layout):
    model = tiny_llama(vocab.size)
    for seed in range(2):
        gen = Generator(model, vocab, layout, SamplingConfig(temperature=1.5, top_p=1.0, seed=seed,
                                                             max_new_tokens=120), max_len=160)
        events = list(gen.generate(torch.tensor([vocab.bot, 5, 6])))
        assert events[-1].kind == "end"
        audio = [i for e in events if e.kind == "audio" for i in e.audio_ids]
        assert all(len(e.audio_ids) % 5 == 0 for e in events if e.kind == "audio")
        assert all(len(e.audio_ids) == 15 for e in [e for e in events if e.kind == "audio"][:-1])
        text = "".join(e.text for e in events if e.kind == "text")
        if not events[-1].truncated:  # the layout's own parser reads the answer the events came from
            text_ids, audio_ids = parse_answer(vocab, gen.last_answer_ids, layout)
            assert audio_ids == audio and vocab.decode_text(text_ids) == text


def test_sampling_settings():
    logits = torch.tensor([1.0, 3.0, 2.0, 0.5])
    allowed = torch.tensor([True, False, True, True])
    assert sample(logits, allowed, SamplingConfig(greedy=True), [], None) == 2
    draws = {sample(logits, allowed, SamplingConfig(top_k=1), [], torch.Generator().manual_seed(s)) for s in range(20)}
    assert draws == {2}
    draws = {sample(logits, allowed, SamplingConfig(temperature=1.0, top_p=1.0), [], torch.Generator().manual_seed(s))
             for s in range(200)}
    assert draws == {0, 2, 3}  # never the masked id
    penalised = sample(logits, allowed, SamplingConfig(greedy=True, repetition_penalty=10.0), [2], None)
    assert penalised == 0
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=0.0)


def _greedy(fast, prompt, n):
    fast.reset()
    logits, out = fast.forward(prompt), []
    for _ in range(n):
        out.append(int(logits.argmax()))
        logits = fast.forward(torch.tensor([out[-1]]))
    return out


def test_speculative_greedy_gives_plain_greedy_tokens():
    from aqaa.lm.fast import speculative_greedy

    model = tiny_llama(500)
    prompt = torch.randint(0, 500, (10,), generator=torch.Generator().manual_seed(4))
    plain = _greedy(FastLlama(model, 256, kernel="python"), prompt, 50)
    # a draft that is the target itself accepts everything; a different model accepts little; both are exact
    same, stats = speculative_greedy(FastLlama(model, 256), FastLlama(model, 256), prompt, 50, k=4)
    assert same == plain and stats["acceptance"] > 0.9
    other, stats = speculative_greedy(FastLlama(model, 256), FastLlama(tiny_llama(500, seed=9), 256), prompt, 50)
    assert other == plain and stats["tokens_per_pass"] >= 1


@pytest.mark.parametrize("weights", ["bf16", "int8"])
def test_reduced_precision_weights_stay_close(weights):
    model = tiny_llama(500)
    ids = torch.randint(0, 500, (20,), generator=torch.Generator().manual_seed(5))
    exact = FastLlama(model, 64).forward(ids)
    approx = FastLlama(model, 64, weights=weights).forward(ids)
    assert (approx - exact).abs().max() < 0.05 * exact.abs().max()
    assert torch.corrcoef(torch.stack([exact, approx]))[0, 1] > 0.99
    with pytest.raises(ValueError, match="weights"):
        FastLlama(model, 64, weights="int4")
