"""A child forked while another thread of the parent has the helper for a
batch (its half in flight) starts with the helper free for its own
(common.data_parallel._after_fork_in_child): that thread does not exist in
the child and will never release the parent's hold, which, kept, left the
child computing both halves of every batch itself for good (and its exit
waiting STOP_GRACE_SECONDS for the hold)."""

import os
import subprocess
import sys
from pathlib import Path

from helper_processes import needs_fork, needs_helpers

SCRIPT = """
import os, threading, numpy as np
from common import batch_worker, data_parallel as dp
from models import Seq2seq

rng = np.random.default_rng(0)
x = rng.integers(0, 13, (128, 7)); t = rng.integers(0, 13, (128, 5))
held, go_on = threading.Event(), threading.Event()
real_wait, real_post = batch_worker.BatchWorker.wait, batch_worker.BatchWorker.post
posts = []
def wait(self, *args, **kwargs):  # the holder's half stays in flight until go_on
    if threading.current_thread().name == "holder" and not held.is_set():
        held.set()
        go_on.wait(30)
    return real_wait(self, *args, **kwargs)
def post(self, *args):
    posts.append(os.getpid())
    return real_post(self, *args)
batch_worker.BatchWorker.wait, batch_worker.BatchWorker.post = wait, post

def hold():
    model = Seq2seq(13, 16, 128, seed=1)
    with dp.batch_halves(model, x.shape, t.shape) as fb:
        fb(x, t)
holder = threading.Thread(target=hold, name="holder")
holder.start()
assert held.wait(60)
pid = os.fork()
if pid == 0:
    try:
        model = Seq2seq(13, 16, 128, seed=2)
        with dp.batch_halves(model, x.shape, t.shape) as fb:
            fb(x, t)
        print("child posts", posts.count(os.getpid()), flush=True)
        dp._close()
    finally:
        os._exit(0)
os.waitpid(pid, 0)
go_on.set()
holder.join()
"""


@needs_helpers
@needs_fork
def test_a_child_forked_while_another_thread_has_the_helper_gets_a_helper_of_its_own():
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(root),
                                                RNNLAB_NUM_THREADS="2"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["child", "posts", "1"], done.stderr
