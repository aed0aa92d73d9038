"""Worker processes of vector envs that start safely whatever start method the caller picks.

A child created by ``fork`` inherits torch's OpenMP thread pool without its threads: the child's first
parallel torch operation waits forever for them (measured: a 512×512 matmul or a 10⁶-element add in a
child forked after the parent ran one with 2 threads hangs; with 1 thread in the child it returns at
once). One intra-op thread never enters that pool, so a forked child is put on one thread right after
the fork, before any env code runs (an SSD-KD env does torch work while it is being built).
``forkserver`` and ``spawn`` children start a fresh torch and are left alone.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings

#: set in a child forked from a process that had imported torch
_forked_with_torch = False
_warned = False


def _limit_torch_threads() -> None:
    global _forked_with_torch
    torch = sys.modules.get("torch")
    if torch is None:
        return  # the child will import a fresh torch: nothing inherited
    _forked_with_torch = True
    torch.set_num_threads(1)


def _after_fork_in_child() -> None:
    # the forkserver's server process forks its children too; its torch never ran a parallel op
    try:
        forker = sys._getframe(1).f_globals.get("__name__")
    except ValueError:  # forked from C with no Python caller
        forker = None
    if forker != "multiprocessing.forkserver":
        _limit_torch_threads()


def _started_by_fork() -> bool:
    """Whether this process is a multiprocessing child started with ``fork``."""
    if multiprocessing.parent_process() is None:
        return False
    method = getattr(multiprocessing.current_process(), "_start_method", None)  # set by ctx.Process classes
    # (the default method when none was set is the first of get_all_start_methods; asking
    # get_start_method() without allow_none would fix the default for this process)
    default = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
    return (method or default) == "fork"


os.register_at_fork(after_in_child=_after_fork_in_child)
if _started_by_fork():
    # first imported inside a forked child (the parent never imported envs, so the hook above was not
    # registered there): still before any env is built
    _limit_torch_threads()


def check_worker() -> None:
    """Called when an env is built: in a forked child, warn once that fork is unsafe with torch
    (its thread count is already 1)."""
    global _warned
    if _forked_with_torch and not _warned:
        _warned = True
        warnings.warn("this env runs in a process forked from one that had imported torch; forking after torch's "
                      "thread pool has started can deadlock, so torch uses 1 thread here. Start vector-env workers "
                      "with 'forkserver' or 'spawn' (e.g. vector_kwargs={'context': 'forkserver'}).",
                      RuntimeWarning, stacklevel=2)
