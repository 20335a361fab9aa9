"""``eval_perplexity`` on PTB valid: tokens per second."""

import time

from benchmarks.harness import Run, median, say
from common.util import eval_perplexity


def evaluation(run: Run, model, valid, runs: int) -> None:
    say(f"\n== eval_perplexity on PTB valid ({len(valid):,} tokens, batch 10, time 35)")
    times = []
    ppl = None
    for _ in range(runs):
        t0 = time.perf_counter()
        ppl = eval_perplexity(model, valid, batch_size=10, time_size=35)
        times.append(time.perf_counter() - t0)
    tokens = len(valid) - 1
    run.results["eval"] = {"tokens": tokens, "seconds": median(times),
                           "tokens_per_s": tokens / median(times), "ppl": ppl, "runs": runs}
    say(f"{median(times):.2f} s (median of {runs}) = {tokens / median(times):,.0f} tokens/s "
        f"(ppl {ppl:.1f} after the timing iterations)")
