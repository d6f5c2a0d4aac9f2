"""One of the processes of tests/test_multiprocess.py: ``python tests/multiprocess_worker.py ID N M PORT ROOT``.

Joins a ``jax.distributed`` run of N processes x M CPU devices (coordinator 127.0.0.1:PORT), then, like
every process of a multi-host run, runs the same program: 3 SGD steps of the Engine on fixed global
batches, and a short ``train.fit`` with checkpoints in ROOT/run (then that fit again: a resume of a
finished run). Process 0 writes the parameters to ROOT/result.npz.
"""

import os
import sys

import jax

pid, n, m, port, root = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
jax.config.update("jax_num_cpu_devices", m)
jax.config.update("jax_cpu_collectives_implementation", "gloo")

from jaxbeam import train  # noqa: E402

train.initialize_distributed(coordinator_address=f"127.0.0.1:{port}", num_processes=n, process_id=pid)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import multiprocess_common as common  # noqa: E402

assert jax.process_count() == n and jax.device_count() == m * n and jax.local_device_count() == m
sgd = common.sgd_steps()
fit = common.fit_run(os.path.join(root, "run"))
again = common.fit_run(os.path.join(root, "run"))
if pid == 0:
    out = {f"sgd{k}": v for k, v in sgd.items()}
    out.update({f"fit{k}": v for k, v in fit.items()})
    out.update({f"again{k}": v for k, v in again.items()})
    np.savez(os.path.join(root, "result.npz"), **out)
print("DONE", flush=True)
