"""The micro-batcher on its own, with a fake model: batch limits, error isolation, graceful shutdown."""

from __future__ import annotations

import asyncio
import time

import pytest

from lmtune.serving.batcher import Batcher, Overloaded


def doubling(calls: list):
    def predict(inputs: list) -> list:
        calls.append(list(inputs))
        if "bad" in inputs:
            raise ValueError("bad input")
        time.sleep(0.01)  # a model call takes a while; requests arriving meanwhile queue up
        return [x * 2 for x in inputs]
    return predict


def test_requests_share_calls_within_the_batch_size_and_get_their_own_slice():
    calls: list = []

    async def main():
        batcher = Batcher(doubling(calls), max_batch_size=3, max_wait_ms=50)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(inputs, timeout=10) for inputs in (["a", "b"], ["c", "d"],
                                                                                            ["e"])))
        await batcher.close()
        return results

    assert asyncio.run(main()) == [["aa", "bb"], ["cc", "dd"], ["ee"]]
    assert calls == [["a", "b"], ["c", "d", "e"]]  # ["c", "d"] did not fit beside ["a", "b"]: it opened the next


def test_a_failing_request_does_not_fail_the_others_in_its_batch():
    calls: list = []

    async def main():
        batcher = Batcher(doubling(calls), max_batch_size=8, max_wait_ms=50)
        await batcher.start()
        results = await asyncio.gather(batcher.submit(["a"], timeout=10), batcher.submit(["bad"], timeout=10),
                                       return_exceptions=True)
        await batcher.close()
        return results

    good, bad = asyncio.run(main())
    assert good == ["aa"]
    assert isinstance(bad, ValueError)
    assert calls == [["a", "bad"], ["a"], ["bad"]]


def test_close_finishes_queued_work_and_refuses_new_requests():
    calls: list = []

    async def main():
        batcher = Batcher(doubling(calls), max_batch_size=1, max_wait_ms=0)
        await batcher.start()
        pending = [asyncio.create_task(batcher.submit([x], timeout=10)) for x in "abcd"]
        await asyncio.sleep(0)  # let every request reach the queue
        await batcher.close()
        assert len(calls) == 4  # close() returned only after every queued request ran
        with pytest.raises(Overloaded):
            await batcher.submit(["e"], timeout=10)
        return await asyncio.gather(*pending)

    assert asyncio.run(main()) == [["aa"], ["bb"], ["cc"], ["dd"]]


def test_a_full_queue_is_refused():
    async def main():
        batcher = Batcher(doubling([]), max_batch_size=1, max_wait_ms=0, max_queue=1)
        await batcher.start()
        first = asyncio.create_task(batcher.submit(["a"], timeout=10))
        await asyncio.sleep(0)  # the queue holds "a" until the worker runs
        with pytest.raises(Overloaded, match="busy"):
            await batcher.submit(["b"], timeout=10)
        await batcher.close()
        return await first

    assert asyncio.run(main()) == ["aa"]


def test_inputs_beyond_the_queued_input_bound_are_refused_at_once():
    async def main():
        batcher = Batcher(doubling([]), max_batch_size=2, max_wait_ms=0, max_queued_inputs=3)
        await batcher.start()
        first = asyncio.create_task(batcher.submit(["a", "b"], timeout=10))
        await asyncio.sleep(0)  # queued, not yet taken by the worker
        with pytest.raises(Overloaded, match="2 inputs queued"):
            await batcher.submit(["c", "d"], timeout=10)
        results = [await first]
        results.append(await batcher.submit(["c", "d"], timeout=10))  # room again once the worker took them
        await batcher.close()
        return results

    assert asyncio.run(main()) == [["aa", "bb"], ["cc", "dd"]]
