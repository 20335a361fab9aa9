"""Train a recurrent language model with truncated BPTT and plot its perplexity.

With no arguments it runs the classic demo: SimpleRnnlm on the first 1,000
words of Penn Treebank, batch 10, time 5, D = H = 100, SGD lr 0.1, 100
epochs, perplexity curve in ppl.png (a few seconds on a laptop).

    python scripts/train_rnnlm.py                                   # the demo
    python scripts/train_rnnlm.py --corpus-size 0 --epochs 1 \\
        --batch-size 20 --time-size 35 --eval                       # full PTB
    python scripts/train_rnnlm.py --corpus text --text-file book.txt --level char
"""

import argparse
import math
import os
import sys
import time

# Running "python scripts/train_rnnlm.py" from a clone puts scripts/ (not the
# repository) on sys.path; make the packages importable without installing.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from common import optimizer as optimizers  # noqa: E402
from common.trainer import RnnlmTrainer, TrainingDiverged, TrainingInterrupted  # noqa: E402
from common.util import eval_perplexity  # noqa: E402
from datasets import ptb, synthetic, text  # noqa: E402
from models import build_model  # noqa: E402

OPTIMIZERS = {
    "sgd": optimizers.SGD,
    "momentum": optimizers.Momentum,
    "adagrad": optimizers.AdaGrad,
    "rmsprop": optimizers.RMSprop,
    "adam": optimizers.Adam,
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Train a recurrent language model (truncated BPTT) and plot its perplexity.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = p.add_argument_group("data")
    data.add_argument("--corpus", choices=["ptb", "synthetic", "text"], default=None,
                      help="training corpus (default: ptb, falling back to synthetic with a "
                           "notice when PTB cannot be found or downloaded)")
    data.add_argument("--data-dir", default=None,
                      help="folder holding ptb.train.txt, ptb.valid.txt, ptb.test.txt "
                           "(else $RNNLAB_PTB_DIR, the user cache, or a download)")
    data.add_argument("--text-file", default=None, help="UTF-8 text file for --corpus text")
    data.add_argument("--level", choices=["word", "char"], default="word",
                      help="tokens of --corpus text")
    data.add_argument("--corpus-size", type=int, default=1000,
                      help="train on the first N tokens only (0 = all)")
    model = p.add_argument_group("model")
    model.add_argument("--model", choices=["simple", "lstm", "gru", "better"], default="simple",
                       help="simple: SimpleRnnlm; lstm: Rnnlm; gru: GruRnnlm; better: BetterRnnlm")
    model.add_argument("--wordvec-size", type=int, default=100, help="embedding size D")
    model.add_argument("--hidden-size", type=int, default=100, help="hidden size H")
    model.add_argument("--num-layers", type=int, default=2, help="LSTM layers of --model better")
    model.add_argument("--dropout", type=float, default=0.5, help="dropout of --model better")
    model.add_argument("--no-tie", action="store_true",
                       help="--model better: separate output weights (default: tied when D == H)")
    model.add_argument("--init-scale", type=float, default=None,
                       help="uniform init in +-scale instead of the default init")
    train = p.add_argument_group("training")
    train.add_argument("--batch-size", type=int, default=10)
    train.add_argument("--time-size", type=int, default=5, help="truncated BPTT length")
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd")
    train.add_argument("--lr", type=float, default=0.1)
    train.add_argument("--epochs", type=int, default=100)
    train.add_argument("--max-grad", type=float, default=None, help="clip the gradient norm")
    train.add_argument("--lr-decay", type=float, default=None,
                       help="divide lr by this when validation perplexity does not improve "
                            "(implies --val)")
    train.add_argument("--lr-halve-from", type=int, default=None,
                       help="halve lr after every epoch from this epoch on (Zaremba et al.)")
    train.add_argument("--patience", type=int, default=None,
                       help="stop after this many epochs without improvement (implies --val)")
    train.add_argument("--val", action="store_true",
                       help="validation perplexity after every epoch; keep the best model")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--eval-interval", type=int, default=20,
                       help="record the training perplexity every N iterations")
    out = p.add_argument_group("output")
    out.add_argument("--plot", default="ppl.png", help="where to write the perplexity plot")
    out.add_argument("--save", default=None, help="save the model parameters (.npz)")
    out.add_argument("--eval", action="store_true", help="valid and test perplexity at the end")
    out.add_argument("--checkpoint", default=None,
                     help="write a resumable checkpoint (.npz) here during training")
    out.add_argument("--checkpoint-every", type=int, default=None,
                     help="checkpoint every N iterations (default: every epoch)")
    out.add_argument("--resume", default=None, help="continue from this checkpoint")
    out.add_argument("--quiet", action="store_true", help="no progress output")
    args = p.parse_args(argv)
    if args.corpus == "text" and not args.text_file:
        p.error("--corpus text needs --text-file")
    if args.corpus_size < 0:
        p.error("--corpus-size must be >= 0")
    for name in ("batch_size", "time_size", "epochs", "wordvec_size", "hidden_size"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    return args


def load_corpus(args):
    """Returns (train, valid, test, word_to_id, id_to_word, name)."""
    corpus = args.corpus or "ptb"
    if corpus == "ptb":
        try:
            train, w2i, i2w = ptb.load_data("train", data_dir=args.data_dir)
            valid = ptb.load_data("valid", data_dir=args.data_dir)[0]
            test = ptb.load_data("test", data_dir=args.data_dir)[0]
            return train, valid, test, w2i, i2w, "PTB"
        except ptb.DataNotFoundError as exc:
            if args.corpus == "ptb":
                print(f"error: {exc}", file=sys.stderr)
                sys.exit(2)
            first_line = str(exc).splitlines()[0]
            print(f"notice: Penn Treebank is not available ({first_line}).\n"
                  "notice: training on the built-in synthetic corpus instead; pass --data-dir "
                  "or set RNNLAB_PTB_DIR to use PTB.", file=sys.stderr)
            corpus = "synthetic"
    if corpus == "synthetic":
        train, w2i, i2w = synthetic.load_data("train")
        valid = synthetic.load_data("valid")[0]
        test = synthetic.load_data("test")[0]
        return train, valid, test, w2i, i2w, "synthetic"
    try:
        full, w2i, i2w = text.load_data(args.text_file, level=args.level)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    train, valid, test = text.split_corpus(full)
    return train, valid, test, w2i, i2w, os.path.basename(args.text_file)


def make_optimizer(args):
    return OPTIMIZERS[args.optimizer](lr=args.lr)


def main(argv=None):
    args = parse_args(argv)
    train, valid, test, word_to_id, id_to_word, name = load_corpus(args)
    if args.corpus_size:
        train = train[:args.corpus_size]
    # A small demo corpus uses only the ids it contains (like the textbook);
    # evaluating on held-out text needs the whole vocabulary.
    uses_held_out = args.eval or args.val or args.lr_decay or args.patience
    if uses_held_out or not args.corpus_size:
        vocab_size = len(word_to_id)
    else:
        vocab_size = int(train.max()) + 1
    xs, ts = train[:-1], train[1:]

    model = build_model(args.model, vocab_size, wordvec_size=args.wordvec_size,
                        hidden_size=args.hidden_size, num_layers=args.num_layers,
                        dropout=args.dropout, init_scale=args.init_scale, seed=args.seed,
                        tie_weights=False if args.no_tie else None)
    trainer = RnnlmTrainer(model, make_optimizer(args))
    if args.resume:
        # A resumed run keeps checkpointing to the file it came from.
        args.checkpoint = args.checkpoint or args.resume
        try:
            trainer.resume(args.resume)
        except (OSError, ValueError) as exc:
            print(f"error: cannot resume: {exc}", file=sys.stderr)
            return 2

    verbose = not args.quiet
    if verbose:
        print(f"{type(model).__name__} on {name}: {len(xs):,} training tokens, vocabulary "
              f"{vocab_size:,}, batch {args.batch_size} x time {args.time_size}, "
              f"{args.optimizer} lr {args.lr}")
    start = time.perf_counter()
    try:
        trainer.fit(
            xs, ts, max_epoch=args.epochs, batch_size=args.batch_size, time_size=args.time_size,
            max_grad=args.max_grad, eval_interval=args.eval_interval,
            val_corpus=valid if (args.val or args.lr_decay or args.patience) else None,
            lr_decay=args.lr_decay, patience=args.patience, lr_halve_from=args.lr_halve_from,
            checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
            verbose=verbose, plot_path=args.plot,
        )
    except TrainingInterrupted as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 130
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start

    if trainer.ppl_list or trainer.history["val_ppl"]:
        trainer.plot(path=args.plot)
        if verbose:
            print(f"perplexity plot: {args.plot}")
    train_ppl = trainer.history["train_ppl"][-1] if trainer.history["train_ppl"] else float("nan")
    print(f"train perplexity {train_ppl:.2f} (last epoch), {elapsed:.1f} s")
    if args.eval:
        for split, corpus in (("valid", valid), ("test", test)):
            ppl = eval_perplexity(model, corpus, batch_size=10, time_size=35)
            line = f"{split} perplexity {ppl:.2f}"
            if args.corpus == "text" and args.level == "char":
                line += f" = {math.log2(ppl):.3f} bits per character"
            print(line)
    if args.save:
        model.save_params(args.save, vocab=id_to_word,
                          level=args.level if args.corpus == "text" else "word")
        if verbose:
            print(f"model saved to {args.save}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # outside training (loading, evaluating): nothing to save
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
