"""Routing decisions on synthetic traces: prefixes stick to the replica that served them,
loads that drift apart are rebalanced, unknown prompts go to the least loaded replica,
the approximate trees stay bounded, exited replicas get nothing."""

from __future__ import annotations

import random

import pytest

from sglc.runtime.distributed.router import (
    ApproxRadixTree,
    CacheAwareRouter,
    NoReplica,
    RoundRobinRouter,
)

ALIVE2 = [True, True]


def tenant_prompt(tenant: int, k: int) -> list[int]:
    """A 40-token few-shot head per tenant, then a short distinct question."""
    return [1000 + tenant] * 40 + [k % 97, k % 89, 7]


def test_a_tenants_requests_follow_its_prefix():
    router = CacheAwareRouter(2, balance_threshold=100, cache_threshold=0.3)
    first = {t: router.route(tenant_prompt(t, 0), [0, 0], ALIVE2).replica for t in range(4)}
    assert sorted(first.values()) == [0, 0, 1, 1]  # new prefixes spread by load and tree size
    for k in range(1, 50):
        t = k % 4
        route = router.route(tenant_prompt(t, k), [0, 0], ALIVE2)
        assert (route.replica, route.reason) == (first[t], "cache")
        assert route.num_matched_tokens >= 40


def test_uneven_loads_override_the_cache():
    router = CacheAwareRouter(2, balance_threshold=4, cache_threshold=0.3)
    router.route(tenant_prompt(0, 0), [0, 0], ALIVE2)  # tenant 0 lives on replica 0
    assert router.route(tenant_prompt(0, 1), [4, 0], ALIVE2).reason == "cache"
    route = router.route(tenant_prompt(0, 2), [5, 0], ALIVE2)
    assert (route.replica, route.reason) == (1, "balance")


def test_a_short_match_goes_to_the_least_loaded_replica():
    router = CacheAwareRouter(2, balance_threshold=100, cache_threshold=0.5)
    router.route([5, 6, 7, 8, 9, 10], [0, 0], ALIVE2)  # replica 0
    route = router.route([5, 6, 1, 2, 3, 4], [3, 1], ALIVE2)  # 2/6 matched < 0.5
    assert (route.replica, route.reason) == (1, "least_loaded")


def test_exited_replicas_get_nothing():
    router = CacheAwareRouter(3, balance_threshold=100, cache_threshold=0.1)
    router.route(tenant_prompt(0, 0), [0, 0, 0], [True, True, True])
    router.forget(0)
    for k in range(10):
        assert router.route(tenant_prompt(0, k), [0, 0, 0], [False, True, True]).replica != 0
    with pytest.raises(NoReplica, match="every data-parallel replica has exited"):
        router.route([1], [0, 0, 0], [False, False, False])


def test_round_robin_cycles_over_live_replicas():
    router = RoundRobinRouter(3)
    picks = [router.route([1], [0, 0, 0], [True, False, True]).replica for _ in range(4)]
    assert picks == [0, 2, 0, 2]


def test_cache_aware_beats_round_robin_on_an_interleaved_trace():
    """Hit rates with replica caches that hold about half the tenants' prefixes each
    (modelled by small trees): split by prefix, each replica's share fits; in turn, both
    replicas see every tenant and thrash."""
    rng = random.Random(0)
    trace = [tenant_prompt(rng.randrange(6), k) for k in range(300)]

    def matched_share(router) -> float:
        seen = [ApproxRadixTree(150) for _ in range(2)]
        matched = total = 0
        for ids in trace:
            replica = router.route(ids, [0, 0], ALIVE2).replica
            matched += seen[replica].match_len(ids)
            total += len(ids)
            seen[replica].insert(ids)
        return matched / total

    aware = matched_share(CacheAwareRouter(2, balance_threshold=8, cache_threshold=0.3))
    plain = matched_share(RoundRobinRouter(2))
    assert aware > 0.8 and aware >= 1.5 * plain


def test_the_tree_forgets_least_recently_used_branches():
    tree = ApproxRadixTree(max_tokens=100)
    tree.insert([1] * 60)
    tree.insert([2] * 30)
    tree.insert([1] * 60)  # refresh branch 1
    tree.insert([3] * 30)  # over the cap: branch 2 is the oldest
    assert tree.num_tokens <= 100
    assert tree.match_len([1] * 60) == 60
    assert tree.match_len([3] * 30) == 30
    assert tree.match_len([2] * 30) < 30
