"""The engine thread -> event loop mailbox: every event arrives, in post order, and a burst
of posts wakes the loop once."""

from __future__ import annotations

import asyncio
import threading

from sglc.runtime.core import StreamDelta
from sglc.runtime.server.jobs import Mailbox


class CountingLoop(asyncio.SelectorEventLoop):
    """An event loop that counts cross-thread wake-ups."""

    wakeups = 0

    def call_soon_threadsafe(self, callback, *args, context=None):  # type: ignore[override]
        self.wakeups += 1
        return super().call_soon_threadsafe(callback, *args, context=context)


def delta(rid: str, token: int) -> StreamDelta:
    return StreamDelta(rid=rid, index=0, text=str(token), token_ids=[token])


def test_a_burst_from_another_thread_arrives_in_order_with_one_wakeup() -> None:
    loop = CountingLoop()
    try:
        mailbox = Mailbox(loop)
        got: list[tuple[str, int, float]] = []

        def deliver(posted: float, item: StreamDelta) -> None:
            got.append((item.rid, item.token_ids[0], posted))

        def engine_step() -> None:  # one step streams a token to each of 64 requests
            for i in range(64):
                mailbox.post(deliver, delta(f"r{i % 8}", i))

        thread = threading.Thread(target=engine_step)
        thread.start()
        thread.join()  # the whole burst is posted before the loop runs
        loop.run_until_complete(asyncio.sleep(0))
        assert [token for _, token, _ in got] == list(range(64))
        assert [posted for *_, posted in got] == sorted(posted for *_, posted in got)
        assert loop.wakeups == 1

        thread = threading.Thread(target=lambda: mailbox.post(deliver, delta("late", 99)))
        thread.start()
        thread.join()
        loop.run_until_complete(asyncio.sleep(0))
        assert got[-1][:2] == ("late", 99) and len(got) == 65
        assert loop.wakeups == 2  # a new burst after the drain wakes the loop again
    finally:
        loop.close()


def test_posts_racing_the_drain_are_never_lost() -> None:
    loop = CountingLoop()
    try:
        mailbox = Mailbox(loop)
        got: list[int] = []
        done = threading.Event()

        def producer(base: int) -> None:
            for i in range(2000):
                mailbox.post(lambda _t, item: got.append(item.token_ids[0]), delta("r", base + i))

        async def consume() -> None:
            threads = [threading.Thread(target=producer, args=(k * 10_000,)) for k in range(3)]
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.01)
            done.set()

        loop.run_until_complete(consume())
        assert done.is_set()
        assert sorted(got) == sorted(k * 10_000 + i for k in range(3) for i in range(2000))
        for k in range(3):  # each producer's own events stay in its order
            mine = [t for t in got if t // 10_000 == k]
            assert mine == sorted(mine)
        assert loop.wakeups < 6000
    finally:
        loop.close()
