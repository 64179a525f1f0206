"""RadixAttention's cache: a radix tree over token ids whose nodes own KV slots.

Edges are compressed (a node holds a run of tokens) and always a whole number of pages long.
A node's children are keyed by the first page of their edge (the first token when P = 1), so
finding the child to follow is one dict lookup.

With a sliding slot space a node also holds each token's sliding slot (`sliding`; 0 once
freed: a tombstone). A finished request leaves only its window's tail of them, and
`evict_sliding` frees those of unlocked nodes alone, keeping their full slots. A match then
ends at the longest page boundary behind which `window - 1` tokens keep sliding slots:

    path tokens   0 1 2 3 4 5 6 7 8 9        window 3 (the 2 tokens before the end), P = 2
    sliding       0 0 0 0 6 7 0 0 0 0        match of all 10 tokens -> 6 (4, 5 have theirs)
"""

from __future__ import annotations

import bisect
import heapq
import itertools

import torch

from .base import BaseCacheNode, BasePrefixCache, MatchResult, SlidingKV
from .kv_pool import SlotAllocator


class TreeNode(BaseCacheNode):
    """One edge of the tree: `key` tokens whose KV lives in `value` slots."""

    __slots__ = ("key", "value", "sliding", "num_sliding", "parent", "children", "lock_ref",
                 "last_access", "id")
    _ids = itertools.count()

    def __init__(self, key: list[int], value: torch.Tensor, parent: TreeNode | None,
                 sliding: torch.Tensor | None = None) -> None:
        self.key = key
        self.value = value
        # sliding slot of each token, 0 where freed; None without a sliding space
        self.sliding = sliding
        self.num_sliding = 0 if sliding is None else int(torch.count_nonzero(sliding))
        self.parent = parent
        self.children: dict[int | tuple[int, ...], TreeNode] = {}
        # NOTE: lock_ref of a node is at least the sum over its children: lock() counts the
        # whole path up to the root.
        self.lock_ref = 0
        self.last_access = 0
        self.id = next(TreeNode._ids)  # breaks last_access ties in the eviction heap

    def __repr__(self) -> str:
        return f"TreeNode(len={len(self.key)}, lock_ref={self.lock_ref}, id={self.id})"


class RadixCache(BasePrefixCache):
    """Prefix cache as a radix tree; evicts least-recently-used unlocked leaves.

    `last_access` is a counter bumped by every `match_prefix` and `insert`, not wall time,
    so eviction order is deterministic.
    """

    def __init__(self, allocator: SlotAllocator, page_size: int = 1,
                 sliding: SlidingKV | None = None) -> None:
        super().__init__(allocator, page_size, sliding)
        self._new_tree()

    # -- lookup and insertion ------------------------------------------------------------

    def match_prefix(self, key: list[int], *, record: bool = True,
                     need_window: bool = True) -> MatchResult:
        num_requested = len(key)
        if self.sliding is not None and need_window:
            key = key[: self.peek_len(key)]
        node, length, path = self._descend(key)
        if record:
            self._record_match(num_requested, length)
        slots = torch.cat([n.value for n in path]) if path else self._empty_slots()
        sliding = None
        if self.sliding is not None:
            sliding = torch.cat([n.sliding for n in path]) if path else self._empty_slots()
        return MatchResult(slots=slots, node=node, length=length, sliding_slots=sliding)

    def peek_len(self, key: list[int]) -> int:
        length, pieces = self._walk(key)
        if self.sliding is None or length == 0:
            return length
        return self._window_len(torch.cat([n.sliding[:k] for n, k in pieces]))

    def _walk(self, key: list[int]) -> tuple[int, list[tuple[TreeNode, int]]]:
        """The matched length of `key` and the (node, tokens matched in it) along the way,
        changing nothing."""
        node, pos, pieces = self.root, 0, []
        while pos + self.page_size <= len(key):
            child = node.children.get(self._child_key(key, pos))
            if child is None:
                break
            num_matched = self._num_matched(child.key, key, pos)
            if num_matched == 0:
                break
            pieces.append((child, num_matched))
            pos += num_matched
            if num_matched < len(child.key):
                break
            node = child
        return pos, pieces

    def _window_len(self, sliding: torch.Tensor) -> int:
        """The longest page-aligned prefix of a path (with these sliding slots) whose
        `window - 1` tokens before its end all keep their sliding slots."""
        need, size = self.sliding.window - 1, self.page_size
        length = len(sliding)
        if need <= 0:
            return length
        absent = (sliding == 0).nonzero().flatten().tolist()
        while length > 0:
            i = bisect.bisect_left(absent, length) - 1
            if i < 0 or absent[i] < length - need:
                return length
            # every end in (absent[i], length] sees that token in its window
            length = absent[i] // size * size
        return 0

    def insert(self, key: list[int], slots: torch.Tensor,
               sliding_slots: torch.Tensor | None = None) -> int:
        assert len(key) % self.page_size == 0, f"key length {len(key)} is not page aligned"
        assert len(slots) == len(key), f"{len(slots)} slots for {len(key)} tokens"
        node, num_existing, path = self._descend(key)
        if self.sliding is not None and sliding_slots is None:
            sliding_slots = torch.zeros_like(slots)
        if sliding_slots is not None:
            self._adopt_sliding(path, sliding_slots)
        if num_existing < len(key):
            # clone: the caller's tensor may be a view of req_to_token, rewritten later.
            sliding = None
            if sliding_slots is not None:
                sliding = sliding_slots[num_existing:].clone()
                sliding_slots[num_existing:] = 0
            leaf = TreeNode(list(key[num_existing:]), slots[num_existing:].clone(), parent=node,
                            sliding=sliding)
            leaf.last_access = node.last_access
            node.children[self._child_key(key, num_existing)] = leaf
            self._evictable_size += len(leaf.key)
            self._sliding_evictable += leaf.num_sliding
        return num_existing

    def _adopt_sliding(self, path: list[TreeNode], sliding_slots: torch.Tensor) -> None:
        """Give the path's tokens that have no sliding slot the caller's (zeroed there)."""
        pos = 0
        for node in path:
            given = sliding_slots[pos : pos + len(node.key)]
            pos += len(node.key)
            take = (node.sliding == 0) & (given != 0)
            num = int(take.sum())
            if num == 0:
                continue
            node.sliding[take] = given[take]
            given[take] = 0
            node.num_sliding += num
            if node.lock_ref == 0:
                self._sliding_evictable += num

    def _descend(self, key: list[int]) -> tuple[TreeNode, int, list[TreeNode]]:
        """Follow `key` from the root while whole pages match, marking the path as used.

        An edge the match ends inside is split there, so the returned node covers exactly
        the matched prefix. Returns that node, the matched length and the path's nodes.
        """
        tick = self._tick()
        self.root.last_access = tick
        node, pos, path = self.root, 0, []
        while pos + self.page_size <= len(key):
            child = node.children.get(self._child_key(key, pos))
            if child is None:
                break
            num_matched = self._num_matched(child.key, key, pos)
            if num_matched < len(child.key):
                child = self._split(child, num_matched)  # the next lookup will then miss
            child.last_access = tick
            path.append(child)
            node, pos = child, pos + num_matched
        return node, pos, path

    def _num_matched(self, edge: list[int], key: list[int], pos: int) -> int:
        """Leading tokens of `edge` equal to `key[pos:]`, rounded down to whole pages."""
        limit = min(len(edge), len(key) - pos)
        if edge[:limit] == key[pos : pos + limit]:  # fast path: the whole overlap matches
            return limit - limit % self.page_size
        n = 0
        while n < limit and edge[n] == key[pos + n]:
            n += 1
        return n - n % self.page_size

    def _split(self, child: TreeNode, at: int) -> TreeNode:
        """Cut `child`'s edge after `at` tokens; returns the new node holding the first part."""
        parent = child.parent
        sliding = None if child.sliding is None else child.sliding[:at]
        head = TreeNode(child.key[:at], child.value[:at], parent=parent, sliding=sliding)
        if sliding is not None:
            child.sliding = child.sliding[at:]
            child.num_sliding -= head.num_sliding
        # The head lies on every path through child, so it carries child's locks.
        head.lock_ref = child.lock_ref
        head.last_access = child.last_access
        parent.children[self._child_key(head.key, 0)] = head
        child.key, child.value, child.parent = child.key[at:], child.value[at:], head
        head.children[self._child_key(child.key, 0)] = child
        return head

    def _child_key(self, key: list[int], pos: int) -> int | tuple[int, ...]:
        return key[pos] if self.page_size == 1 else tuple(key[pos : pos + self.page_size])

    # -- locking -------------------------------------------------------------------------

    def lock(self, node: TreeNode) -> None:
        while node is not self.root:
            if node.lock_ref == 0:
                self._evictable_size -= len(node.key)
                self._protected_size += len(node.key)
                self._sliding_evictable -= node.num_sliding
            node.lock_ref += 1
            node = node.parent

    def unlock(self, node: TreeNode) -> None:
        if node is not self.root and node.lock_ref <= 0:
            raise RuntimeError(f"unlock of {node}, which is not locked")
        while node is not self.root:
            node.lock_ref -= 1
            if node.lock_ref == 0:
                self._evictable_size += len(node.key)
                self._protected_size -= len(node.key)
                self._sliding_evictable += node.num_sliding
            node = node.parent

    # -- eviction ------------------------------------------------------------------------

    def evict(self, num_tokens: int) -> int:
        heap = [(n.last_access, n.id, n) for n in self.nodes() if self._is_evictable(n)]
        heapq.heapify(heap)
        num_freed = 0
        while num_freed < num_tokens and heap:
            _, _, node = heapq.heappop(heap)
            self.allocator.free(node.value)
            self._free_sliding(node)
            num_freed += len(node.key)
            self._evictable_size -= len(node.key)
            parent = node.parent
            del parent.children[self._child_key(node.key, 0)]
            if self._is_evictable(parent):
                heapq.heappush(heap, (parent.last_access, parent.id, parent))
        self._evicted_tokens += num_freed
        return num_freed

    def evict_sliding(self, num_slots: int) -> int:
        heap = [(n.last_access, n.id, n) for n in self.nodes()
                if n is not self.root and n.lock_ref == 0 and n.num_sliding]
        heapq.heapify(heap)
        num_freed = 0
        while num_freed < num_slots and heap:
            num_freed += self._free_sliding(heapq.heappop(heap)[2])
        return num_freed

    def _free_sliding(self, node: TreeNode) -> int:
        """Give an unlocked node's sliding slots back, leaving tombstones; how many."""
        num = node.num_sliding
        if num:
            self.sliding.allocator.free(node.sliding[node.sliding != 0])
            node.sliding.zero_()
            node.num_sliding = 0
            self._sliding_evictable -= num
        return num

    def unlocked_slots(self) -> list[torch.Tensor]:
        """The slots of every unlocked entry: what `evict_holding` may give back."""
        return [n.value for n in self.nodes() if n is not self.root and n.lock_ref == 0]

    def evict_holding(self, slots: set[int]) -> int:
        """Evict every unlocked entry holding one of `slots`, with the entries below it
        (unlocked too: a lock covers the whole path up to the root), so those slots go back
        to the allocator whatever their recency. Returns the number of slots freed."""
        num_freed = 0
        for node in self.nodes():  # parents first: a subtree goes before its own nodes
            if node is self.root or node.lock_ref or node.parent is None:
                continue
            if not slots.intersection(node.value.tolist()):
                continue
            del node.parent.children[self._child_key(node.key, 0)]
            stack = [node]
            while stack:
                below = stack.pop()
                stack.extend(below.children.values())
                self.allocator.free(below.value)
                self._free_sliding(below)
                num_freed += len(below.key)
                below.parent = None  # detached: skipped when the walk meets it
        self._evictable_size -= num_freed
        self._evicted_tokens += num_freed
        return num_freed

    def _is_evictable(self, node: TreeNode) -> bool:
        return node is not self.root and not node.children and node.lock_ref == 0

    # -- sizes and housekeeping ----------------------------------------------------------

    @property
    def evictable_size(self) -> int:
        return self._evictable_size

    @property
    def sliding_evictable_size(self) -> int:
        return self._sliding_evictable

    @property
    def protected_size(self) -> int:
        return self._protected_size

    def total_size(self) -> int:
        return sum(len(n.key) for n in self.nodes() if n is not self.root)

    def reset(self) -> None:
        if self._protected_size:
            raise RuntimeError(f"reset with {self._protected_size} locked tokens")
        for node in self.nodes():
            if node is not self.root:
                self.allocator.free(node.value)
                if node.num_sliding:
                    self.sliding.allocator.free(node.sliding[node.sliding != 0])
        self._new_tree()
        self._reset_stats()

    def nodes(self) -> list[TreeNode]:
        """Every node, the root included, parents before children."""
        order, stack = [], [self.root]
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(node.children.values())
        return order

    def _new_tree(self) -> None:
        sliding = None if self.sliding is None else self._empty_slots()
        self.root = TreeNode([], self._empty_slots(), parent=None, sliding=sliding)
        self._clock = 0
        self._evictable_size = 0
        self._protected_size = 0
        self._sliding_evictable = 0  # sliding slots of unlocked nodes

    def _tick(self) -> int:
        self._clock += 1
        return self._clock
