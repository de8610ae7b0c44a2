"""Executors of a sweep: a local process pool or Ray tasks, behind one interface.

Both run ``fn(run, run_dir)`` (or ``fn(runs, run_dirs)`` for a batch of seeds) in worker
processes with one torch thread each and yield ``(job index, result or the exception it raised)``
as jobs finish; :func:`satedge.experiments.runner.run_sweep` alone turns the results into files.
:func:`ray_session` either joins a running cluster or starts a private local one that listens on
127.0.0.1 only.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Any

__all__ = ["cpu_count", "local_results", "ray_results", "ray_session"]

Job = tuple[Any, Any]
"""``(what to run, where)``: a run and its directory, or a tuple of runs and of directories."""
RunFn = Callable[[Any, Any], Any]
_RAY_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True,
                     name="satedge-parent-watch").start()


def _exit_with_parent(parent: int, period_s: float = 0.5) -> None:
    """End this pool worker once the sweep process that started it is gone.

    A sweep stopped by ``kill PID`` (SIGTERM or SIGKILL to the sweep process only) runs no
    clean-up, and its workers would go on training their runs to the end, writing into run
    directories that the same command, run again, takes over and resumes: two writers of one
    run. A worker polls its parent pid instead (POSIX: an orphan is adopted by another process)
    and exits at once; every file a run writes is replaced atomically, so it leaves at most an
    unfinished run that resumes from its last checkpoint."""
    while os.getppid() == parent:
        time.sleep(period_s)
    os._exit(1)


def local_results(fn: RunFn, jobs: Sequence[Job], workers: int
                  ) -> Iterator[tuple[int, Any]]:
    """``fn(run, run_dir)`` of every job on a spawn-context process pool of ``workers``
    processes (one torch thread each); yields (job index, result or exception) as runs end."""
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker)
    try:
        futures = {pool.submit(fn, run, d): i for i, (run, d) in enumerate(jobs)}
        for fut in as_completed(futures):
            exc = fut.exception()
            yield futures[fut], exc if exc is not None else fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def ray_session(address: str | None, workers: int) -> Iterator[Any]:
    """Connect to the Ray cluster at ``address``, or start a private local one bound to the
    loopback interface (no dashboard) and stop it afterwards.

    On Linux Ray replaces a loopback node address by the machine's LAN address (and its servers
    then listen on every interface) unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, its
    single-machine mode: the variable reaches the Ray processes this starts, and Ray's constant
    read from it steers this process, also when it joins a cluster at a loopback address.
    """
    host = None if address is None else address.rsplit(":", 1)[0]
    loopback = address is None or host in ("127.0.0.1", "localhost")
    old_env = os.environ.get(_RAY_CLUSTER_ENV)
    if address is None:
        os.environ[_RAY_CLUSTER_ENV] = "0"
    try:
        import ray
        from ray._private import ray_constants

        old_const = ray_constants.ENABLE_RAY_CLUSTER
        if loopback:
            ray_constants.ENABLE_RAY_CLUSTER = False
        try:
            if address is None:
                ray.init(num_cpus=workers, include_dashboard=False,
                         _node_ip_address="127.0.0.1", log_to_driver=False)
            elif loopback:
                ray.init(address=address, _node_ip_address="127.0.0.1", log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
            yield ray
        finally:
            ray.shutdown()
            ray_constants.ENABLE_RAY_CLUSTER = old_const
    finally:
        if old_env is None:
            os.environ.pop(_RAY_CLUSTER_ENV, None)
        else:
            os.environ[_RAY_CLUSTER_ENV] = old_env


def ray_results(fn: RunFn, jobs: Sequence[Job], address: str | None,
                workers: int, max_retries: int) -> Iterator[tuple[int, Any]]:
    """``fn(run, run_dir)`` of every job as Ray tasks (one CPU each, at most ``workers`` in
    flight, retried ``max_retries`` times when a worker or node dies); yields like
    :func:`local_results`."""
    with ray_session(address, workers) as ray:
        # retries cover lost workers and nodes (system failures), not exceptions of the run
        task = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=False)(
            fn)
        window = workers  # at most this many runs in flight
        todo = list(enumerate(jobs))[::-1]
        refs: dict[Any, int] = {}
        while todo or refs:
            while todo and len(refs) < window:
                i, (run, d) = todo.pop()
                refs[task.remote(run, d)] = i
            ready, _ = ray.wait(list(refs), num_returns=1)
            i = refs.pop(ready[0])
            output: Any
            try:
                output = ray.get(ready[0])
            except Exception as exc:  # reported per run; the sweep goes on
                output = exc
            yield i, output


def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
