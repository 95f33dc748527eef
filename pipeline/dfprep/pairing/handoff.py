"""Handing an original's `Reference` to its fakes' videos, and forgetting it once they are done.

An original comes before its fakes in its shard job (see `plan`), so its reference exists (or is
on its way, a Dask future) when a fake starts. `JobPairs` is the bookkeeping of one job (the
inline run keeps the references themselves); `RunPairs` that of a Dask run, which also knows the
fakes whose original's task is not back yet: they wait on the cluster, so they do not occupy a
worker.
"""

from __future__ import annotations

from collections import Counter

from dfprep.pairing.plan import original_positions

__all__ = ["JobPairs", "RunPairs"]


class JobPairs:
    """The pairs inside one shard job, by video position: which video gets which reference, and
    when a reference is no longer needed."""

    def __init__(self, videos: tuple[dict, ...] | list[dict], select: str):
        self.original_of = original_positions(videos, select)  # fake -> its original
        self.originals = set(self.original_of.values())
        self._left = Counter(self.original_of.values())  # original -> its fakes not done yet
        self._refs: dict[int, object] = {}  # original -> its reference (or a future of it)

    def task_args(self, i: int) -> dict:
        """Keyword arguments of video I's task (`run_video`): an original is asked for its
        reference, a paired fake gets its original's."""
        if i in self.originals:
            return {"want_reference": True}
        if i in self.original_of:
            return {"reference": self._refs.get(self.original_of[i])}
        return {}

    def keep(self, i: int, reference) -> None:
        """Original I's reference, for its fakes."""
        self._refs[i] = reference

    def done(self, i: int) -> None:
        """Video I is done: a reference that no fake still needs is forgotten."""
        o = self.original_of.get(i)
        if o is not None:
            self._left[o] -= 1
            if self._left[o] == 0:
                self._refs.pop(o, None)

    def clear(self) -> None:
        """Forget every reference (the job failed)."""
        self._refs.clear()


class RunPairs:
    """A Dask run's pairs over its jobs (by job name): the references' futures, and the paired
    fakes submitted before their original's task came back."""

    def __init__(self, select: str):
        self.select = select
        self.jobs: dict[str, JobPairs] = {}
        self._back: set[tuple[str, int]] = set()  # originals whose task came back
        self._blocked: dict = {}  # a fake's future -> its original (job, position), not back yet

    def add_job(self, name: str, videos: tuple[dict, ...]) -> JobPairs:
        self.jobs[name] = JobPairs(videos, self.select)
        return self.jobs[name]

    @property
    def blocked(self) -> int:
        """Fakes submitted whose original's task is not back yet."""
        return len(self._blocked)

    def submitted(self, name: str, i: int, future, reference=None) -> None:
        """Video I of job NAME was submitted as FUTURE (an original: with its REFERENCE's)."""
        pairs = self.jobs[name]
        if i in pairs.originals:
            pairs.keep(i, reference)
            return
        o = pairs.original_of.get(i)
        if o is not None and (name, o) not in self._back:
            self._blocked[future] = (name, o)

    def finished(self, future) -> None:
        """A task is over, whatever its outcome: it no longer waits."""
        self._blocked.pop(future, None)

    def back(self, name: str, i: int) -> None:
        """Video I of job NAME came back: an original's fakes can run; a fake's original's
        reference is forgotten once no fake needs it."""
        pairs = self.jobs[name]
        if i in pairs.originals:
            self._back.add((name, i))
            for f in [f for f, k in self._blocked.items() if k == (name, i)]:
                del self._blocked[f]
        pairs.done(i)

    def drop(self, name: str, futures: list) -> None:
        """Job NAME failed: its references and its waiting FUTURES are forgotten."""
        self.jobs[name].clear()
        for f in futures:
            self._blocked.pop(f, None)
