"""Micro-batching: requests that arrive within a few milliseconds of each other share one model call.

Each request puts its inputs on a bounded queue with a future; one worker takes up to `max_batch_size` inputs
(waiting at most `max_wait_ms` for more after the first), runs the model in a thread so the event loop keeps
accepting, and resolves every future with its own slice of the outputs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass


class Overloaded(Exception):
    """The queue is full or the server is shutting down: the client should retry later."""


@dataclass
class _Job:
    inputs: list
    future: asyncio.Future


class Batcher:
    def __init__(self, predict: Callable[[list], list], max_batch_size: int = 32, max_wait_ms: float = 5,
                 max_queue: int = 1024, max_queued_inputs: int | None = None):
        self._predict = predict
        self.max_batch_size, self.max_wait, self.max_queue = max_batch_size, max_wait_ms / 1000, max_queue
        # Inputs waiting, across requests: work queued beyond what the model gets through before clients time out
        # would still be computed for nobody, so a request that would overfill it is refused at once (503).
        self.max_queued_inputs = max_queued_inputs or 32 * max_batch_size
        self._queued_inputs = 0
        self._queue: asyncio.Queue | None = None  # made in start(): it belongs to the server's event loop
        self._worker: asyncio.Task | None = None
        self._held: _Job | None = None  # taken from the queue but too big for the batch being filled
        self._closing = False

    @property
    def depth(self) -> int:
        """Requests waiting for the worker (not counting the batch it is running)."""
        return (self._queue.qsize() if self._queue else 0) + (self._held is not None)

    async def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._worker = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop taking requests, finish every queued and running one, then stop the worker."""
        self._closing = True
        if self._worker is not None:
            await self._queue.put(None)  # the queue is FIFO, so every job put before this runs first
            await self._worker

    async def submit(self, inputs: list, timeout: float) -> list:
        """The outputs for `inputs`; TimeoutError after `timeout` seconds, Overloaded when it cannot queue."""
        if self._closing or self._queue is None:
            raise Overloaded("the server is shutting down")
        if self._queued_inputs + len(inputs) > self.max_queued_inputs and self._queued_inputs:
            raise Overloaded(f"the server is busy ({self._queued_inputs} inputs queued); retry shortly")
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Job(inputs, future))
        except asyncio.QueueFull:
            raise Overloaded(f"the server is busy ({self.max_queue} requests queued); retry shortly") from None
        self._queued_inputs += len(inputs)
        # On timeout wait_for cancels the future, and the worker skips a job whose future is already done.
        return await asyncio.wait_for(future, timeout)

    async def _run(self) -> None:
        while True:
            batch, last = await self._collect()
            self._queued_inputs -= sum(len(job.inputs) for job in batch)
            batch = [job for job in batch if not job.future.done()]
            if batch:
                await self._serve(batch)
            if last:
                return

    async def _collect(self) -> tuple[list[_Job], bool]:
        """One batch, and whether the close() marker was reached."""
        first, self._held = self._held or await self._queue.get(), None
        if first is None:
            return [], True
        batch, size = [first], len(first.inputs)
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_batch_size:
            try:
                async with asyncio.timeout_at(deadline):
                    job = await self._queue.get()
            except TimeoutError:
                break
            if job is None:
                return batch, True
            if size + len(job.inputs) > self.max_batch_size:
                self._held = job  # it starts the next batch
                break
            batch.append(job)
            size += len(job.inputs)
        return batch, False

    async def _serve(self, batch: list[_Job]) -> None:
        inputs = [x for job in batch for x in job.inputs]
        try:
            outputs = await asyncio.to_thread(self._predict, inputs)
        except Exception as err:
            if len(batch) > 1:  # one client's bad input must not fail the others: run each request alone
                for job in batch:
                    await self._serve([job])
            elif not batch[0].future.done():
                batch[0].future.set_exception(err)
            return
        start = 0
        for job in batch:
            if not job.future.done():
                job.future.set_result(outputs[start:start + len(job.inputs)])
            start += len(job.inputs)
