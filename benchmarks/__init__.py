"""rnnlab's benchmarks: how fast it trains, against a floor, PyTorch and the textbook.

Run them with ``python scripts/benchmark.py`` (``--help`` for the options).

* :mod:`benchmarks.harness`: timing (medians of repeated runs, alternating
  groups), the report, the machine's description;
* :mod:`benchmarks.contenders`: one training iteration of rnnlab, of the
  textbook-style reference, of the lean step and of PyTorch;
* :mod:`benchmarks.reference_textbook`: the textbook-style SimpleRnnlm (also
  the yardstick of ``tests/test_reference_equivalence.py``);
* :mod:`benchmarks.reference_seq2seq`: the textbook-style seq2seq models;
* :mod:`benchmarks.bounds`: the two-core bound of a recurrent model's iteration;
* sections: :mod:`benchmarks.word_level`, :mod:`benchmarks.char_level`,
  :mod:`benchmarks.demo`, :mod:`benchmarks.evaluation`, :mod:`benchmarks.memory`,
  :mod:`benchmarks.seq2seq_speed`;
* :mod:`benchmarks.main`: the command line, listing the sections.
"""
