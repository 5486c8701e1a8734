#!/usr/bin/env python3
"""Record the CUDA baseline that `npm run bench` compares phi-wasm against.

Runs on a GPU machine that has python3, torch and transformers installed and
cannot download anything. It builds PhiForCausalLM from the phi-1_5
config.json kept in this repo (bench/fixtures/phi-1_5.config.json) with random
weights -- speed does not depend on the values -- in float16 on cuda, and
measures batch-1 throughput three ways:

  generate  model.generate(Code prompt, max_length=200), greedy, as the model
            card does; tokens/s counts the new tokens over the whole call.
  prefill   one forward pass over 128 prompt tokens (empty cache).
  decode    128 greedy steps, one token each, on top of a 128-token cache.

Each measurement gets warm-up runs first, torch.cuda.synchronize() on both
sides of the timed region, and the median of --runs (at least 5) timed runs.
The result is written as JSON to --out (bench/fixtures/cuda-baseline.json).

Usage:
  python3 bench/cuda/record_baseline.py [--out PATH] [--runs N] [--warmup N]
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import torch
import transformers
from transformers import PhiConfig, PhiForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CONFIG = os.path.join(REPO, "bench", "fixtures", "phi-1_5.config.json")

# The model card's Code prompt,
#   def print_prime(n):\n   """\n   Print all primes between 1 and n\n   """
# tokenised by the phi-1.5 (CodeGen) tokenizer; 50285 is the three-space token.
# Kept as ids so that nothing has to be downloaded (see test/fixtures tokenizer
# tests, which check the same ids against tokenizer.json).
CODE_PROMPT_IDS = [4299, 3601, 62, 35505, 7, 77, 2599, 198, 50285, 37811, 198,
                   50285, 18557, 477, 778, 999, 1022, 352, 290, 299, 198, 50285,
                   37811]


def timed(fn, runs, warmup):
    """Median wall time of fn() in seconds, GPU work included."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "fixtures", "cuda-baseline.json"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--prefill-tokens", type=int, default=128)
    ap.add_argument("--decode-tokens", type=int, default=128)
    ap.add_argument("--max-length", type=int, default=200)
    args = ap.parse_args()
    if args.runs < 5:
        ap.error("--runs must be at least 5 (the baseline is a median)")
    if not torch.cuda.is_available():
        sys.exit("record_baseline: no CUDA device visible to torch; run this on a GPU machine")

    torch.manual_seed(0)
    dev = torch.device("cuda")
    with open(CONFIG) as f:
        cfg_dict = json.load(f)
    config = PhiConfig(**{k: v for k, v in cfg_dict.items() if not k.startswith("_")})
    # No EOS: random weights would otherwise stop generate() at a random length.
    config.eos_token_id = None
    config.pad_token_id = None

    with dev:  # initialise on the GPU: random init of 1.4B weights on CPU is slow
        model = PhiForCausalLM(config)
    model = model.to(dtype=torch.float16).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0  # silences the "setting pad_token_id" warning
    n_params = sum(p.numel() for p in model.parameters())
    attn_impl = getattr(model.config, "_attn_implementation", None)

    gen = torch.Generator(device="cpu").manual_seed(1)
    prompt = torch.tensor([CODE_PROMPT_IDS], device=dev)
    prefill_ids = torch.randint(0, 50295, (1, args.prefill_tokens), generator=gen).to(dev)

    with torch.inference_mode():
        # 1. generate() exactly as the model card: greedy to max_length total tokens.
        def run_generate():
            out = model.generate(prompt, max_length=args.max_length, do_sample=False)
            assert out.shape[1] == args.max_length, out.shape
        gen_s, gen_all = timed(run_generate, args.runs, args.warmup)
        gen_new = args.max_length - prompt.shape[1]

        # 2. prefill: one forward over P tokens from an empty cache.
        def run_prefill():
            return model(prefill_ids, use_cache=True)
        pre_s, pre_all = timed(run_prefill, args.runs, args.warmup)

        # 3. decode: N single-token steps on top of the P-token cache. The cache
        # is rebuilt (untimed) before every run so each run decodes the same
        # positions P..P+N-1.
        def run_decode_timed():
            out = model(prefill_ids, use_cache=True)
            cache = out.past_key_values
            tok = out.logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(args.decode_tokens):
                out = model(tok, past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                tok = out.logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
            return time.perf_counter() - t0
        for _ in range(args.warmup):
            run_decode_timed()
        dec_all = [run_decode_timed() for _ in range(args.runs)]
        dec_s = statistics.median(dec_all)

    result = {
        "description": "phi-1.5 (PhiForCausalLM, exact microsoft/phi-1_5 shapes, random weights) "
                       "batch-1 greedy throughput in PyTorch on CUDA",
        "gpu": torch.cuda.get_device_name(0),
        "dtype": "float16",
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "cuda_version": torch.version.cuda,
        "python_version": platform.python_version(),
        "attn_implementation": attn_impl,
        "num_parameters": n_params,
        "weights": "random (speed does not depend on values)",
        "generate": {
            "prompt": "model card Code prompt (def print_prime)",
            "prompt_tokens": prompt.shape[1],
            "max_length": args.max_length,
            "new_tokens": gen_new,
            "seconds_median": gen_s,
            "tokens_per_s": gen_new / gen_s,
        },
        "prefill_tokens": args.prefill_tokens,
        "prefill_tokens_per_s": args.prefill_tokens / pre_s,
        "decode_tokens": args.decode_tokens,
        "decode_context_tokens": args.prefill_tokens,
        "decode_tokens_per_s": args.decode_tokens / dec_s,
        "runs": args.runs,
        "warmup_runs": args.warmup,
        "seconds_all_runs": {"generate": gen_all, "prefill": pre_all, "decode": dec_all},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python3", os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
