"""Ray for material libraries: a local cluster sized to this machine, or an existing one (`--address`), and a
pool that runs one task per job with as many in flight as the cluster has room for.

Only the driver writes files: tasks return their outputs (`models.library`) or write into a report folder
(`models.library_eval`), so a worker that dies is retried by Ray (`max_retries`) and leaves nothing half done.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available

# Ray keeps results in shared memory; they are a few MB at most here (an .ngtc and thumbnails), so the object
# store is kept small instead of Ray's default 30% of RAM.
OBJECT_STORE_BYTES = 256 << 20
RETRIES = 2  # a task whose worker dies runs again this many times


class ClusterError(ValueError):
    """Ray cannot start or be reached, or a task cannot fit on any node: one line for the user."""


@dataclass(frozen=True)
class Cluster:
    address: str | None  # None: a local Ray started by this process (ended by `stop`)
    nodes: int
    cpus: float
    gpus: float
    largest_node_cpus: float
    owned: bool = False  # connected by `start` (so `stop` disconnects, ending a local Ray it started)

    def describe(self) -> str:
        where = f"Ray cluster at {self.address}" if self.address else "local Ray"
        gpus = f", {self.gpus:g} GPUs" if self.gpus else ""
        return f"{where}: {self.nodes} node{'s' if self.nodes != 1 else ''}, {self.cpus:g} CPUs{gpus}"


@dataclass(frozen=True)
class Resources:
    """What one task asks Ray for; its torch threads are its CPUs, so tasks never oversubscribe the cores."""

    cpus: int
    gpus: float = 0.0

    @property
    def device(self) -> str:
        return "cuda" if self.gpus else "cpu"


def start(address: str | None = None, cpus: int | None = None) -> Cluster:
    """Join the cluster at `address`, or start a local Ray with `cpus` CPUs (default: all of this machine's).
    A process already connected to Ray (a test, a notebook) keeps its connection."""
    if ray.is_initialized():
        return describe(address, owned=False)
    if cpus is not None and cpus < 1:
        raise ClusterError(f"--cpus must be at least 1, got {cpus}")
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
    if address:
        check_address(address)
    try:
        if address:
            _token_auth_like_ray_start()
            ray.init(address=address, **options)
        else:
            # "local": a Ray of our own, never the one a `ray start` on this machine may have left running
            ray.init("local", num_cpus=cpus or os.cpu_count() or 1, object_store_memory=OBJECT_STORE_BYTES,
                     **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise ClusterError(f"cannot start or reach {where} ({' '.join(str(exc).split())})") from None
    return describe(address, owned=True)


def check_address(address: str | None, timeout: float = 10.0) -> None:
    """A "host:port" that nothing answers at fails now, in one line: Ray itself would keep trying for minutes."""
    host, sep, port = (address or "").rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", ray://... : Ray's own forms, left to it
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(f"--address {address}: no Ray cluster answers there ({' '.join(str(exc).split())}); "
                           f"start one with `ray start --head` (see README)") from None


def _token_auth_like_ray_start() -> None:
    """Ray 2.60's `ray start` turns token authentication on when this user has a token (~/.ray/auth_token, or
    RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH) and RAY_AUTH_MODE is unset, but a driver joining with ray.init does
    not: the same call here (Ray's own, private in 2.60, hence the pinned version), so that `--address` reaches
    a cluster started on this machine or with the token copied here."""
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def describe(address: str | None, owned: bool) -> Cluster:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    largest = max((n["Resources"].get("CPU", 0.0) for n in nodes), default=0.0)
    return Cluster(address, len(nodes), total.get("CPU", 0.0), total.get("GPU", 0.0), largest, owned)


def stop(cluster: Cluster) -> None:
    """Disconnect, if `start` connected; a local Ray started by `start` ends with it."""
    if cluster.owned:
        ray.shutdown()


def task_resources(cluster: Cluster, tasks: int, cpus_per_task: int | None = None,
                   gpus_per_task: float | None = None, device: str | None = None) -> Resources:
    """A task's share: a GPU each when the cluster has GPUs (unless `device` is cpu); on CPUs, the cores split
    between min(tasks, cores) tasks, one torch thread per CPU asked for, never more than the largest node has."""
    use_gpu = cluster.gpus > 0 and device != "cpu" if gpus_per_task is None else gpus_per_task > 0
    if device == "cuda" and not cluster.gpus:
        raise ClusterError("--device cuda: the cluster has no GPUs")
    if use_gpu:
        return Resources(cpus_per_task or 1, gpus_per_task or 1.0)
    if cpus_per_task is None:
        cpus_per_task = max(1, int(cluster.cpus) // max(1, min(tasks, int(cluster.cpus))))
    cpus_per_task = min(cpus_per_task, int(cluster.largest_node_cpus)) if cluster.largest_node_cpus >= 1 else 1
    return Resources(max(1, cpus_per_task))


def _fits(job: Resources, in_flight: list[Resources], total: dict[str, float]) -> bool:
    """Whether the cluster has room for `job` beside what is in flight (nodes may have joined or left)."""
    cpus, gpus = sum(r.cpus for r in in_flight), sum(r.gpus for r in in_flight)
    return cpus + job.cpus <= total.get("CPU", 0.0) + 1e-9 and gpus + job.gpus <= total.get("GPU", 0.0) + 1e-9


@dataclass
class Job:
    key: str
    fn: Callable[..., Any]
    args: tuple
    resources: Resources


@dataclass
class PoolState:
    """Where a pool stands: for progress lines and the time left."""

    total: int
    queued: int = 0
    running: dict[str, float] = field(default_factory=dict)  # key -> start (time.monotonic)
    done: int = 0
    failed: int = 0
    slots: int = 1  # jobs running side by side
    seconds: list[float] = field(default_factory=list)  # how long each finished job ran

    def time_left(self) -> float | None:
        """Seconds until every job is done, at the mean time a job has taken so far; None before one finished."""
        if not self.seconds:
            return None
        mean, now = sum(self.seconds) / len(self.seconds), time.monotonic()
        running = sum(max(0.0, mean - (now - start)) for start in self.running.values())
        return (running + self.queued * mean) / max(1, self.slots)


OnResult = Callable[[Job, Any, BaseException | None], bool]  # returns False when the job failed


def run(jobs: Sequence[Job], on_result: OnResult, on_state: Callable[[PoolState], None] | None = None,
        retries: int = RETRIES, poll: float = 0.5) -> None:
    """Run every job as a Ray task, as many at once as the cluster has room for, and hand each result
    (or the exception Ray raised: a worker that died more than `retries` times) to `on_result` in the order
    they finish. Ctrl-C cancels what is running, hands over what had finished, and raises KeyboardInterrupt."""
    queue = list(reversed(jobs))  # pop() from the end takes them in order
    state = PoolState(len(jobs), queued=len(queue))
    in_flight: dict[Any, Job] = {}
    remote = _remote_functions({job.fn for job in jobs}, retries)
    try:
        while queue or in_flight:
            _submit(queue, in_flight, state, remote)
            if on_state:
                on_state(state)
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=poll)
            for ref in ready:
                _finish(ref, in_flight.pop(ref), state, on_result)
        if on_state:
            on_state(state)
    except KeyboardInterrupt:
        _cancel(in_flight, state, on_result)
        raise


def _submit(queue: list[Job], in_flight: dict[Any, Job], state: PoolState, remote: dict[Callable, Any]) -> None:
    """Submit what the cluster can start now (one job at least when none runs). The rest waits here, so that
    "running" is what runs, and Ctrl-C has only that to cancel."""
    total = ray.cluster_resources()
    while queue and (not in_flight or _fits(queue[-1].resources, [j.resources for j in in_flight.values()], total)):
        job = queue.pop()
        ref = remote[job.fn].options(num_cpus=job.resources.cpus, num_gpus=job.resources.gpus,
                                     name=f"{job.fn.__name__}:{job.key}"[:200]).remote(*job.args)
        in_flight[ref] = job
        state.running[job.key] = time.monotonic()
    state.queued, state.slots = len(queue), max(1, len(in_flight))


def _remote_functions(fns: Iterable[Callable], retries: int) -> dict[Callable, Any]:
    # retry_exceptions stays False: a task's own exception is a bad input or a bug, the same on every try.
    return {fn: ray.remote(max_retries=retries)(fn) for fn in fns}


def _finish(ref, job: Job, state: PoolState, on_result: OnResult) -> None:
    state.seconds.append(time.monotonic() - state.running.pop(job.key, time.monotonic()))
    try:
        result, error = ray.get(ref), None
    except (ray.exceptions.RayError, OSError) as exc:
        result, error = None, exc
    ok = on_result(job, result, error)
    state.done += 1
    state.failed += 0 if ok else 1


def _cancel(in_flight: dict[Any, Job], state: PoolState, on_result: OnResult) -> None:
    """Cancel the running tasks; results that were already in are still handed over."""
    ready, _ = ray.wait(list(in_flight), num_returns=len(in_flight), timeout=0) if in_flight else ([], [])
    for ref in [r for r in in_flight if r not in ready]:
        ray.cancel(ref, force=True)
    for ref in ready:
        _finish(ref, in_flight.pop(ref), state, on_result)
    in_flight.clear()
    state.running.clear()


def worker_name() -> str:
    """The node a task runs on, for the record."""
    return ray.util.get_node_ip_address() if ray.is_initialized() else "local"
