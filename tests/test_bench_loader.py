"""The benchmark's data loader, where it can go wrong without a database."""

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_card_encryption_workers_die_of_sigterm_under_the_benchmarks_own_handler():
    # The pool stops its workers with SIGTERM. Workers that inherited the benchmark's handler (an
    # exit with clean-up) could miss it while blocked on the task queue, and the run hung for good.
    script = textwrap.dedent(
        """
        import signal
        from bench import bench, load_data
        signal.signal(signal.SIGTERM, bench._terminate)
        with load_data.worker_pool(2) as pool:
            print(int(pool.apply(signal.getsignal, (signal.SIGTERM,))))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == str(int(signal.SIG_DFL))


def test_the_payment_insert_workers_die_of_sigterm_under_the_benchmarks_own_handler():
    # The same for the workers that insert payments (each with its connection, left out here).
    script = textwrap.dedent(
        """
        import multiprocessing, signal
        from bench import bench, load_data
        load_data._connect = lambda settings: None
        signal.signal(signal.SIGTERM, bench._terminate)
        with multiprocessing.get_context("fork").Pool(2, initializer=load_data._worker_init) as pool:
            print(int(pool.apply(signal.getsignal, (signal.SIGTERM,))))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == str(int(signal.SIG_DFL))
